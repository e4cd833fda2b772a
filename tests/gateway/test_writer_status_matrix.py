"""R7: the storage writer under every answer InfluxDB can give (edgegen/gateway/writer.py).

A scripted HTTP server plays InfluxDB 1.x for the statuses a real one cannot be made to give on demand; the
partial-write row also runs against a real InfluxDB 1.6.7. Each test counts requests and checks the bodies re-sent.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from prometheus_client import CollectorRegistry

from edgegen.gateway.storage import StorageRejected
from edgegen.gateway.storage.errors import StorageNotFound
from edgegen.gateway.storage.influx1 import Influx1Storage
from edgegen.gateway.storage.lineprotocol import encode_records
from edgegen.gateway.storage.records import Record, Writable
from edgegen.gateway.writer import (
    CAUSE_REFUSED,
    CAUSE_TOO_LARGE,
    CAUSE_UNENCODABLE,
    StorageWriter,
    WriteOutcome,
)
from tests.support.scripted_http import Reply, Request, ScriptedHttpServer
from tests.support.servers import InfluxDB, free_port
from tests.support.storage_records import record

T0 = 1_700_000_000_000_000
WEEK_US = 7 * 24 * 3600 * 1_000_000
OUT_OF_RANGE_US = 9_300_000_000_000_000  # beyond int64 nanoseconds: InfluxDB cannot parse the timestamp
RANGE = "time outside range -9223372036854775806 - 9223372036854775806"
CONFLICT = 'partial write: field type conflict: input field \\"c0\\" on measurement \\"samples\\" is type float'


def batch(n: int) -> list[Record]:
    """``n`` records from distinct nodes, 2 lines (4 values) each."""
    return [record(node=f"n{i}", seq=i) for i in range(n)]


def lines(records: list[Record]) -> list[str]:
    return encode_records(records)[0]


def body(req: Request) -> list[str]:
    return req.body.decode().split("\n")


def influx_error(message: str) -> str:
    return '{"error":"' + message + '"}'


def unparsed(*refused: str, partial: bool = True) -> str:
    """InfluxDB 1.6.7's answer when lines cannot be parsed (it writes the others)."""
    reasons = "\n".join(f"unable to parse '{line}': {RANGE}" for line in refused)
    return json.dumps({"error": f"partial write: {reasons} dropped=0" if partial else reasons})


@dataclass
class Run:
    """What one write did: the outcome (or the error it raised), the requests the server got, the side effects."""

    requests: list[Request]
    writer: StorageWriter
    outcome: WriteOutcome | None = None
    error: BaseException | None = None
    elapsed_s: float = 0.0
    dead: list[tuple[Writable, str, str]] = field(default_factory=list)
    alerts: list[tuple[str, bool]] = field(default_factory=list)  # message, writer.auth_failing at the time

    def metric(self, name: str, **labels: str) -> float:
        return self.writer.registry.get_sample_value(f"edgegen_writer_{name}", labels) or 0.0

    @property
    def done(self) -> WriteOutcome:
        assert self.error is None, self.error
        assert self.outcome is not None
        return self.outcome


def make_writer(
    storage: Influx1Storage,
    dead: list[tuple[Writable, str, str]],
    registry: CollectorRegistry | None = None,
    backoff_base_s: float = 0.001,  # tiny: jitter never explains a delay
    backoff_cap_s: float = 30.0,
) -> StorageWriter:
    return StorageWriter(
        storage,
        on_dead_letter=lambda r, cause, detail: dead.append((r, cause, detail)),
        registry=registry or CollectorRegistry(),
        backoff_base_s=backoff_base_s,
        backoff_cap_s=backoff_cap_s,
        rng=random.Random(7),
    )


StopWhen = Callable[[Run], bool]
WRITE_DEADLINE_S = 60.0  # a write that should have returned long before: the test fails instead of hanging


async def _stop_when(condition: StopWhen, run: Run, stop: asyncio.Event) -> None:
    """Set ``stop`` once ``condition(run)`` holds: an event the writer reached, never a guess at how long it takes
    (a busy machine stretches every step). After a generous deadline ``stop`` is set anyway and the test's
    assertions say what did not happen. Polled: the writer has no event for these states (a metric moved)."""
    deadline = time.monotonic() + WRITE_DEADLINE_S / 2
    while not condition(run) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    stop.set()


async def _write(
    server: ScriptedHttpServer,
    records: list[Record],
    *,
    timeout_s: float = 5.0,
    stop_when: StopWhen | None = None,
    stopped: bool = False,
    registry: CollectorRegistry | None = None,
    backoff_base_s: float = 0.001,
    backoff_cap_s: float = 30.0,
) -> Run:
    storage = Influx1Storage(server.url, "plant", timeout_s=timeout_s, create_database=False)
    await storage.open()
    dead: list[tuple[Writable, str, str]] = []
    writer = make_writer(storage, dead, registry, backoff_base_s, backoff_cap_s)
    run = Run(server.requests, writer, dead=dead)
    writer.on_alert = lambda message: run.alerts.append((message, writer.auth_failing))
    stop = asyncio.Event()
    if stopped:
        stop.set()
    watcher = asyncio.create_task(_stop_when(stop_when, run, stop)) if stop_when is not None else None
    started = time.monotonic()
    try:
        run.outcome = await asyncio.wait_for(writer.write(records, stop), WRITE_DEADLINE_S)
    except Exception as exc:
        run.error = exc
    finally:
        run.elapsed_s = time.monotonic() - started
        if watcher is not None:
            watcher.cancel()
        await storage.close()
    return run


def scripted(
    replies: list[Reply],
    records: list[Record],
    *,
    timeout_s: float = 5.0,
    stop_when: StopWhen | None = None,
    stopped: bool = False,
) -> Run:
    async def go() -> Run:
        async with ScriptedHttpServer(replies) as server:
            try:
                return await _write(server, records, timeout_s=timeout_s, stop_when=stop_when, stopped=stopped)
            finally:  # only now may a held reply go out: the write has returned without it
                for reply in replies:
                    if reply.release is not None:
                        reply.release.set()

    return asyncio.run(go())


# ---- 2xx ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 204])
def test_2xx_stores_the_batch_in_one_request(status: int) -> None:
    records = batch(3)
    run = scripted([Reply(status)], records)
    [req] = run.requests
    assert (req.method, req.path, req.query) == ("POST", "/write", {"db": "plant", "precision": "u"})
    assert body(req) == lines(records)
    assert run.done == WriteOutcome(3, (0, 1, 2), (), 12, 1, False)
    assert run.done.unsettled == ()
    assert run.dead == []
    assert run.metric("attempts_total", outcome="stored", status_class="2xx") == 1
    assert run.metric("write_seconds_count") == 1


# ---- 400 / 422 ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "refused", "partial"),
    [
        (400, [(1, 1)], True),  # record 1's second line
        (400, [(1, 0), (3, 1)], True),  # two records, two lines: InfluxDB joins the reasons with newlines
        (400, [(2, 0), (2, 1)], True),  # both lines of one record
        (400, [(0, 0)], False),  # "unable to parse" without "partial write"
        (422, [(3, 0)], False),
    ],
)
def test_refused_lines_named_in_the_body_dead_letter_only_their_records(
    status: int, refused: list[tuple[int, int]], partial: bool
) -> None:
    records = batch(4)
    refused_lines = [lines([records[r]])[k] for r, k in refused]
    bad = sorted({r for r, _ in refused})
    good = [i for i in range(4) if i not in bad]
    run = scripted([Reply(status, unparsed(*refused_lines, partial=partial)), Reply(204)], records)
    first, second = run.requests  # the batch, then the rest re-sent (rewriting stored points is idempotent)
    assert body(first) == lines(records)
    assert body(second) == lines([records[i] for i in good])
    assert run.done.stored == tuple(good)
    assert run.done.values_stored == 4 * len(good)
    assert run.done.attempts == 2
    assert [(d.index, d.cause) for d in run.done.dead_lettered] == [(i, CAUSE_REFUSED) for i in bad]
    assert [(r, cause) for r, cause, _ in run.dead] == [(records[i], CAUSE_REFUSED) for i in bad]
    for _, _, detail in run.dead:
        assert detail.startswith(f"HTTP {status}: unable to parse 'samples,node=n")
        assert detail.endswith(RANGE)  # the reason, without InfluxDB's " dropped=0"
    assert run.metric("dead_lettered_total", cause=CAUSE_REFUSED) == len(bad)


@pytest.mark.parametrize("status", [400, 422])
def test_refusal_naming_no_line_is_bisected_down_to_the_refused_record(status: int) -> None:
    records = batch(4)  # record 2 is refused (a field type conflict names no line)
    conflict = Reply(status, influx_error(CONFLICT))
    run = scripted([conflict, Reply(204), conflict, conflict, Reply(204)], records)
    assert [body(r) for r in run.requests] == [
        lines(records),
        lines(records[:2]),
        lines(records[2:]),
        lines(records[2:3]),
        lines(records[3:]),
    ]
    assert run.done.stored == (0, 1, 3)
    assert run.done.values_stored == 12
    [(dead, cause, detail)] = run.dead
    assert (dead, cause) == (records[2], CAUSE_REFUSED)
    assert f"HTTP {status}" in detail
    assert "field type conflict" in detail
    assert run.metric("splits_total", reason=CAUSE_REFUSED) == 2
    assert run.metric("attempts_total", outcome="refused", status_class="4xx") == 3


def test_a_record_that_cannot_be_encoded_is_dead_lettered_without_a_request() -> None:
    good = batch(2)
    bad = Record.of("s1", "two\nlines", good[0].frame)
    run = scripted([Reply(204)], [good[0], bad, good[1]])
    [req] = run.requests
    assert body(req) == lines(good)
    assert run.done.stored == (0, 2)
    [(dead, cause, detail)] = run.dead
    assert (dead, cause) == (bad, CAUSE_UNENCODABLE)
    assert "newline" in detail


# ---- 401 / 403 -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_unauthorized_keeps_the_batch_alerts_once_and_succeeds_when_credentials_are_fixed(status: int) -> None:
    records = batch(3)
    refused = Reply(status, influx_error("authorization failed"))
    run = scripted([refused, refused, Reply(204)], records)
    assert [body(r) for r in run.requests] == [lines(records)] * 3  # the whole batch every time, nothing dropped
    assert run.done.stored == (0, 1, 2)
    assert run.dead == []
    [(message, failing)] = run.alerts  # one alert for the episode, raised while the flag was up
    assert failing is True
    assert f"HTTP {status}" in message
    assert "authorization failed" in message
    assert run.writer.auth_failing is False  # recovered
    assert run.metric("auth_failing") == 0
    assert run.metric("retries_total", reason="unauthorized") == 2


def test_auth_failing_flag_and_gauge_stay_up_while_credentials_are_refused() -> None:
    refused = Reply(401, influx_error("authorization failed"))
    run = scripted(
        [refused] * 100, batch(1), stop_when=lambda r: r.metric("retries_total", reason="unauthorized") > 0
    )
    assert run.done.aborted
    assert run.done.stored == ()
    assert run.done.unsettled == (0,)
    assert run.writer.auth_failing is True
    assert run.writer.auth_error is not None and "authorization failed" in run.writer.auth_error
    assert run.metric("auth_failing") == 1
    assert len(run.alerts) == 1


# ---- 404 ---------------------------------------------------------------------------------------------------


def test_missing_database_fails_fast_after_one_request() -> None:
    run = scripted([Reply(404, influx_error('database not found: \\"plant\\"')), Reply(204)], batch(2))
    assert len(run.requests) == 1
    assert isinstance(run.error, StorageNotFound)
    assert run.error.retryable is False
    assert run.error.status == 404
    assert "database not found" in str(run.error)
    assert run.dead == []


def test_an_unexpected_client_error_is_raised_not_dead_lettered() -> None:
    run = scripted([Reply(405, "method not allowed"), Reply(204)], batch(2))
    assert len(run.requests) == 1
    assert type(run.error) is StorageRejected
    assert run.error.status == 405
    assert run.dead == []


# ---- 413 ---------------------------------------------------------------------------------------------------


def test_too_large_batch_is_split_in_halves() -> None:
    records = batch(4)
    run = scripted([Reply(413, "Request Entity Too Large"), Reply(204), Reply(204)], records)
    assert [len(body(r)) for r in run.requests] == [8, 4, 4]
    assert [body(r) for r in run.requests[1:]] == [lines(records[:2]), lines(records[2:])]
    assert run.done.stored == (0, 1, 2, 3)
    assert run.done.values_stored == 16
    assert run.metric("splits_total", reason=CAUSE_TOO_LARGE) == 1


def test_too_large_single_record_is_split_by_its_lines() -> None:
    big = record(values=[[1, 2], [3, 4], [5, 6], [7, 8]])  # 4 samples: 4 lines
    too_large = Reply(413, "Request Entity Too Large")
    run = scripted([too_large, too_large, Reply(204), Reply(204), Reply(204)], [big])
    assert [len(body(r)) for r in run.requests] == [4, 2, 1, 1, 2]
    assert [line for r in run.requests[2:] for line in body(r)] == lines([big])  # every line once, in order
    assert run.done.stored == (0,)
    assert run.done.values_stored == 8
    assert run.dead == []


def test_a_single_line_still_too_large_is_dead_lettered() -> None:
    huge, small = record(node="big", values=[[1, 2]]), record(node="small")
    too_large = Reply(413, "Request Entity Too Large")
    run = scripted([too_large, too_large, Reply(204)], [huge, small])
    assert [body(r) for r in run.requests] == [lines([huge, small]), lines([huge]), lines([small])]
    assert run.done.stored == (1,)
    [(dead, cause, detail)] = run.dead
    assert (dead, cause) == (huge, CAUSE_TOO_LARGE)
    assert "HTTP 413" in detail


# ---- 429 / 503 / other 5xx / transport -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(status: int) -> None:
    records = batch(2)
    run = scripted([Reply(status, "slow down", {"Retry-After": "1"}), Reply(204)], records)
    assert [body(r) for r in run.requests] == [lines(records)] * 2
    assert run.elapsed_s >= 1.0  # the backoff alone is at most 1 ms here
    assert run.done.stored == (0, 1)
    assert run.metric("retries_total", reason="throttled") == 1


def test_server_errors_back_off_and_retry() -> None:
    records = batch(2)
    replies = [Reply(500, "boom"), Reply(502, "bad gateway"), Reply(504, "timeout"), Reply(503), Reply(204)]
    run = scripted(replies, records)
    assert [body(r) for r in run.requests] == [lines(records)] * 5
    assert run.done.stored == (0, 1)
    assert run.done.attempts == 5
    assert run.metric("retries_total", reason="unavailable") == 3
    assert run.metric("retries_total", reason="throttled") == 1  # 503 without Retry-After: the backoff alone
    assert run.metric("attempts_total", outcome="unavailable", status_class="5xx") == 3


@pytest.mark.slow
def test_a_timed_out_request_is_retried() -> None:
    records = batch(1)
    run = scripted([Reply(204, release=asyncio.Event()), Reply(204)], records, timeout_s=2.0)
    assert len(run.requests) == 2
    assert run.done.stored == (0,)
    assert run.metric("attempts_total", outcome="unavailable", status_class="none") == 1


def test_refused_connections_back_off_until_the_server_is_up() -> None:
    records = batch(2)
    server = ScriptedHttpServer([Reply(204)], port=free_port())  # not listening yet: connections are refused
    registry = CollectorRegistry()

    def refused() -> float:
        labels = {"outcome": "unavailable", "status_class": "none"}
        return registry.get_sample_value("edgegen_writer_attempts_total", labels) or 0.0

    async def go() -> tuple[Run, float]:
        task = asyncio.create_task(
            _write(server, records, registry=registry, backoff_base_s=0.01, backoff_cap_s=0.05)
        )
        deadline = time.monotonic() + 30
        while refused() < 3:
            assert not task.done() and time.monotonic() < deadline
            await asyncio.sleep(0.01)
        before = refused()
        async with server:
            return await task, before

    run, refused_before = asyncio.run(go())
    assert len(run.requests) == 1
    assert body(run.requests[0]) == lines(records)
    assert run.done.stored == (0, 1)
    assert run.done.attempts == refused() + 1
    assert refused() >= refused_before >= 3
    assert run.metric("retries_total", reason="unavailable") == refused()


# ---- stop ----------------------------------------------------------------------------------------------------


def _waiting_to_retry(run: Run) -> bool:
    return run.metric("retries_total", reason="throttled") > 0  # counted as the wait begins


def test_stop_aborts_a_retry_wait_promptly_with_nothing_stored() -> None:
    records = batch(3)
    run = scripted([Reply(503, "down", {"Retry-After": "30"})] * 5, records, stop_when=_waiting_to_retry)
    assert len(run.requests) == 1
    assert run.elapsed_s < 20  # not the 30 s Retry-After
    assert run.done.aborted
    assert (run.done.stored, run.done.dead_lettered, run.done.values_stored) == ((), (), 0)
    assert run.done.unsettled == (0, 1, 2)
    assert run.dead == []


def test_stop_abandons_a_request_in_flight() -> None:
    """The server holds its answer until the write has returned: returning at all means it gave up waiting."""
    held = Reply(204, release=asyncio.Event())
    run = scripted([held], batch(2), stop_when=lambda r: len(r.requests) == 1, timeout_s=30)
    assert len(run.requests) == 1
    assert run.done.aborted
    assert run.done.stored == ()
    assert run.metric("attempts_total", outcome="aborted", status_class="none") == 1


def test_stop_during_a_bisection_keeps_what_was_settled() -> None:
    records = batch(4)
    conflict = Reply(400, influx_error(CONFLICT))
    run = scripted(
        [conflict, Reply(204), Reply(503, "down", {"Retry-After": "30"})], records, stop_when=_waiting_to_retry
    )
    assert len(run.requests) == 3
    assert run.done.aborted
    assert run.done.stored == (0, 1)
    assert run.done.unsettled == (2, 3)


def test_stop_already_set_makes_no_request() -> None:
    run = scripted([Reply(204)], batch(2), stopped=True)
    assert run.requests == []
    assert run.done == WriteOutcome(2, (), (), 0, 0, True)


# ---- a real InfluxDB 1.6.7 ------------------------------------------------------------------------------------


@pytest.mark.influxdb
def test_real_influxdb_partial_writes_dead_letter_only_the_refused_records(
    influxdb: InfluxDB, influx_database: str
) -> None:
    t_conflict = T0 + 4 * WEEK_US  # another shard, where c0 will already hold strings
    influxdb.create_database(influx_database)
    influxdb.write(influx_database, f'samples,node=x c0="text" {t_conflict}')
    good = batch(3)
    unparseable = record(node="n3", seq=3, t0_us=OUT_OF_RANGE_US)  # InfluxDB names this line in its answer
    conflicting = record(node="n4", seq=4, t0_us=t_conflict)  # ... but not this one: a field type conflict
    records = [good[0], unparseable, good[1], conflicting, good[2]]
    storage = Influx1Storage(influxdb.url, influx_database, create_database=False)
    dead: list[tuple[Writable, str, str]] = []
    writer = make_writer(storage, dead)

    async def go() -> tuple[WriteOutcome, dict[tuple[str, str], int]]:
        await storage.open()
        try:
            outcome = await writer.write(records, asyncio.Event())
            return outcome, await storage.count_values("s1")
        finally:
            await storage.close()

    outcome, counts = asyncio.run(go())
    assert outcome.stored == (0, 2, 4)
    assert outcome.values_stored == 12
    assert not outcome.aborted
    assert [(d.index, d.cause) for d in outcome.dead_lettered] == [(1, CAUSE_REFUSED), (3, CAUSE_REFUSED)]
    assert [r for r, _, _ in dead] == [unparseable, conflicting]
    details = {d.index: d.detail for d in outcome.dead_lettered}
    assert "time outside range" in details[1]
    assert "field type conflict" in details[3]
    assert counts == {("n0", "vib"): 4, ("n1", "vib"): 4, ("n2", "vib"): 4}  # every other value is stored
    # The batch (the conflict hides the parse error), then bisection: [0,1] names record 1, so [0] is re-sent;
    # [2,3,4] -> [2], [3,4] -> [3] refused alone, [4].
    assert outcome.attempts == 8
