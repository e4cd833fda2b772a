"""The simulators' error root."""

from __future__ import annotations


class SimulatorError(Exception):
    """Root of every error raised by the simulators package."""

    retryable: bool = False


class LinkError(SimulatorError):
    """A virtual node's MQTT link failed (broker unreachable, no acknowledgement in time): may pass on retry."""

    retryable = True
