"""Storage errors, typed by what the writer must do with the batch."""

from __future__ import annotations

from edgegen.gateway.errors import GatewayError


class StorageError(GatewayError):
    """Root of storage failures."""


class StorageUnavailable(StorageError):
    """The backend could not take the batch now (down, overloaded, timed out): keep it and retry."""

    retryable = True

    def __init__(self, message: str, retry_after_s: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.status = status  # the HTTP status when the server answered (429, 5xx); None for a transport failure


class StorageRejected(StorageError):
    """The backend refused the batch itself (malformed, unauthorised, no such database): retrying the same
    request unchanged cannot help. ``status`` tells the writer (gateway/writer.py) what can: dropping the refused
    points (400/422), splitting the batch (413), or an operator (401/403/404)."""

    retryable = False

    def __init__(self, message: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body  # the full response body (the message keeps only its start)


class StorageNotFound(StorageRejected):
    """HTTP 404: the database or bucket does not exist (or the URL is wrong). A configuration error: no retry or
    split can succeed, so the writer raises this for the daemon to exit with the message."""


class LineProtocolError(StorageError):
    """A point cannot be expressed in InfluxDB line protocol (a newline in a name, a comment-like measurement)."""
