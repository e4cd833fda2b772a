"""Deployment and security settings: secrets from files or the environment, never echoed; TLS to the broker;
the production sample config; and a real mosquitto that wants a password over TLS."""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edgegen.gateway.config import Settings, load_settings
from edgegen.gateway.errors import ConfigError
from edgegen.gateway.storage import create_storage
from edgegen.gateway.storage.influx1 import Influx1Storage
from edgegen.gateway.storage.influx2 import Influx2Storage
from tests.support.certs import ServerCerts, make_ca, server_certs
from tests.support.servers import Mosquitto

REPO = Path(__file__).resolve().parents[2]
SECRETS = ("hunter2-mqtt", "s3cret-influx-pw", "t0ken-influx")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> ServerCerts:
    return server_certs(tmp_path_factory.mktemp("pki"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _error(config_file: Path | None = None, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file, environ or {}, {})
    return str(caught.value)


# -- secrets from files ---------------------------------------------------------------------------------------


def test_secret_files_are_read_at_load_time_less_one_trailing_newline(tmp_path: Path) -> None:
    env = {
        "EDGEGEN_MQTT__PASSWORD_FILE": str(_write(tmp_path / "mqtt", "hunter2\n")),
        "EDGEGEN_STORAGE__PASSWORD_FILE": str(_write(tmp_path / "pw", "two newlines\n\n")),
        "EDGEGEN_STORAGE__TOKEN_FILE": str(_write(tmp_path / "token", "crlf\r\n")),
    }
    settings = load_settings(None, env, {})
    (tmp_path / "mqtt").write_text("changed")  # read once, at load time
    assert settings.mqtt.password_value() == "hunter2"
    assert settings.storage.password_value() == "two newlines\n"
    assert settings.storage.token_value() == "crlf"
    assert settings.mqtt.password is None  # the file's secret is not copied into the key itself


def test_a_missing_secret_file_names_the_key_and_its_source(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert _error(environ={"EDGEGEN_MQTT__PASSWORD_FILE": str(missing)}) == (
        "invalid configuration:\n"
        f"  mqtt.password_file = '{missing}' (from environment variable EDGEGEN_MQTT__PASSWORD_FILE): "
        "expected an existing file"
    )
    config = _write(tmp_path / "c.toml", f'[storage]\ntoken_file = "{tmp_path}"\n')
    assert _error(config) == (
        "invalid configuration:\n"
        f"  storage.token_file = '{tmp_path}' (from config file {config}): expected a file, not a directory"
    )


@pytest.mark.parametrize("content", ["", "\n"])
def test_an_empty_secret_file_is_refused(tmp_path: Path, content: str) -> None:
    empty = _write(tmp_path / "token", content)
    config = _write(tmp_path / "c.toml", f'[storage]\nkind = "influx2"\ntoken_file = "{empty}"\n')
    assert _error(config) == (
        "invalid configuration:\n"
        f"  storage.token_file = '{empty}' (from config file {config}): "
        "expected a non-empty file (the secret, optionally ending in one newline)"
    )


def test_an_unreadable_secret_file_is_refused_without_its_content(tmp_path: Path) -> None:
    binary = tmp_path / "pw"
    binary.write_bytes(b"hunter2\xff")
    message = _error(environ={"EDGEGEN_MQTT__PASSWORD_FILE": str(binary)})
    assert message.endswith(
        f"mqtt.password_file = '{binary}' (from environment variable "
        "EDGEGEN_MQTT__PASSWORD_FILE): expected a UTF-8 text file"
    )
    assert "hunter2" not in message


def test_password_and_password_file_together_are_refused_naming_both(tmp_path: Path) -> None:
    secret_file = _write(tmp_path / "pw", "from-file\n")
    config = _write(tmp_path / "c.toml", f'[mqtt]\npassword_file = "{secret_file}"\n')
    message = _error(config, {"EDGEGEN_MQTT__PASSWORD": "hunter2-env"})
    assert message == (
        "invalid configuration:\n"
        "  mqtt.password (from environment variable EDGEGEN_MQTT__PASSWORD) and "
        f"mqtt.password_file (from config file {config}): expected one or the other, not both"
    )
    message = _error(None, {"EDGEGEN_STORAGE__TOKEN": "t0ken", "EDGEGEN_STORAGE__TOKEN_FILE": str(secret_file)})
    assert message == (
        "invalid configuration:\n"
        "  storage.token (from environment variable EDGEGEN_STORAGE__TOKEN) and storage.token_file "
        "(from environment variable EDGEGEN_STORAGE__TOKEN_FILE): expected one or the other, not both"
    )


# -- secrets never shown --------------------------------------------------------------------------------------


def _secret_files(tmp_path: Path) -> dict[str, str]:
    return {
        "EDGEGEN_MQTT__PASSWORD_FILE": str(_write(tmp_path / "mqtt-password", SECRETS[0] + "\n")),
        "EDGEGEN_STORAGE__PASSWORD": SECRETS[1],
        "EDGEGEN_STORAGE__TOKEN_FILE": str(_write(tmp_path / "influx-token", SECRETS[2])),
    }


def test_secrets_never_appear_in_errors_or_reprs(tmp_path: Path) -> None:
    env = _secret_files(tmp_path)
    settings = load_settings(None, env, {})
    for text in (repr(settings), str(settings), repr(settings.mqtt), settings.model_dump_json()):
        assert not [s for s in SECRETS if s in text]
    # every kind of error, with every secret set somewhere in the same sections
    conflicting = {**env, "EDGEGEN_MQTT__PASSWORD": SECRETS[1], "EDGEGEN_STORAGE__TOKEN": SECRETS[0]}
    bad_value = {**env, "EDGEGEN_MQTT__KEEPALIVE_S": "-1", "EDGEGEN_STORAGE__TIMEOUT_S": "0"}
    bad_file = {
        **env,
        "EDGEGEN_STORAGE__TOKEN_FILE": str(tmp_path / "missing"),
        "EDGEGEN_MQTT__KEY_FILE": __file__,
    }
    for environ in (conflicting, bad_value, bad_file):
        message = _error(None, environ)
        assert message.startswith("invalid configuration:")
        assert not [s for s in SECRETS if s in message], message


def test_the_environment_overrides_secrets_from_the_file(tmp_path: Path) -> None:
    config = _write(
        tmp_path / "c.toml", '[mqtt]\nusername = "gw"\npassword = "from-toml"\n[storage]\ntoken = "x"\n'
    )
    env = {"EDGEGEN_MQTT__PASSWORD": "from-env", "EDGEGEN_STORAGE__TOKEN": "token-from-env"}
    settings = load_settings(config, env, {})
    assert (settings.mqtt.username, settings.mqtt.password_value()) == ("gw", "from-env")
    assert settings.storage.token_value() == "token-from-env"
    assert load_settings(config, {}, {}).mqtt.password_value() == "from-toml"
    assert load_settings(None, {}, {}).mqtt.password_value() is None


def test_secrets_lists_exactly_the_configured_secrets(tmp_path: Path) -> None:
    assert Settings().secrets() == []
    assert load_settings(None, _secret_files(tmp_path), {}).secrets() == list(SECRETS)
    same_twice = {"EDGEGEN_MQTT__PASSWORD": "same", "EDGEGEN_STORAGE__PASSWORD": "same"}
    assert load_settings(None, same_twice, {}).secrets() == ["same"]
    assert load_settings(None, {"EDGEGEN_MQTT__PASSWORD": ""}, {}).secrets() == []  # never mask ""


def test_storage_is_built_with_the_resolved_secrets(tmp_path: Path) -> None:
    env = {"EDGEGEN_STORAGE__KIND": "influx2", **_secret_files(tmp_path)}
    storage = create_storage(load_settings(None, env, {}).storage)
    assert isinstance(storage, Influx2Storage)
    assert storage._token == SECRETS[2]
    env = {"EDGEGEN_STORAGE__KIND": "influx1", "EDGEGEN_STORAGE__USERNAME": "gw", **_secret_files(tmp_path)}
    env["EDGEGEN_STORAGE__PASSWORD_FILE"] = env.pop("EDGEGEN_STORAGE__TOKEN_FILE")
    del env["EDGEGEN_STORAGE__PASSWORD"]
    storage = create_storage(load_settings(None, env, {}).storage)
    assert isinstance(storage, Influx1Storage)
    assert storage._auth == {"u": "gw", "p": SECRETS[2]}
    with pytest.raises(ConfigError, match=r"^storage.token or storage.token_file: required when storage.kind"):
        create_storage(load_settings(None, {"EDGEGEN_STORAGE__KIND": "influx2"}, {}).storage)


# -- TLS ------------------------------------------------------------------------------------------------------


def test_ssl_context_loads_the_configured_ca(certs: ServerCerts) -> None:
    assert load_settings(None, {}, {}).mqtt.ssl_context() is None  # mqtt:// and no CA: plain TCP
    mqtt = load_settings(None, {"EDGEGEN_MQTT__CA_FILE": str(certs.ca)}, {}).mqtt
    context = mqtt.ssl_context()
    assert context is not None and mqtt.tls
    assert context is not mqtt.ssl_context()  # a factory: a new context for every connection
    subjects = [ca["subject"] for ca in context.get_ca_certs()]
    assert subjects == [((("commonName", "edgegen-test-ca"),),)]  # only the configured CA, not the system store
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    insecure = load_settings(None, {"EDGEGEN_MQTT__CA_FILE": str(certs.ca), "EDGEGEN_MQTT__TLS_INSECURE": "1"}, {})
    context = insecure.mqtt.ssl_context()
    assert context is not None
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, False)  # the chain still counts
    public = load_settings(None, {"EDGEGEN_MQTT__URL": "mqtts://broker.example.net"}, {}).mqtt
    assert public.port == 8883 and public.ssl_context() is not None  # the system's CAs


def test_client_certificate_and_bad_tls_files(certs: ServerCerts, tmp_path: Path) -> None:
    env = {"EDGEGEN_MQTT__URL": "mqtts://localhost", "EDGEGEN_MQTT__CA_FILE": str(certs.ca)}
    pair = {"EDGEGEN_MQTT__CERT_FILE": str(certs.cert), "EDGEGEN_MQTT__KEY_FILE": str(certs.key)}
    assert load_settings(None, {**env, **pair}, {}).mqtt.ssl_context() is not None
    not_pem = _write(tmp_path / "ca.pem", "not a certificate\n")
    source = "(from environment variable EDGEGEN_MQTT__{})"
    assert _error(None, {**env, "EDGEGEN_MQTT__CA_FILE": str(not_pem)}).endswith(
        f"mqtt.ca_file = '{not_pem}' {source.format('CA_FILE')}: expected PEM CA certificates "
        "(NO_CERTIFICATE_OR_CRL_FOUND)"
    )
    assert _error(None, {**env, "EDGEGEN_MQTT__KEY_FILE": str(certs.key)}).endswith(
        f"mqtt.key_file = '{certs.key}' {source.format('KEY_FILE')}: expected mqtt.cert_file as well "
        "(the key's certificate)"
    )
    plain = {"EDGEGEN_MQTT__CERT_FILE": str(certs.cert)}
    assert _error(None, plain).endswith(
        f"mqtt.cert_file = '{certs.cert}' {source.format('CERT_FILE')}: "
        "expected TLS: an mqtts:// mqtt.url or an mqtt.ca_file"
    )
    wrong_key = {**env, **pair, "EDGEGEN_MQTT__KEY_FILE": str(certs.ca.with_suffix(".key"))}
    assert (
        f"mqtt.cert_file = '{certs.cert}' {source.format('CERT_FILE')}: expected a PEM certificate and its "
        "unencrypted private key (" in _error(None, wrong_key)
    )


# -- the production sample ------------------------------------------------------------------------------------


def test_the_production_sample_config_loads_with_its_credentials(certs: ServerCerts, tmp_path: Path) -> None:
    """deploy/gateway.toml as the systemd unit runs it: secret paths and the state directory from Environment=."""
    env = {
        "EDGEGEN_MQTT__PASSWORD_FILE": str(_write(tmp_path / "mqtt-password", SECRETS[0] + "\n")),
        "EDGEGEN_STORAGE__TOKEN_FILE": str(_write(tmp_path / "influx-token", SECRETS[2] + "\n")),
        "EDGEGEN_MQTT__CA_FILE": str(certs.ca),  # the sample's /etc/edgegen/broker-ca.pem
        "EDGEGEN_GATEWAY__STATE_DIR": str(tmp_path / "state"),
        "EDGEGEN_MQTT__CLIENT_ID": "edgegen-gw-a",  # as edgegen-gateway@a.service sets it
    }
    settings = load_settings(REPO / "deploy" / "gateway.toml", env, {})
    assert (settings.mqtt.tls, settings.mqtt.port, settings.mqtt.username) == (True, 8883, "edgegen-gateway")
    assert settings.mqtt.client_id == "edgegen-gw-a"
    assert settings.mqtt.ssl_context() is not None
    assert settings.storage.kind == "influx2"
    assert settings.secrets() == [SECRETS[0], SECRETS[2]]
    assert isinstance(create_storage(settings.storage), Influx2Storage)


def test_the_units_pass_the_secret_files_the_sample_expects() -> None:
    for name in ("edgegen-gateway.service", "edgegen-gateway@.service"):
        unit = (REPO / "deploy" / name).read_text()
        for line in (
            "ExecStart=/opt/edgegen/venv/bin/edgegen gateway run --config /etc/edgegen/gateway.toml",
            "Environment=EDGEGEN_MQTT__PASSWORD_FILE=%d/mqtt-password",
            "Environment=EDGEGEN_STORAGE__TOKEN_FILE=%d/influx-token",
            "LoadCredential=mqtt-password:",
            "LoadCredential=influx-token:",
            "TimeoutStopSec=60",
            "KillSignal=SIGTERM",
        ):
            assert line in unit, (name, line)
    assert (
        "Environment=EDGEGEN_MQTT__CLIENT_ID=edgegen-gw-%i"
        in (REPO / "deploy/edgegen-gateway@.service").read_text()
    )


# -- a real broker --------------------------------------------------------------------------------------------


def _connack(settings: Settings, client_id: str) -> ReasonCode:
    """Connect as a paho-mqtt 2.x client does in the daemon (MQTT 3.1.1) and return the CONNACK's reason."""
    mqtt = settings.mqtt
    got: dict[str, ReasonCode] = {}

    def on_connect(client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any) -> None:
        got["reason"] = reason

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
    context = mqtt.ssl_context()
    assert context is not None
    client.tls_set_context(context)
    client.username_pw_set(mqtt.username, mqtt.password_value())
    client.on_connect = on_connect
    try:
        client.connect(mqtt.host, mqtt.port, keepalive=mqtt.keepalive_s)
        deadline = time.monotonic() + 10
        while "reason" not in got and time.monotonic() < deadline:
            client.loop(timeout=0.1)
    finally:
        client.disconnect()
        sock = client.socket()
        if sock is not None:
            sock.close()
    return got["reason"]


@pytest.mark.mosquitto
def test_a_real_broker_with_password_and_tls(certs: ServerCerts, tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker", passwords={"gw": "right-pw"}, tls=(certs.ca, certs.cert, certs.key))
    broker.start()
    try:
        base = {
            "EDGEGEN_MQTT__URL": f"mqtts://localhost:{broker.port}",
            "EDGEGEN_MQTT__CA_FILE": str(certs.ca),
            "EDGEGEN_MQTT__USERNAME": "gw",
        }
        right = load_settings(
            None, {**base, "EDGEGEN_MQTT__PASSWORD_FILE": str(_write(tmp_path / "pw", "right-pw\n"))}, {}
        )
        assert _connack(right, "secrets-right").value == 0
        wrong = load_settings(None, {**base, "EDGEGEN_MQTT__PASSWORD": "wrong-pw"}, {})
        refused = _connack(wrong, "secrets-wrong")
        assert (refused.is_failure, str(refused)) == (True, "Not authorized")  # CONNACK return code 5
        # a broker whose certificate another CA signed is refused (checked on a bare socket: paho-mqtt leaves the
        # socket of a failed handshake open)
        stranger = make_ca(tmp_path / "other", "stranger")
        untrusted = load_settings(None, {**base, "EDGEGEN_MQTT__CA_FILE": str(stranger)}, {}).mqtt.ssl_context()
        assert untrusted is not None
        with (
            socket.create_connection(("localhost", broker.port), timeout=10) as raw,
            pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"),
        ):
            untrusted.wrap_socket(raw, server_hostname="localhost")
    finally:
        broker.stop()
