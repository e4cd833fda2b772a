"""``edgegen simulate``: synthetic sensors (or a recording) with injected faults and ground-truth labels.

Writes the data (``timestamp``, the channels, ``anomaly`` 0/1, ``fault``) as CSV or Parquet and, next to it,
``<stem>.labels.json`` with the events and how the data was made. ``fault`` is the injected kind, ``source`` on a
row the input already labelled, and ``none`` elsewhere: never empty, because an all-empty column would read back
as a numeric channel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from gateway.cli_common import exit_on
from models.data.series import Series
from models.errors import ModelsError
from simulators.errors import SimulationSpecError
from simulators.inject import FAULT_KINDS, ROW_KINDS, FaultEvent, event_rows, inject, random_plan

LABELS_FORMAT = "edgegen-simulate/1"
RESERVED = ("timestamp", "anomaly", "fault")
# The library's parameter names as the options that set them, for error messages.
OPTIONS = {
    "kind": "--kind",
    "rate_hz": "--rate",
    "duration_s": "--duration",
    "kinds": "--faults",
    "n": "--n-faults",
    "min_gap": "--min-gap",
    "frequency_hz": "--defect-hz",
}


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)


def _usage(option: str, message: str) -> typer.BadParameter:
    return typer.BadParameter(message, param_hint=f"'{option}'")


def _fault_kinds(text: str | None, series: Series) -> list[str]:
    """The --faults list; by default every kind that applies (bearing_defect needs a defect frequency)."""
    if text is None:
        return [k for k in FAULT_KINDS if k != "bearing_defect" or "bpfo_hz" in series.meta]
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown or not kinds:
        raise _usage("--faults", f"expected a comma-separated list of {', '.join(FAULT_KINDS)}; got {text!r}")
    return kinds


def _start_us(start: str) -> int:
    import pandas as pd

    try:
        stamp = pd.Timestamp(start)
    except ValueError as exc:
        raise _usage("--start", f"expected an ISO 8601 time, got {start!r}") from exc
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.value // 1000)


def _load(path: Path) -> Series:
    """A recording via models.data.tables (CSV or Parquet, the same column rules)."""
    from models.data import tables

    return tables.parquet_file(path) if path.suffix.lower() == ".parquet" else tables.csv_file(path)


def _fault_column(out: Series) -> np.ndarray[Any, np.dtype[np.object_]]:
    column = np.where(out.anomaly.astype(bool) if out.anomaly is not None else False, "source", "none")
    column = column.astype(object)
    for kind, start, stop in event_rows(out):
        column[start:stop] = kind
    return column


def write_labelled(out: Series, path: Path) -> None:
    """The data file: CSV (ISO-8601 UTC timestamps with microseconds) or Parquet (timestamp[us, UTC])."""
    import pandas as pd

    from models.synthetic_out import CSV_TIMESTAMP_FORMAT

    stamps = pd.DatetimeIndex(out.timestamps_us.astype("datetime64[us]")).tz_localize("UTC")
    columns: dict[str, Any] = {"timestamp": stamps}
    columns |= {name: out.values[:, c] for c, name in enumerate(out.channels)}
    columns["anomaly"] = np.zeros(len(out), np.int8) if out.anomaly is None else out.anomaly
    columns["fault"] = _fault_column(out)
    frame = pd.DataFrame(columns)
    if path.suffix.lower() == ".parquet":
        frame.to_parquet(path, engine="pyarrow", index=False, coerce_timestamps="us")
    else:
        frame["timestamp"] = stamps.strftime(CSV_TIMESTAMP_FORMAT)
        frame.to_csv(path, index=False)


def _iso(us: int) -> str:
    import pandas as pd

    from models.synthetic_out import CSV_TIMESTAMP_FORMAT

    return str(pd.Timestamp(us, unit="us", tz="UTC").strftime(CSV_TIMESTAMP_FORMAT))


def _number(text: str) -> int | float | str:
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


def labels_doc(
    out: Series, events: list[FaultEvent], made: Series | Path, seed: int, data: Path
) -> dict[str, Any]:
    """What labels.json holds: the events (ISO and µs) with the rows each labelled, and how the data was made:
    the generator's parameters (bearing frequencies included) or the recording it came from."""
    rows = event_rows(out)
    generator = None
    if isinstance(made, Series):
        generator = {("kind" if k == "generator" else k): _number(v) for k, v in made.meta.items()}
    return {
        "format": LABELS_FORMAT,
        "data": data.name,
        "generator": generator,
        "input": str(made) if isinstance(made, Path) else None,
        "seed": seed,
        "rows": len(out),
        "channels": list(out.channels),
        "events": [
            {**e.to_dict(), "start": _iso(e.start_us), "end": _iso(e.end_us), "rows_labelled": stop - start}
            for e, (_, start, stop) in zip(events, rows, strict=True)
        ],
    }


def simulate(
    out: Annotated[Path, typer.Option(help="Where the data goes: .csv or .parquet.", show_default=False)],
    kind: Annotated[
        str | None, typer.Option(help="Generate this sensor: vibration, pump or temperature.", show_default=False)
    ] = None,
    input_file: Annotated[
        Path | None,
        typer.Option(
            "--in", exists=True, dir_okay=False, help="Inject into this recording (CSV or Parquet) instead."
        ),
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="Seconds of signal (default: the kind's).", show_default=False)
    ] = None,
    rate: Annotated[
        float | None, typer.Option(help="Sample rate in Hz (default: the kind's).", show_default=False)
    ] = None,
    faults: Annotated[
        str | None,
        typer.Option(help=f"Comma-separated fault kinds: {','.join(FAULT_KINDS)} (default: all that apply)."),
    ] = None,
    n_faults: Annotated[
        int | None, typer.Option("--n-faults", min=0, help="Events (default: one per kind).", show_default=False)
    ] = None,
    min_gap: Annotated[int, typer.Option("--min-gap", min=1, help="Clean rows at least between events.")] = 10,
    defect_hz: Annotated[
        float | None,
        typer.Option(
            "--defect-hz", help="bearing_defect frequency where the data has no BPFO.", show_default=False
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed: same seed, same data, faults and labels.")] = 0,
    start: Annotated[
        str | None, typer.Option(help="First timestamp, ISO 8601 (UTC unless given) [2026-01-01T00:00:00].")
    ] = None,
) -> None:
    """Synthetic sensors with labelled faults (or faults injected into a recording), plus a labels file."""
    from simulators import synthetic

    if (kind is None) == (input_file is None):
        raise _usage("--kind/--in", "expected exactly one: --kind to generate or --in to inject into a recording")
    if input_file is not None and (duration, rate, start) != (None, None, None):
        raise _usage("--duration/--rate/--start", "only apply when generating (--kind), not with --in")
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise _usage("--out", f"expected a .csv or .parquet file, got {out}")
    try:
        with exit_on(ModelsError, OSError):
            if input_file is None:
                series = synthetic.generate(
                    str(kind), duration, rate, seed, _start_us(start or "2026-01-01T00:00:00")
                )
            else:
                series = _load(input_file)
            clash = sorted(set(RESERVED) & set(series.channels))
            if clash:
                raise _usage("--in", f"channels {clash} clash with the columns simulate writes")
            kinds = _fault_kinds(faults, series)
            plan = random_plan(
                series, kinds, len(kinds) if n_faults is None else n_faults, seed, min_gap, frequency_hz=defect_hz
            )
            result, events = inject(series, plan, seed)
            write_labelled(result, out)
            labels = out.with_suffix(".labels.json")
            doc = labels_doc(result, events, series if input_file is None else input_file, seed, out)
            labels.write_text(json.dumps(doc, indent=2) + "\n")
    except SimulationSpecError as exc:
        option = OPTIONS.get(exc.option, exc.option)
        typer.echo(f"error: {option}: {exc.message}", err=True)
        raise typer.Exit(2) from None
    _summary(result, doc, out, labels)


def _summary(result: Series, doc: dict[str, Any], out: Path, labels: Path) -> None:
    table = Table(title=f"{len(doc['events'])} faults in {len(result)} rows x {len(result.channels)} channels")
    for column in ("kind", "start", "end", "channels", "rows labelled"):
        table.add_column(column, justify="right" if column == "rows labelled" else "left")
    for e in doc["events"]:
        channels = "(rows)" if e["kind"] in ROW_KINDS else ",".join(e["channels"])
        table.add_row(e["kind"], e["start"], e["end"], channels, str(e["rows_labelled"]))
    console = Console(width=max(Console().width, 120))
    console.print(table)
    labelled = 0 if result.anomaly is None else int(result.anomaly.sum())
    console.print(f"{labelled} rows labelled anomalous -> {out}, events and parameters -> {labels}")
