"""edgegen configuration: a TOML file, overridden by environment variables, overridden by command-line flags.

Each layer is a nested dict; the merged result is validated by pydantic at start-up. A bad value produces a
:class:`~gateway.errors.ConfigError` naming the key, the layer it came from and what was expected, e.g.::

    storage.kind = 'mysql' (from environment variable EDGEGEN_STORAGE__KIND):
        expected 'sqlite', 'influx1' or 'influx2'

Environment variables are ``EDGEGEN_<SECTION>__<KEY>`` (``EDGEGEN_MQTT__URL=mqtt://broker:1883``);
``EDGEGEN_CONFIG`` names the TOML file. docs/configuration.md lists every key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
)

from gateway.errors import ConfigError
from gateway.protocol.frame import DEFAULT_MAX_FRAME_BYTES
from gateway.protocol.topics import check_identifier

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


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttSettings(Section):
    url: MqttUrl = "mqtt://127.0.0.1:1883"
    client_id: Identifier = "edgegen-gateway"
    site: Wildcard = "+"  # the site whose nodes this gateway serves; "+" for every site
    keepalive_s: PositiveInt = 30
    timeout_s: PositiveFloat = 10.0  # bound on connect, subscribe and publish

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"


class StorageSettings(Section):
    kind: Literal["sqlite", "influx1", "influx2"] = "sqlite"
    sqlite_path: Path = Path("edgegen-data/edgegen.sqlite")
    influx_url: HttpUrl = "http://127.0.0.1:8086"
    timeout_s: PositiveFloat = 10.0
    # InfluxDB 1.x
    database: str = Field("edgegen", min_length=1)
    username: str | None = None
    password: SecretStr | None = None
    create_database: bool = True
    # InfluxDB 2.x / 3.x
    org: str = "edgegen"
    bucket: str = "edgegen"
    token: SecretStr | None = None


class GatewaySettings(Section):
    state_dir: Path = Path("edgegen-data")  # dead letters and, later, the spool
    max_frame_bytes: PositiveInt = DEFAULT_MAX_FRAME_BYTES
    queue_frames: PositiveInt = 10_000  # accepted frames waiting for storage (back-pressure beyond)
    batch_frames: PositiveInt = 500
    flush_interval_s: PositiveFloat = 0.2
    dead_letter_max: PositiveInt = 10_000
    dead_letter_payload_bytes: PositiveInt = 65_536
    reject_log_interval_s: PositiveFloat = 10.0  # at most one log line per reject cause per interval


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
    node: NodeSettings = NodeSettings()


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
        expected = error["msg"].removeprefix("Value error, ").removeprefix("Input should be ")
        shown = "<secret>" if path[-1] in SECRET_KEYS else repr(error["input"])
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
