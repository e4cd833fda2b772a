"""The `edgegen` command as a user runs it: a subprocess, its exit status and what it prints."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import edgegen
from tests.support.pipeline import node_settings, publish_frames
from tests.support.servers import InfluxDB, Mosquitto, free_port

EDGEGEN = [sys.executable, "-m", "edgegen.cli"]
DEFAULT_OPERATOR_PORT = 9108  # the gateway's http_port default, which a running gateway holds


def _env(**extra: str) -> dict[str, str]:
    """The test process's environment without any EDGEGEN_ setting, plus ``extra``: each test says what it sets."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EDGEGEN_")}
    return {**clean, "COLUMNS": "200", **extra}


def _run(
    *args: str, cwd: Path, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EDGEGEN, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=_env(**(env or {})),
    )


def _metric(port: int, name: str) -> float:
    """A counter from the gateway's /metrics (0 before its first increment)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def test_version(tmp_path: Path) -> None:
    result = _run("--version", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, f"edgegen {edgegen.__version__}\n")


def test_the_installed_console_script_is_edgegen(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("edgegen")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, f"edgegen {edgegen.__version__}\n")


@pytest.mark.slow
def test_help_lists_the_subcommands(tmp_path: Path) -> None:
    result = _run("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("demo", "gateway", "node"):
        assert command in result.stdout


@pytest.mark.slow
def test_bad_configuration_exits_2_naming_the_key(tmp_path: Path) -> None:
    result = _run("gateway", "run", cwd=tmp_path, env={"EDGEGEN_MQTT__URL": "tcp://x"})
    assert result.returncode == 2
    assert result.stderr == (
        "error: invalid configuration:\n"
        "  mqtt.url = 'tcp://x' (from environment variable EDGEGEN_MQTT__URL): "
        "expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]\n"
    )


@pytest.mark.e2e
def test_demo_runs_with_no_servers_scores_the_streams_and_writes_its_report(tmp_path: Path) -> None:
    result = _run("demo", "--nodes", "2", "--steps", "300", "--speed", "120", "--faults", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    # 300 s at 1 Hz in frames of 10 samples x 8 channels: 30 frames, 2400 values per node; the model scores every
    # closed 1 s bin after its 240-row warm-up: 299 - 240 = 59 rows. "faulty" sends 1 valid frame, 9 broken.
    for node in ("node-1", "node-2"):
        assert re.search(rf"│ {node} │ +30 │ +30 │ +2400 │ +2400 │ +59 │ +\d+ │ +1 │ +[01] │ +0 │", out), out
    assert re.search(r"│ faulty │ +1 │ +1 │ +150 │ +150 │ +0 │ +0 │ +0 │ +0 │ +9 │", out), out
    assert "all values stored exactly once" in out
    clean = re.search(r"flags away from faults: \d+ of (\d+) scored rows", out)
    assert clean is not None and 0 < int(clean[1]) < 2 * 59, out  # rows near the injected faults are set apart
    assert "report: edgegen-demo/report.html (main figure: edgegen-demo/report.png)" in out
    served = re.search(r"/nodes were served at http://127\.0\.0\.1:(\d+)$", out, re.MULTILINE)
    assert served is not None and int(served[1]) != DEFAULT_OPERATOR_PORT, out  # a free port: 9108 may be taken
    demo = tmp_path / "edgegen-demo"
    with sqlite3.connect(demo / "demo.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM points").fetchone() == (4950,)
        derived = dict(conn.execute("SELECT measurement, count(*) FROM derived GROUP BY measurement").fetchall())
    # per node and row: 4 score fields; forecasts at horizons 1 and H, 8 channels x (mean + 4 bounds)
    assert derived == {"scores": 2 * 59 * 4, "forecasts": 2 * 59 * 2 * 8 * 5}
    with sqlite3.connect(demo / "dead-letters.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (9,)
    page = (demo / "report.html").read_text()
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', page)) == 3  # 2 streams + rare failure
    assert "<td>node-1</td><td>30</td><td>30</td><td>2400</td><td>2400</td><td>59</td>" in page
    assert (demo / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.mosquitto
@pytest.mark.e2e
def test_gateway_run_stores_node_run_frames_and_drains_on_sigterm(mosquitto: Mosquitto, tmp_path: Path) -> None:
    db = tmp_path / "gw.sqlite"
    port = free_port()
    gateway_proc = subprocess.Popen(
        [*EDGEGEN, "gateway", "run", "--broker", mosquitto.url, "--sqlite", str(db), "--log-level", "INFO"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(EDGEGEN_MQTT__CLIENT_ID="gw-cli", EDGEGEN_MQTT__SITE="cli", EDGEGEN_GATEWAY__HTTP_PORT=str(port)),
    )
    try:
        deadline = time.monotonic() + 30
        log = ""
        while "subscribed to" not in log:
            assert gateway_proc.stdout is not None
            line = gateway_proc.stdout.readline()
            assert line, f"the gateway exited before subscribing:\n{log}"
            assert time.monotonic() < deadline, f"the gateway did not subscribe within 30 s:\n{log}"
            log += line
        node = _run(
            "node",
            "run",
            "--broker",
            mosquitto.url,
            "--site",
            "cli",
            "--node-id",
            "press-4",
            "--frames",
            "12",
            "--speed",
            "0",
            "--channels",
            "2",
            "--window",
            "25",
            cwd=tmp_path,
        )
        assert node.returncode == 0, node.stderr
        assert node.stdout.startswith(f"press-4: 12 frames, 600 values to {mosquitto.url} in ")
        sent = publish_frames(mosquitto.url, node_settings("cli", 1), 3, 1_000_000)
        assert len(sent["node-0"]) == 3
        deadline = time.monotonic() + 60  # every frame spooled (acknowledged) before SIGTERM: the drain stores it
        while _metric(port, "edgegen_frames_acked_total") < 12 + 3:
            assert time.monotonic() < deadline, "the gateway did not take all 15 frames within 60 s"
            time.sleep(0.05)
    finally:
        gateway_proc.send_signal(signal.SIGTERM)
        out, _ = gateway_proc.communicate(timeout=60)
    assert gateway_proc.returncode == 0, out
    assert "gateway stopped" in out
    with sqlite3.connect(db) as conn:
        counts = dict(conn.execute("SELECT node, count(*) FROM points GROUP BY node").fetchall())
    assert counts == {"press-4": 600, "node-0": 3 * 50 * 3}


@pytest.mark.mosquitto
@pytest.mark.influxdb
@pytest.mark.e2e
def test_demo_switches_to_real_servers(mosquitto: Mosquitto, influxdb: InfluxDB, tmp_path: Path) -> None:
    port = free_port()
    result = _run(
        "demo",
        "--broker",
        mosquitto.url,
        "--influx",
        influxdb.url,
        "--nodes",
        "1",
        "--steps",
        "300",
        "--speed",
        "150",
        cwd=tmp_path,
        env={"EDGEGEN_STORAGE__DATABASE": "demo_cli", "EDGEGEN_GATEWAY__HTTP_PORT": str(port)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    words = " ".join(result.stdout.split())  # rich wraps the title to the table's width
    assert f"What arrived ({mosquitto.url} -> gateway -> influx1 {influxdb.url})" in words
    assert re.search(r"│ node-1 │ +30 │ +30 │ +2400 │ +2400 │ +59 │", result.stdout), result.stdout
    assert re.search(r"│ faulty │ +1 │ +1 │ +150 │ +150 │ +0 │ +0 │ +0 │ +0 │ +9 │", result.stdout)
    # scores read back with the node's timestamps line up with the injected faults: some rows are near them
    clean = re.search(r"flags away from faults: \d+ of (\d+) scored rows", words)
    assert clean is not None and 0 < int(clean[1]) < 59, words
    assert f"/nodes were served at http://127.0.0.1:{port}" in words  # the configured port, kept
    page = (tmp_path / "edgegen-demo" / "report.html").read_text()  # read back from InfluxDB
    assert "<td>node-1</td><td>30</td><td>30</td><td>2400</td><td>2400</td><td>59</td>" in page
