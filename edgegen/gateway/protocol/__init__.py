"""Wire protocol v1: topic tree, binary frame, JSON form (docs/protocol.md).

This is the reference codec, shared by the gateway and the simulators; ``firmware_py.frame`` is the node-side
encoder of the same bytes.
"""

from edgegen.gateway.protocol.errors import (
    BadChecksum,
    BadMagic,
    BadTopic,
    DeclaredLengthTooLarge,
    FrameError,
    FrameTooLarge,
    InvalidField,
    LengthMismatch,
    MalformedJson,
    NodeMismatch,
    Truncated,
    UnsupportedVersion,
)
from edgegen.gateway.protocol.frame import (
    DEFAULT_MAX_FRAME_BYTES,
    Encoding,
    Flag,
    Frame,
    MessageType,
    decode,
    encode,
)
from edgegen.gateway.protocol.jsonform import from_json, is_json, to_json
from edgegen.gateway.protocol.topics import Channel, Topic, data_filter, data_topic, parse_topic, status_topic


def decode_message(
    payload: bytes | bytearray | memoryview, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
) -> Frame:
    """Decode a data-topic payload in either form: binary (``EG``...) or JSON (``{``...)."""
    if len(payload) > max_frame_bytes:
        raise FrameTooLarge(f"{len(payload)} bytes exceeds the {max_frame_bytes}-byte limit")
    if is_json(payload):
        return from_json(payload, max_frame_bytes)
    return decode(payload, max_frame_bytes)


__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "BadChecksum",
    "BadMagic",
    "BadTopic",
    "Channel",
    "DeclaredLengthTooLarge",
    "Encoding",
    "Flag",
    "Frame",
    "FrameError",
    "FrameTooLarge",
    "InvalidField",
    "LengthMismatch",
    "MalformedJson",
    "MessageType",
    "NodeMismatch",
    "Topic",
    "Truncated",
    "UnsupportedVersion",
    "data_filter",
    "data_topic",
    "decode",
    "decode_message",
    "encode",
    "from_json",
    "is_json",
    "parse_topic",
    "status_topic",
    "to_json",
]
