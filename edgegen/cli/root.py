"""The root of the ``edgegen`` command, with every command group hung from it."""

from __future__ import annotations

from typing import Annotated

import typer

from edgegen import __version__
from edgegen.cli import demo, evaluate, gateway, generative, hil, models, node, nodes, record, replay, simulate

app = typer.Typer(
    name="edgegen",
    help="Generative AI for the industrial edge: nodes, gateway, simulators.",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgegen {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """edgegen: run `edgegen demo` for a first look, `edgegen COMMAND --help` for details."""


for group in (gateway, nodes, node, demo, replay, simulate, record, hil, models, generative, evaluate):
    group.register(app)


def main() -> None:
    app()
