"""Run a .tflite model on random inputs in tflite-micro (the reference, hil.golden) and in the firmware
interpreter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgegen.hil.golden import Reference, lsb_diff, random_inputs, reference
from tests.support.micropython import run_micropython

__all__ = ["MODELS", "Reference", "lsb_diff", "random_inputs", "reference", "run_firmware"]

MODELS = Path(__file__).resolve().parents[1] / "firmware" / "models"


def run_firmware(
    model_path: Path, inputs: npt.NDArray[Any], out_dtype: Any, kernels: str, tmp: Path
) -> tuple[npt.NDArray[Any], dict[str, Any]]:
    """The firmware interpreter under MicroPython over ``inputs``: its outputs and run info."""
    src = tmp / "inputs.bin"
    dst = tmp / "outputs.bin"
    inputs.tofile(src)
    info: dict[str, Any] = json.loads(
        run_micropython("tflite_run.py", str(model_path), str(src), str(dst), kernels)
    )
    return np.fromfile(dst, dtype=out_dtype).reshape(len(inputs), -1), info
