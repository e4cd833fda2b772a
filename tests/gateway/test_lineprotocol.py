from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegen.gateway.protocol import Encoding, Frame
from edgegen.gateway.storage import lineprotocol as lp
from edgegen.gateway.storage.errors import LineProtocolError
from edgegen.gateway.storage.records import Point, Record, points
from tests.support.storage_records import embedding_record, float_record, record


def test_a_record_becomes_one_line_per_sample_with_node_timestamps() -> None:
    lines, values = lp.encode_records([record()])
    assert lines == [
        "samples,node=n1,site=s1,stream=vib c0=0.5,c1=0.5 1700000000000000",
        "samples,node=n1,site=s1,stream=vib c0=1.5,c1=1.0 1700000000001000",
    ]
    assert values == 4


def test_embeddings_go_to_their_own_measurement() -> None:
    lines, _ = lp.encode_records([embedding_record()])
    assert lines == ["embeddings,node=n1,site=s1,stream=emb e0=-63.5,e1=0.5,e2=64.0 2000000"]


def test_non_finite_values_are_left_out_and_counted() -> None:
    rec = float_record([[1.0, float("nan")], [float("inf"), float("-inf")], [0.25, 2.0]])
    assert rec.nonfinite == 3
    assert rec.storable_values == 3
    lines, values = lp.encode_records([rec])
    assert lines == [
        "samples,node=n1,site=s1,stream=raw c0=1.0 0",
        "samples,node=n1,site=s1,stream=raw c0=0.25,c1=2.0 20",
    ]
    assert values == 3


def test_floats_keep_every_bit() -> None:
    rec = float_record([[0.1, 3.4028234663852886e38], [1e-45, -0.0]])
    values = [v for p in points(rec) for _, v in p.fields]
    texts = [field.split("=")[1] for line in lp.lines(points(rec)) for field in line.split(" ")[1].split(",")]
    assert [float(t) for t in texts] == values


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [("a b", r"a\ b"), ("a,b", r"a\,b"), ("a=b", r"a\=b"), ('a"b', 'a"b'), ("a\\b", "a\\b"), ("ü", "ü")],
)
def test_keys_escape_what_line_protocol_needs(raw: str, escaped: str) -> None:
    assert lp.key(raw) == escaped


def test_measurement_escapes_comma_and_space_but_not_equals() -> None:
    assert lp.measurement("a b,c=d") == r"a\ b\,c=d"


@pytest.mark.parametrize("bad", ["", "a\nb", "a\rb", "tail\\"])
def test_unrepresentable_names_are_refused(bad: str) -> None:
    with pytest.raises(LineProtocolError):
        lp.key(bad)


def test_a_comment_like_measurement_is_refused() -> None:
    with pytest.raises(LineProtocolError):
        lp.measurement("#samples")


def test_non_finite_field_and_empty_point_are_refused() -> None:
    with pytest.raises(LineProtocolError):
        lp.float_value(float("nan"))
    with pytest.raises(LineProtocolError):
        lp.line(Point("m", (), (), 0))


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.floats(width=32) | st.sampled_from([math.nan, math.inf, -0.0]), min_size=3, max_size=3),
        min_size=1,
        max_size=20,
    ),
    st.sampled_from(["n1", "node 2", "a,b=c"]),
)
def test_the_per_record_fast_path_writes_exactly_the_per_point_lines(rows: list[list[float]], node: str) -> None:
    """``record_lines`` escapes the tag set and keys once per record; its lines must be ``line()``'s, byte for
    byte, non-finite values included (left out, and counted by the value total)."""
    frame = Frame("n1", 0, 1_700_000_000_000_000, 1000, Encoding.FLOAT32, np.asarray(rows, dtype=np.float32))
    rec = Record(
        site="s1", stream=node, frame=frame, nonfinite=int(np.count_nonzero(~np.isfinite(frame.physical())))
    )
    pts = list(points(rec))
    assert lp.record_lines(rec) == ([lp.line(p) for p in pts], sum(len(p.fields) for p in pts))
