"""``edgegen simulate``: synthetic sensors (or a recording) with injected faults and ground-truth labels, written
as a labelled data file and its ``.labels.json`` (simulators/labelled.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from edgegen.cli.common import exit_on
from edgegen.models.data.series import Series
from edgegen.simulators import labelled
from edgegen.simulators.errors import SimulationSpecError
from edgegen.simulators.inject import FAULT_KINDS, ROW_KINDS, inject, random_plan

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
    from edgegen.simulators import synthetic

    if (kind is None) == (input_file is None):
        raise _usage("--kind/--in", "expected exactly one: --kind to generate or --in to inject into a recording")
    if input_file is not None and (duration, rate, start) != (None, None, None):
        raise _usage("--duration/--rate/--start", "only apply when generating (--kind), not with --in")
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise _usage("--out", f"expected a .csv or .parquet file, got {out}")
    with exit_on(OSError):
        try:
            if input_file is None:
                series = synthetic.generate(
                    str(kind), duration, rate, seed, _start_us(start or "2026-01-01T00:00:00")
                )
            else:
                series = labelled.read(input_file)
            clash = sorted(set(labelled.RESERVED) & set(series.channels))
            if clash:
                raise _usage("--in", f"channels {clash} clash with the columns simulate writes")
            kinds = _fault_kinds(faults, series)
            plan = random_plan(
                series, kinds, len(kinds) if n_faults is None else n_faults, seed, min_gap, frequency_hz=defect_hz
            )
            result, events = inject(series, plan, seed)
            labels, doc = labelled.write(result, events, series if input_file is None else input_file, seed, out)
        except SimulationSpecError as exc:  # a usage error: the option that set it, and status 2
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
