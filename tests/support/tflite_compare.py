"""Run a .tflite model on random inputs in tflite-micro (the reference) and in the firmware interpreter."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tflite_micro.python.tflite_micro import runtime

from tests.support.micropython import run_micropython

MODELS = Path(__file__).resolve().parents[1] / "firmware" / "models"


@dataclass(frozen=True)
class Reference:
    inputs: npt.NDArray[Any]
    outputs: npt.NDArray[Any]
    output_scale: float  # one LSB of the output, in output units (1 for int8 outputs)


def random_inputs(model: bytes, n: int, seed: int) -> npt.NDArray[Any]:
    details = runtime.Interpreter.from_bytes(model).get_input_details(0)
    rng = np.random.default_rng(seed)
    if details["dtype"] == np.int8:
        return rng.integers(-128, 128, size=(n, *details["shape"]), dtype=np.int8)
    return rng.normal(0.0, 1.5, size=(n, *details["shape"])).astype(np.float32)


def reference(model: bytes, inputs: npt.NDArray[Any]) -> Reference:
    interpreter = runtime.Interpreter.from_bytes(model)
    outs = []
    for x in inputs:
        interpreter.set_input(x, 0)
        interpreter.invoke()
        outs.append(interpreter.get_output(0).reshape(-1).copy())
    details = interpreter.get_output_details(0)
    dtype_is_float = details["dtype"] == np.float32
    scale = 1.0
    if dtype_is_float:  # a DEQUANTIZE output: one LSB of the int8 tensor before it
        scale = _dequantize_scale(model)
    return Reference(inputs, np.array(outs), scale)


def _dequantize_scale(model: bytes) -> float:
    from ai_edge_litert import schema_py_generated as schema

    m = schema.ModelT.InitFromPackedBuf(model, 0)
    g = m.subgraphs[0]
    for op in g.operators:
        if m.operatorCodes[op.opcodeIndex].builtinCode == schema.BuiltinOperator.DEQUANTIZE:
            return float(g.tensors[op.inputs[0]].quantization.scale[0])
    raise ValueError("float output without a DEQUANTIZE op")


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


def lsb_diff(ours: npt.NDArray[Any], ref: Reference) -> npt.NDArray[np.float64]:
    """Per input, the largest difference in output LSBs."""
    diff = np.abs(ours.astype(np.float64) - ref.outputs.astype(np.float64)) / ref.output_scale
    result: npt.NDArray[np.float64] = np.round(diff.max(axis=1), 6)
    return result
