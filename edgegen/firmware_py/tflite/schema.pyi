FLOAT32: int
FULLY_CONNECTED: int
CONV_2D: int
DEPTHWISE_CONV_2D: int
INT32: int
INT8: int
MAX_VERSION: dict[int, int]
OP_NAMES: dict[int, str]
TYPE_NAMES: dict[int, str]

def op_name(code: int) -> str: ...

class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: int
    size: int
    nbytes: int
    scales: list[int]
    zero_points: list[int]
    @property
    def scale(self) -> int: ...
    @property
    def zero_point(self) -> int: ...

class Op:
    index: int
    code: int
    version: int
    inputs: list[int]
    outputs: list[int]
    @property
    def name(self) -> str: ...

class Graph:
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]

def parse(buf: bytes | bytearray, check_ops: bool = ...) -> Graph: ...
