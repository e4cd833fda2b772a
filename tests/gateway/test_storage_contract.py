"""The storage contract: what every backend (edgegen/gateway/storage) promises, run against each of them.

- ``write`` returns the number of values stored, and every value reads back with its measurement, tags, field and
  the node's timestamp;
- writes are idempotent: a point is identified by measurement, tag set and timestamp, so re-sending a batch
  changes nothing and a later write of the same point replaces its values;
- outputs of two model versions for the same step are two points (R10);
- non-finite sample values are left out and counted (``Record.nonfinite``), never stored; a derived value that is
  not finite is refused with ``LineProtocolError`` and nothing of its batch is stored;
- errors are the typed storage errors: not open, closed or unreachable -> ``StorageUnavailable``; refused for
  good -> ``StorageRejected``;
- backends that count (``ValueCounter``) count exactly what was stored, per node and stream, by site and time.

sqlite runs on a real file and influx1 against a real influxd 1.6.7. influx2 runs against a recording HTTP server
(no InfluxDB 2.x/3.x can be installed on the test machines): the suite checks what the backend sends, request by
request, read back as InfluxDB's point identity says it would be stored (tests/support/storage_backends.py); how a
real 2.x/3.x server answers queries is not tested, and its answers to errors are the documented ones, scripted.
What only one backend does lives in test_storage_sqlite.py, test_storage_influx1.py and test_storage_influx2.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from edgegen.gateway.storage import (
    LineProtocolError,
    Storage,
    StorageRejected,
    StorageUnavailable,
    ValueCounter,
)
from edgegen.gateway.storage.records import Derived, Point, Writable
from tests.support.servers import InfluxDB
from tests.support.storage_backends import (
    Backend,
    Harness,
    Influx1Backend,
    Influx2Backend,
    Row,
    SqliteBackend,
)
from tests.support.storage_records import embedding_record, float_record, record, scores

T0 = 1_700_000_000_000_000
SAMPLE_TAGS = (("node", "n1"), ("site", "s1"), ("stream", "vib"))


@pytest.fixture(params=["sqlite", pytest.param("influx1", marks=pytest.mark.influxdb), "influx2"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return SqliteBackend(tmp_path)
    if request.param == "influx1":
        influxdb: InfluxDB = request.getfixturevalue("influxdb")
        return Influx1Backend(influxdb)
    return Influx2Backend()


@asynccontextmanager
async def opened(storage: Storage) -> AsyncIterator[Storage]:
    await storage.open()
    try:
        yield storage
    finally:
        await storage.close()


def _samples(node: str, ts: int, **fields: float) -> set[Row]:
    tags = (("node", node), ("site", "s1"), ("stream", "vib"))
    return {("samples", tags, ts, name, value) for name, value in fields.items()}


def _scores(version: str, ts: int, score: float) -> set[Row]:
    tags = (("model", "skab"), ("model_version", version), *SAMPLE_TAGS)
    return {("scores", tags, ts, "score", score), ("scores", tags, ts, "flag", 0.0)}


def test_write_returns_the_values_stored_and_each_reads_back_with_its_tags_and_timestamp(backend: Backend) -> None:
    batch: list[Writable] = [
        record(),
        record(node="n2", seq=1, values=[[-2, 0]]),
        embedding_record(),
        scores("a" * 12),
    ]

    async def use(h: Harness) -> tuple[int, set[Row]]:
        async with opened(h.storage()) as s:
            n = await s.write(batch)
        return n, await h.stored()

    n, stored = backend.run(use)
    emb_tags = (("node", "n1"), ("site", "s1"), ("stream", "emb"))
    assert n == 4 + 2 + 3 + 2
    assert stored == (
        _samples("n1", T0, c0=0.5, c1=0.5)  # int16 counts times each channel's scale (0.5, 0.25)
        | _samples("n1", T0 + 1000, c0=1.5, c1=1.0)
        | _samples("n2", T0, c0=-1.0, c1=0.0)
        | {("embeddings", emb_tags, 2_000_000, f"e{i}", v) for i, v in enumerate((-63.5, 0.5, 64.0))}
        | _scores("a" * 12, T0, 0.5)
    )


def test_rewriting_a_batch_changes_nothing_and_a_later_write_of_a_point_replaces_its_values(
    backend: Backend,
) -> None:
    batch: list[Writable] = [record(), record(node="n2", t0_us=T0 + 2000), scores("aaaaaaaaaaaa", score=0.25)]

    async def use(h: Harness) -> tuple[list[int], set[Row], set[Row]]:
        async with opened(h.storage()) as s:
            counts = [await s.write(batch), await s.write(batch)]
            once = await h.stored()
            counts.append(await s.write([scores("aaaaaaaaaaaa", score=0.75), record(values=[[7, 8], [3, 4]])]))
        return counts, once, await h.stored()

    counts, once, after = backend.run(use)
    assert counts == [10, 10, 6]
    assert len(once) == 10
    assert after == (once - _scores("aaaaaaaaaaaa", T0, 0.25) - _samples("n1", T0, c0=0.5, c1=0.5)) | (
        _scores("aaaaaaaaaaaa", T0, 0.75) | _samples("n1", T0, c0=3.5, c1=2.0)
    )


def test_two_model_versions_never_overwrite_each_other(backend: Backend) -> None:
    """R10: the outputs of two model versions for the same step are two points; re-sending either changes
    nothing."""
    batch = [scores("aaaaaaaaaaaa", score=0.25), scores("bbbbbbbbbbbb", score=0.75)]

    async def use(h: Harness) -> tuple[list[int], set[Row]]:
        async with opened(h.storage()) as s:
            counts = [await s.write(batch), await s.write(batch[::-1])]
        return counts, await h.stored()

    counts, stored = backend.run(use)
    assert counts == [4, 4]
    assert stored == _scores("aaaaaaaaaaaa", T0, 0.25) | _scores("bbbbbbbbbbbb", T0, 0.75)


def test_non_finite_sample_values_are_left_out_and_counted(backend: Backend) -> None:
    nan, inf = float("nan"), float("inf")
    frame = float_record([[0.25, nan], [inf, -2.5], [nan, -inf]], t0_us=T0)  # the last sample has no value left

    async def use(h: Harness) -> tuple[int, set[Row]]:
        async with opened(h.storage()) as s:
            n = await s.write([frame])
        return n, await h.stored()

    n, stored = backend.run(use)
    assert (frame.nonfinite, frame.storable_values, n) == (4, 2, 2)
    raw = (("node", "n1"), ("site", "s1"), ("stream", "raw"))
    assert stored == {("samples", raw, T0, "c0", 0.25), ("samples", raw, T0 + 10, "c1", -2.5)}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_derived_value_that_is_not_finite_is_refused_and_nothing_of_its_batch_is_stored(
    backend: Backend, value: float
) -> None:
    bad = Derived("s1", "n1", "vib", (Point("scores", SAMPLE_TAGS, (("score", 0.5), ("p", value)), T0),))

    async def use(h: Harness) -> set[Row]:
        async with opened(h.storage()) as s:
            with pytest.raises(LineProtocolError, match="non-finite field value"):
                await s.write([record(), bad])
        return await h.stored()

    assert backend.run(use) == set()


def test_writing_before_open_or_after_close_is_unavailable(backend: Backend) -> None:
    async def use(h: Harness) -> list[str]:
        storage = h.storage()
        errors = []
        with pytest.raises(StorageUnavailable) as before:
            await storage.write([record()])
        errors.append(str(before.value))
        async with opened(storage) as s:
            assert await s.write([record()]) == 4
        with pytest.raises(StorageUnavailable) as after:
            await storage.write([record()])
        errors.append(str(after.value))
        await storage.close()  # closing twice is harmless
        return errors

    assert [e.endswith("storage is not open") for e in backend.run(use)] == [True, True]


def test_an_unreachable_backend_is_unavailable_and_retryable(backend: Backend) -> None:
    async def use(h: Harness) -> StorageUnavailable:
        with pytest.raises(StorageUnavailable) as caught:
            async with opened(h.unreachable()) as s:  # open may find out (influx1, sqlite), or the write
                await s.write([record()])
        return caught.value

    assert backend.run(use).retryable is True


def test_a_backend_that_refuses_the_write_for_good_is_rejected_and_not_retryable(backend: Backend) -> None:
    async def use(h: Harness) -> tuple[StorageRejected, set[Row]]:
        with pytest.raises(StorageRejected) as caught:
            async with opened(h.refusing()) as s:
                await s.write([record()])
        return caught.value, await h.stored()

    error, stored = backend.run(use)
    assert error.retryable is False
    assert stored == set()
    if backend.name != "sqlite":  # HTTP backends keep the status for the writer (404: a missing database/bucket)
        assert error.status == 404


@pytest.mark.parametrize("counter", ["sqlite", pytest.param("influx1", marks=pytest.mark.influxdb)])
def test_counting_backends_count_what_was_stored_by_site_and_time(
    counter: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    backend: Backend = (
        SqliteBackend(tmp_path) if counter == "sqlite" else Influx1Backend(request.getfixturevalue("influxdb"))
    )
    nan = float("nan")
    batch: list[Writable] = [
        record(),
        record(node="n2", t0_us=T0 + 2000),
        record(site="other"),
        float_record([[1.0, nan], [nan, nan]], t0_us=T0),  # one value of four: counted as stored, once
        scores("aaaaaaaaaaaa"),  # derived points are not samples
    ]

    async def use(h: Harness) -> list[dict[tuple[str, str], int]]:
        async with opened(h.storage()) as s:
            assert isinstance(s, ValueCounter)
            await s.write(batch)
            await s.write(batch)
            return [await s.count_values("s1"), await s.count_values("s1", T0 + 1000), await s.count_values("x")]

    everything, since, other = backend.run(use)
    assert everything == {("n1", "vib"): 4, ("n2", "vib"): 4, ("n1", "raw"): 1}
    assert since == {("n1", "vib"): 2, ("n2", "vib"): 4}
    assert other == {}
