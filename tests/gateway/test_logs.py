from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from edgegen.gateway.config import Settings
from edgegen.gateway.logs import RedactSecrets, configure_logging, secret_values

PASSWORD = "s3cr3t-pw"
TOKEN = "tok-ABC123"
log = logging.getLogger("edgegen.test")


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_ts_level_logger_msg_and_extra_fields() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    before = datetime.now(UTC)
    log.info("stored %d frames", 12, extra={"frames": 12, "node": "n1"})
    log.debug("not at INFO")
    (line,) = _lines(stream)
    assert list(line) == ["ts", "level", "logger", "msg", "frames", "node"]
    assert {k: v for k, v in line.items() if k != "ts"} == {
        "level": "INFO",
        "logger": "edgegen.test",
        "msg": "stored 12 frames",
        "frames": 12,
        "node": "n1",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["ts"])
    ts = datetime.fromisoformat(line["ts"])
    assert ts.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= ts <= datetime.now(UTC)


def test_json_exception_text_goes_under_exc() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("write failed", extra={"batch": 3})
    (line,) = _lines(stream)
    assert list(line) == ["ts", "level", "logger", "msg", "batch", "exc"]
    assert (line["level"], line["msg"], line["batch"]) == ("ERROR", "write failed", 3)
    assert line["exc"].startswith("Traceback (most recent call last):")
    assert line["exc"].endswith("ValueError: boom")


def test_json_extra_fields_named_like_core_keys_do_not_overwrite_them() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    log.warning("odd", extra={"level": "x", "ts": 1, "logger": "y", "when": datetime(2024, 1, 2, tzinfo=UTC)})
    (line,) = _lines(stream)
    assert (line["level"], line["logger"]) == ("WARNING", "edgegen.test")
    assert (line["extra_level"], line["extra_ts"], line["extra_logger"]) == ("x", 1, "y")
    assert line["when"] == "2024-01-02T00:00:00+00:00"


def test_text_mode_keeps_the_classic_format() -> None:
    stream = io.StringIO()
    configure_logging("WARNING", "text", stream)
    log.info("hidden")
    log.warning("queue at %d%%", 90, extra={"node": "n1"})
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING edgegen\.test: queue at 90%\n", stream.getvalue()
    )


def test_configuring_again_replaces_the_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", "text", first)
    handler = configure_logging("INFO", "json", second)
    log.info("once")
    assert first.getvalue() == ""
    assert [line["msg"] for line in _lines(second)] == ["once"]
    assert [h for h in logging.getLogger().handlers if type(h) is type(handler)] == [handler]
    with pytest.raises(ValueError, match="expected 'json' or 'text'"):
        configure_logging("INFO", "xml", second)  # type: ignore[arg-type]


def test_secrets_in_message_args_extra_and_traceback_never_reach_json_output() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream, secrets=[PASSWORD, SecretStr(TOKEN), None, ""])
    log.info(f"connecting with password {PASSWORD}")
    log.info("token is %s, password %r", TOKEN, PASSWORD)
    log.info("auth", extra={"header": f"Bearer {TOKEN}", "nested": {"pw": [PASSWORD], PASSWORD: 1}, "n": 5})
    try:
        raise ConnectionError(f"http://admin:{PASSWORD}@influx:8086 refused")
    except ConnectionError:
        log.exception("write failed")
    log.info({"event": "login", "password": PASSWORD})  # a dict message

    out = stream.getvalue()
    assert PASSWORD not in out
    assert TOKEN not in out
    first, second, third, fourth, fifth = _lines(stream)
    assert first["msg"] == "connecting with password ***"
    assert second["msg"] == "token is ***, password '***'"
    assert (third["header"], third["nested"], third["n"]) == ("Bearer ***", {"pw": ["***"], "***": 1}, 5)
    assert fourth["exc"].endswith("ConnectionError: http://admin:***@influx:8086 refused")
    assert (fifth["event"], fifth["password"]) == ("login", "***")


def test_secrets_never_reach_text_output() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "text", stream, secrets=[PASSWORD])
    log.info("password %s", PASSWORD)
    try:
        raise RuntimeError(PASSWORD)
    except RuntimeError:
        log.exception("failed")
    out = stream.getvalue()
    assert PASSWORD not in out
    assert "edgegen.test: password ***\n" in out
    assert out.rstrip().endswith("RuntimeError: ***")


def test_secret_spellings_url_quoted_repr_escaped_and_file_read_are_masked() -> None:
    odd = "p@ss/w:rd\\x"
    stream = io.StringIO()
    configure_logging("INFO", "json", stream, secrets=[odd + "\n"])  # as read from a file
    log.info("url mqtt://u:%s@h", "p%40ss%2Fw%3Ard%5Cx")
    log.info("repr %r", odd)
    log.info("plain %s", odd)
    out = stream.getvalue()
    assert "p%40ss" not in out
    assert "p@ss" not in out
    assert [line["msg"] for line in _lines(stream)] == ["url mqtt://u:***@h", "repr '***'", "plain ***"]


def test_bad_format_args_are_reported_without_the_secret(capsys: pytest.CaptureFixture[str]) -> None:
    handler = configure_logging("INFO", "text", io.StringIO(), secrets=[PASSWORD])
    # straight to our handler: pytest's own capture handler on the root logger raises instead of reporting
    handler.handle(log.makeRecord(log.name, logging.INFO, __file__, 1, "%d", (PASSWORD,), None))
    err = capsys.readouterr().err
    assert "--- Logging error ---" in err
    assert PASSWORD not in err
    assert "***" in err


def test_redact_secrets_filter_on_its_own() -> None:
    redact = RedactSecrets(["abc", "abcdef"])
    assert redact.redact("x abcdef y abc") == "x *** y ***"
    assert redact.redact_value(("abc", 1, None, ["abcd"])) == ("***", 1, None, ["***d"])
    assert RedactSecrets([]).redact("abc") == "abc"
    record = logging.makeLogRecord({"msg": "%s", "args": ("abc",), "node": "abc"})
    assert redact.filter(record)
    assert (record.getMessage(), record.__dict__["node"]) == ("***", "***")


def test_secret_values_collects_every_secret_in_the_settings() -> None:
    settings = Settings.model_validate({"storage": {"password": PASSWORD, "token": TOKEN}})
    assert sorted(secret_values(settings)) == sorted([PASSWORD, TOKEN])
    assert secret_values(Settings()) == []
