from typing import Any

from edgegen.firmware_py.tflite.schema import Graph, Tensor

class Interpreter:
    model: bytes | bytearray
    graph: Graph
    kernels: str
    arena_bytes: int
    input: Tensor
    output: Tensor
    def __init__(self, model: bytes | bytearray, use_viper: bool | None = ...) -> None: ...
    @property
    def input_size(self) -> int: ...
    @property
    def output_size(self) -> int: ...
    def run(self, inp: Any, out: Any) -> None: ...
