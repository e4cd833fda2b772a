"""Storage records for tests: frames of every encoding and derived points, built in one line each."""

from __future__ import annotations

import numpy as np

from edgegen.gateway.protocol import Encoding, Frame, MessageType
from edgegen.gateway.storage.records import Derived, Point, Record


def record(
    node: str = "n1",
    seq: int = 0,
    t0_us: int = 1_700_000_000_000_000,
    values: list[list[int]] | None = None,
    site: str = "s1",
    stream: str = "vib",
) -> Record:
    raw = np.asarray(values if values is not None else [[1, 2], [3, 4]], dtype=np.int64)
    frame = Frame(node, seq, t0_us, 1000, Encoding.INT16, raw, (0.5, 0.25))
    return Record.of(site, stream, frame)


def float_record(values: list[list[float]], node: str = "n1", t0_us: int = 0) -> Record:
    frame = Frame(node, 0, t0_us, 10, Encoding.FLOAT32, np.asarray(values, dtype=np.float32))
    return Record.of("s1", "raw", frame)


def embedding_record() -> Record:
    frame = Frame(
        "n1",
        5,
        2_000_000,
        1_000_000,
        Encoding.INT8,
        np.asarray([[-128, 0, 127]]),
        (0.5,),
        -1,
        MessageType.EMBEDDING,
    )
    return Record.of("s1", "emb", frame)


def scores(version: str, ts_us: int = 1_700_000_000_000_000, score: float = 0.5) -> Derived:
    """A model-output record as the analytics engine makes it."""
    tags = (
        ("model", "skab"),
        ("model_version", version),
        ("node", "n1"),
        ("site", "s1"),
        ("stream", "vib"),
    )
    return Derived("s1", "n1", "vib", (Point("scores", tags, (("score", score), ("flag", 0.0)), ts_us),))
