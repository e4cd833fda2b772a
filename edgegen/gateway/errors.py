"""The gateway's error root.

Every error the gateway raises derives from :class:`GatewayError`. ``retryable`` tells the caller what to do:
``True`` means the same operation may succeed later (a server is down), ``False`` means retrying the same input
is pointless (a malformed frame, a bad configuration).
"""

from __future__ import annotations

from edgegen.errors import EdgegenError


class GatewayError(EdgegenError):
    """Root of every error raised by the gateway package."""


class ConfigError(GatewayError):
    """The configuration is invalid; the message names the key and what was expected."""
