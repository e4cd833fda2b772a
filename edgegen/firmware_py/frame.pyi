# Typed interface of edgegen/firmware_py/frame.py for CPython callers (the device code itself carries no hints).
from typing import Any

MAGIC: bytes
VERSION: int
HEADER_SIZE: int
CRC_SIZE: int
SAMPLES: int
EMBEDDING: int
INT16: int
INT8: int
FLOAT32: int
FLAG_EVENT: int

def typecode(encoding: int) -> str: ...

class FrameEncoder:
    encoding: int
    n_values: int
    payload_len: int
    payload_at: int
    body_len: int
    size: int
    frame: memoryview
    def __init__(
        self,
        node_id: str,
        n_samples: int,
        n_channels: int,
        period_us: int,
        encoding: int = ...,
        scales: list[float] | tuple[float, ...] | None = ...,
        zero_point: int = ...,
        msg_type: int = ...,
    ) -> None: ...
    def encode(self, seq: int, t0_us: int, samples: Any, flags: int = ...) -> memoryview: ...

def decode(buf: bytes | bytearray | memoryview) -> dict[str, Any]: ...
