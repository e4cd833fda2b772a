"""The hil package's error root."""

from __future__ import annotations

from edgegen.errors import EdgegenError


class HilError(EdgegenError):
    """Root of every error raised by the hil package."""


class DeployError(HilError):
    """Deployment cannot proceed: a bad configuration, a missing tool, a board that refused a copy."""


class FramingError(HilError):
    """A record from the target was damaged on the way (a serial line drops or garbles bytes): run it again."""

    retryable = True


class Truncated(FramingError):
    """A framed record is shorter than its header says, or its header is cut off."""


class BadChecksum(FramingError):
    """A framed record's CRC-32 does not match its payload."""


class TargetError(HilError):
    """The target could not run the HIL script: it failed, timed out, or its records are incomplete."""


class TargetTimeout(TargetError):
    retryable = True


class IncompleteRecords(TargetError):
    """The records parsed but some are missing (a line lost on the serial link)."""

    retryable = True


class InputError(HilError):
    """The model or the data cannot be turned into windows for the target (no manifest, channel mismatch)."""
