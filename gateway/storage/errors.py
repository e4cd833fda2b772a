"""Storage errors, typed by what the writer must do with the batch."""

from __future__ import annotations

from gateway.errors import GatewayError


class StorageError(GatewayError):
    """Root of storage failures."""


class StorageUnavailable(StorageError):
    """The backend could not take the batch now (down, overloaded, timed out): keep it and retry."""

    retryable = True

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StorageRejected(StorageError):
    """The backend refused the batch itself (malformed, unauthorised, no such database): retrying cannot help."""

    retryable = False

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class LineProtocolError(StorageError):
    """A point cannot be expressed in InfluxDB line protocol (a newline in a name, a comment-like measurement)."""
