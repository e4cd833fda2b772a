"""Storage backends behind one interface: embedded SQLite (default), InfluxDB 1.x, InfluxDB 2.x/3.x."""

from __future__ import annotations

from edgegen.gateway.config import StorageSettings
from edgegen.gateway.errors import ConfigError
from edgegen.gateway.storage.base import Storage, ValueCounter
from edgegen.gateway.storage.errors import LineProtocolError, StorageError, StorageRejected, StorageUnavailable
from edgegen.gateway.storage.records import Record


def create_storage(settings: StorageSettings) -> Storage:
    """The backend ``settings.kind`` names, configured but not yet opened."""
    if settings.kind == "sqlite":
        from edgegen.gateway.storage.sqlite import SqliteStorage

        return SqliteStorage(settings.sqlite_path)
    if settings.kind == "influx1":
        from edgegen.gateway.storage.influx1 import Influx1Storage

        return Influx1Storage(
            settings.influx_url,
            settings.database,
            settings.username,
            settings.password_value(),
            settings.timeout_s,
            settings.create_database,
        )
    from edgegen.gateway.storage.influx2 import Influx2Storage

    token = settings.token_value()
    if token is None:
        raise ConfigError("storage.token or storage.token_file: required when storage.kind = 'influx2'")
    return Influx2Storage(settings.influx_url, settings.org, settings.bucket, token, settings.timeout_s)


__all__ = [
    "LineProtocolError",
    "Record",
    "Storage",
    "StorageError",
    "StorageRejected",
    "StorageUnavailable",
    "ValueCounter",
    "create_storage",
]
