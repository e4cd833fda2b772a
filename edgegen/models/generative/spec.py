"""What a generative model is: its shapes, its classes, and the per-channel scaling it was trained in."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edgegen.models.errors import ArtifactError, EvaluationError

NORMAL = "normal"


@dataclass(frozen=True)
class GenSpec:
    """``context`` past steps in, ``horizon`` future steps out, per channel a Gaussian (mean, scale).

    ``classes[0]`` is the normal/unknown class; the others are failure modes the model was conditioned on.
    """

    channels: tuple[str, ...]
    classes: tuple[str, ...] = (NORMAL,)
    context: int = 16
    horizon: int = 10
    width: int = 64

    def __post_init__(self) -> None:
        if not self.channels:
            raise EvaluationError("a generative model needs at least one channel")
        if not self.classes or self.classes[0] != NORMAL:
            raise EvaluationError(f"classes must start with {NORMAL!r}, got {self.classes}")
        if self.context < 1 or self.horizon < 1 or self.width < 1:
            raise EvaluationError("context, horizon and width must be positive")

    def class_index(self, name: str) -> int:
        try:
            return self.classes.index(name)
        except ValueError:
            raise EvaluationError(f"unknown failure mode {name!r}: the model knows {list(self.classes)}") from None


@dataclass(frozen=True)
class Scaler:
    """Per-channel centre and scale; the model sees (x - centre) / scale. Channels with a ``floor`` (not None)
    are first mapped to log(x - floor): a positive, heavy-tailed quantity (a traded volume, a flow that spikes)
    gets a symmetric noise model, and samples can never cross the floor."""

    centre: tuple[float, ...]
    scale: tuple[float, ...]
    floor: tuple[float | None, ...] = ()

    @staticmethod
    def fit(values: npt.NDArray[np.float64], log_channels: tuple[int, ...] = ()) -> Scaler:
        """``log_channels``: indices to model in log space, their floor a little below the smallest value."""
        floors: list[float | None] = [None] * values.shape[1]
        for k in log_channels:
            column = values[:, k][np.isfinite(values[:, k])]
            spread = float(np.median(column - column.min())) if len(column) else 1.0
            floors[k] = float(column.min()) - max(0.05 * spread, 1e-9)
        values = _log(values, tuple(floors))
        finite = np.where(np.isfinite(values), values, np.nan)
        centre = np.nanmean(finite, axis=0)
        scale = np.nanstd(finite, axis=0)
        # a channel constant over the training part: unit scale, so a later change shows in its own units
        tiny = ~(scale > 1e-9 * np.maximum(1.0, np.abs(centre)))
        scale = np.where(tiny, 1.0, scale)
        centre = np.where(np.isfinite(centre), centre, 0.0)
        return Scaler(tuple(float(c) for c in centre), tuple(float(s) for s in scale), tuple(floors))

    def forward(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        logged = _log(values, self.floor)
        return np.asarray((logged - np.asarray(self.centre)) / np.asarray(self.scale), dtype=np.float64)

    def inverse(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        out = np.asarray(values * np.asarray(self.scale) + np.asarray(self.centre), dtype=np.float64)
        for k, floor in enumerate(self.floor):
            if floor is not None:
                out[..., k] = np.exp(out[..., k]) + floor
        return out


def _log(values: npt.NDArray[np.float64], floors: tuple[float | None, ...]) -> npt.NDArray[np.float64]:
    if not any(f is not None for f in floors):
        return values
    out = np.array(values, dtype=np.float64)
    for k, floor in enumerate(floors):
        if floor is not None:  # a value at or below the floor (unseen in training) maps to the lowest log seen
            out[..., k] = np.log(np.maximum(out[..., k] - floor, 1e-12))
    return out


def spec_to_json(spec: GenSpec) -> dict[str, Any]:
    return asdict(spec)


def spec_from_json(doc: dict[str, Any]) -> GenSpec:
    try:
        return GenSpec(
            channels=tuple(doc["channels"]),
            classes=tuple(doc["classes"]),
            context=int(doc["context"]),
            horizon=int(doc["horizon"]),
            width=int(doc["width"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"generative model spec: {exc!r} in {json.dumps(doc)[:200]}") from exc
