"""What every ``edgegen`` subcommand shares: the common options, settings loading, and error reporting."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.config import Settings, load_settings
from gateway.errors import ConfigError, GatewayError
from gateway.logs import configure_logging

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


def settings_or_exit(config: Path | None, given: dict[str, Any]) -> Settings:
    """Load and validate settings; on a bad key print what was expected and exit with status 2."""
    try:
        settings = load_settings(config, flags=given)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.gateway.log_format, secrets=settings.secrets())
    return settings


@contextmanager
def exit_on(*errors: type[Exception], describe: Callable[[Exception], str] = str) -> Iterator[None]:
    """Turn the given errors (and any GatewayError) into one line on stderr and exit status 1."""
    caught: tuple[type[Exception], ...] = (GatewayError, *errors)
    try:
        yield
    except caught as exc:
        typer.echo(f"error: {describe(exc)}", err=True)
        raise typer.Exit(1) from None
