"""Loaders that turn data sets into Series: SKAB, Tennessee Eastman, timestamped CSV, InfluxDB exports, and what
the gateway stored (the simulators' output)."""

from edgegen.models.data.series import Series

__all__ = ["Series"]
