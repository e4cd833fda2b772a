"""What an InfluxDB HTTP status means for the batch (shared by the 1.x and 2.x backends)."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.storage.errors import StorageError, StorageRejected, StorageUnavailable


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` as seconds, when the server sent it as a number (the form InfluxDB uses)."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(seconds, 0.0)


def error_for_status(status: int, body: str, headers: Mapping[str, str]) -> StorageError:
    """Classify a non-2xx write response: retry later, or refuse the batch."""
    detail = f"HTTP {status}: {body.strip()[:500]}"
    if status in (429, 503):
        return StorageUnavailable(detail, retry_after_seconds(headers))
    if status >= 500:
        return StorageUnavailable(detail)
    return StorageRejected(detail, status)
