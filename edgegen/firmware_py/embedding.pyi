from array import array
from collections.abc import Sequence
from typing import Any

from edgegen.firmware_py.frame import FrameEncoder
from edgegen.firmware_py.tflite.interpreter import Interpreter

class WindowModel:
    model: Interpreter
    n_channels: int
    inp: array[int]
    out: array[int]
    last_us: int | None
    def __init__(
        self,
        interpreter: Interpreter,
        n_samples: int,
        n_channels: int,
        scales: Sequence[float],
        mean: Sequence[float] | None = ...,
        std: Sequence[float] | None = ...,
    ) -> None: ...
    def run(self, samples: Any) -> None: ...

class Embedder(WindowModel):
    encoder: FrameEncoder
    def __init__(
        self,
        interpreter: Interpreter,
        node_id: str,
        n_samples: int,
        n_channels: int,
        period_us: int,
        scales: Sequence[float],
        mean: Sequence[float] | None = ...,
        std: Sequence[float] | None = ...,
    ) -> None: ...
    def embed(self, seq: int, t0_us: int, samples: Any) -> memoryview: ...

class Prescorer(WindowModel):
    threshold_q: int
    quantile: float
    calibrating: int
    fired: int
    def __init__(
        self,
        interpreter: Interpreter,
        n_samples: int,
        n_channels: int,
        scales: Sequence[float],
        threshold: float,
        mean: Sequence[float] | None = ...,
        std: Sequence[float] | None = ...,
        calibrate: int = ...,
        quantile: float = ...,
    ) -> None: ...
    def fires(self, samples: Any) -> bool: ...
