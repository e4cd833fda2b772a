"""``edgegen firmware deploy``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli_common import exit_on
from hil.errors import HilError

firmware_app = typer.Typer(help="Node firmware: deploy to boards.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(firmware_app, name="firmware")


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
    from hil.deploy import deploy

    with exit_on(HilError):
        commands = deploy(port, config, model or [], mpy, dry_run)
    for command in commands:
        typer.echo(" ".join(command) if dry_run else f"done: {' '.join(command[3:])}")
