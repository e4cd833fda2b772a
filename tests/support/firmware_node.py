"""Run the node application (firmware_py.app) under the MicroPython unix port, as a board would run it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from edgegen.hil import latency
from tests.support.micropython import MP_SCRIPTS
from tests.support.native import micropython_binary


def node_config(state_dir: Path, port: int, **overrides: Any) -> dict[str, Any]:
    """A one-stream node config (3 channels, 50-sample windows at 100 Hz, test signal); override any key."""
    cfg: dict[str, Any] = {
        "site": "fw",
        "node_id": "n1",
        "mqtt": {
            "host": "127.0.0.1",
            "port": port,
            "keepalive_s": 5,
            "drain_per_s": 1000,
            "burst": 100,
            "backoff_min_ms": 100,
            "backoff_max_ms": 1000,
        },
        "state_dir": str(state_dir),
        "speed": 0,
        "outbox": {"slots": 64},
        "streams": [
            {"name": "vib", "channels": 3, "window": 50, "scales": [0.001] * 3, "source": {"kind": "sine"}}
        ],
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


def _command(cfg: dict[str, Any], max_frames: int | None, drain_ms: int, hard: bool) -> list[str]:
    state = Path(cfg["state_dir"])
    state.mkdir(parents=True, exist_ok=True)
    path = state / "config.json"
    path.write_text(json.dumps(cfg))
    args = [
        micropython_binary(),
        str(MP_SCRIPTS / "run_node.py"),
        str(path),
        "-" if max_frames is None else str(max_frames),
        str(drain_ms),
    ]
    return [*args, "hard"] if hard else args


ENV = latency.ENV


def run_node(
    cfg: dict[str, Any], max_frames: int | None, drain_ms: int = 10_000, hard: bool = False, timeout_s: float = 120
) -> dict[str, Any]:
    result = subprocess.run(
        _command(cfg, max_frames, drain_ms, hard),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=ENV,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"node exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    stats: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return stats


def start_node(cfg: dict[str, Any], max_frames: int | None, drain_ms: int = 10_000) -> subprocess.Popen[str]:
    return subprocess.Popen(
        _command(cfg, max_frames, drain_ms, False),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
