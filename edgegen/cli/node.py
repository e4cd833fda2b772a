"""``edgegen node run``: one virtual node publishing to a broker."""

from __future__ import annotations

from typing import Annotated

import typer

from edgegen.cli.common import BrokerOption, ConfigOption, LogLevelOption, exit_on, flags
from edgegen.cli.settings import settings_or_exit

node_app = typer.Typer(help="Virtual nodes: the firmware_py code on CPython, publishing over MQTT.")


def register(app: typer.Typer) -> None:
    app.add_typer(node_app, name="node")


@node_app.command("run")
def node_run(
    config: ConfigOption = None,
    broker: BrokerOption = None,
    site: Annotated[str | None, typer.Option(help="Site id.", show_default=False)] = None,
    node_id: Annotated[str | None, typer.Option("--node-id", help="Node id.", show_default=False)] = None,
    stream: Annotated[str | None, typer.Option(help="Stream name.", show_default=False)] = None,
    channels: Annotated[int | None, typer.Option(help="Channels per sample.", show_default=False)] = None,
    rate: Annotated[float | None, typer.Option(help="Sample rate in Hz.", show_default=False)] = None,
    window: Annotated[int | None, typer.Option(help="Samples per frame.", show_default=False)] = None,
    frames: Annotated[int | None, typer.Option(help="Stop after this many frames.", show_default=False)] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds of signal.")] = None,
    speed: Annotated[float, typer.Option(help="Time-lapse factor; 0 sends as fast as the broker takes.")] = 1.0,
    log_level: LogLevelOption = None,
) -> None:
    """Run one virtual node until --frames or --duration is reached, or Ctrl-C."""
    import threading
    import time

    from edgegen.simulators.paho_link import PahoLink
    from edgegen.simulators.virtual_node import build_node, run_node

    given = flags(
        **{
            "mqtt.url": broker,
            "node.site": site,
            "node.node_id": node_id,
            "node.stream": stream,
            "node.channels": channels,
            "node.sample_rate_hz": rate,
            "node.window": window,
            "log_level": log_level,
        }
    )
    settings = settings_or_exit(config, given)
    ns = settings.node
    with exit_on(OSError, ValueError):
        link = PahoLink(settings.mqtt.url, ns.site, ns.node_id, settings.mqtt.timeout_s)
        link.connect()
        stop = threading.Event()
        try:
            node = build_node(ns, link, time.time_ns() // 1000)
            result = run_node(node, frames=frames, duration_s=duration, speed=speed or None, stop=stop)
            link.flush()
        except KeyboardInterrupt:
            stop.set()
            raise typer.Exit(130) from None
        finally:
            link.close()
    typer.echo(
        f"{ns.node_id}: {result.frames} frames, {result.values} values to {settings.mqtt.url} "
        f"in {result.seconds:.1f} s (all acknowledged)"
    )
