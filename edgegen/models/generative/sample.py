"""Synthetic series from the generative model: ancestral sampling, one step at a time, conditioned on a
failure mode, with channel noise correlated as in the training residuals of that mode.

Every series is a batch row, so n series of length T cost T network calls.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edgegen.models.blas import matmul
from edgegen.models.errors import EvaluationError
from edgegen.models.generative.model import GenModel
from edgegen.models.generative.windows import Batch, one_hot

F64 = npt.NDArray[np.float64]
CLIP = 8.0  # noise draws beyond this many sigmas are sampling accidents
STATE_LIMIT = 25.0  # scaled units: a path this far from the training mean has run away, not found a failure


def sample(
    model: GenModel,
    mode: str,
    n: int,
    length: int,
    *,
    seed: int = 0,
    context: F64 | None = None,
    temperature: float = 1.0,
) -> F64:
    """``n`` series of ``length`` steps in data units, (n, length, channels). ``context`` (steps, channels),
    data units: every series continues from it (its last ``spec.context`` rows); otherwise each starts at a
    draw from the mode's start mixture and the network takes over from the second step."""
    spec = model.spec
    label = spec.class_index(mode)
    c, span = len(spec.channels), spec.context
    if n < 1 or length < 1:
        raise EvaluationError(f"need n >= 1 and length >= 1, got n={n}, length={length}")
    rng = np.random.default_rng(seed)
    factor = np.asarray(model.noise.get(mode, model.noise.get(spec.classes[0], np.eye(c).tolist())))
    window = np.zeros((n, span, c), dtype=np.float32)
    visible = 0
    begin = 0  # 1 when the first step comes from the start mixture
    if context is not None:
        if context.ndim != 2 or context.shape[1] != c:
            raise EvaluationError(f"context must be (steps, {c}), got {context.shape}")
        tail = model.scaler.forward(np.asarray(context, dtype=np.float64))[-span:]
        visible = len(tail)
        window[:, span - visible :] = tail.astype(np.float32)
    else:
        mixture = model.starts.get(mode) or model.starts.get(spec.classes[0])
        if mixture:
            pick = rng.choice(len(mixture["weights"]), size=n, p=np.asarray(mixture["weights"]))
            eps = rng.standard_normal((n, c, 1))
            first = np.asarray(mixture["means"])[pick] + matmul(np.asarray(mixture["factors"])[pick], eps)[..., 0]
            window[:, -1] = first.astype(np.float32)
            visible = 1
            begin = 1
    cond = one_hot(np.full(n, label, dtype=np.int64), len(spec.classes))
    out = np.empty((n, length, c), dtype=np.float64)
    if begin:
        out[:, 0] = window[:, -1]
    for t in range(begin, length):
        mask = np.zeros((n, span), dtype=np.float32)
        if visible:
            mask[:, span - visible :] = 1.0
        f = model.network(Batch(window.reshape(n, span * c), mask, cond))
        eps = matmul(rng.standard_normal((n, c)), factor.T) * temperature
        step = np.clip(f.mean[:, 0, :] + f.scale[:, 0, :] * np.clip(eps, -CLIP, CLIP), -STATE_LIMIT, STATE_LIMIT)
        out[:, t] = step
        window = np.concatenate([window[:, 1:], step[:, None, :].astype(np.float32)], axis=1)
        visible = min(span, visible + 1)
    return model.scaler.inverse(out)
