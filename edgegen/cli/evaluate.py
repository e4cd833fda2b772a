"""`edgegen eval skab | tep | timegan`: the evaluation protocols, our numbers beside the published ones."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer
from rich.table import Table

from edgegen.cli.common import DataDirOption, JsonOutOption, exit_on, wide_console
from edgegen.cli.generative import detector_params, model_path
from edgegen.models import native_logs

if TYPE_CHECKING:  # the evaluations import numpy models and TensorFlow lazily, inside the commands
    from edgegen.models.eval.skab import SkabResult
    from edgegen.models.eval.skab_metrics import NabScores, OutlierScores

eval_app = typer.Typer(help="Evaluation protocols, side by side with the published numbers.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")


def _write_json(path: Path | None, doc: Any) -> None:
    if path is not None:
        path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
        typer.echo(f"numbers -> {path}")


SKAB_ALPHA = 0.1  # the configured false-alarm rate for the SKAB runs (FAR <= 15 % is the target's bound)


@eval_app.command("skab")
def eval_skab(
    data: DataDirOption,
    json_out: JsonOutOption = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N experiments (smoke runs).")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Training steps per file.")] = None,
    alpha: Annotated[float | None, typer.Option(help="Configured false-alarm rate.")] = None,
    seed: Annotated[int | None, typer.Option(help="Training seed.")] = None,
    references: Annotated[bool, typer.Option(help="Also rescore the published methods' predictions.")] = True,
    shared: Annotated[
        bool,
        typer.Option(
            "--shared/--per-file",
            help="One network for all files (every file's rows 0-399 + the anomaly-free run) or one per file.",
        ),
    ] = True,
) -> None:
    """SKAB leaderboard protocol: per file train on rows 0-399, score the rest; outliers, changepoints,
    interval coverage, anomaly-forecast reliability."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from rich.progress import Progress

    from edgegen.models.eval import skab as skab_eval
    from edgegen.models.eval import skab_metrics

    params = detector_params(steps=steps, alpha=alpha if alpha is not None else SKAB_ALPHA, seed=seed)
    with exit_on(OSError), native_logs.captured(), Progress(transient=True) as bars:
        task = bars.add_task("SKAB files", total=limit or 34)
        result = skab_eval.evaluate(
            data, params, limit, lambda name, i, total: bars.update(task, completed=i), shared=shared
        )
        rescored = skab_metrics.reference_methods(data) if references and limit is None else {}
        rescored_cpd = skab_metrics.reference_changepoint_methods(data) if rescored else {}
    console = wide_console(140)
    mode = "one shared network" if shared else "one network per file"
    title = f"SKAB ({result.files} files; train rows 0-399, score the rest; {mode})"
    console.print(_table(title, SKAB_COLUMNS, _skab_rows(result, skab_eval.PUBLISHED, rescored, rescored_cpd)))
    coverage = [[level, f"{share:.3f}"] for level, share in result.coverage.items()]
    console.print(_table("forecast intervals on the test parts' normal rows (horizon 1..H)", COVERAGE, coverage))
    console.print(_reliability(result, params.horizon))
    typer.echo(
        f"training {result.train_s_per_file:.1f} s per file; scoring {result.score_steps_per_s:,.0f} steps/s "
        f"(8 channels, forecasts and anomaly forecasts included)"
    )
    doc = result.to_json()
    doc["published"] = skab_eval.PUBLISHED
    doc["rescored"] = {k: asdict(v) for k, v in rescored.items()}
    doc["rescored_changepoints"] = {k: asdict(v) for k, v in rescored_cpd.items()}
    _write_json(json_out, doc)


SKAB_COLUMNS = ("method", "F1", "FAR %", "MAR %", "NAB standard", "NAB low FP", "NAB low FN", "source")
COVERAGE = ("nominal", "covered")
RELIABILITY = (
    "bin",
    "n",
    "predicted",
    "labels",
    "own flags",
    "n (recal.)",
    "predicted (recal.)",
    "labels (recal.)",
)


def _table(title: str, columns: tuple[str, ...], rows: list[list[str]], text: int = 1) -> Table:
    """A table whose first ``text`` columns (and a last "source" column) are left-aligned, numbers right."""
    table = Table(title=title)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i < text or column == "source" else "right")
    for row in rows:
        table.add_row(*row)
    return table


def _skab_rows(
    result: SkabResult,
    published: dict[str, tuple[float, float, float, float | None, float | None, float | None]],
    rescored: dict[str, OutlierScores],
    rescored_cpd: dict[str, NabScores],
) -> list[list[str]]:
    """This run, the published leaderboard, and the published predictions rescored by our scorer."""
    o, c = result.outliers, result.changepoints
    rows = [["edgegen (this run)", f"{o.f1:.3f}", *_two(o.far, o.mar, c.standard, c.low_fp, c.low_fn), "measured"]]
    for name, (f1, far, mar, *changepoints) in published.items():
        rows.append([name, f"{f1:.2f}", *_two(far, mar, *changepoints), "published"])
    for name, s in rescored.items():
        cpd = rescored_cpd[name]
        scores = _two(s.far, s.mar, cpd.standard, cpd.low_fp, cpd.low_fn)
        rows.append([f"{name} (rescored)", f"{s.f1:.3f}", *scores, "reference_predictions"])
    return rows


def _two(*values: float | None) -> list[str]:
    return [f"{v:.2f}" if v is not None else "-" for v in values]


def _reliability(result: SkabResult, horizon: int) -> Table:
    """P(anomaly within H): as forecast against the labels and the detector's own later flags, and recalibrated."""
    raw, own, recal = result.anomaly_forecast, result.anomaly_forecast_own, result.anomaly_forecast_recalibrated
    title = (
        f"P(anomaly within {horizon} steps), reliability: as forecast, against the labels "
        f"(Brier skill {raw.skill:.3f}) and against the detector's own later flags (skill {own.skill:.3f}); "
        f"Platt-recalibrated on the other experiment groups, against the labels (skill {recal.skill:.3f})"
    )
    rows = [
        [f"{r[0]:.1f}-{r[1]:.1f}", str(r[2]), f"{r[3]:.3f}", f"{r[4]:.3f}", f"{w[4]:.3f}", *_recalibrated(k)]
        for r, w, k in zip(raw.bins, own.bins, recal.bins, strict=True)
    ]
    return _table(title, RELIABILITY, rows, text=0)


def _recalibrated(row: Any) -> list[str]:
    return [str(row[2]), f"{row[3]:.3f}", f"{row[4]:.3f}"]


# discriminative, predictive (mean, ±) on Stocks, Table 1 of Diffusion-TS (Yuan & Qiao, ICLR 2024); its TimeGAN
# row is the one TimeGAN's paper reports (Yoon, Jarrett & van der Schaar, NeurIPS 2019)
TIMEGAN_PUBLISHED = {
    "TimeGAN (NeurIPS 2019)": ((0.102, 0.021), (0.038, 0.001)),
    "TimeVAE": ((0.145, 0.120), (0.039, 0.000)),
    "Diffusion-TS (ICLR 2024)": ((0.067, 0.015), (0.036, 0.000)),
}


@eval_app.command("timegan")
def eval_timegan(
    data: DataDirOption,
    json_out: JsonOutOption = None,
    runs: Annotated[int, typer.Option(min=1, help="Runs (fresh synthetic set and metric seed each).")] = 5,
    model: Annotated[str | None, typer.Option(help="A trained stock model; default: train one now.")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Training steps when training here.")] = None,
    disc_iterations: Annotated[int, typer.Option(help="Discriminator iterations (upstream 2000).")] = 2000,
    pred_iterations: Annotated[int, typer.Option(help="Predictor iterations (upstream 5000).")] = 5000,
    seed: Annotated[int, typer.Option(help="Seed of the first run.")] = 0,
) -> None:
    """TimeGAN protocol on the Stocks set: discriminative and predictive scores, mean ± std over runs."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from edgegen.models.eval import timegan_metrics as tg
    from edgegen.models.generative import datasets
    from edgegen.models.generative.model import GenModel, train
    from edgegen.models.generative.sample import sample
    from edgegen.models.generative.spec import GenSpec, Scaler

    with exit_on(OSError), native_logs.captured():
        real, _ = tg.load_stock(data / "stock_data.csv", seed=seed)
        started = time.perf_counter()
        if model is not None:
            gen = GenModel.load(model_path(model))
        else:
            ts = datasets.stock_set(data)
            spec = GenSpec(ts.channels, ts.classes, ts.context, ts.horizon, ts.width)
            scaler = Scaler.fit(np.concatenate([v for v, _ in ts.segments]), ts.log_channels)
            gen = train(spec, ts.segments, scaler=scaler, steps=steps or ts.steps, seed=seed)
        trained = time.perf_counter()

        def synth(n: int, s: int) -> Any:
            return np.clip(sample(gen, "normal", n, real.shape[1], seed=s), 0.0, 1.0).astype(np.float32)

        scores = tg.evaluate(
            real, synth, runs, disc_iterations=disc_iterations, pred_iterations=pred_iterations, seed=seed
        )
        ceiling = tg.real_ceiling(real, iterations=pred_iterations, seed=seed)
        done = time.perf_counter()
    table = Table(title=f"TimeGAN protocol, Stocks ({len(real)} windows of 24 x 6; {runs} runs)")
    for col in ("method", "discriminative ↓", "predictive ↓", "source"):
        table.add_column(col)
    table.add_row(
        f"edgegen ({len(gen.network.tflite):,} B model)",
        f"{scores.discriminative_mean:.3f} ± {scores.discriminative_std:.3f}",
        f"{scores.predictive_mean:.3f} ± {scores.predictive_std:.3f}",
        "measured (mean ± std)",
    )
    for name, ((d, ds), (p, ps)) in TIMEGAN_PUBLISHED.items():
        table.add_row(name, f"{d:.3f} ± {ds:.3f}", f"{p:.3f} ± {ps:.3f}", "published")
    table.add_row("real data (ceiling)", "-", f"{ceiling:.3f}", "measured, disjoint halves")
    wide_console(140).print(table)
    typer.echo(f"model trained in {trained - started:.1f} s; evaluation {done - trained:.0f} s")
    _write_json(
        json_out,
        {
            "scores": asdict(scores),
            "discriminative_mean": scores.discriminative_mean,
            "discriminative_std": scores.discriminative_std,
            "predictive_mean": scores.predictive_mean,
            "predictive_std": scores.predictive_std,
            "real_ceiling": ceiling,
            "model_bytes": len(gen.network.tflite),
            "published": TIMEGAN_PUBLISHED,
        },
    )


@eval_app.command("tep")
def eval_tep(
    data: DataDirOption,
    json_out: JsonOutOption = None,
    steps: Annotated[int, typer.Option(min=1, help="Training steps of the conditional generator.")] = 3000,
    tstr: Annotated[bool, typer.Option(help="Also run train-on-synthetic / test-on-real.")] = True,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
) -> None:
    """Tennessee Eastman: per-fault detection at the calibrated false-alarm rate, and TSTR vs TRTR."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from edgegen.models.eval import tep as tep_eval

    with exit_on(OSError), native_logs.captured():
        det = tep_eval.detection(data, detector_params(seed=seed))
        ts = tep_eval.tstr(data, steps=steps, seed=seed, width=128) if tstr else None
    console = wide_console(140)
    table = Table(
        title=f"TEP detection: fitted on d00.dat (normal), alpha {det.alpha}; measured FAR d00_te "
        f"{det.far_normal_test:.3f}, pooled {det.far_pooled:.3f}"
    )
    for col in (
        "fault",
        "detection (calibrated flag)",
        "FAR before onset",
        "delay (rows)",
        "detection @ FAR=alpha on d00_te",
    ):
        table.add_column(col, justify="right")
    for row in det.faults:
        table.add_row(
            row.name,
            f"{row.detection_rate:.3f}",
            f"{row.far_before:.3f}",
            "-" if row.delay is None else str(row.delay),
            f"{row.detection_at_oracle:.3f}",
        )
    console.print(table)
    doc: dict[str, Any] = {"detection": asdict(det)}
    if ts is not None:
        tt = Table(
            title=f"train on synthetic (real normal + generated faults) vs train on real; test on real "
            f"(accuracy {ts.accuracy_tstr:.3f} vs {ts.accuracy_trtr:.3f}, macro-F1 {ts.macro_f1_tstr:.3f} vs "
            f"{ts.macro_f1_trtr:.3f})"
        )
        for col in ("class", "recall TSTR", "recall TRTR"):
            tt.add_column(col, justify="right")
        tt.add_row("normal", f"{ts.normal_recall_tstr:.3f}", f"{ts.normal_recall_trtr:.3f}")
        for f in ts.faults:
            tt.add_row(f.name, f"{f.recall_tstr:.3f}", f"{f.recall_trtr:.3f}")
        console.print(tt)
        typer.echo(
            f"generator trained in {ts.gen_train_s:.0f} s, sampled in {ts.sample_s:.1f} s; "
            f"classifiers {ts.classify_s:.0f} s"
        )
        doc["tstr"] = asdict(ts)
    _write_json(json_out, doc)
