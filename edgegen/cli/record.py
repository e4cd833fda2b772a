"""``edgegen record``: capture an MQTT session to a file for ``edgegen replay --mqtt-capture``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgegen.cli.common import BrokerOption, ConfigOption, LogLevelOption, exit_on, flags
from edgegen.cli.settings import settings_or_exit

MAX_TOPIC_ROWS = 50  # the summary table; the file has them all


def register(app: typer.Typer) -> None:
    app.command("record")(record)


def record(
    out: Annotated[Path, typer.Option("--out", help="Capture file to write.", show_default=False)],
    config: ConfigOption = None,
    broker: BrokerOption = None,
    topic: Annotated[
        list[str] | None,
        typer.Option("--topic", help="Topic filter, repeatable (default: edgegen/v1/#).", show_default=False),
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds.", min=0, show_default=False)
    ] = None,
    messages: Annotated[
        int | None, typer.Option(help="Stop after this many messages.", min=1, show_default=False)
    ] = None,
    protocol: Annotated[
        str | None,
        typer.Option(help="5 (keeps live retain flags) or 3.1.1 (the embedded broker).", show_default=False),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
    log_level: LogLevelOption = None,
) -> None:
    """Record every message on the topic filters (QoS 1) until --duration, --messages, or Ctrl-C."""
    from rich.console import Console
    from rich.table import Table

    from edgegen.simulators.capture import DEFAULT_FILTER, Recorder
    from edgegen.simulators.capture.link import public_url

    settings = settings_or_exit(
        config, flags(**{"mqtt.url": broker, "mqtt.protocol": protocol, "log_level": log_level})
    )
    console = Console()
    filters = topic or [DEFAULT_FILTER]
    recorder = Recorder(
        settings.mqtt.url,
        out,
        filters,
        protocol=settings.mqtt.protocol,
        timeout_s=settings.mqtt.timeout_s,
        overwrite=force,
        username=settings.mqtt.username,
        password=settings.mqtt.password_value(),
    )
    with exit_on(OSError, ValueError):
        try:
            recorder.start()
        except FileExistsError:
            raise ValueError(f"{out} exists (--force overwrites it)") from None
        source = public_url(settings.mqtt.url)
        console.print(f"recording {', '.join(filters)} from {source} to {out} (Ctrl-C stops)")
        try:
            recorder.wait(messages=messages, duration_s=duration)
        except KeyboardInterrupt:
            console.print("interrupted")
        finally:
            summary = recorder.close()
    console.print(
        f"{summary.messages} messages, {summary.bytes} payload bytes ({summary.file_bytes} file bytes) "
        f"in {summary.seconds:.1f} s to {out}"
    )
    if summary.topics:
        table = Table(title="Messages per topic")
        table.add_column("topic")
        table.add_column("messages", justify="right")
        ranked = sorted(summary.topics.items(), key=lambda kv: (-kv[1], kv[0]))
        for name, count in ranked[:MAX_TOPIC_ROWS]:
            table.add_row(name, str(count))
        if len(ranked) > MAX_TOPIC_ROWS:
            table.add_row(f"... {len(ranked) - MAX_TOPIC_ROWS} more topics", "")
        console.print(table)
