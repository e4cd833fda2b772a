"""The ``edgegen`` command: the root every package's subcommands hang from, and ``edgegen gateway run``."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer

from gateway import __version__
from gateway.cli_common import (
    BrokerOption,
    ConfigOption,
    InfluxOption,
    LogLevelOption,
    exit_on,
    flags,
    settings_or_exit,
)
from gateway.config import Settings
from gateway.errors import ConfigError

app = typer.Typer(
    name="edgegen",
    help="Generative AI for the industrial edge: nodes, gateway, simulators.",
    no_args_is_help=True,
    add_completion=False,
)
gateway_app = typer.Typer(help="The gateway daemon: MQTT ingest, validation, storage.", no_args_is_help=True)
app.add_typer(gateway_app, name="gateway")


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


@gateway_app.command("run")
def gateway_run(
    config: ConfigOption = None,
    broker: BrokerOption = None,
    influx: InfluxOption = None,
    storage: Annotated[
        str | None, typer.Option("--storage", help="sqlite, influx1 or influx2.", show_default=False)
    ] = None,
    sqlite_path: Annotated[
        str | None, typer.Option("--sqlite", help="SQLite database file.", show_default=False)
    ] = None,
    log_level: LogLevelOption = None,
) -> None:
    """Run the gateway until SIGINT or SIGTERM, then drain queued frames to storage and exit."""
    given = flags(
        **{
            "mqtt.url": broker,
            "storage.kind": storage or ("influx1" if influx else None),
            "storage.influx_url": influx,
            "storage.sqlite_path": sqlite_path,
            "log_level": log_level,
        }
    )
    settings = settings_or_exit(config, given)
    with exit_on(OSError):
        try:
            asyncio.run(_serve(settings))
        except ConfigError as exc:  # found at start-up (a model that will not load): 2, not restarted by systemd
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None


async def _serve(settings: Settings) -> None:
    from gateway.service import Gateway

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await Gateway(settings).run(stop)


def _register_packages() -> None:
    from gateway.nodes_cli import register as register_nodes
    from hil.cli import register as register_hil
    from models.cli import register as register_models
    from simulators.cli import register as register_simulators

    register_nodes(app)
    register_simulators(app)
    register_hil(app)
    register_models(app)


_register_packages()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
