"""``edgegen replay``: recorded data through virtual nodes, or a captured MQTT session, with original timing."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from edgegen.cli.common import BrokerOption, ConfigOption, LogLevelOption, exit_on, flags, progress_bar
from edgegen.cli.settings import settings_or_exit

if TYPE_CHECKING:  # the simulators are imported when the command runs
    from edgegen.models.data.series import Series
    from edgegen.simulators.replay.run import ReplayOptions, ReplaySummary

COUNTS = (  # NodeResult field, column title: per node and in total
    ("frames", "frames"),
    ("samples", "samples"),
    ("bytes", "bytes"),
    ("dropped", "dropped"),
    ("duplicates", "duplicates"),
    ("reconnects", "reconnects"),
    ("lost_to_reboot", "lost to reboot"),
    ("nan_rows", "NaN rows skipped"),
)


def register(app: typer.Typer) -> None:
    app.command("replay")(replay_command)


def replay_command(
    data: Annotated[
        Path | None, typer.Argument(help="A recording file or a directory of them.", show_default=False)
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="auto, skab, tep, csv, parquet or influx.")] = "auto",
    config: ConfigOption = None,
    broker: BrokerOption = None,
    nodes: Annotated[int, typer.Option(help="Virtual nodes (node-1 ... node-N).", min=1, max=1000)] = 1,
    speed: Annotated[
        float, typer.Option(help="1 = real time, k = k times faster, 0 = as fast as acknowledged.", min=0)
    ] = 1.0,
    runtime: Annotated[
        str, typer.Option(help="cpython, or micropython (one unix-port process per node).")
    ] = "cpython",
    window: Annotated[int, typer.Option(help="Samples per frame.", min=1, max=65535)] = 10,
    site: Annotated[str, typer.Option(help="Site id.")] = "replay",
    stream: Annotated[str, typer.Option(help="Stream name.")] = "data",
    keep_timestamps: Annotated[
        bool, typer.Option(help="Keep the recorded timestamps instead of starting now.")
    ] = False,
    rows: Annotated[
        int | None, typer.Option(help="Replay only the first N rows of each recording.", min=2)
    ] = None,
    loss: Annotated[float, typer.Option(help="Probability that a node's PUBLISH is lost on the way.")] = 0.0,
    delay_ms: Annotated[float, typer.Option(help="One-way network delay.")] = 0.0,
    jitter_ms: Annotated[float, typer.Option(help="Uniform +- jitter on the delay.")] = 0.0,
    disconnect_every: Annotated[
        float | None, typer.Option(help="Cut every node's connection this often (s).")
    ] = None,
    reboot_every: Annotated[
        float | None, typer.Option(help="Reset every node this often (s of run time).")
    ] = None,
    reboot_downtime: Annotated[float, typer.Option(help="Seconds a reset node stays down.")] = 2.0,
    mqtt_capture: Annotated[
        Path | None, typer.Option("--mqtt-capture", help="Replay a session captured by `edgegen record` instead.")
    ] = None,
    log_level: LogLevelOption = None,
) -> None:
    """Replay recorded sensor data through N virtual nodes running the firmware, keeping the original timing."""
    settings = settings_or_exit(config, flags(**{"mqtt.url": broker, "log_level": log_level}))
    console = Console()
    if mqtt_capture is not None:
        _replay_capture(mqtt_capture, settings.mqtt.url, speed, console)
        return
    if data is None:
        raise typer.BadParameter("give a recording (DATA) or --mqtt-capture FILE", param_hint="DATA")
    from edgegen.simulators.netfaults import NetFaults
    from edgegen.simulators.replay.load import load
    from edgegen.simulators.replay.run import ReplayOptions

    with exit_on(ValueError):
        faults = None
        if loss or delay_ms or jitter_ms or disconnect_every:
            faults = NetFaults(loss, delay_ms, jitter_ms, disconnect_every)
        options = ReplayOptions(
            nodes=nodes,
            speed=speed,
            window=window,
            site=site,
            stream=stream,
            runtime=runtime,
            keep_timestamps=keep_timestamps,
            faults=faults,
            reboot_every_s=reboot_every,
            reboot_downtime_s=reboot_downtime,
        )
        recordings = load(data, fmt)
        if rows is not None:
            recordings = [r.slice(0, rows) for r in recordings]
        summary = _replay(recordings, settings.mqtt.url, options, console)
    _print_summary(console, summary, settings.mqtt.url, runtime)


def _replay(recordings: list[Series], url: str, options: ReplayOptions, console: Console) -> ReplaySummary:
    """Run the replay with a progress bar; Ctrl-C stops every node and exits 130."""
    from edgegen.simulators.replay.run import replay

    stop = threading.Event()
    with tempfile.TemporaryDirectory(prefix="edgegen-replay-") as state, progress_bar(console) as bar:
        n = len(recordings)
        total = sum(len(recordings[i % n]) // options.window for i in range(options.nodes))
        task = bar.add_task(f"{options.nodes} node(s) x{options.speed:g}", total=total)
        try:
            return replay(
                recordings,
                url,
                options,
                state_root=Path(state),
                progress=lambda done: bar.update(task, completed=done),
                stop=stop,
            )
        except KeyboardInterrupt:
            stop.set()
            raise typer.Exit(130) from None


def _print_summary(console: Console, summary: ReplaySummary, url: str, runtime: str) -> None:
    table = Table(title=f"Replayed to {url} in {summary.seconds:.1f} s ({runtime})")
    table.add_column("node")
    table.add_column("recording")
    for _, title in COUNTS:
        table.add_column(title, justify="right")
    for n in summary.nodes:
        table.add_row(n.node, n.recording, *(str(getattr(n, field)) for field, _ in COUNTS))
    table.add_row("total", "", *(str(sum(getattr(n, field) for n in summary.nodes)) for field, _ in COUNTS))
    console.print(table)
    console.print("scales per channel: " + ", ".join(f"{s:g}" for s in summary.scales))


def _replay_capture(path: Path, url: str, speed: float, console: Console) -> None:
    from edgegen.simulators.capture import read_capture, replay_capture

    with exit_on(OSError):
        total = len(read_capture(path).records)
        with progress_bar(console) as bar:
            task = bar.add_task(f"{path.name} x{speed:g}", total=total)
            result = replay_capture(path, url, speed=speed, progress=lambda n: bar.update(task, completed=n))
    console.print(
        f"replayed {result.messages} messages, {result.bytes} bytes to {url} in {result.seconds:.1f} s "
        f"(latest {result.max_lateness_ms:.1f} ms behind schedule; {result.torn_records} torn records ignored)"
    )
