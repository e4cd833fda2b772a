from array import array
from collections.abc import Sequence
from typing import Any, Protocol

from edgegen.firmware_py.embedding import Embedder, Prescorer
from edgegen.firmware_py.frame import FrameEncoder

QOS_DATA: int
SEQ_MASK: int

class Link(Protocol):
    def publish(self, topic: bytes, payload: memoryview, qos: int) -> None: ...

class Source(Protocol):
    n_samples: int
    n_channels: int
    period_us: int
    def read(self, samples: Any) -> int | None: ...

class StreamNode:
    topic: bytes
    source: Source
    link: Link
    encoder: FrameEncoder
    samples: array[Any]
    seq: int
    frames_sent: int
    def __init__(
        self,
        site: str,
        node_id: str,
        stream: str,
        source: Source,
        link: Link,
        encoder: FrameEncoder,
        first_seq: int = ...,
        filters: Sequence[tuple[Any, int]] = ...,
        embedder: Embedder | None = ...,
        send_raw: bool = ...,
        prescorer: Prescorer | None = ...,
    ) -> None: ...
    def step(self, flags: int = ...) -> bool: ...
