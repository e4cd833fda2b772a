"""`edgegen firmware deploy`: the plan, config validation before copying, and a deployed tree that boots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgegen.hil.deploy import firmware_files
from edgegen.hil.latency import FIRMWARE_HOME
from edgegen.hil.package_json import package_json
from tests.support.collector import Collector
from tests.support.native import micropython_binary
from tests.support.servers import Mosquitto

EDGEGEN = [sys.executable, "-m", "edgegen.cli"]

FAKE_MPREMOTE = '''#!{python}
"""A stand-in for mpremote: the board's filesystem is the directory in $FAKE_BOARD_ROOT."""
import os, shutil, sys
root = os.environ["FAKE_BOARD_ROOT"]
args = sys.argv[1:]
with open(os.path.join(root, "..", "mpremote.log"), "a") as log:
    log.write(" ".join(args) + "\\n")
assert args[0] == "connect"
if args[2:4] == ["fs", "mkdir"]:
    path = root + args[4][1:]
    if os.path.isdir(path):
        sys.exit("mpremote: mkdir: EEXIST")
    os.mkdir(path)
elif args[2:4] == ["fs", "cp"]:
    shutil.copy(args[4], root + args[5][1:])
elif args[2] != "reset":
    sys.exit("unexpected: " + " ".join(args))
'''


def _config(tmp: Path, **mqtt: object) -> Path:
    cfg = {
        "site": "board",
        "node_id": "dev-1",
        "mqtt": {"host": "127.0.0.1", "port": 1883, **mqtt},
        "streams": [
            {"name": "vib", "channels": 2, "window": 25, "source": {"kind": "replay", "path": "samples.bin"}}
        ],
        "speed": 0,
    }
    path = tmp / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def _edgegen(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EDGEGEN_")}
    return subprocess.run(
        [*EDGEGEN, *args], capture_output=True, text=True, timeout=120, check=False, env={**clean, **(env or {})}
    )


@pytest.mark.slow
def test_dry_run_prints_the_exact_mpremote_commands(tmp_path: Path) -> None:
    config = _config(tmp_path)
    result = _edgegen("firmware", "deploy", "--port", "/dev/ttyACM0", "--config", str(config), "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    files = firmware_files()
    assert lines[:6] == [
        "mpremote connect /dev/ttyACM0 fs mkdir :/lib",
        "mpremote connect /dev/ttyACM0 fs mkdir :/models",
        "mpremote connect /dev/ttyACM0 fs mkdir :/lib/firmware_py",
        "mpremote connect /dev/ttyACM0 fs mkdir :/lib/firmware_py/dsp",
        "mpremote connect /dev/ttyACM0 fs mkdir :/lib/firmware_py/sensors",
        "mpremote connect /dev/ttyACM0 fs mkdir :/lib/firmware_py/tflite",
    ]
    copies = [line.split()[-1] for line in lines if " fs cp " in line]
    assert copies == [f":/lib/firmware_py/{f.as_posix()}" for f in files] + [":/config.json", ":/main.py"]
    assert lines[-1] == "mpremote connect /dev/ttyACM0 reset"


@pytest.mark.slow
def test_bad_config_is_refused_before_anything_is_copied(tmp_path: Path) -> None:
    config = _config(tmp_path, port=0)
    result = _edgegen("firmware", "deploy", "--port", "/dev/ttyACM0", "--config", str(config), "--dry-run")
    assert result.returncode == 1
    assert result.stderr == f"error: {config}: mqtt.port: expected an integer in 1..65535, got 0\n"


@pytest.mark.slow
def test_mpy_compilation_for_the_board_architecture(tmp_path: Path) -> None:
    config = _config(tmp_path)
    result = _edgegen(
        "firmware", "deploy", "--port", "COM3", "--config", str(config), "--mpy", "armv6m", "--dry-run"
    )
    assert result.returncode == 0, result.stderr
    copies = [line.split()[-1] for line in result.stdout.splitlines() if " fs cp " in line]
    assert all(c.endswith(".mpy") for c in copies[:-2])
    assert ":/lib/firmware_py/tflite/kernels_viper.mpy" in copies


def test_package_json_lists_every_firmware_module() -> None:
    assert (FIRMWARE_HOME / "firmware_py" / "package.json").read_text() == package_json()


@pytest.mark.slow
@pytest.mark.micropython
@pytest.mark.mosquitto
def test_a_deployed_tree_boots_and_publishes(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Deploy through a stand-in mpremote into a directory, then boot that directory as the board's flash with
    the MicroPython unix port: main.py runs the node from config.json and publishes the replayed samples."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "mpremote"
    fake.write_text(FAKE_MPREMOTE.format(python=sys.executable))
    fake.chmod(0o755)
    flash = tmp_path / "flash"
    flash.mkdir()
    config = _config(tmp_path, port=mosquitto.port)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_BOARD_ROOT": str(flash)}
    result = _edgegen("firmware", "deploy", "--port", "fake", "--config", str(config), env=env)
    assert result.returncode == 0, result.stderr
    samples = (np.arange(25 * 2 * 4, dtype="<i2") - 100).tobytes()  # 4 windows of 25 samples x 2 channels
    (flash / "samples.bin").write_bytes(samples)
    topic = "edgegen/v1/board/dev-1/data/vib"
    with Collector(mosquitto.url, topic, "c-deploy") as sub:
        boot = subprocess.run(
            [micropython_binary(), "main.py"],
            cwd=flash,
            capture_output=True,
            text=True,
            timeout=60,
            env={"MICROPYPATH": f".frozen:{flash / 'lib'}", "PATH": "/usr/bin:/bin"},
            check=False,
        )
        assert boot.returncode == 0, boot.stderr
        got = sub.wait_for(topic, 4)
    from edgegen.gateway.protocol import decode

    frames = [decode(m.payload) for m in got]
    assert [f.seq for f in frames] == [0, 1, 2, 3]
    assert np.concatenate([f.values.reshape(-1) for f in frames]).tobytes() == samples
