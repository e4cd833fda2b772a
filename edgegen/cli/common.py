"""What every ``edgegen`` subcommand shares: the common options, nested flags, and error reporting.

Dependency-free by design: it imports typer, rich and the error root only, so any command module can use it
without pulling in a package it does not need.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from edgegen.errors import EdgegenError

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML configuration file (also: EDGEGEN_CONFIG).", show_default=False),
]
BrokerOption = Annotated[
    str | None, typer.Option("--broker", help="MQTT broker URL, mqtt://HOST:PORT.", show_default=False)
]
InfluxOption = Annotated[
    str | None,
    typer.Option("--influx", help="InfluxDB 1.x URL (sets storage.kind = influx1).", show_default=False),
]
LogLevelOption = Annotated[
    str | None, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.", show_default=False)
]
DataDirOption = Annotated[
    Path, typer.Option("--data", help="The data set's directory (e.g. ../shared/data/skab).")
]
JsonOutOption = Annotated[Path | None, typer.Option("--json", help="Also write the numbers here (JSON).")]


def flags(**paths: Any) -> dict[str, Any]:
    """Nest the flags the user gave: ``flags(**{"mqtt.url": "mqtt://x"})`` -> ``{"mqtt": {"url": ...}}``."""
    tree: dict[str, Any] = {}
    for dotted, value in paths.items():
        if value is None:
            continue
        *sections, key = dotted.split(".")
        node = tree
        for section in sections:
            node = node.setdefault(section, {})
        node[key] = value
    return tree


@contextmanager
def exit_on(*errors: type[Exception], describe: Callable[[Exception], str] = str) -> Iterator[None]:
    """Turn the given errors (and any EdgegenError) into one line on stderr and exit status 1."""
    caught: tuple[type[Exception], ...] = (EdgegenError, *errors)
    try:
        yield
    except caught as exc:
        typer.echo(f"error: {describe(exc)}", err=True)
        raise typer.Exit(1) from None


def wide_console(width: int) -> Console:
    """A console at least ``width`` columns wide: wide tables stay readable when piped or in a narrow terminal."""
    return Console(width=max(Console().width, width))


def progress_bar(console: Console) -> Progress:
    """A bar with a count and the time left: what long-running commands show while they publish."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
    )
