"""The models package's error root."""

from __future__ import annotations

from edgegen.errors import EdgegenError


class ModelsError(EdgegenError):
    """Root of every error raised by the models package."""


class DataError(ModelsError):
    """A data set cannot be read as asked: a missing file, an unexpected layout, no numeric columns."""


class ArtifactError(ModelsError):
    """A model artifact is malformed, or fails its signature, size or hash check.

    ``cause`` names the reason in one word, for counters and callers that act on it (the leaves below set it).
    """

    cause = "invalid"


class Unsigned(ArtifactError):
    """The model has no manifest or no signature beside it."""

    cause = "unsigned"


class UntrustedKey(ArtifactError):
    """The manifest is signed by a key that is not trusted here."""

    cause = "untrusted_key"


class BadSignature(ArtifactError):
    """The signature does not verify: the manifest changed after signing, or the signature file is not one."""

    cause = "bad_signature"


class FileMismatch(ArtifactError):
    """A file the manifest pins (the model, a sidecar) is missing or differs from it in size or SHA-256."""

    cause = "file_mismatch"


class TrainingUnavailable(ModelsError):
    """Training needs TensorFlow: pip install 'edgegen[train]'."""


class EvaluationError(ModelsError):
    """An evaluation cannot run on what it was given: mismatched shapes, too few windows, non-finite values."""


class OutputError(ModelsError):
    """Generated series cannot be written as asked: a shape or a name no output format can carry."""


class NonFiniteError(ModelsError):
    """A computation gave NaN or infinity: an input row that is not finite or beyond float32 (the network's
    precision), a forecast the network could not make finite, or an overflow. Nothing is returned for the call,
    and a scoring stream keeps the state it had before it."""
