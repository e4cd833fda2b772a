"""Protocol v1 codec: size and decode cost of the binary frame against its JSON form, in one process.

    .venv/bin/python bench/codec.py [--frames 2000]

The JSON form is the baseline: what a node without a binary encoder would send. Figures are ratios, with the
absolute numbers for context.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from edgegen.gateway.protocol import Encoding, Frame, decode, encode, from_json, to_json


def _per_second(fn: Callable[[], object], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000, help="decodes per measurement")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    values = rng.integers(-20_000, 20_000, size=(50, 3), dtype=np.int16)
    frame = Frame("node-1", 1, 1_700_000_000_000_000, 10_000, Encoding.INT16, values, (0.001,) * 3)
    binary = encode(frame)
    text = to_json(frame).encode()
    for _ in range(2):  # warm-up, then the measured round; interleaved so drift hits both alike
        json_rate = _per_second(lambda: from_json(text), args.frames)
        binary_rate = _per_second(lambda: decode(binary), args.frames)
    print("frame: 50 samples x 3 int16 channels")
    print(f"bytes   binary {len(binary):6d}   json {len(text):6d}   binary/json {len(binary) / len(text):.3f}")
    print(
        f"decode  binary {binary_rate:8.0f}/s   json {json_rate:8.0f}/s   "
        f"binary/json speed {binary_rate / json_rate:.1f}x"
    )


if __name__ == "__main__":
    main()
