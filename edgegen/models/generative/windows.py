"""Training and scoring inputs: a context of past steps (zeros where masked), its mask, and the class one-hot.

Partial contexts are first-class: the first steps of a series are scored with what exists, and generation starts
from an empty context, so one network gives the start distribution, the one-step conditional and the H-step
forecast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgegen.models.generative.spec import GenSpec

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Batch:
    context: F32  # (n, context * channels)
    mask: F32  # (n, context): 1 where the step exists
    condition: F32  # (n, classes)

    def __len__(self) -> int:
        return len(self.context)


def one_hot(labels: npt.NDArray[np.int64], classes: int) -> F32:
    out = np.zeros((len(labels), classes), dtype=np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    return out


def contexts(spec: GenSpec, z: npt.NDArray[np.float64], ends: npt.NDArray[np.int64]) -> tuple[F32, F32]:
    """The context ending just before each index in ``ends`` (rows ``end - context .. end - 1``), left-masked
    where the series has not started."""
    n, c = z.shape
    span = spec.context
    padded = np.zeros((n + span, c), dtype=np.float32)
    padded[span:] = z
    idx = ends[:, None] + np.arange(span)[None, :]  # padded row end+k is series row end-span+k
    ctx = padded[idx].reshape(len(ends), span * c)
    mask = ((ends[:, None] - span + np.arange(span)[None, :]) >= 0).astype(np.float32)
    return ctx, mask


def training_windows(
    spec: GenSpec,
    segments: list[tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]],
    rng: np.random.Generator,
    drop: float = 0.25,
) -> tuple[Batch, F32]:
    """Every (context, next ``horizon`` steps) pair of every segment, plus a copy of a ``drop`` share with the
    context cut short at random (so the network also learns short and empty contexts)."""
    ctxs, masks, conds, targets = [], [], [], []
    for z, labels in segments:
        n = len(z)
        if n <= spec.horizon:
            continue
        ends = np.arange(0, n - spec.horizon + 1, dtype=np.int64)
        ctx, mask = contexts(spec, z, ends)
        tgt = np.stack([z[e : e + spec.horizon] for e in ends]).reshape(len(ends), -1).astype(np.float32)
        ctxs.append(ctx)
        masks.append(mask)
        conds.append(labels[ends])
        targets.append(tgt)
    ctx = np.concatenate(ctxs)
    mask = np.concatenate(masks)
    cond = np.concatenate(conds)
    tgt = np.concatenate(targets)
    pick = np.flatnonzero(rng.random(len(ctx)) < drop)
    keep = rng.integers(0, spec.context, size=len(pick))  # visible steps: 0 .. context-1
    cut_mask = mask[pick].copy()
    for row, k in enumerate(keep):
        cut_mask[row, : spec.context - k] = 0.0
    cut_ctx = ctx[pick] * np.repeat(cut_mask, len(spec.channels), axis=1)
    batch = Batch(
        np.concatenate([ctx, cut_ctx]),
        np.concatenate([mask, cut_mask]),
        one_hot(np.concatenate([cond, cond[pick]]), len(spec.classes)),
    )
    return batch, np.concatenate([tgt, tgt[pick]])
