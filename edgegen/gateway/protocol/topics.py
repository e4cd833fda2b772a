"""Protocol v1's MQTT topic tree.

``edgegen/v1/{site}/{node}/{channel}[/{name}]``, where channel is one of ``data``, ``status``, ``cmd``, ``alerts``
and ``model`` (see docs/protocol.md). Identifiers are ASCII, 1-64 characters, and never start with ``_``, which is
reserved for the gateway's own topics.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from edgegen.gateway.protocol.errors import BadTopic

ROOT = "edgegen"
VERSION = "v1"
PREFIX = f"{ROOT}/{VERSION}"
GATEWAY_SEGMENT = "_gateway"

IDENTIFIER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class Channel(enum.StrEnum):
    """The third level below a node: what the topic carries."""

    DATA = "data"  # node -> gateway: frames, one stream per topic
    STATUS = "status"  # node -> all: retained JSON; the last will says "offline"
    CMD = "cmd"  # operator -> node: commands
    ALERTS = "alerts"  # gateway -> all: anomaly alerts per stream
    MODEL = "model"  # gateway -> node: retained signed model manifests, per slot


_NAMED = frozenset({Channel.DATA, Channel.CMD, Channel.ALERTS, Channel.MODEL})


def check_identifier(value: str, what: str) -> str:
    """Return ``value`` if it is a valid site / node / stream / command identifier, else raise ValueError."""
    if not IDENTIFIER_PATTERN.fullmatch(value):
        raise ValueError(f"{what} {value!r} must match {IDENTIFIER_PATTERN.pattern}")
    return value


@dataclass(frozen=True, slots=True)
class Topic:
    """One topic of a node: ``edgegen/v1/{site}/{node}/{channel}[/{name}]``."""

    site: str
    node: str
    channel: Channel
    name: str | None = None

    def __post_init__(self) -> None:
        check_identifier(self.site, "site")
        check_identifier(self.node, "node")
        if self.channel in _NAMED:
            if self.name is None:
                raise ValueError(f"a {self.channel} topic needs a name")
            check_identifier(self.name, f"{self.channel} name")
        elif self.name is not None:
            raise ValueError(f"a {self.channel} topic has no name")

    def __str__(self) -> str:
        base = f"{PREFIX}/{self.site}/{self.node}/{self.channel}"
        return base if self.name is None else f"{base}/{self.name}"


def data_topic(site: str, node: str, stream: str) -> Topic:
    return Topic(site, node, Channel.DATA, stream)


def status_topic(site: str, node: str) -> Topic:
    return Topic(site, node, Channel.STATUS)


def gateway_status_topic(site: str, gateway_id: str) -> str:
    """The gateway's own retained status topic (``_gateway`` can never collide with a node id)."""
    check_identifier(site, "site")
    check_identifier(gateway_id, "gateway id")
    return f"{PREFIX}/{site}/{GATEWAY_SEGMENT}/{gateway_id}/status"


def data_filter(site: str = "+") -> str:
    """Subscription filter for every node's data streams at ``site`` (default: all sites)."""
    return f"{PREFIX}/{site}/+/{Channel.DATA}/+"


def status_filter(site: str = "+") -> str:
    """Subscription filter for every node's status (and last will) at ``site`` (default: all sites)."""
    return f"{PREFIX}/{site}/+/{Channel.STATUS}"


def parse_topic(topic: str) -> Topic:
    """Parse a node topic; raise :class:`BadTopic` for anything outside the v1 tree."""
    parts = topic.split("/")
    if len(parts) not in (5, 6) or parts[0] != ROOT or parts[1] != VERSION:
        raise BadTopic(f"not a {PREFIX} node topic: {topic!r}")
    try:
        channel = Channel(parts[4])
        return Topic(parts[2], parts[3], channel, parts[5] if len(parts) == 6 else None)
    except ValueError as exc:
        raise BadTopic(f"{topic!r}: {exc}") from None
