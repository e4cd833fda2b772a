"""``edgegen firmware deploy``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgegen.cli.common import exit_on

firmware_app = typer.Typer(help="Node firmware: deploy to boards.", no_args_is_help=True)
hil_app = typer.Typer(help="Hardware in the loop: the firmware's model path on a target against tflite-micro.")


def register(app: typer.Typer) -> None:
    app.add_typer(firmware_app, name="firmware")
    app.add_typer(hil_app, name="hil")


@firmware_app.command("deploy")
def firmware_deploy(
    port: Annotated[str, typer.Option(help="The board's serial port, e.g. /dev/ttyACM0 (mpremote's 'connect').")],
    config: Annotated[Path, typer.Option(help="The board's config.json (validated before copying).")],
    model: Annotated[
        list[Path] | None, typer.Option(help="A .tflite model to copy to /models (repeatable).")
    ] = None,
    mpy: Annotated[
        str | None, typer.Option(help="Compile to .mpy for this architecture (e.g. armv6m, xtensawin).")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the mpremote commands instead of running them.")] = False,
) -> None:
    """Copy firmware_py, models, config.json and main.py to a MicroPython board, then reset it."""
    from edgegen.hil.deploy import deploy

    with exit_on():
        commands = deploy(port, config, model or [], mpy, dry_run)
    for command in commands:
        typer.echo(" ".join(command) if dry_run else f"done: {' '.join(command[3:])}")


@hil_app.command("run")
def hil_run(
    target: Annotated[str, typer.Option(help="unix (the MicroPython unix port) or serial:PORT (a board).")],
    model: Annotated[
        Path | None, typer.Option(help="A .tflite node model with its NAME.manifest.json beside it.")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="A CSV of recorded samples (default: the firmware's SineSource signal).")
    ] = None,
    windows: Annotated[int, typer.Option(help="Windows to run.")] = 64,
    out: Annotated[Path, typer.Option(help="Directory for hil-junit.xml and hil-report.md.")] = Path("hil-report"),
    latency_budget_us: Annotated[
        float | None, typer.Option(help="Fail when the slowest window takes longer (microseconds).")
    ] = None,
    memory_budget_bytes: Annotated[
        int | None, typer.Option(help="Fail when heap after load + the largest allocation per inference exceeds.")
    ] = None,
    timeout_s: Annotated[float, typer.Option(help="Limit for one run of the target script.")] = 300,
) -> None:
    """Deploy firmware, model and config to the target, run recorded windows through the firmware's own path,
    compare with tflite-micro (within 1 LSB), measure time and memory; write JUnit XML and Markdown to --out.
    Exit status 0 when every check passes, 1 otherwise."""
    from rich.console import Console
    from rich.table import Table

    from edgegen.hil import report
    from edgegen.hil.run import run_hil
    from edgegen.hil.subject import DEFAULT_MODEL
    from edgegen.hil.targets import parse

    with exit_on():
        result = run_hil(
            parse(target), model or DEFAULT_MODEL, data, windows, latency_budget_us, memory_budget_bytes, timeout_s
        )
        xml_path, md_path = report.write(result, out)
    table = Table(title=f"HIL on {result.target}: {result.subject.manifest.name}, {result.windows.source}")
    for column in ("check", "result", "details"):
        table.add_column(column)
    for c in result.checks:
        table.add_row(c.name, {True: "pass", False: "[red]FAIL[/red]", None: "skipped"}[c.passed], c.message)
    Console().print(table)
    typer.echo(f"wrote {xml_path} and {md_path}")
    raise typer.Exit(0 if result.passed else 1)
