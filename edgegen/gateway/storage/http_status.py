"""What an InfluxDB HTTP status means for the batch (shared by the 1.x and 2.x backends)."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping

from edgegen.gateway.storage.errors import StorageError, StorageRejected, StorageUnavailable

_UNPARSED = "unable to parse '"
_DROPPED = re.compile(r"\s*dropped=\d+\s*$")


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
    """Classify a non-2xx write response: retry later, or refuse the batch.

    Refusals keep ``status`` and the whole ``body``: the writer (gateway/writer.py) decides by status whether to
    drop the refused lines (400/422, named in the body), split the batch (413), or stop (401/403/404).
    """
    detail = f"HTTP {status}: {body.strip()[:500]}"
    if status in (429, 503):
        return StorageUnavailable(detail, retry_after_seconds(headers), status)
    if status >= 500 or status == 408:
        return StorageUnavailable(detail, status=status)
    return StorageRejected(detail, status, body)


def error_message(body: str) -> str:
    """The error text of an InfluxDB answer: ``error`` (1.x) or ``message`` (2.x) of a JSON body, else the body."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return body
    if isinstance(parsed, dict):
        for name in ("error", "message"):
            if isinstance(parsed.get(name), str):
                return str(parsed[name])
    return body


def unparsed_lines(body: str, sent: Collection[str]) -> dict[str, str]:
    """The lines of ``sent`` a 400 answer names as unparseable, each with the server's reason.

    InfluxDB reports each as ``unable to parse '<line>': <reason>`` (1.x joins several with newlines and ends with
    `` dropped=N``). A line may itself contain ``': ``, so every split point is tried against the lines sent.
    Refusals that name no line (a field type conflict) give an empty result.
    """
    found: dict[str, str] = {}
    for segment in error_message(body).split(_UNPARSED)[1:]:
        best: tuple[str, str] | None = None
        at = segment.find("': ")
        while at >= 0:
            if segment[:at] in sent:
                best = (segment[:at], segment[at + 3 :])
            at = segment.find("': ", at + 1)
        if best is not None:
            line, reason = best
            found[line] = _DROPPED.sub("", reason.splitlines()[0] if reason else reason).strip()
    return found
