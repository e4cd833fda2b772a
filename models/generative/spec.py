"""What a generative model is: its shapes, its classes, and the per-channel scaling it was trained in."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from models.errors import ArtifactError, EvaluationError

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
    """Per-channel centre and scale; the model sees (x - centre) / scale."""

    centre: tuple[float, ...]
    scale: tuple[float, ...]

    @staticmethod
    def fit(values: npt.NDArray[np.float64]) -> Scaler:
        finite = np.where(np.isfinite(values), values, np.nan)
        centre = np.nanmean(finite, axis=0)
        scale = np.nanstd(finite, axis=0)
        # a channel constant over the training part: unit scale, so a later change shows in its own units
        tiny = ~(scale > 1e-9 * np.maximum(1.0, np.abs(centre)))
        scale = np.where(tiny, 1.0, scale)
        centre = np.where(np.isfinite(centre), centre, 0.0)
        return Scaler(tuple(float(c) for c in centre), tuple(float(s) for s in scale))

    def forward(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray((values - np.asarray(self.centre)) / np.asarray(self.scale), dtype=np.float64)

    def inverse(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray(values * np.asarray(self.scale) + np.asarray(self.centre), dtype=np.float64)


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
