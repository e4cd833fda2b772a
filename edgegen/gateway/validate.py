"""From an MQTT message to a storable :class:`Record`, or a typed rejection."""

from __future__ import annotations

from edgegen.gateway.protocol import BadTopic, Channel, NodeMismatch, decode_message, parse_topic
from edgegen.gateway.storage.records import Record


def validate(topic: str, payload: bytes, max_frame_bytes: int) -> Record:
    """Decode a data-topic message and check it against its topic; raise a FrameError leaf if it is bad."""
    parsed = parse_topic(topic)
    if parsed.channel is not Channel.DATA or parsed.name is None:
        raise BadTopic(f"{topic!r} is not a data topic")
    frame = decode_message(payload, max_frame_bytes)
    if frame.node_id != parsed.node:
        raise NodeMismatch(f"frame from node {frame.node_id!r} published on {parsed.node!r}'s topic")
    return Record.of(parsed.site, parsed.name, frame)
