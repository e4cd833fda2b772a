"""Regenerate tests/golden/frames_v1.json from the reference codec.

Run only when protocol v1 changes on purpose (it must not, once released): the file is the contract that the
reference codec and the MicroPython encoder are both held to. Review the diff byte by byte.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgegen.gateway.protocol import Encoding, Flag, Frame, MessageType, encode

VECTORS: list[dict[str, Any]] = [
    {
        "name": "int16-2ch-3samples",
        "node": "node-01",
        "seq": 7,
        "t0_us": 1_700_000_000_000_000,
        "period_us": 10_000,
        "encoding": "int16",
        "scales": [0.01, 0.5],
        "values": [[1, -2], [300, 4], [-32768, 32767]],
    },
    {
        "name": "int16-1x1-zero-time",
        "node": "a",
        "seq": 0,
        "t0_us": 0,
        "period_us": 1,
        "encoding": "int16",
        "scales": [1.0],
        "values": [[-1]],
    },
    {
        "name": "int16-event-4ch",
        "node": "pump-7.site_b",
        "seq": 65_536,
        "t0_us": 1_732_000_000_123_456,
        "period_us": 1_000,
        "encoding": "int16",
        "scales": [0.001, 0.25, 2.0, 1e-05],
        "flags": int(Flag.EVENT),
        "values": [[i * 1000 - 8000 + c for c in range(4)] for i in range(4)],
    },
    {
        "name": "int8-embedding",
        "node": "n2",
        "seq": 123_456,
        "t0_us": 1_700_000_001_000_000,
        "period_us": 1_000_000,
        "type": "embedding",
        "encoding": "int8",
        "scales": [0.05],
        "zero_point": -3,
        "values": [[-128, -3, 0, 1, 2, 64, 100, 127]],
    },
    {
        "name": "float32-max-seq-before-epoch",
        "node": "x" * 64,
        "seq": 4_294_967_295,
        "t0_us": -1_000_000,
        "period_us": 4_294_967_295,
        "encoding": "float32",
        "values": [[0.1, -2.5, 3.4028234663852886e38], [1e-45, -0.0, 1234.5677]],
    },
]


def frame_of(vector: dict[str, Any]) -> Frame:
    encoding = Encoding[vector["encoding"].upper()]
    dtype = np.float32 if encoding is Encoding.FLOAT32 else np.int64
    return Frame(
        node_id=vector["node"],
        seq=vector["seq"],
        t0_us=vector["t0_us"],
        period_us=vector["period_us"],
        encoding=encoding,
        values=np.asarray(vector["values"], dtype=dtype),
        scales=tuple(vector.get("scales", ())),
        zero_point=vector.get("zero_point", 0),
        msg_type=MessageType[vector.get("type", "samples").upper()],
        flags=vector.get("flags", 0),
    )


def main() -> None:
    out = []
    for vector in VECTORS:
        frame = frame_of(vector)
        out.append({**vector, "hex": encode(frame).hex()})
    path = Path(__file__).with_name("frames_v1.json")
    # One vector per line: diffs of this file show exactly which vector changed.
    path.write_text("[\n" + ",\n".join(json.dumps(vector) for vector in out) + "\n]\n")
    print(f"wrote {len(out)} vectors to {path}")


if __name__ == "__main__":
    main()
