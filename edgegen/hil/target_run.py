"""The target's records put back together: outputs, per-window times and input CRCs, load and done figures.
A record missing (a line lost on the link) is an IncompleteRecords error: worth running again."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edgegen.hil.errors import IncompleteRecords, TargetError


@dataclass(frozen=True)
class TargetRun:
    load: dict[str, Any]  # firmware, sha256, mode, kernels, model_bytes, heap_after_load, arena, ...
    done: dict[str, Any]  # windows, alloc_max, alloc_total, mem_free_low, heap_total
    outputs: npt.NDArray[Any]  # (windows, output values)
    us: npt.NDArray[np.int64]  # per window: the whole call (Embedder.embed or Interpreter.run)
    model_us: npt.NDArray[np.int64]  # per window: Interpreter.run alone
    input_crcs: list[int]  # CRC-32 of each window's model input, as the target computed it


def assemble(records: list[dict[str, Any]], out_dtype: Any, out_size: int) -> TargetRun:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_kind.setdefault(str(r.get("k")), []).append(r)
    for kind in ("load", "done"):
        if len(by_kind.get(kind, [])) != 1:
            raise IncompleteRecords(f"expected one {kind!r} record, got {len(by_kind.get(kind, []))}")
    load, done = by_kind["load"][0], by_kind["done"][0]
    n = int(done["windows"])
    if n == 0:
        raise TargetError("the target ran no windows (an empty or short inputs file)")
    width = np.dtype(out_dtype).itemsize * out_size
    raw = _joined(by_kind.get("out", []), n, lambda r: base64.b64decode(r["b64"]), width)
    us = _joined(by_kind.get("us", []), n, lambda r: r["v"], 1)
    model_us = _joined(by_kind.get("us", []), n, lambda r: r["model"], 1)
    crcs = _joined(by_kind.get("crc", []), n, lambda r: r["v"], 1)
    outputs = np.frombuffer(bytes(raw), dtype=out_dtype).reshape(n, out_size)
    return TargetRun(load, done, outputs, np.array(us, dtype=np.int64), np.array(model_us, dtype=np.int64), crcs)


def _joined(chunks: list[dict[str, Any]], n: int, values: Any, per_window: int) -> Any:
    """Chunks (each with its first window "i") joined in order; every window exactly once."""
    out: Any = None
    expected = 0
    for chunk in sorted(chunks, key=lambda r: int(r["i"])):
        if int(chunk["i"]) != expected:
            raise IncompleteRecords(f"records for windows {expected}..{int(chunk['i']) - 1} are missing")
        part = values(chunk)
        out = part if out is None else out + part
        expected += len(part) // per_window
    if expected != n:
        raise IncompleteRecords(f"records for {expected} of {n} windows")
    return out
