"""`edgegen detect`, `edgegen generate` and `edgegen gen train`: the gateway's generative model from the command
line (docs/generative.md)."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer

from edgegen.cli.common import ConfigOption, DataDirOption, InfluxOption, exit_on, flags
from edgegen.cli.settings import settings_or_exit
from edgegen.models import native_logs, shipped

if TYPE_CHECKING:
    from edgegen.gateway.config import StorageSettings
    from edgegen.gateway.storage import Storage
    from edgegen.gateway.synthetic import SyntheticStored
    from edgegen.models.generative.model import GenModel
    from edgegen.models.synthetic_out import SyntheticBatch

SHIPPED = shipped.generative_models()
MAX_REFUSALS_SHOWN = 10  # dead-lettered records listed one a line; the count covers the rest
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
gen_app = typer.Typer(help="The generative model: train the shipped models.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("detect")(detect)
    app.command("generate")(generate)
    app.add_typer(gen_app, name="gen")


def detector_params(**overrides: Any) -> Any:
    from edgegen.models.generative.detector import DetectorParams

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

    from edgegen.models.data.tables import csv_file
    from edgegen.models.generative.detector import Detector

    with exit_on(OSError), native_logs.captured():
        series = csv_file(file)
        values = series.values
        n = len(values)
        missing = int(np.count_nonzero(~np.isfinite(values)))
        cut = round(n * train_fraction)
        started = time.perf_counter()
        det = Detector.fit(_fill(values[:cut]), detector_params(alpha=alpha, seed=seed), series.channels)
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


def model_path(model: str) -> Path:
    path = shipped.generative_model(model)
    if path.with_suffix(".json").exists():
        return path
    raise typer.BadParameter(
        f"no model {model!r}: give NAME.json's path without suffix, or one of {shipped.generative_names()}"
    )


def generate(
    mode: Annotated[str, typer.Option(help="Failure mode to condition on (or 'normal'); see --list.")] = "normal",
    n: Annotated[int, typer.Option("--n", min=1, help="How many series.")] = 1,
    length: Annotated[int, typer.Option(min=1, help="Steps per series.")] = 600,
    model: Annotated[str, typer.Option(help="A shipped model (skab, tep, stock) or a model path.")] = "skab",
    context: Annotated[
        Path | None, typer.Option(help="A CSV whose last rows every series continues from (same columns).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="CSV or Parquet (by suffix).")] = None,
    store: Annotated[
        bool, typer.Option("--store", help="Also store the series in the gateway's storage (storage.* settings).")
    ] = False,
    storage: Annotated[
        str | None,
        typer.Option("--storage", help="sqlite, influx1 or influx2 (implies --store).", show_default=False),
    ] = None,
    influx: InfluxOption = None,
    database: Annotated[
        str | None, typer.Option(help="The InfluxDB 1.x database (storage.database).", show_default=False)
    ] = None,
    config: ConfigOption = None,
    store_timeout: Annotated[
        float, typer.Option(min=1, help="Give up storing after this many seconds, retries included.")
    ] = 120.0,
    seed: Annotated[int, typer.Option(help="Sampling seed: same seed, same series.")] = 0,
    start: Annotated[
        str, typer.Option(help="Timestamp of the first step (ISO 8601, UTC).")
    ] = "2026-01-01T00:00:00",
    list_modes: Annotated[bool, typer.Option("--list", help="List the model's failure modes and exit.")] = False,
) -> None:
    """Labelled synthetic series (rare failures included) from the generative model."""
    from edgegen.gateway.synthetic import store_synthetic
    from edgegen.models import synthetic_out
    from edgegen.models.generative.model import GENERATOR_VERSION, GenModel

    target = _storage(config, store or storage is not None or influx is not None, storage, influx, database)
    with exit_on(OSError):
        path = model_path(model)
        gen = GenModel.load(path)
        if list_modes:
            typer.echo("\n".join(gen.spec.classes))
            return
        batch = _synthesize(gen, path, mode, n, length, seed, context, start)
        written = []
        if out is not None:
            rows = (
                synthetic_out.write_parquet(batch, out)
                if out.suffix == ".parquet"
                else synthetic_out.write_csv(batch, out)
            )
            written.append(f"{rows} rows -> {out}")
        stored = None
        if target is not None:
            settings, backend = target
            stored = asyncio.run(store_synthetic(batch, backend, deadline_s=store_timeout))
            written.append(_stored_summary(stored, settings, mode))
    typer.echo(
        f"{n} series x {length} steps of {mode!r} from {path.stem} ({GENERATOR_VERSION}); "
        + "; ".join(written or ["nothing written (give --out or --store)"])
    )
    if stored is not None and (stored.refused or stored.points_unwritten):
        _report_incomplete(stored)
        raise typer.Exit(1)  # the summary above says what was stored; a script must still see the gap


def _synthesize(
    gen: GenModel, path: Path, mode: str, n: int, length: int, seed: int, context: Path | None, start: str
) -> SyntheticBatch:
    """``n`` series of ``mode``, each continuing the last rows of ``context`` when given, labelled and dated."""
    import pandas as pd

    from edgegen.models.data.tables import csv_file
    from edgegen.models.generative.model import GENERATOR_VERSION
    from edgegen.models.generative.sample import sample
    from edgegen.models.synthetic_out import SyntheticBatch

    ctx = None
    if context is not None:
        series = csv_file(context)
        absent = [c for c in gen.spec.channels if c not in series.channels]
        if absent:
            raise typer.BadParameter(f"{context} lacks the model's columns {absent}", param_hint="--context")
        ctx = series.values[:, [series.channels.index(c) for c in gen.spec.channels]]
    return SyntheticBatch(
        values=sample(gen, mode, n, length, seed=seed, context=ctx),
        channels=gen.spec.channels,
        failure_mode=mode,
        generator_version=GENERATOR_VERSION,
        model_name=path.stem,
        start_us=int(pd.Timestamp(start).value // 1000),
        period_us=int(gen.meta.get("period_us", 1_000_000)),
        seed=seed,
    )


def _storage(
    config: Path | None, store: bool, kind: str | None, influx: str | None, database: str | None
) -> tuple[StorageSettings, Storage] | None:
    """The storage ``generate`` writes to, configured as the gateway's is (file, environment, flags), or None.
    Built before generating, so a bad setting costs no sampling time (exit status 2, as for the gateway)."""
    if not store:
        if config is not None:
            raise typer.BadParameter("configures storage only: add --store", param_hint="--config")
        return None
    from edgegen.gateway.errors import ConfigError
    from edgegen.gateway.storage import create_storage

    given = flags(
        **{
            "storage.kind": kind or ("influx1" if influx else None),
            "storage.influx_url": influx,
            "storage.database": database,
        }
    )
    settings = settings_or_exit(config, given).storage
    try:
        return settings, create_storage(settings)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _stored_summary(stored: SyntheticStored, settings: StorageSettings, mode: str) -> str:
    where = {
        "sqlite": f"sqlite {settings.sqlite_path}",
        "influx1": f"{settings.influx_url} database {settings.database}",
        "influx2": f"{settings.influx_url} bucket {settings.bucket}",
    }[settings.kind]
    text = f"{stored.points_stored} points -> {where} (synthetic=true, failure_mode={mode})"
    if stored.refused:
        text += f", {stored.points_refused} points dead-lettered"
    if stored.points_unwritten:
        text += f", {stored.points_unwritten} points not written"
    return text


def _report_incomplete(stored: SyntheticStored) -> None:
    """On stderr: the dead-lettered records (series, first step, the server's answer), and why storing gave up."""
    for refused in stored.refused[:MAX_REFUSALS_SHOWN]:
        first = (EPOCH + timedelta(microseconds=refused.first_us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        typer.echo(
            f"dead-lettered: {refused.points} points of {refused.series} from {first} ({refused.cause}): "
            f"{refused.detail}",
            err=True,
        )
    if len(stored.refused) > MAX_REFUSALS_SHOWN:
        typer.echo(f"dead-lettered: ... and {len(stored.refused) - MAX_REFUSALS_SHOWN} more records", err=True)
    if stored.gave_up is not None:
        typer.echo(f"error: {stored.gave_up}", err=True)


@gen_app.command("train")
def gen_train(
    data: DataDirOption,
    dataset: Annotated[str, typer.Option(help="skab, tep or stock.")] = "skab",
    out: Annotated[Path | None, typer.Option(help="Model path without suffix (default: the shipped one).")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Training steps (default: the data set's).")] = None,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    sequence: Annotated[int, typer.Option(min=0, help="The artifact's sequence number (monotonic).")] = 1,
    key: Annotated[Path | None, typer.Option(help="Sign the manifest with this Ed25519 key.")] = None,
) -> None:
    """Train a conditional generative model on a whole data set (its failure modes as classes); writes
    NAME.tflite, NAME.json and NAME.manifest.json (signed with --key; the gateway loads only signed models)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from edgegen.models import artifact
    from edgegen.models.generative import datasets, signed
    from edgegen.models.generative.model import train
    from edgegen.models.generative.spec import GenSpec, Scaler
    from edgegen.models.train import require_tensorflow

    with exit_on(OSError), native_logs.captured():
        tf = require_tensorflow()
        ts = datasets.load(dataset, data)
        spec = GenSpec(ts.channels, ts.classes, ts.context, ts.horizon, ts.width)
        scaler = Scaler.fit(np.concatenate([v for v, _ in ts.segments]), ts.log_channels)
        model = train(spec, ts.segments, scaler=scaler, steps=steps or ts.steps, seed=seed)
        model.meta.update({"period_us": ts.period_us, "dataset": ts.name, "seed": seed})
        target = out or SHIPPED / ts.name
        model.save(target)
        training = {
            "dataset": ts.name,
            "fingerprint": ts.fingerprint(),
            "seed": seed,
            "framework": f"tensorflow {tf.__version__}",
            "options": {"steps": steps or ts.steps},
        }
        manifest = signed.write_manifest(target, training=training, sequence=sequence)
        manifest_path = signed.manifest_path(target)
        if key is not None:
            artifact.sign(manifest_path, key)
    size = target.with_suffix(".tflite").stat().st_size
    typer.echo(
        f"{target}.tflite: {size} bytes, classes {', '.join(ts.classes)}; "
        f"trained in {model.meta['train_s']:.1f} s (final loss {model.meta['train_loss']:.3f}); "
        f"{manifest_path.name} sequence {manifest.sequence}, " + ("signed" if key is not None else "unsigned")
    )
