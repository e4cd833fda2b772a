"""`edgegen detect`, `edgegen generate`, `edgegen eval skab|tep|timegan` and `edgegen gen train`: the gateway's
generative model from the command line (docs/generative.md)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from gateway.cli_common import exit_on
from models import native_logs
from models.errors import ModelsError

SHIPPED = Path(__file__).resolve().parent / "artifacts" / "generative"
gen_app = typer.Typer(help="The generative model: train the shipped models.", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluation protocols, side by side with the published numbers.", no_args_is_help=True)

DataDir = Annotated[Path, typer.Option("--data", help="The data set's directory (e.g. ../shared/data/skab).")]
JsonOut = Annotated[Path | None, typer.Option("--json", help="Also write the numbers here (JSON).")]


def register(app: typer.Typer) -> None:
    app.command("detect")(detect)
    app.command("generate")(generate)
    app.add_typer(eval_app, name="eval")
    app.add_typer(gen_app, name="gen")


def _console() -> Console:
    return Console(width=max(Console().width, 140))


def _params(**overrides: Any) -> Any:
    from models.generative.detector import DetectorParams

    return DetectorParams(**{k: v for k, v in overrides.items() if v is not None})


def detect(
    file: Annotated[Path, typer.Argument(help="A timestamped CSV with one or more numeric columns.")],
    out: Annotated[Path, typer.Option(help="Where to write timestamp, score, flag per row (CSV).")],
    train_fraction: Annotated[
        float, typer.Option(min=0.01, max=0.9, help="The initial share of rows the detector learns from.")
    ] = 0.15,
    alpha: Annotated[
        float, typer.Option(min=1e-6, max=0.5, help="False-alarm rate the flag is calibrated to.")
    ] = 0.01,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
) -> None:
    """Unsupervised detection on any timestamped CSV: learn from the first part, stream the rest."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import pandas as pd

    from models.data.tables import csv_file
    from models.generative.detector import Detector

    with exit_on(ModelsError, OSError), native_logs.captured():
        series = csv_file(file)
        values = series.values
        n = len(values)
        missing = int(np.count_nonzero(~np.isfinite(values)))
        cut = round(n * train_fraction)
        started = time.perf_counter()
        det = Detector.fit(_fill(values[:cut]), _params(alpha=alpha, seed=seed), series.channels)
        fitted = time.perf_counter()
        scores = det.score(_fill(values))
        done = time.perf_counter()
    stamps = pd.to_datetime(series.timestamps_us, unit="us", utc=True)
    frame = pd.DataFrame(
        {
            "timestamp": stamps.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "score": np.round(scores.score, 6),
            "flag": scores.flag.astype(int),
        }
    )
    frame.loc[: cut - 1, "flag"] = 0  # the training part is normal by assumption
    frame.to_csv(out, index=False)
    flagged = int(frame["flag"].sum())
    typer.echo(
        f"{file}: {n} rows x {values.shape[1]} columns ({missing} empty or non-numeric cells carried forward); "
        f"learned from {cut} rows in {fitted - started:.1f} s, "
        f"scored in {done - fitted:.2f} s; {flagged} rows flagged ({100 * flagged / max(n - cut, 1):.1f} % of the "
        f"rest) -> {out}"
    )


def _fill(values: np.ndarray[Any, np.dtype[np.float64]]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Missing cells carry the last value forward (the first rows take the column's first value)."""
    import pandas as pd

    frame = pd.DataFrame(values).ffill().bfill().fillna(0.0)
    return frame.to_numpy(dtype=np.float64)


def _model_path(model: str) -> Path:
    path = Path(model)
    if path.with_suffix(".json").exists():
        return path
    shipped = SHIPPED / model
    if shipped.with_suffix(".json").exists():
        return shipped
    known = sorted(p.stem for p in SHIPPED.glob("*.json"))
    raise typer.BadParameter(f"no model {model!r}: give NAME.json's path without suffix, or one of {known}")


def generate(
    mode: Annotated[str, typer.Option(help="Failure mode to condition on (or 'normal'); see --list.")] = "normal",
    n: Annotated[int, typer.Option("--n", min=1, help="How many series.")] = 1,
    length: Annotated[int, typer.Option(min=1, help="Steps per series.")] = 600,
    model: Annotated[str, typer.Option(help="A shipped model (skab, tep, stock) or a model path.")] = "skab",
    context: Annotated[
        Path | None, typer.Option(help="A CSV whose last rows every series continues from (same columns).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="CSV or Parquet (by suffix).")] = None,
    influx: Annotated[str | None, typer.Option(help="Also write to this InfluxDB 1.x URL.")] = None,
    database: Annotated[str, typer.Option(help="The InfluxDB database.")] = "edgegen",
    seed: Annotated[int, typer.Option(help="Sampling seed: same seed, same series.")] = 0,
    start: Annotated[
        str, typer.Option(help="Timestamp of the first step (ISO 8601, UTC).")
    ] = "2026-01-01T00:00:00",
    list_modes: Annotated[bool, typer.Option("--list", help="List the model's failure modes and exit.")] = False,
) -> None:
    """Labelled synthetic series (rare failures included) from the generative model."""
    import pandas as pd

    from models import synthetic_out
    from models.data.tables import csv_file
    from models.generative.model import GENERATOR_VERSION, GenModel
    from models.generative.sample import sample

    with exit_on(ModelsError, OSError):
        path = _model_path(model)
        gen = GenModel.load(path)
        if list_modes:
            typer.echo("\n".join(gen.spec.classes))
            return
        ctx = None
        if context is not None:
            series = csv_file(context)
            absent = [c for c in gen.spec.channels if c not in series.channels]
            if absent:
                raise typer.BadParameter(f"{context} lacks the model's columns {absent}", param_hint="--context")
            ctx = series.values[:, [series.channels.index(c) for c in gen.spec.channels]]
        values = sample(gen, mode, n, length, seed=seed, context=ctx)
        batch = synthetic_out.SyntheticBatch(
            values=values,
            channels=gen.spec.channels,
            failure_mode=mode,
            generator_version=GENERATOR_VERSION,
            model_name=path.stem,
            start_us=int(pd.Timestamp(start).value // 1000),
            period_us=int(gen.meta.get("period_us", 1_000_000)),
            seed=seed,
        )
        written = []
        if out is not None:
            rows = (
                synthetic_out.write_parquet(batch, out)
                if out.suffix == ".parquet"
                else synthetic_out.write_csv(batch, out)
            )
            written.append(f"{rows} rows -> {out}")
        if influx is not None:
            points = asyncio.run(synthetic_out.write_influx1(batch, influx, database))
            written.append(f"{points} points -> {influx} db {database} (synthetic=true, failure_mode={mode})")
    typer.echo(
        f"{n} series x {length} steps of {mode!r} from {path.stem} ({GENERATOR_VERSION}); "
        + "; ".join(written or ["nothing written (give --out or --influx)"])
    )


@gen_app.command("train")
def gen_train(
    data: DataDir,
    dataset: Annotated[str, typer.Option(help="skab, tep or stock.")] = "skab",
    out: Annotated[Path | None, typer.Option(help="Model path without suffix (default: the shipped one).")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Training steps (default: the data set's).")] = None,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
) -> None:
    """Train a conditional generative model on a whole data set (its failure modes as classes)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from models.generative import datasets
    from models.generative.model import train
    from models.generative.spec import GenSpec, Scaler

    with exit_on(ModelsError, OSError), native_logs.captured():
        ts = datasets.load(dataset, data)
        spec = GenSpec(ts.channels, ts.classes, ts.context, ts.horizon, ts.width)
        scaler = Scaler.fit(np.concatenate([v for v, _ in ts.segments]), ts.log_channels)
        model = train(spec, ts.segments, scaler=scaler, steps=steps or ts.steps, seed=seed)
        model.meta.update({"period_us": ts.period_us, "dataset": ts.name, "seed": seed})
        target = out or SHIPPED / ts.name
        model.save(target)
    size = target.with_suffix(".tflite").stat().st_size
    typer.echo(
        f"{target}.tflite: {size} bytes, classes {', '.join(ts.classes)}; "
        f"trained in {model.meta['train_s']:.1f} s (final loss {model.meta['train_loss']:.3f})"
    )


def _write_json(path: Path | None, doc: Any) -> None:
    if path is not None:
        path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
        typer.echo(f"numbers -> {path}")


SKAB_ALPHA = 0.1  # the configured false-alarm rate for the SKAB runs (FAR <= 15 % is the target's bound)


@eval_app.command("skab")
def eval_skab(
    data: DataDir,
    json_out: JsonOut = None,
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

    from models.eval import skab as skab_eval
    from models.eval import skab_metrics

    params = _params(steps=steps, alpha=alpha if alpha is not None else SKAB_ALPHA, seed=seed)
    with exit_on(ModelsError, OSError), native_logs.captured(), Progress(transient=True) as bars:
        task = bars.add_task("SKAB files", total=limit or 34)
        result = skab_eval.evaluate(
            data, params, limit, lambda name, i, total: bars.update(task, completed=i), shared=shared
        )
        rescored = skab_metrics.reference_methods(data) if references and limit is None else {}
        rescored_cpd = skab_metrics.reference_changepoint_methods(data) if rescored else {}
    console = _console()
    mode = "one shared network" if shared else "one network per file"
    table = Table(title=f"SKAB ({result.files} files; train rows 0-399, score the rest; {mode})")
    for col in ("method", "F1", "FAR %", "MAR %", "NAB standard", "NAB low FP", "NAB low FN", "source"):
        table.add_column(col, justify="left" if col in ("method", "source") else "right")
    o, c = result.outliers, result.changepoints
    table.add_row(
        "edgegen (this run)",
        f"{o.f1:.3f}",
        f"{o.far:.2f}",
        f"{o.mar:.2f}",
        f"{c.standard:.2f}",
        f"{c.low_fp:.2f}",
        f"{c.low_fn:.2f}",
        "measured",
    )
    for name, (f1, far, mar, std, lfp, lfn) in skab_eval.PUBLISHED.items():
        table.add_row(
            name,
            f"{f1:.2f}",
            f"{far:.2f}",
            f"{mar:.2f}",
            *(f"{v:.2f}" if v is not None else "-" for v in (std, lfp, lfn)),
            "published",
        )
    for name, scores in rescored.items():
        cpd = rescored_cpd[name]
        table.add_row(
            f"{name} (rescored)",
            f"{scores.f1:.3f}",
            f"{scores.far:.2f}",
            f"{scores.mar:.2f}",
            f"{cpd.standard:.2f}",
            f"{cpd.low_fp:.2f}",
            f"{cpd.low_fn:.2f}",
            "reference_predictions",
        )
    console.print(table)
    cov = Table(title="forecast intervals on the test parts' normal rows (horizon 1..H)")
    cov.add_column("nominal")
    cov.add_column("covered", justify="right")
    for level, share in result.coverage.items():
        cov.add_row(level, f"{share:.3f}")
    console.print(cov)
    raw, own, recal = result.anomaly_forecast, result.anomaly_forecast_own, result.anomaly_forecast_recalibrated
    rel = Table(
        title=f"P(anomaly within {params.horizon} steps), reliability: as forecast, against the labels "
        f"(Brier skill {raw.skill:.3f}) and against the detector's own later flags (skill {own.skill:.3f}); "
        f"Platt-recalibrated on the other experiment groups, against the labels (skill {recal.skill:.3f})"
    )
    for col in (
        "bin",
        "n",
        "predicted",
        "labels",
        "own flags",
        "n (recal.)",
        "predicted (recal.)",
        "labels (recal.)",
    ):
        rel.add_column(col, justify="right")
    for r, w, k in zip(raw.bins, own.bins, recal.bins, strict=True):
        rel.add_row(
            f"{r[0]:.1f}-{r[1]:.1f}", str(r[2]), f"{r[3]:.3f}", f"{r[4]:.3f}", f"{w[4]:.3f}",
            str(k[2]), f"{k[3]:.3f}", f"{k[4]:.3f}",
        )  # fmt: skip
    console.print(rel)
    typer.echo(
        f"training {result.train_s_per_file:.1f} s per file; scoring {result.score_steps_per_s:,.0f} steps/s "
        f"(8 channels, forecasts and anomaly forecasts included)"
    )
    doc = result.to_json()
    doc["published"] = skab_eval.PUBLISHED
    doc["rescored"] = {k: asdict(v) for k, v in rescored.items()}
    doc["rescored_changepoints"] = {k: asdict(v) for k, v in rescored_cpd.items()}
    _write_json(json_out, doc)


TIMEGAN_PUBLISHED = {  # ANCHORS.md: discriminative, predictive (mean, ±)
    "TimeGAN (NeurIPS 2019)": ((0.102, 0.021), (0.038, 0.001)),
    "TimeVAE": ((0.145, 0.120), (0.039, 0.000)),
    "Diffusion-TS (ICLR 2024)": ((0.067, 0.015), (0.036, 0.000)),
}


@eval_app.command("timegan")
def eval_timegan(
    data: DataDir,
    json_out: JsonOut = None,
    runs: Annotated[int, typer.Option(min=1, help="Runs (fresh synthetic set and metric seed each).")] = 5,
    model: Annotated[str | None, typer.Option(help="A trained stock model; default: train one now.")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Training steps when training here.")] = None,
    disc_iterations: Annotated[int, typer.Option(help="Discriminator iterations (upstream 2000).")] = 2000,
    pred_iterations: Annotated[int, typer.Option(help="Predictor iterations (upstream 5000).")] = 5000,
    seed: Annotated[int, typer.Option(help="Seed of the first run.")] = 0,
) -> None:
    """TimeGAN protocol on the Stocks set: discriminative and predictive scores, mean ± std over runs."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from models.eval import timegan_metrics as tg
    from models.generative import datasets
    from models.generative.model import GenModel, train
    from models.generative.sample import sample
    from models.generative.spec import GenSpec, Scaler

    with exit_on(ModelsError, OSError), native_logs.captured():
        real, _ = tg.load_stock(data / "stock_data.csv", seed=seed)
        started = time.perf_counter()
        if model is not None:
            gen = GenModel.load(_model_path(model))
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
    _console().print(table)
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
    data: DataDir,
    json_out: JsonOut = None,
    steps: Annotated[int, typer.Option(min=1, help="Training steps of the conditional generator.")] = 3000,
    tstr: Annotated[bool, typer.Option(help="Also run train-on-synthetic / test-on-real.")] = True,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
) -> None:
    """Tennessee Eastman: per-fault detection at the calibrated false-alarm rate, and TSTR vs TRTR."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from models.eval import tep as tep_eval

    with exit_on(ModelsError, OSError), native_logs.captured():
        det = tep_eval.detection(data, _params(seed=seed))
        ts = tep_eval.tstr(data, steps=steps, seed=seed, width=128) if tstr else None
    console = _console()
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
