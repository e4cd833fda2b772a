"""Generative models as the gateway loads them: versioned by content, reloaded when their files change."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from edgegen.models.generative.model import GenModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    path: Path  # without suffix
    name: str
    version: str  # 12 hex digits of the sha256 of .tflite and .json: new weights or calibration, new version
    model: GenModel
    stamp: tuple[float, float, int, int]  # mtimes and sizes of .tflite and .json when loaded


def _stamp(path: Path) -> tuple[float, float, int, int]:
    a, b = path.with_suffix(".tflite").stat(), path.with_suffix(".json").stat()
    return (a.st_mtime, b.st_mtime, a.st_size, b.st_size)


def load(path: Path) -> LoadedModel:
    """Load a model (raises ``ArtifactError`` with the reason when it cannot be used)."""
    stamp = _stamp(path)
    model = GenModel.load(path)
    digest = hashlib.sha256(model.network.tflite)
    digest.update(path.with_suffix(".json").read_bytes())
    version = digest.hexdigest()[:12]
    return LoadedModel(path, path.name, version, model, stamp)


def stamp(path: Path) -> tuple[float, float, int, int] | None:
    """mtimes and sizes of the model's files (cheap enough for every few seconds); None while one is missing."""
    try:
        return _stamp(path)
    except OSError:
        return None
