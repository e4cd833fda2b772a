"""``edgegen node run`` and ``edgegen demo``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gateway.cli_common import (
    BrokerOption,
    ConfigOption,
    InfluxOption,
    LogLevelOption,
    exit_on,
    flags,
    settings_or_exit,
)
from simulators.errors import SimulatorError

node_app = typer.Typer(help="Virtual nodes: the firmware_py code on CPython, publishing over MQTT.")


def register(app: typer.Typer) -> None:
    from simulators import record_cli, replay_cli, simulate_cli

    app.add_typer(node_app, name="node")
    app.command("demo")(demo)
    replay_cli.register(app)
    simulate_cli.register(app)
    record_cli.register(app)


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

    from simulators.paho_link import PahoLink
    from simulators.virtual_node import build_node, run_node

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
    with exit_on(SimulatorError, OSError, ValueError):
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


def demo(
    config: ConfigOption = None,
    broker: BrokerOption = None,
    influx: InfluxOption = None,
    duration: Annotated[float, typer.Option(help="Seconds of signal each node sends.")] = 10.0,
    nodes: Annotated[int, typer.Option(help="Virtual nodes.", min=1, max=100)] = 3,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Where SQLite and dead letters go.")] = Path(
        "edgegen-demo"
    ),
    faults: Annotated[bool, typer.Option(help="Inject one malformed message per rejection cause.")] = True,
    log_level: LogLevelOption = None,
) -> None:
    """Embedded broker, gateway and virtual nodes on this machine; no servers needed. Prints what arrived."""
    from simulators.demo import run_demo

    given = flags(
        **{
            "mqtt.url": broker,
            "storage.kind": "influx1" if influx else None,
            "storage.influx_url": influx,
            "storage.sqlite_path": str(data_dir / "demo.sqlite"),
            "gateway.state_dir": str(data_dir),
            "log_level": log_level or "ERROR",  # the injected faults' rejections are summarised below
        }
    )
    settings = settings_or_exit(config, given)
    console = Console()
    console.print(
        f"edgegen demo: {nodes} virtual nodes x {duration:g} s at {settings.node.sample_rate_hz:g} Hz, "
        f"{settings.node.channels} channels, {settings.node.window} samples per frame"
    )
    with exit_on(SimulatorError, OSError), console.status("nodes publishing, gateway storing..."):
        report = asyncio.run(
            run_demo(
                settings, nodes=nodes, duration_s=duration, embedded_broker=broker is None, inject_faults=faults
            )
        )
    table = Table(title=f"What arrived ({report.broker} -> gateway -> {report.storage})")
    for column in ("node", "frames sent", "frames stored", "values sent", "values stored", "rejected"):
        table.add_column(column, justify="left" if column == "node" else "right")
    for n in report.nodes:
        stored = "n/a" if n.values_stored is None else str(n.values_stored)
        table.add_row(n.node, str(n.frames_sent), str(n.frames_stored), str(n.values_sent), stored, str(n.rejects))
    console.print(table)
    if report.rejects_by_cause:
        causes = ", ".join(f"{cause} {n}" for cause, n in sorted(report.rejects_by_cause.items()))
        console.print(f"rejected by cause: {causes} (dead letters in {settings.gateway.state_dir})")
    if report.complete:
        console.print(f"[green]all values stored exactly once[/green] in {report.seconds:.1f} s")
    else:
        console.print("[red]stored counts differ from sent counts[/red]")
        raise typer.Exit(1)
