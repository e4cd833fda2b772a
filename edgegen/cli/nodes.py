"""``edgegen nodes``: the fleet view, read from the gateway's node registry (gateway/fleet.py).

The registry is opened read-only, so the command is safe while the gateway runs (SQLite WAL lets a reader in
beside the writer). Online/offline is judged here, with this machine's clock and ``--offline-after``. The frame
counters are the gateway's since it started (written about once a second), "-" where none were counted.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from edgegen.cli.common import ConfigOption, exit_on, flags
from edgegen.cli.settings import settings_or_exit
from edgegen.gateway.fleet import REGISTRY_FILE, NodeEntry, read_entries


def register(app: typer.Typer) -> None:
    """Add ``nodes`` to the ``edgegen`` command."""
    app.command("nodes")(nodes)


def nodes(
    config: ConfigOption = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir", help="The gateway's state directory (default: gateway.state_dir).", show_default=False
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
    offline_after: Annotated[
        float | None,
        typer.Option(
            "--offline-after",
            min=0.001,
            metavar="SECONDS",
            help="Offline when not heard from for this long (default: gateway.offline_after_s).",
            show_default=False,
        ),
    ] = None,
    site: Annotated[str | None, typer.Option("--site", help="Only this site's nodes.", show_default=False)] = None,
) -> None:
    """Show every node the gateway knows: state, online or offline, last seen, firmware, models, counters, and
    the frames the gateway stored and rejected of it since it started."""
    settings = settings_or_exit(config, flags(**{"gateway.state_dir": state_dir}))
    path = settings.gateway.state_dir / REGISTRY_FILE
    now_us = time.time_ns() // 1000
    with exit_on():
        entries = read_entries(path, now_us, offline_after or settings.gateway.offline_after_s, site)
    if as_json:
        typer.echo(json.dumps([entry.to_json() for entry in entries], indent=2))
        return
    if not entries:
        typer.echo(f"no nodes{f' at site {site}' if site else ''} in {path}")
        return
    _print_table(entries, path)


def _print_table(entries: list[NodeEntry], path: Path) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    online = sum(entry.online for entry in entries)
    table = Table(title=f"{len(entries)} nodes, {online} online ({path})")
    for name in ("site", "node", "state", "online", "last seen"):
        table.add_column(name, no_wrap=True)
    table.add_column("fw", no_wrap=True)
    table.add_column("models")
    for name in ("uptime", "outbox", "dropped", "stored", "rejected"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("last error")
    for entry in entries:
        models = ", ".join(f"{slot}={version}" for slot, version in sorted(entry.models.items()))
        table.add_row(
            *(Text(value) for value in (entry.site, entry.node, entry.state)),  # node-supplied text: no markup
            Text("online", "green") if entry.online else Text("offline", "red"),
            f"{_duration(entry.last_seen_ago_s)} ago",
            Text(entry.fw or "-"),
            Text(models or "-"),
            "-" if entry.uptime_s is None else _duration(entry.uptime_s),
            _number(entry.outbox_depth),
            _number(entry.dropped),
            _number(entry.frames_stored),
            _number(entry.frames_rejected),
            Text(entry.last_error or "-"),
        )
    Console(width=max(Console().width, 150)).print(table)


def _duration(seconds: float) -> str:
    """``12 s``, ``4 min 05 s``, ``3 h 07 min``, ``2 d 05 h``: two units are plenty for a glance."""
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 86_400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86_400} d {s % 86_400 // 3600:02d} h"


def _number(value: int | None) -> str:
    return "-" if value is None else str(value)
