"""Hypothesis strategies for protocol v1 frames."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgegen.gateway.protocol import Encoding, Flag, Frame, MessageType

node_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", fullmatch=True)
float32_scales = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True, width=32).filter(
    lambda x: x != 0
)


@st.composite
def frames(draw: st.DrawFn, finite: bool = False) -> Frame:
    encoding = draw(st.sampled_from(list(Encoding)))
    n_samples = draw(st.integers(1, 20))
    n_channels = draw(st.integers(1, 8))
    if encoding is Encoding.FLOAT32:
        elements = st.floats(width=32, allow_nan=not finite, allow_infinity=not finite)
    else:
        info = np.iinfo(encoding.dtype)
        elements = st.integers(int(info.min), int(info.max))
    values = draw(hnp.arrays(encoding.dtype, (n_samples, n_channels), elements=elements))
    n_scales = {Encoding.INT16: n_channels, Encoding.INT8: 1, Encoding.FLOAT32: 0}[encoding]
    return Frame(
        node_id=draw(node_ids),
        seq=draw(st.integers(0, 2**32 - 1)),
        t0_us=draw(st.integers(-(2**63), 2**63 - 1)),
        period_us=draw(st.integers(1, 2**32 - 1)),
        encoding=encoding,
        values=values,
        scales=tuple(draw(st.lists(float32_scales, min_size=n_scales, max_size=n_scales))),
        zero_point=draw(st.integers(-128, 127)) if encoding is Encoding.INT8 else 0,
        msg_type=draw(st.sampled_from(list(MessageType))),
        flags=draw(st.sampled_from([0, int(Flag.EVENT)])),
    )
