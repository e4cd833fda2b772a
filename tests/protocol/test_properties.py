"""Property tests of the reference codec and of the firmware encoder running on CPython."""

from __future__ import annotations

import contextlib
from array import array

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegen.firmware_py import frame as fw
from edgegen.gateway.protocol import (
    BadChecksum,
    Encoding,
    Frame,
    FrameError,
    Truncated,
    decode,
    decode_message,
    encode,
    from_json,
    to_json,
)
from tests.protocol.strategies import frames


@given(frames())
def test_binary_round_trip(frame: Frame) -> None:
    assert decode(encode(frame)) == frame


@pytest.mark.slow
@given(frames(finite=True))
def test_json_round_trip(frame: Frame) -> None:
    assert from_json(to_json(frame)) == frame


@given(frames())
def test_json_writes_non_finite_float32_as_null(frame: Frame) -> None:
    back = from_json(to_json(frame))
    if frame.encoding is Encoding.FLOAT32:
        original = frame.values.astype(np.float64)
        assert np.array_equal(np.isfinite(original), np.isfinite(back.values))
        finite = np.isfinite(original)
        assert np.array_equal(original[finite], back.values.astype(np.float64)[finite])
        assert np.isnan(back.values[~finite]).all()
    else:
        assert back == frame


@given(frames(), st.data())
def test_every_proper_prefix_is_truncated(frame: Frame, data: st.DataObject) -> None:
    raw = encode(frame)
    cut = data.draw(st.integers(0, len(raw) - 1))
    prefix = raw[:cut]
    if cut >= 3 or prefix == b"EG"[:cut]:
        try:
            decode(prefix)
        except Truncated:
            return
        raise AssertionError(f"prefix of {cut} bytes not reported as truncated")


@given(frames(), st.data())
def test_every_single_bit_flip_is_rejected(frame: Frame, data: st.DataObject) -> None:
    raw = bytearray(encode(frame))
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    try:
        decode(bytes(raw))
    except FrameError as exc:
        node_end = 30 + len(frame.node_id)
        if bit // 8 >= node_end:  # params, payload, checksum: nothing but the CRC can notice
            assert isinstance(exc, BadChecksum)
        return
    raise AssertionError("a corrupted frame decoded")


@settings(max_examples=500)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_decoder(raw: bytes) -> None:
    with contextlib.suppress(FrameError):  # anything else fails the test
        decode_message(raw)


@given(frames())
def test_firmware_encoder_on_cpython_matches_the_reference(frame: Frame) -> None:
    encoder = fw.FrameEncoder(
        frame.node_id,
        frame.n_samples,
        frame.n_channels,
        frame.period_us,
        int(frame.encoding),
        list(frame.scales),
        frame.zero_point,
        int(frame.msg_type),
    )
    samples = array(fw.typecode(int(frame.encoding)), frame.values.tobytes())
    assert bytes(encoder.encode(frame.seq, frame.t0_us, samples, frame.flags)) == encode(frame)


@pytest.mark.slow
@given(frames())
def test_firmware_decoder_on_cpython_reads_reference_frames(frame: Frame) -> None:
    fields = fw.decode(encode(frame))
    assert (fields["node"], fields["seq"], fields["t0_us"], fields["period_us"]) == (
        frame.node_id,
        frame.seq,
        frame.t0_us,
        frame.period_us,
    )
    assert (fields["n_samples"], fields["n_channels"], fields["flags"]) == (
        frame.n_samples,
        frame.n_channels,
        frame.flags,
    )
    assert fields["values"].tobytes() == frame.values.tobytes()
    assert fields["scales"] == list(frame.scales)
