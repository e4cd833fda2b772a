"""Typed rejections for wire-protocol input.

Each leaf carries ``cause``, the label its counter and dead-letter record use. None is retryable: the same bytes
will be rejected again.
"""

from __future__ import annotations

from typing import ClassVar

from edgegen.gateway.errors import GatewayError


class FrameError(GatewayError):
    """A message that is not a valid protocol v1 frame."""

    cause: ClassVar[str] = "invalid"
    retryable = False


class FrameTooLarge(FrameError):
    """The message exceeds the configured maximum frame size."""

    cause = "too_large"


class Truncated(FrameError):
    """The message ends before the frame it declares."""

    cause = "truncated"


class BadMagic(FrameError):
    """The message starts with neither the binary magic nor a JSON object."""

    cause = "bad_magic"


class UnsupportedVersion(FrameError):
    """The frame declares a protocol version this gateway does not speak."""

    cause = "unsupported_version"


class DeclaredLengthTooLarge(FrameError):
    """The frame declares a payload larger than any frame this gateway accepts (checked before reading it)."""

    cause = "declared_length"


class LengthMismatch(FrameError):
    """The declared payload length disagrees with the shape, or bytes trail the frame."""

    cause = "length_mismatch"


class BadChecksum(FrameError):
    """The CRC-32 over the frame does not match the trailer."""

    cause = "bad_checksum"


class InvalidField(FrameError):
    """A field has the wrong type or a value outside its range (unknown encoding, zero period, ...)."""

    cause = "invalid_field"


class MalformedJson(FrameError):
    """A JSON-form frame that is not parseable JSON, or not a JSON object."""

    cause = "malformed_json"


class BadTopic(FrameError):
    """The topic is not part of protocol v1's topic tree."""

    cause = "bad_topic"


class NodeMismatch(FrameError):
    """The node id inside the frame differs from the node id in the topic."""

    cause = "node_mismatch"
