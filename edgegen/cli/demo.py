"""``edgegen demo``: the showcase, on embedded defaults."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from edgegen.cli.common import (
    BrokerOption,
    ConfigOption,
    InfluxOption,
    LogLevelOption,
    exit_on,
    flags,
    progress_bar,
)
from edgegen.cli.settings import settings_or_exit

if TYPE_CHECKING:
    from edgegen.simulators.demo.run import DemoReport


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    config: ConfigOption = None,
    broker: BrokerOption = None,
    influx: InfluxOption = None,
    nodes: Annotated[int, typer.Option(help="Virtual nodes replaying pump data.", min=1, max=20)] = 3,
    steps: Annotated[int, typer.Option(help="Seconds of data (model steps) each node replays.", min=300)] = 720,
    speed: Annotated[float, typer.Option(help="Replay speed-up over real time.", min=1)] = 60.0,
    faults: Annotated[int, typer.Option(help="Labelled sensor faults injected per node.", min=0, max=8)] = 3,
    malformed: Annotated[bool, typer.Option(help="Also send one malformed message per rejection cause.")] = True,
    data: Annotated[
        Path | None, typer.Option(help="The SKAB data directory: replay real pump data, compare a real failure.")
    ] = None,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Where SQLite, dead letters and the report go.")] = (
        Path("edgegen-demo")
    ),
    seed: Annotated[int, typer.Option(help="Seed of the generated data and the fault plan.")] = 0,
    log_level: LogLevelOption = None,
) -> None:
    """Embedded broker, gateway with the generative model, and virtual nodes replaying pump data with injected
    faults; no servers needed. Ends with a summary and an HTML report."""
    from edgegen.simulators.demo.run import WINDOW, DemoPlan, run_demo

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
        f"edgegen demo: {nodes} virtual nodes replay {steps} s of pump data (8 channels, 1 Hz) with {faults} "
        f"injected faults each, x{speed:g}; the SKAB generative model scores every stream"
    )
    windows = nodes * (steps // WINDOW)
    with exit_on(OSError), progress_bar(console) as bar:
        task = bar.add_task("frames published", total=windows)
        plan = DemoPlan(
            nodes=nodes,
            steps=steps,
            speed=speed,
            faults=faults,
            embedded_broker=broker is None,
            inject_malformed=malformed,
            data=data,
            seed=seed,
        )
        advanced = lambda n: bar.update(task, completed=n)  # noqa: E731 - the bar's callback, named for the line
        report = asyncio.run(run_demo(settings, plan, out_dir=data_dir, progress=advanced))
    _print_summary(console, report, settings.gateway.state_dir)
    if not report.complete:
        raise typer.Exit(1)


def _print_summary(console: Console, report: DemoReport, dead_letters: Path) -> None:
    """What arrived per node, rejections by cause, detection against the injected faults, where the report is."""
    from edgegen.simulators.demo.run import SUMMARY_COLUMNS, summary_rows

    table = Table(title=f"What arrived ({report.broker} -> gateway -> {report.storage})")
    for column in SUMMARY_COLUMNS:
        table.add_column(column, justify="left" if column == "node" else "right")
    for row in summary_rows(report):
        table.add_row(*row)
    console.print(table)
    if report.rejects_by_cause:
        causes = ", ".join(f"{cause} {n}" for cause, n in sorted(report.rejects_by_cause.items()))
        console.print(f"rejected by cause: {causes} (dead letters in {dead_letters})")
    flagged = sum(n.faults_flagged for n in report.nodes)
    injected = sum(n.faults for n in report.nodes)
    share = report.false_alarms / report.clean_rows if report.clean_rows else 0.0
    console.print(
        f"injected faults flagged by the gateway: {flagged} of {injected}; flags away from faults: "
        f"{report.false_alarms} of {report.clean_rows} scored rows ({share:.0%}, see the report's notes)"
    )
    console.print(f"report: {report.report} (main figure: {report.screenshot})")
    console.print(f"the gateway's /metrics, /readyz and /nodes were served at {report.operator_url}")
    if report.complete:
        console.print(f"[green]all values stored exactly once[/green] in {report.seconds:.1f} s")
    else:
        console.print("[red]stored counts differ from sent counts[/red]")
