"""``edgegen node run``: one virtual node publishing to a broker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgegen.cli.common import BrokerOption, ConfigOption, LogLevelOption, exit_on, flags
from edgegen.cli.settings import settings_or_exit

node_app = typer.Typer(help="Virtual nodes: the firmware's node application on CPython, publishing over MQTT.")


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
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            help="The node's flash (outbox, sequence numbers), kept across runs; default: a fresh temporary one.",
            show_default=False,
        ),
    ] = None,
    log_level: LogLevelOption = None,
) -> None:
    """Run one virtual node until --frames or --duration is reached, or Ctrl-C; then wait until the broker has
    acknowledged every frame."""
    import signal
    import threading

    from edgegen.simulators.node import VirtualNode

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
    stop = threading.Event()
    with (
        exit_on(OSError, ValueError),
        VirtualNode(
            ns, settings.mqtt.url, state_dir=state_dir, speed=speed, timeout_s=settings.mqtt.timeout_s
        ) as node,
    ):
        node.connect()
        # Ctrl-C stops sampling between windows; what was sampled is still delivered. A second one aborts.
        previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
        try:
            result = node.run(frames=frames, duration_s=duration, stop=stop)
        finally:
            signal.signal(signal.SIGINT, previous)
        try:
            node.flush(settings.mqtt.timeout_s)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
    delivered = (
        "all acknowledged"
        if not result.dropped
        else f"{result.dropped} overwritten in the full outbox, the rest acknowledged"
    )
    typer.echo(
        f"{ns.node_id}: {result.frames} frames, {result.values} values to {settings.mqtt.url} "
        f"in {result.seconds:.1f} s ({delivered})"
    )
    if stop.is_set():
        raise typer.Exit(130)
