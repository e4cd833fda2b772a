"""edgegen configuration: a TOML file, overridden by environment variables, overridden by command-line flags.

Each layer is a nested dict; the merged result is validated by pydantic at start-up. A bad value produces a
:class:`~gateway.errors.ConfigError` naming the key, the layer it came from and what was expected, e.g.::

    storage.kind = 'mysql' (from environment variable EDGEGEN_STORAGE__KIND):
        expected 'sqlite', 'influx1' or 'influx2'

Environment variables are ``EDGEGEN_<SECTION>__<KEY>`` (``EDGEGEN_MQTT__URL=mqtt://broker:1883``);
``EDGEGEN_CONFIG`` names the TOML file. docs/configuration.md lists every key with its default, variable,
accepted values and meaning (tests/gateway/test_configuration_doc.py keeps it in step with these models).

Secrets (``password``, ``token``) come from their own key or from a file beside it (``password_file``,
``token_file``; one or the other, not both), read at load time. A secret never appears in an error or a repr;
:meth:`Settings.secrets` lists them for the log redaction filter.
"""

from __future__ import annotations

import os
import ssl
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from edgegen.gateway.errors import ConfigError
from edgegen.gateway.protocol.frame import DEFAULT_MAX_FRAME_BYTES
from edgegen.gateway.protocol.topics import check_identifier
from edgegen.models import shipped

ENV_PREFIX = "EDGEGEN_"
ENV_CONFIG_FILE = "EDGEGEN_CONFIG"
SECRET_KEYS = frozenset({"password", "token"})  # never echoed in errors or logs


def _mqtt_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError("expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
    parts.port  # noqa: B018 - raises ValueError for a port out of range
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected http://HOST[:PORT] or https://HOST[:PORT]")
    parts.port  # noqa: B018
    return value


def _identifier(value: str) -> str:
    return check_identifier(value, "identifier")


MqttUrl = Annotated[str, AfterValidator(_mqtt_url)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
Identifier = Annotated[str, AfterValidator(_identifier)]
Wildcard = Annotated[str, AfterValidator(lambda v: v if v == "+" else _identifier(v))]


def _existing_file(path: Path) -> Path:
    if not path.exists():
        raise ValueError("expected an existing file")
    if path.is_dir():
        raise ValueError("expected a file, not a directory")
    return path


ExistingFile = Annotated[Path, AfterValidator(_existing_file)]
# a generative model's files without suffix, or the name of a shipped one (skab, tep, stock)
GenerativeModel = Annotated[Path, AfterValidator(shipped.generative_model)]

# Errors raised by model validators carry the key they are about (their loc is only the section's) and never
# the section's input, which may hold secrets; _describe formats them.
_KEY_ERROR = "edgegen_key"
_CONFLICT_ERROR = "edgegen_conflict"


def _key_error(key: str, value: object, expected: str) -> PydanticCustomError:
    return PydanticCustomError(_KEY_ERROR, "{expected}", {"key": key, "value": value, "expected": expected})


def _read_secret(key: str, path: Path) -> SecretStr:
    """A secret file's text (UTF-8) less one trailing newline; the secret never reaches an error."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _key_error(key, str(path), f"a readable file ({exc.strerror})") from None
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise _key_error(key, str(path), "a UTF-8 text file") from None
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise _key_error(key, str(path), "a non-empty file (the secret, optionally ending in one newline)")
    return SecretStr(text)


def _no_passphrase() -> str:
    # without a callback OpenSSL would prompt on the terminal for an encrypted key's passphrase
    raise ValueError("the private key is encrypted")


def _ssl_reason(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc.strerror or exc)
    if isinstance(exc, OSError):
        return str(exc.strerror or exc)
    return str(exc)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # secrets read from ``<key>_file`` at load time, by secret key
    _secrets_from_files: dict[str, SecretStr] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _read_secret_files(self) -> Self:
        """For every secret key with a ``<key>_file`` beside it: one or the other, and read the file."""
        for key in type(self).model_fields:
            file_key = f"{key}_file"
            path = getattr(self, file_key, None) if key in SECRET_KEYS else None
            if path is None:
                continue
            if getattr(self, key) is not None:
                raise PydanticCustomError(_CONFLICT_ERROR, "{key} and {other}", {"key": key, "other": file_key})
            self._secrets_from_files[key] = _read_secret(file_key, path)
        return self

    def _secret(self, key: str) -> str | None:
        """The secret ``key``, from its own key or from its file."""
        value = getattr(self, key)
        if value is None:
            value = self._secrets_from_files.get(key)
        return value.get_secret_value() if isinstance(value, SecretStr) else None

    def secret_values(self) -> list[str]:
        """Every non-empty secret this section (and the sections in it) holds."""
        out: list[str] = []
        for key in type(self).model_fields:
            value = getattr(self, key)
            if isinstance(value, Section):
                out += value.secret_values()
            elif isinstance(value, list | tuple):
                out += [secret for item in value if isinstance(item, Section) for secret in item.secret_values()]
            elif isinstance(value, SecretStr):
                out.append(value.get_secret_value())
            elif key in self._secrets_from_files:
                out.append(self._secrets_from_files[key].get_secret_value())
        return [secret for secret in out if secret]


class MqttSettings(Section):
    url: MqttUrl = "mqtt://127.0.0.1:1883"
    client_id: Identifier = "edgegen-gateway"
    site: Wildcard = "+"  # the site whose nodes this gateway serves; "+" for every site
    keepalive_s: PositiveInt = 30
    timeout_s: PositiveFloat = 10.0  # bound on connect, subscribe and publish
    protocol: Literal["3.1.1", "5"] = "5"  # the gateway's own connection (nodes may use 3.1.1)
    shared_group: Identifier | None = None  # join $share/{group}/... to split data topics across gateways
    session_expiry_s: PositiveInt = 86_400  # MQTT 5: how long the broker queues for us while we are away
    # broker security
    username: str | None = None
    password: SecretStr | None = None
    password_file: ExistingFile | None = None  # the password in a file (systemd credential); not with password
    ca_file: ExistingFile | None = None  # PEM CAs the broker's certificate must chain to (instead of the system's)
    cert_file: ExistingFile | None = None  # PEM client certificate (its key too, unless key_file is given)
    key_file: ExistingFile | None = None  # PEM private key of cert_file, unencrypted
    tls_insecure: bool = False  # skip the broker's hostname check (the chain is still verified): for tests only

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        """TLS to the broker: an mqtts:// URL, or a ca_file (then on the URL's port)."""
        return urlsplit(self.url).scheme == "mqtts" or self.ca_file is not None

    def password_value(self) -> str | None:
        """The broker password, from ``password`` or ``password_file``."""
        return self._secret("password")

    def ssl_context(self) -> ssl.SSLContext | None:
        """A new client context for the broker connection (aiomqtt ``tls_context=``, paho ``tls_set_context``),
        or None without TLS. With ca_file only those CAs are trusted, not the system's."""
        if not self.tls:
            return None
        context = self._verifying_context()
        self._load_client_certificate(context)
        return context

    def _verifying_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.tls_insecure:
            context.check_hostname = False
        return context

    def _load_client_certificate(self, context: ssl.SSLContext) -> None:
        if self.cert_file is not None:
            context.load_cert_chain(self.cert_file, self.key_file, password=_no_passphrase)

    @model_validator(mode="after")
    def _check_tls(self) -> Self:
        """Client certificates need TLS and their key; the CA and certificate files must load."""
        if self.key_file is not None and self.cert_file is None:
            raise _key_error("key_file", str(self.key_file), "mqtt.cert_file as well (the key's certificate)")
        if self.cert_file is not None and not self.tls:
            raise _key_error("cert_file", str(self.cert_file), "TLS: an mqtts:// mqtt.url or an mqtt.ca_file")
        if not self.tls:
            return self
        try:
            context = self._verifying_context()
        except (ssl.SSLError, OSError) as exc:
            raise _key_error("ca_file", str(self.ca_file), f"PEM CA certificates ({_ssl_reason(exc)})") from None
        try:
            self._load_client_certificate(context)
        except (ssl.SSLError, OSError, ValueError) as exc:
            expected = "a PEM certificate and its unencrypted private key"
            raise _key_error("cert_file", str(self.cert_file), f"{expected} ({_ssl_reason(exc)})") from None
        return self


class StorageSettings(Section):
    kind: Literal["sqlite", "influx1", "influx2"] = "sqlite"
    sqlite_path: Path = Path("edgegen-data/edgegen.sqlite")
    influx_url: HttpUrl = "http://127.0.0.1:8086"
    timeout_s: PositiveFloat = 10.0
    # InfluxDB 1.x
    database: str = Field("edgegen", min_length=1)
    username: str | None = None
    password: SecretStr | None = None
    password_file: ExistingFile | None = None  # the password in a file (systemd credential); not with password
    create_database: bool = True
    # InfluxDB 2.x / 3.x
    org: str = "edgegen"
    bucket: str = "edgegen"
    token: SecretStr | None = None
    token_file: ExistingFile | None = None  # the API token in a file (systemd credential); not with token

    def password_value(self) -> str | None:
        """The InfluxDB 1.x password, from ``password`` or ``password_file``."""
        return self._secret("password")

    def token_value(self) -> str | None:
        """The InfluxDB 2.x/3.x API token, from ``token`` or ``token_file``."""
        return self._secret("token")


class GatewaySettings(Section):
    state_dir: Path = Path("edgegen-data")  # the spool, dead letters and the node registry
    max_frame_bytes: PositiveInt = DEFAULT_MAX_FRAME_BYTES
    batch_frames: PositiveInt = 500  # frames per storage write
    flush_interval_s: PositiveFloat = 0.2  # how long a partial batch waits for more frames
    spool_max_frames: PositiveInt = 1_000_000  # frames waiting for storage; beyond, spool_overflow applies
    spool_overflow: Literal["drop-oldest", "reject-new"] = "drop-oldest"  # reject-new dead-letters the new frame
    spool_sync: Literal["full", "normal"] = "full"  # full: acknowledged frames survive power loss too
    dedup_window_s: PositiveFloat = 3600.0  # how long a stored frame's (node, stream, seq) is remembered
    drain_timeout_s: PositiveFloat = 30.0  # on SIGTERM: how long to keep writing the spool before exiting
    http_host: str = "127.0.0.1"  # the operator endpoints: /metrics, /healthz, /readyz, /nodes
    http_port: int = Field(9108, ge=0, le=65_535)  # 0 picks a free port
    log_format: Literal["text", "json"] = "text"
    offline_after_s: PositiveFloat = 90.0  # a node with no status or data for this long is shown offline
    dead_letter_max: PositiveInt = 10_000
    dead_letter_payload_bytes: PositiveInt = 65_536
    reject_log_interval_s: PositiveFloat = 10.0  # at most one log line per reject cause per interval


def _stream_pattern(value: str) -> str:
    parts = value.split("/")
    if len(parts) != 3:
        raise ValueError("expected SITE/NODE/STREAM, each an identifier or +")
    for part in parts:
        if part != "+":
            _identifier(part)
    return value


StreamPattern = Annotated[str, AfterValidator(_stream_pattern)]


class StreamBinding(Section):
    """Which streams a generative model scores, and how they are brought to its time step."""

    streams: StreamPattern = "+/+/+"  # site/node/stream, "+" matches any one level
    model: GenerativeModel  # MODEL.tflite + .json + .manifest.json without suffix, or a shipped one's name
    period_s: PositiveFloat = 1.0  # the model's time step: samples are averaged into bins of this length
    max_gap_s: PositiveFloat = 10.0  # shorter gaps are interpolated; longer ones restart the stream's context
    warmup_rows: int = Field(300, ge=20)  # model-step rows of each stream kept to calibrate its detector
    alpha: float = Field(0.01, gt=0, lt=1)  # false-alarm rate of the flag on normal data
    forecast_every: PositiveInt = 1  # write the forecast band every Nth row (scores are written for every row)
    # Weight of the state novelty (distance from the warm-up's operating point) beside the one-step surprise. A
    # stream calibrated on its own first minutes cannot tell slow normal drift from a fault's shift: with 1.0,
    # 95 % of normal rows were flagged 8 minutes later; 0 (surprise only) 12.5 %, but a sustained shift is flagged
    # only while the forecast catches up with it (bench/analytics_calibration.py).
    novelty_weight: float = Field(0.0, ge=0)


class AnalyticsSettings(Section):
    enabled: bool = True
    bindings: list[StreamBinding] = []
    decoder: Path | None = None  # the gateway half of a partitioned model (its .manifest.json): decodes embeddings
    # the key every model artifact here must be signed with: the bindings' generative models and the decoder, at
    # start-up and on hot swap (default: edgegen/models/artifacts/edgegen-dev.pub, the shipped artifacts' key)
    public_key: Path | None = None
    alerts_qos: int = Field(1, ge=0, le=1)
    model_check_s: PositiveFloat = 5.0  # how often model files are checked for a new version (hot swap)


class NodeSettings(Section):
    """A virtual node (``edgegen node run``, ``edgegen demo``): firmware_py on CPython."""

    site: Identifier = "demo"
    node_id: Identifier = "node-1"
    stream: Identifier = "vib"
    channels: int = Field(3, ge=1, le=255)
    sample_rate_hz: float = Field(100.0, gt=0, le=1_000_000)
    window: int = Field(50, ge=1, le=65_535)  # samples per frame
    scale: PositiveFloat = 0.001  # physical units per int16 count
    seed: int = 1


class Settings(Section):
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    mqtt: MqttSettings = MqttSettings()
    storage: StorageSettings = StorageSettings()
    gateway: GatewaySettings = GatewaySettings()
    analytics: AnalyticsSettings = AnalyticsSettings()
    node: NodeSettings = NodeSettings()

    def secrets(self) -> list[str]:
        """Every configured secret, once each, for the log redaction filter."""
        return list(dict.fromkeys(self.secret_values()))


def env_layer(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """``EDGEGEN_A__B=v`` -> ``{"a": {"b": "v"}}``, plus which variable set each key path."""
    layer: dict[str, Any] = {}
    origin: dict[tuple[str, ...], str] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG_FILE:
            continue
        path = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        node = layer
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{name}: {'.'.join(path)} conflicts with another EDGEGEN_ variable")
            node = child
        node[path[-1]] = value
        origin[path] = f"environment variable {name}"
    return layer, origin


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _paths(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for key, value in tree.items():
        path = (*prefix, key)
        out.extend(_paths(value, path) if isinstance(value, Mapping) else [path])
    return out


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: not valid TOML: {exc}") from None


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge TOML < environment < flags and validate; raise :class:`ConfigError` naming the first bad key."""
    environ = os.environ if environ is None else environ
    if config_file is None and environ.get(ENV_CONFIG_FILE):
        config_file = Path(environ[ENV_CONFIG_FILE])
    file_layer = read_toml(config_file) if config_file else {}
    env, env_origin = env_layer(environ)
    flags = flags or {}

    origin: dict[tuple[str, ...], str] = dict.fromkeys(_paths(file_layer), f"config file {config_file}")
    origin.update(env_origin)
    origin.update(dict.fromkeys(_paths(flags), "command-line flag"))

    merged = _merge(_merge(file_layer, env), flags)
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin)) from None


def _describe(exc: ValidationError, origin: Mapping[tuple[str, ...], str]) -> str:
    lines = []
    for error in exc.errors():
        path = tuple(str(part) for part in error["loc"])
        key = ".".join(path) or "(root)"
        source = _source(path, origin)
        if error["type"] == "extra_forbidden":
            lines.append(f"{key} (from {source}): unknown key; expected one of {_known_keys(path[:-1])}")
            continue
        ctx = error.get("ctx", {})
        if error["type"] == _CONFLICT_ERROR:
            one, other = (*path, ctx["key"]), (*path, ctx["other"])
            lines.append(
                f"{'.'.join(one)} (from {_source(one, origin)}) and {'.'.join(other)} "
                f"(from {_source(other, origin)}): expected one or the other, not both"
            )
            continue
        value = error["input"]
        if error["type"] == _KEY_ERROR:  # a section's check about one of its keys: name that key
            path, value = (*path, ctx["key"]), ctx["value"]
            key, source = ".".join(path), _source(path, origin)
        expected = error["msg"].removeprefix("Value error, ").removeprefix("Input should be ")
        shown = "<secret>" if path[-1] in SECRET_KEYS else repr(value)
        lines.append(f"{key} = {shown} (from {source}): expected {expected.removeprefix('expected ')}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _source(path: tuple[str, ...], origin: Mapping[tuple[str, ...], str]) -> str:
    """The layer that set ``path``, one of its parents (a scalar where a table belongs) or a child (a section)."""
    for n in range(len(path), 0, -1):
        if path[:n] in origin:
            return origin[path[:n]]
    return next((where for key, where in origin.items() if key[: len(path)] == path), "default")


def _known_keys(section: tuple[str, ...]) -> str:
    model: type[BaseModel] = Settings
    for part in section:
        annotation = model.model_fields[part].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            break
        model = annotation
    return ", ".join(model.model_fields)
