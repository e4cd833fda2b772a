"""Resampling a node's samples to a model's time step: bin means, gap filling, segments, late samples."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgegen.gateway.analytics.resample import Resampler, Segment

S = 1_000_000  # one second in microseconds
NAN = float("nan")


def resampler(max_gap_us: int = 10 * S) -> Resampler:
    return Resampler(period_us=S, max_gap_us=max_gap_us, channels=3)


def push(r: Resampler, ts_us: list[int], values: list[list[float]]) -> list[Segment]:
    return r.push(np.asarray(ts_us, dtype=np.int64), np.asarray(values, dtype=np.float64).reshape(-1, 3))


def flat(segments: list[Segment]) -> tuple[list[int], list[list[float]]]:
    ts = [int(t) for s in segments for t in s.ts_us]
    rows = [[float(v) for v in row] for s in segments for row in s.rows]
    return ts, rows


def hundred_hz(second: int) -> tuple[list[int], list[list[float]]]:
    """100 samples in second ``second``: channel 0 counts 0..99 (+100 per second), 1 alternates, 2 is constant."""
    ts = [second * S + i * 10_000 for i in range(100)]
    values = [[second * 100.0 + i, second * 10.0 + (i % 2), -2.25] for i in range(100)]
    return ts, values


def test_bins_are_the_exact_means_of_their_samples() -> None:
    r = resampler()
    ts: list[int] = []
    values: list[list[float]] = []
    for second in range(3):
        t, v = hundred_hz(second)
        ts += t
        values += v

    segments = push(r, [*ts, 3 * S], [*values, [0.0, 0.0, 0.0]])

    assert len(segments) == 1
    (segment,) = segments
    assert segment.restart is False
    assert segment.ts_us.dtype == np.int64
    assert segment.ts_us.tolist() == [0, S, 2 * S]
    assert segment.rows.dtype == np.float64
    assert segment.rows.tolist() == [[49.5, 0.5, -2.25], [149.5, 10.5, -2.25], [249.5, 20.5, -2.25]]
    assert (r.late_samples, r.filled_bins, r.restarts) == (0, 0, 0)


def test_a_bin_is_emitted_only_when_a_later_bin_has_a_sample() -> None:
    r = resampler()
    ts, values = hundred_hz(0)

    assert push(r, ts[:50], values[:50]) == []
    assert push(r, ts[50:], values[50:]) == []
    assert push(r, [S - 1], [[100.0, 0.5, -2.25]]) == []  # still bin 0 (its last microsecond)
    segments = push(r, [S], [[7.0, 8.0, 9.0]])

    # 101 samples in bin 0: channel 0 sums 4950 + 100 = 5050 -> 50; channels 1 and 2 keep their means
    assert flat(segments) == ([0], [[50.0, 0.5, -2.25]])
    assert push(r, [], []) == []  # bin 1 waits for a later sample
    assert flat(push(r, [5 * S // 2], [[0.0, 0.0, 0.0]])) == ([S], [[7.0, 8.0, 9.0]])


def test_nan_samples_are_ignored_and_an_all_nan_channel_repeats_its_last_value() -> None:
    r = resampler()

    segments = push(
        r,
        [0, S // 2, S, S + S // 2, 2 * S, 2 * S + 1, 3 * S],
        [
            [1.0, NAN, 3.0],  # bin 0: means 2, 4, 3 over the finite samples only
            [3.0, 4.0, NAN],
            [5.0, NAN, 6.0],  # bin 1: channel 1 has no finite sample -> repeats 4
            [7.0, NAN, 8.0],
            [NAN, NAN, NAN],  # bin 2: nothing finite -> repeats the whole of bin 1
            [NAN, float("inf"), -float("inf")],  # infinities are not finite either
            [0.0, 0.0, 0.0],
        ],
    )

    assert flat(segments) == ([0, S, 2 * S], [[2.0, 4.0, 3.0], [6.0, 4.0, 7.0], [6.0, 4.0, 7.0]])


def test_an_all_nan_channel_repeats_the_value_of_an_earlier_push() -> None:
    r = resampler()
    assert flat(push(r, [0, S], [[1.0, 2.0, 3.0], [NAN, 5.0, NAN]])) == ([0], [[1.0, 2.0, 3.0]])

    assert flat(push(r, [2 * S], [[0.0, 0.0, 0.0]])) == ([S], [[1.0, 5.0, 3.0]])


def test_a_first_bin_with_an_all_nan_channel_has_nothing_to_repeat_and_is_dropped() -> None:
    r = resampler()

    segments = push(r, [0, S, 2 * S], [[1.0, NAN, 3.0], [4.0, 5.0, 6.0], [0.0, 0.0, 0.0]])

    assert flat(segments) == ([S], [[4.0, 5.0, 6.0]])
    assert segments[0].restart is False
    assert (r.filled_bins, r.restarts) == (0, 0)


def test_a_short_gap_is_filled_by_linear_interpolation() -> None:
    r = resampler()
    assert push(r, [0, S // 2], [[0.0, 4.0, -8.0], [0.0, 4.0, -8.0]]) == []

    segments = push(r, [4 * S, 5 * S], [[4.0, 0.0, 8.0], [1.0, 1.0, 1.0]])  # bins 1, 2 and 3 are missing

    assert len(segments) == 1
    assert segments[0].restart is False
    assert segments[0].ts_us.tolist() == [0, S, 2 * S, 3 * S, 4 * S]
    assert segments[0].rows.tolist() == [
        [0.0, 4.0, -8.0],
        [1.0, 3.0, -4.0],
        [2.0, 2.0, 0.0],
        [3.0, 1.0, 4.0],
        [4.0, 0.0, 8.0],
    ]
    assert (r.filled_bins, r.restarts, r.late_samples) == (3, 0, 0)


def test_max_gap_bins_are_filled_one_more_restarts() -> None:
    r = resampler(max_gap_us=10 * S)

    segments = push(r, [0, 11 * S, 23 * S, 24 * S], [[0.0] * 3, [11.0] * 3, [23.0] * 3, [0.0] * 3])

    # 10 missing bins (1..10) are filled; 11 missing (12..22) start a new segment
    assert [(s.ts_us.tolist(), s.restart) for s in segments] == [
        ([t * S for t in range(12)], False),
        ([23 * S], True),
    ]
    assert segments[0].rows[:, 0].tolist() == [float(t) for t in range(12)]
    assert (r.filled_bins, r.restarts) == (10, 1)


def test_a_long_gap_starts_a_new_segment() -> None:
    r = resampler()
    push(r, [0, S], [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])

    segments = push(r, [21 * S, 22 * S], [[7.0, 8.0, 9.0], [0.0, 0.0, 0.0]])  # 20 s after bin 1

    assert [(s.ts_us.tolist(), s.rows.tolist(), s.restart) for s in segments] == [
        ([S], [[4.0, 5.0, 6.0]], False),
        ([21 * S], [[7.0, 8.0, 9.0]], True),
    ]
    assert (r.restarts, r.filled_bins) == (1, 0)

    # the next bin continues the new segment
    assert [(s.ts_us.tolist(), s.restart) for s in push(r, [23 * S], [[0.0] * 3])] == [([22 * S], False)]


def test_late_samples_are_counted_and_skipped() -> None:
    r = resampler()
    push(r, [0, S, 2 * S + 5], [[1.0] * 3, [2.0] * 3, [10.0] * 3])  # bin 2 is being filled

    segments = push(
        r,
        [S + 10, 2 * S, 0, 2 * S + 7, S + 20, 3 * S],  # three samples of bins 0 and 1 arrive late
        [[100.0] * 3, [20.0] * 3, [100.0] * 3, [30.0] * 3, [100.0] * 3, [0.0] * 3],
    )

    assert r.late_samples == 3
    assert flat(segments) == ([2 * S], [[20.0, 20.0, 20.0]])  # (10 + 20 + 30) / 3: the late ones left out
    # out of order inside one call: bin 4 is open, a bin-3 sample after it is late
    assert flat(push(r, [4 * S, 3 * S + 1, 5 * S], [[1.0] * 3, [100.0] * 3, [0.0] * 3])) == (
        [3 * S, 4 * S],
        [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]],
    )
    assert r.late_samples == 4


def test_negative_timestamps_floor_to_their_bin() -> None:
    r = resampler()

    segments = push(r, [-S - 1, -S, -1, 0], [[1.0] * 3, [3.0] * 3, [5.0] * 3, [0.0] * 3])

    assert flat(segments) == ([-2 * S, -S], [[1.0] * 3, [4.0] * 3])


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="period_us must be positive"):
        Resampler(period_us=0, max_gap_us=S, channels=3)
    with pytest.raises(ValueError, match="2 channels, expected 3"):
        resampler().push(np.zeros(1, dtype=np.int64), np.zeros((1, 2)))


# -- chunking invariance -------------------------------------------------------------------------------------


@st.composite
def streams(draw: st.DrawFn) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], list[int]]:
    n = draw(st.integers(1, 100))
    step = st.one_of(
        st.integers(0, 600_000),  # 0.6 s at most: several samples per bin
        st.integers(1, 5).map(lambda k: k * S),  # a short gap
        st.integers(11, 30).map(lambda k: k * S),  # a gap past max_gap
        st.integers(-1_500_000, -1),  # a late sample
    )
    steps = draw(hnp.arrays(np.int64, n, elements=step))
    ts = np.cumsum(steps) + draw(st.integers(-50 * S, 50 * S))
    # small integers and NaN (a quarter): every sum and mean is exact, any order of summation gives the same bits
    raw = np.frombuffer(draw(st.binary(min_size=3 * n, max_size=3 * n)), dtype=np.uint8).reshape(n, 3)
    values = np.where(raw % 4 == 3, NAN, (raw >> 2).astype(np.float64) - 32.0)
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=8)))
    return ts, values, cuts


def _run(
    ts: npt.NDArray[np.int64], values: npt.NDArray[np.float64], cuts: list[int]
) -> tuple[list[int], bytes, list[int], tuple[int, int, int]]:
    r = resampler()
    segments: list[Segment] = []
    bounds = [0, *cuts, len(ts)]
    for a, b in itertools.pairwise(bounds):
        segments += r.push(ts[a:b], values[a:b])
    stamps = [int(t) for s in segments for t in s.ts_us]
    rows = np.concatenate([s.rows for s in segments]) if segments else np.zeros((0, 3))
    restarts_at = [int(s.ts_us[0]) for s in segments if s.restart]
    return stamps, rows.tobytes(), restarts_at, (r.late_samples, r.filled_bins, r.restarts)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(stream=streams())
def test_any_chunking_gives_exactly_what_one_push_gives(
    stream: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], list[int]],
) -> None:
    ts, values, cuts = stream

    whole = _run(ts, values, [])
    chunked = _run(ts, values, cuts)

    assert chunked == whole
    one_by_one = _run(ts, values, list(range(1, len(ts))))
    assert one_by_one == whole
