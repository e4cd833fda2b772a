"""The hil package's error root."""

from __future__ import annotations


class HilError(Exception):
    retryable: bool = False


class DeployError(HilError):
    """Deployment cannot proceed: a bad configuration, a missing tool, a board that refused a copy."""
