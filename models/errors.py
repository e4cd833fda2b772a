"""The models package's error root."""

from __future__ import annotations


class ModelsError(Exception):
    retryable: bool = False


class DataError(ModelsError):
    """A data set cannot be read as asked: a missing file, an unexpected layout, no numeric columns."""


class ArtifactError(ModelsError):
    """A model artifact is malformed, or fails its signature, size or hash check."""


class TrainingUnavailable(ModelsError):
    """Training needs TensorFlow: pip install 'edgegen[train]'."""
