"""Configuration: TOML < environment < flags, and errors that name the key, its source and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgegen.gateway.config import Settings, load_settings
from edgegen.gateway.errors import ConfigError
from edgegen.models import shipped

REPO = Path(__file__).resolve().parents[2]


def test_defaults_need_no_file_and_no_environment() -> None:
    settings = load_settings(None, {}, {})
    assert settings == Settings()
    assert (settings.mqtt.host, settings.mqtt.port, settings.storage.kind) == ("127.0.0.1", 1883, "sqlite")


def test_layers_override_in_order_toml_then_environment_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "edgegen.toml"
    path.write_text('[mqtt]\nurl = "mqtt://from-file:1"\nkeepalive_s = 11\n[storage]\nkind = "influx1"\n')
    env = {"EDGEGEN_MQTT__URL": "mqtt://from-env:2", "EDGEGEN_MQTT__TIMEOUT_S": "3.5"}
    settings = load_settings(path, env, {"mqtt": {"url": "mqtt://from-flag:3"}})
    assert settings.mqtt.url == "mqtt://from-flag:3"
    assert settings.mqtt.timeout_s == 3.5  # environment, no flag
    assert settings.mqtt.keepalive_s == 11  # file only
    assert settings.storage.kind == "influx1"
    assert load_settings(path, env, {}).mqtt.url == "mqtt://from-env:2"


def test_config_file_can_come_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[gateway]\nbatch_frames = 7\n")
    assert load_settings(None, {"EDGEGEN_CONFIG": str(path)}, {}).gateway.batch_frames == 7


def _error(**kwargs: object) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(**kwargs)  # type: ignore[arg-type]
    return str(caught.value)


def test_bad_environment_value_names_variable_and_expectation() -> None:
    message = _error(config_file=None, environ={"EDGEGEN_STORAGE__KIND": "mysql"}, flags={})
    assert message == (
        "invalid configuration:\n"
        "  storage.kind = 'mysql' (from environment variable EDGEGEN_STORAGE__KIND): "
        "expected 'sqlite', 'influx1' or 'influx2'"
    )


def test_bad_file_values_name_the_file_and_every_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[mqtt]\nurl = "http://broker"\nkeepalive_s = -1\n[storage]\ncolour = "red"\n')
    message = _error(config_file=path, environ={}, flags={})
    source = f"config file {path}"
    assert message.splitlines() == [
        "invalid configuration:",
        f"  mqtt.url = 'http://broker' (from {source}): expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]",
        f"  mqtt.keepalive_s = -1 (from {source}): expected greater than 0",
        f"  storage.colour (from {source}): unknown key; expected one of kind, sqlite_path, influx_url, "
        "timeout_s, database, username, password, password_file, create_database, org, bucket, token, token_file",
    ]


def test_unknown_section_is_refused() -> None:
    message = _error(config_file=None, environ={"EDGEGEN_STROAGE__KIND": "sqlite"}, flags={})
    assert (
        "stroage (from environment variable EDGEGEN_STROAGE__KIND): unknown key; expected one of log_level"
        in message
    )


def test_flag_errors_say_so() -> None:
    message = _error(config_file=None, environ={}, flags={"node": {"channels": 0}})
    assert message.endswith("node.channels = 0 (from command-line flag): expected greater than or equal to 1")


def test_secrets_are_never_echoed() -> None:
    message = _error(config_file=None, environ={"EDGEGEN_STORAGE__PASSWORD__X": "hunter2"}, flags={})
    assert "hunter2" not in message
    assert "storage.password = <secret>" in message
    settings = load_settings(None, {"EDGEGEN_STORAGE__TOKEN": "s3cret"}, {})
    assert "s3cret" not in repr(settings)


def test_toml_syntax_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[mqtt\nurl=1\n")
    assert _error(config_file=path, environ={}, flags={}).startswith(f"config file {path}: not valid TOML:")
    assert _error(config_file=tmp_path / "missing.toml", environ={}, flags={}) == (
        f"config file {tmp_path / 'missing.toml'}: No such file or directory"
    )


def test_the_documented_sample_config_is_valid() -> None:
    settings = load_settings(REPO / "docs" / "edgegen.example.toml", {}, {})
    assert settings.storage.kind == "sqlite"


def test_a_binding_names_a_shipped_generative_model_or_a_path(tmp_path: Path) -> None:
    """``model = "skab"`` is the shipped model wherever the gateway runs; a path stays the path it names."""
    doc = {"analytics": {"bindings": [{"model": "skab"}, {"model": str(tmp_path / "mine")}, {"model": "nosuch"}]}}
    shipped_skab, mine, unknown = (b.model for b in load_settings(None, {}, doc).analytics.bindings)
    assert shipped_skab == shipped.generative_models() / "skab"
    assert shipped_skab.with_suffix(".manifest.json").is_file()
    assert (mine, unknown) == (tmp_path / "mine", Path("nosuch"))  # the loader names what is missing
