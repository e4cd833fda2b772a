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
    """Generated series could not be written: a name no output format can carry, or a sink that refused them.

    ``retryable`` is per instance: a timeout, a refused connection, 429 or 5xx may pass later; any other answer
    (a malformed batch, bad credentials, no such database) will not. ``status`` is the HTTP status, if any.
    """

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


class NonFiniteError(ModelsError):
    """A computation gave NaN or infinity: an input row that is not finite or beyond float32 (the network's
    precision), a forecast the network could not make finite, or an overflow. Nothing is returned for the call,
    and a scoring stream keeps the state it had before it."""
