"""Golden outputs from tflite-micro (the reference interpreter) on the host, and how far another run is from
them, in output LSBs. Shared by `edgegen hil run` and the firmware interpreter's tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edgegen.hil.errors import HilError


class ReferenceUnavailable(HilError):
    """tflite-micro is not installed: pip install 'edgegen[hil]' (it publishes x86-64 Linux wheels only)."""


def _interpreter(model: bytes) -> Any:
    """tflite-micro's interpreter for ``model``; imported here, so the rest of hil works without it."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as exc:
        raise ReferenceUnavailable(
            f"the golden reference needs tflite-micro ({exc}): pip install 'edgegen[hil]' (x86-64 Linux wheels)"
        ) from None
    return runtime.Interpreter.from_bytes(model)


@dataclass(frozen=True)
class Reference:
    inputs: npt.NDArray[Any]
    outputs: npt.NDArray[Any]  # (inputs, output values), flattened per input
    output_scale: float  # one LSB of the output, in output units (1 for int8 outputs)


@dataclass(frozen=True)
class Comparison:
    max_diff: float  # the largest difference of any output, in LSBs
    bit_exact_share: float  # share of inputs whose every output is bit-exact
    over_one: int  # inputs with some output more than 1 LSB off

    @property
    def passed(self) -> bool:
        return self.over_one == 0


def random_inputs(model: bytes, n: int, seed: int) -> npt.NDArray[Any]:
    details = _interpreter(model).get_input_details(0)
    rng = np.random.default_rng(seed)
    if details["dtype"] == np.int8:
        return rng.integers(-128, 128, size=(n, *details["shape"]), dtype=np.int8)
    return rng.normal(0.0, 1.5, size=(n, *details["shape"])).astype(np.float32)


def reference(model: bytes, inputs: npt.NDArray[Any]) -> Reference:
    """tflite-micro's outputs for each input (each shaped as the model's input tensor)."""
    interpreter = _interpreter(model)
    outs = []
    for x in inputs:
        interpreter.set_input(x, 0)
        interpreter.invoke()
        outs.append(interpreter.get_output(0).reshape(-1).copy())
    details = interpreter.get_output_details(0)
    scale = 1.0
    if details["dtype"] == np.float32:  # a DEQUANTIZE output: one LSB of the int8 tensor before it
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


def lsb_diff(ours: npt.NDArray[Any], ref: Reference) -> npt.NDArray[np.float64]:
    """Per input, the largest difference in output LSBs."""
    diff = np.abs(ours.astype(np.float64) - ref.outputs.astype(np.float64)) / ref.output_scale
    result: npt.NDArray[np.float64] = np.round(diff.max(axis=1), 6)
    return result


def compare(ours: npt.NDArray[Any], ref: Reference) -> Comparison:
    diff = lsb_diff(ours, ref)
    return Comparison(float(diff.max()), float(np.mean(diff == 0)), int(np.sum(diff > 1.0)))
