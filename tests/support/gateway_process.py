"""The gateway as a real process (``edgegen gateway run``) for fault tests: start, SIGKILL, SIGTERM, metrics.

Also a background publisher: virtual nodes (the firmware's NodeApp: outbox, own MQTT client, QoS 1) publishing at
a fixed pace until told to stop, journaling every payload they sent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from edgegen.gateway.config import NodeSettings
from edgegen.simulators.node import VirtualNode, join_all
from tests.support.servers import free_port

REPO = Path(__file__).resolve().parents[2]


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value))


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for section, keys in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml(value)}" for key, value in keys.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


class GatewayProcess:
    def __init__(self, workdir: Path, sections: dict[str, dict[str, Any]]) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.http_port = free_port()
        sections = {k: dict(v) for k, v in sections.items()}
        gateway = sections.setdefault("gateway", {})
        gateway.setdefault("state_dir", str(workdir / "state"))
        gateway["http_port"] = self.http_port
        self.config = write_config(workdir / "gateway.toml", sections)
        self.log_path = workdir / "gateway.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, ready_timeout_s: float = 30.0) -> None:
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts} ---\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "edgegen.cli", "gateway", "run", "--config", str(self.config)],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + ready_timeout_s
        while not self.ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway not ready within {ready_timeout_s} s:\n{self.log()}")
            time.sleep(0.1)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/readyz", timeout=1) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def kill(self) -> None:
        """SIGKILL: no drain, no clean disconnect, whatever was in memory is gone."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout_s: float = 60.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout_s)

    def metric(self, name: str, **labels: str) -> float:
        """A sample from /metrics (0 when absent)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
        for line in text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.split()[-1])
        return 0.0

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=5) as r:
            return json.loads(r.read())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class Publishers:
    """Virtual nodes publishing QoS 1 frames at ``speed`` times real time on background threads until ``stop``."""

    # Outbox messages per node: a 30 s broker stall at 20 frames/s must not overwrite any (the tests count on
    # every frame sent being delivered).
    SLOTS = 1024

    def __init__(self, url: str, nodes: list[NodeSettings], t0_us: int, speed: float) -> None:
        self.sent: dict[str, list[bytes]] = {n.node_id: [] for n in nodes}
        self._stop = threading.Event()
        self._nodes = [
            VirtualNode(n, url, speed=speed, t_start_us=t0_us, slots=self.SLOTS, journal=self.sent[n.node_id])
            for n in nodes
        ]

    def __enter__(self) -> Publishers:
        for node in self._nodes:
            node.start(stop=self._stop, drain_s=120)  # the broker may still be catching up after a stall
        return self

    def stop(self) -> None:
        self._stop.set()
        results = join_all(self._nodes, 180)
        assert [r.dropped for r in results] == [0] * len(results), "a node's outbox overflowed"

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def frames(self) -> int:
        return sum(len(v) for v in self.sent.values())
