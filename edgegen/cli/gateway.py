"""``edgegen gateway run``: the gateway daemon."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer

from edgegen.cli.common import BrokerOption, ConfigOption, InfluxOption, LogLevelOption, exit_on, flags
from edgegen.cli.settings import settings_or_exit
from edgegen.gateway.config import Settings
from edgegen.gateway.errors import ConfigError

gateway_app = typer.Typer(help="The gateway daemon: MQTT ingest, validation, storage.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(gateway_app, name="gateway")


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
    from edgegen.gateway.service import Gateway

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await Gateway(settings).run(stop)
