"""The models package's error root."""

from __future__ import annotations

from edgegen.errors import EdgegenError


class ModelsError(EdgegenError):
    """Root of every error raised by the models package."""


class DataError(ModelsError):
    """A data set cannot be read as asked: a missing file, an unexpected layout, no numeric columns."""


class ArtifactError(ModelsError):
    """A model artifact is malformed, or fails its signature, size or hash check."""


class TrainingUnavailable(ModelsError):
    """Training needs TensorFlow: pip install 'edgegen[train]'."""


class EvaluationError(ModelsError):
    """An evaluation cannot run on what it was given: mismatched shapes, too few windows, non-finite values."""


class OutputError(ModelsError):
    """Generated series cannot be written as asked: a shape or a name no output format can carry."""
