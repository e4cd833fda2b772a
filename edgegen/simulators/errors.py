"""The simulators' error root."""

from __future__ import annotations

from edgegen.errors import EdgegenError


class SimulatorError(EdgegenError):
    """Root of every error raised by the simulators package."""


class LinkError(SimulatorError):
    """A virtual node's MQTT link failed (broker unreachable, no acknowledgement in time): may pass on retry."""

    retryable = True


class SimulationSpecError(SimulatorError):
    """A synthetic-sensor or fault-injection parameter is unknown or out of range; ``option`` names it."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option
        self.message = message


class CaptureCorrupt(SimulatorError):
    """An MQTT capture file is damaged before its end (a torn last record is not damage): names the byte offset."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class UnsupportedCaptureVersion(SimulatorError):
    """An MQTT capture file written in a format version this code does not read."""


class NetFaultsError(SimulationSpecError, ValueError):
    """A network-fault parameter (simulators.netfaults.NetFaults) is out of range; ``option`` names the field."""
