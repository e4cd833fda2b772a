"""What the target is fed and what the golden run gets, from the same raw windows.

Embedder mode: the target gets the raw int16 windows and quantizes them itself (firmware_py.embedding); the
golden inputs are that same quantization run here, on CPython -- the firmware's own code, not a re-derivation.
Interpreter mode (float models): the host normalises, (count x scale - mean) / std, and both get those floats.
"""

from __future__ import annotations

from array import array
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from edgegen.firmware_py.embedding import WindowModel
from edgegen.firmware_py.tflite.interpreter import Interpreter
from edgegen.hil.subject import Subject


class _Skip:
    """Stands in for the interpreter: only WindowModel's quantization is wanted here."""

    def run(self, inp: Any, out: Any) -> None:
        pass


def model_inputs(subject: Subject, counts: npt.NDArray[np.int16]) -> npt.NDArray[Any]:
    """The model's input for each window, shaped as its input tensor."""
    interp = Interpreter(subject.data, use_viper=False)
    shape = (len(counts), *interp.input.shape)
    f = subject.features
    if subject.mode == "interpreter":
        x = counts.astype(np.float64) * np.asarray(f.scales)
        floats: npt.NDArray[np.float32] = ((x - np.asarray(f.mean)) / np.asarray(f.std)).astype(np.float32)
        return floats.reshape(shape)
    wm = WindowModel(interp, f.window, len(f.channels), f.scales, f.mean, f.std)
    wm.model = cast(Interpreter, _Skip())
    out = np.empty((len(counts), interp.input_size), dtype=np.int8)
    for i, window in enumerate(counts):
        wm.run(array("h", window.tobytes()))
        out[i] = np.frombuffer(wm.inp, dtype=np.int8)
    return out.reshape(shape)


def target_bytes(subject: Subject, counts: npt.NDArray[np.int16], inputs: npt.NDArray[Any]) -> bytes:
    """The inputs file for the target: raw little-endian int16 windows, or the model inputs themselves."""
    if subject.mode == "embedder":
        return counts.astype("<i2").tobytes()
    return inputs.astype("<f4").tobytes()
