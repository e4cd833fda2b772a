"""The board's flash for a HIL run: hil.deploy.plan()'s layout (firmware in /lib/firmware_py, the model in
/models, /config.json, /main.py) plus the HIL script, its framing module, its settings and the inputs."""

from __future__ import annotations

import json
from pathlib import Path

from edgegen.hil.deploy import Plan, plan
from edgegen.hil.subject import Subject

SCRIPTS = Path(__file__).resolve().parent / "scripts"
INPUTS = "hil_inputs.bin"


def board_config(subject: Subject) -> dict[str, object]:
    """A node configuration with one stream that runs the model on replayed windows (it never connects)."""
    f = subject.features
    return {
        "site": "hil",
        "node_id": "hil-1",
        "mqtt": {"host": "127.0.0.1"},
        "outbox": {"slot_size": 65535},
        "speed": 0,
        "streams": [
            {
                "name": "hil",
                "channels": len(f.channels),
                "window": f.window,
                "rate_hz": f.sample_rate_hz,
                "scales": list(f.scales),
                "source": {"kind": "replay", "path": INPUTS},
                "model": {"path": f"models/{subject.path.name}", "mean": list(f.mean), "std": list(f.std)},
            }
        ],
    }


def stage(subject: Subject, inputs: bytes, windows: int, staging: Path, mpy_arch: str | None = None) -> Plan:
    """Validate the configuration (plan() does) and list every file for the target, written under ``staging``."""
    config = staging / "config.json"
    config.write_text(json.dumps(board_config(subject), indent=1))
    result = plan(config, [subject.path], staging, mpy_arch)
    settings = staging / "hil.json"
    settings.write_text(json.dumps({"mode": subject.mode, "windows": windows, "inputs": INPUTS}))
    data = staging / INPUTS
    data.write_bytes(inputs)
    result.copies += [
        (SCRIPTS / "hil_frame.py", "/hil_frame.py"),
        (SCRIPTS / "hil_run.py", "/hil_run.py"),
        (settings, "/hil.json"),
        (data, "/" + INPUTS),
    ]
    return result
