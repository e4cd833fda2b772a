"""The trained network at the gateway: ai-edge-litert, batched, one thread.

Each row of a batch is computed independently of the others (XNNPACK's float kernels accumulate every row in
the same order), so a series scored in one batch and point by point gives bit-identical outputs; the
``test_generative`` suite checks that on every build.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edgegen.models.errors import ArtifactError
from edgegen.models.generative.spec import GenSpec
from edgegen.models.generative.windows import Batch

F32 = npt.NDArray[np.float32]
OUTPUTS = {"output_0": "mean", "output_1": "scale"}


@dataclass(frozen=True)
class Forecast:
    mean: F32  # (n, horizon, channels), scaled units
    scale: F32


class Network:
    """Runs the exported network on batches of any size (chunks of ``chunk`` rows, one interpreter per size)."""

    def __init__(self, spec: GenSpec, tflite: bytes, chunk: int = 512) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.spec = spec
        self.tflite = tflite
        self.chunk = chunk
        self._interpreters: dict[int, tuple[Any, dict[str, int], dict[str, int]]] = {}
        try:
            probe = Interpreter(model_content=tflite)
            signature = probe.get_signature_list()["serving_default"]
            runner = probe.get_signature_runner("serving_default")
            self._inputs = {name: d["index"] for name, d in runner.get_input_details().items()}
            self._outputs = {OUTPUTS.get(n, n): d["index"] for n, d in runner.get_output_details().items()}
        except (ValueError, RuntimeError, KeyError) as exc:
            raise ArtifactError(f"generative model: not a loadable TFLite model ({exc})") from exc
        # Keras names a model's list outputs output_0, output_1 in the order build() returns them
        if sorted(signature["inputs"]) != ["condition", "context", "mask"] or sorted(signature["outputs"]) != [
            *OUTPUTS
        ]:
            raise ArtifactError(f"generative model: unexpected signature {signature}")
        self._Interpreter = Interpreter

    def _interpreter(self, rows: int) -> tuple[Any, dict[str, int], dict[str, int]]:
        cached = self._interpreters.get(rows)
        if cached is not None:
            return cached
        interp = self._Interpreter(model_content=self.tflite, num_threads=1)
        inputs, outputs = self._inputs, self._outputs
        for name, index in inputs.items():
            width = {
                "context": self.spec.context * len(self.spec.channels),
                "mask": self.spec.context,
                "condition": len(self.spec.classes),
            }[name]
            interp.resize_tensor_input(index, [rows, width])
        interp.allocate_tensors()
        self._interpreters[rows] = (interp, inputs, outputs)
        return self._interpreters[rows]

    def __call__(self, batch: Batch) -> Forecast:
        n = len(batch)
        h, c = self.spec.horizon, len(self.spec.channels)
        mean = np.empty((n, h * c), dtype=np.float32)
        scale = np.empty((n, h * c), dtype=np.float32)
        start = 0
        while start < n:
            rows = min(self.chunk, n - start)
            interp, inputs, outputs = self._interpreter(rows)
            stop = start + rows
            interp.set_tensor(inputs["context"], np.ascontiguousarray(batch.context[start:stop], np.float32))
            interp.set_tensor(inputs["mask"], np.ascontiguousarray(batch.mask[start:stop], np.float32))
            interp.set_tensor(inputs["condition"], np.ascontiguousarray(batch.condition[start:stop], np.float32))
            interp.invoke()
            mean[start:stop] = interp.get_tensor(outputs["mean"])
            scale[start:stop] = interp.get_tensor(outputs["scale"])
            start = stop
        return Forecast(mean.reshape(n, h, c), scale.reshape(n, h, c))
