"""Logging set-up: text or JSON lines on stderr, with every configured secret masked before it is written.

JSON mode writes one object a line, for log shippers::

    {"ts": "2024-05-01T12:00:00.123Z", "level": "INFO", "logger": "gateway.service", "msg": "stored",
     "frames": 12, "node": "n1"}

``ts`` is ISO 8601 UTC; the fields a caller passes with ``extra={...}`` follow ``msg``; a traceback goes under
``exc`` (and ``stack_info`` under ``stack``). An extra field named like one of those keys is written as
``extra_<name>`` rather than overwrite it. Text mode keeps ``%(asctime)s %(levelname)s %(name)s: %(message)s``.

:class:`RedactSecrets` replaces each secret (passwords and tokens, as given in the settings or read from files)
with ``***`` wherever it appears: the message, its arguments, extra fields, the traceback.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TextIO
from urllib.parse import quote, quote_plus

from pydantic import BaseModel, SecretStr
from pythonjsonlogger.core import merge_record_extra
from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "***"

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
RECORD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_OUTPUT_KEYS = frozenset({"ts", "level", "logger", "msg", "exc", "stack"})


def secret_values(model: BaseModel) -> list[str]:
    """Every :class:`~pydantic.SecretStr` value set in ``model`` and its sub-models (e.g. the settings)."""
    found: list[str] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            found.extend(secret_values(value))
    return found


def _spellings(secret: str) -> set[str]:
    """How a secret may show up in text: as is, stripped (read from a file), URL-quoted, escaped by repr/json."""
    forms: set[str] = set()
    for plain in {secret, secret.strip()}:
        forms |= {plain, quote(plain, safe=""), quote_plus(plain, safe=""), repr(plain)[1:-1]}
        forms |= {json.dumps(plain)[1:-1], json.dumps(plain, ensure_ascii=False)[1:-1]}
    return {form for form in forms if form}


class RedactSecrets(logging.Filter):
    """Replace every given secret with ``***`` in a record's message, arguments, extra fields and traceback.

    Attach it to a handler (not a logger: a logger's filters miss records propagated from its children). The
    record is changed in place, so every handler that formats it afterwards sees the masked version; the
    message is pre-formatted (``args`` emptied) so that masking covers the arguments' text as well.
    """

    def __init__(self, secrets: Iterable[str | SecretStr | None], mask: str = MASK) -> None:
        super().__init__()
        self.mask = mask
        forms: set[str] = set()
        for secret in secrets:
            plain = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
            if plain:
                forms |= _spellings(plain)
        # longest first, so a secret that contains another is masked whole
        ordered = sorted(forms, key=lambda form: (-len(form), form))
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self._formatter = logging.Formatter()

    def redact(self, text: str) -> str:
        return self._pattern.sub(self.mask, text) if self._pattern is not None else text

    def redact_value(self, value: Any) -> Any:
        """``value`` with secrets masked: strings, containers recursively, other objects by their ``str``."""
        if self._pattern is None or value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {self.redact_value(k): self.redact_value(v) for k, v in value.items()}
        if type(value) in (list, tuple, set, frozenset):  # not subclasses: a namedtuple's constructor differs
            return type(value)(self.redact_value(v) for v in value)
        text = str(value)
        return self.redact(text) if self._pattern.search(text) else value

    def filter(self, record: logging.LogRecord) -> bool:
        if self._pattern is None:
            return True
        if isinstance(record.msg, Mapping) and not record.args:  # a dict message (python-json-logger style)
            record.msg = self.redact_value(record.msg)
        else:
            try:
                message = record.getMessage()
            except Exception:  # bad args: logging will report msg and args, so mask them separately
                record.msg = self.redact(str(record.msg))
                record.args = self.redact_value(record.args)
            else:
                record.msg, record.args = self.redact(message), ()
        for key, value in list(record.__dict__.items()):
            if key not in RECORD_ATTRS:
                setattr(record, key, self.redact_value(value))
        if "message" in record.__dict__:  # formatted earlier by another handler
            record.message = self.redact(record.message)
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            masked = self.redact(record.exc_text)
            if masked != record.exc_text:
                # the traceback names a secret: keep only the masked text, or a formatter would redo it
                record.exc_text, record.exc_info = masked, None
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class JsonLineFormatter(JsonFormatter):
    """One JSON object a line: ``ts``, ``level``, ``logger``, ``msg``, the extra fields, then ``exc``/``stack``."""

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        log_data["ts"] = ts.replace("+00:00", "Z")
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["msg"] = record.message
        exc = message_dict.pop("exc_info", None)
        stack = message_dict.pop("stack_info", None)
        fields: dict[str, Any] = {}
        merge_record_extra(record, fields, reserved=RECORD_ATTRS)
        fields.update(message_dict)  # the keys of a dict message
        for key, value in fields.items():
            log_data[f"extra_{key}" if key in _OUTPUT_KEYS else key] = value
        if exc:
            log_data["exc"] = exc
        if stack:
            log_data["stack"] = stack


class _GatewayHandler(logging.StreamHandler[TextIO]):
    """The handler :func:`configure_logging` installs, so that calling it again replaces it."""


def configure_logging(
    level: str | int,
    fmt: Literal["json", "text"] = "text",
    stream: TextIO | None = None,
    *,
    secrets: Iterable[str | SecretStr | None] = (),
) -> logging.Handler:
    """Log to ``stream`` (stderr by default) at ``level`` in ``fmt``, masking ``secrets``; returns the handler.

    Replaces the handler an earlier call installed and leaves other root handlers alone.
    """
    if fmt not in ("json", "text"):
        raise ValueError(f"log format {fmt!r}: expected 'json' or 'text'")
    handler = _GatewayHandler(stream)
    handler.setFormatter(JsonLineFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _GatewayHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler
