"""The disk spool: de-duplication, bounds (R11), restart and corruption salvage (R12)."""

from __future__ import annotations

import random
import shutil
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from edgegen.gateway.protocol import BadChecksum, Encoding, Frame, FrameError, data_topic, decode, encode
from edgegen.gateway.spool import Incoming, OverflowPolicy, Spool, Spooled, SpoolError

T0 = 1_700_000_000_000_000
NOW = 1_800_000_000_000_000
HOUR_US = 3_600_000_000


def payload(seq: int, node: str = "n1", samples: int = 2) -> bytes:
    """A valid protocol v1 frame whose bytes differ for every (node, seq)."""
    values = np.arange(samples * 4, dtype=np.int64).reshape(samples, 4) + seq % 20_000
    frame = Frame(node, seq, T0 + seq * 10_000, 1000, Encoding.INT16, values, (0.5, 0.25, 1.0, 2.0))
    return encode(frame)


def incoming(seq: int, site: str = "s1", node: str = "n1", stream: str = "vib", samples: int = 2) -> Incoming:
    return Incoming(
        site,
        node,
        stream,
        seq,
        str(data_topic(site, node, stream)),
        payload(seq, node, samples),
        T0 + seq * 10_000,
    )


def seqs(rows: list[Spooled]) -> list[int]:
    return [r.seq for r in rows]


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "state" / "spool.sqlite")


# -- adding and taking ---------------------------------------------------------------------------------------


def test_take_returns_the_oldest_frames_in_order_with_exact_fields(spool: Spool) -> None:
    result = spool.add([incoming(seq) for seq in range(5)], now_us=NOW)

    assert result.accepted == (True,) * 5
    assert (result.duplicates, result.rejected, result.dropped_oldest) == (0, (), 0)
    assert spool.pending == 5
    assert spool.take(3) == [
        Spooled(1, "s1", "n1", "vib", 0, NOW, "edgegen/v1/s1/n1/data/vib", payload(0)),
        Spooled(2, "s1", "n1", "vib", 1, NOW, "edgegen/v1/s1/n1/data/vib", payload(1)),
        Spooled(3, "s1", "n1", "vib", 2, NOW, "edgegen/v1/s1/n1/data/vib", payload(2)),
    ]
    assert decode(spool.take(3)[2].payload) == decode(payload(2))
    assert spool.pending == 5  # taking is not consuming
    assert seqs(spool.take(10, after_id=3)) == [3, 4]
    assert spool.take(10, after_id=5) == []
    spool.close()


def test_duplicates_in_the_same_batch_and_a_later_one_are_counted_not_spooled(spool: Spool) -> None:
    first = spool.add([incoming(0), incoming(1), incoming(0), incoming(2)], now_us=NOW)
    second = spool.add([incoming(1), incoming(3), incoming(2)], now_us=NOW + 1)

    assert first.accepted == (True, True, False, True)
    assert first.duplicates == 1
    assert second.accepted == (False, True, False)
    assert second.duplicates == 2
    assert (first.rejected, first.dropped_oldest, second.rejected, second.dropped_oldest) == ((), 0, (), 0)
    assert spool.pending == 4
    assert spool.known_keys() == 4
    rows = spool.take(10)
    assert seqs(rows) == [0, 1, 2, 3]
    assert [r.received_us for r in rows] == [NOW, NOW, NOW, NOW + 1]  # the first copy stays
    spool.close()


def test_the_key_is_site_node_stream_seq_and_first_sample_time(spool: Spool) -> None:
    base = incoming(7)
    variants = [
        Incoming("s2", base.node, base.stream, base.seq, base.topic, base.payload, base.t0_us),
        Incoming(base.site, "n2", base.stream, base.seq, base.topic, base.payload, base.t0_us),
        Incoming(base.site, base.node, "acc", base.seq, base.topic, base.payload, base.t0_us),
        Incoming(base.site, base.node, base.stream, 8, base.topic, base.payload, base.t0_us),
        Incoming(base.site, base.node, base.stream, base.seq, base.topic, base.payload, base.t0_us + 1),
        # same key, other topic and bytes: still the same frame for the spool
        Incoming(base.site, base.node, base.stream, base.seq, "other", b"other", base.t0_us),
    ]

    result = spool.add([base, *variants], now_us=NOW)

    assert result.accepted == (True, True, True, True, True, True, False)
    assert result.duplicates == 1
    assert spool.pending == 6
    assert spool.take(1)[0].payload == base.payload
    spool.close()


def test_a_stored_key_still_deduplicates_until_pruned(spool: Spool) -> None:
    spool.add([incoming(seq) for seq in range(3)], now_us=NOW)
    ids = [r.id for r in spool.take(2)]

    assert spool.done(ids, now_us=NOW) == 2
    assert spool.pending == 1
    assert spool.known_keys() == 3
    assert seqs(spool.take(10)) == [2]

    redelivered = spool.add([incoming(0), incoming(1)], now_us=NOW + HOUR_US // 2)
    assert redelivered.accepted == (False, False)
    assert redelivered.duplicates == 2
    assert spool.pending == 1
    assert seqs(spool.take(10)) == [2]

    # the window (3600 s by default) counts from when the frame was stored
    assert spool.prune(now_us=NOW + HOUR_US) == 0
    assert spool.known_keys() == 3
    assert spool.prune(now_us=NOW + HOUR_US + 1) == 2
    assert spool.known_keys() == 1
    assert spool.prune(now_us=NOW + 10 * HOUR_US) == 0  # a waiting frame is never pruned
    assert spool.pending == 1

    again = spool.add([incoming(0)], now_us=NOW + 2 * HOUR_US)
    assert again.accepted == (True,)
    assert again.duplicates == 0
    assert spool.pending == 2
    assert seqs(spool.take(10)) == [2, 0]
    spool.close()


def test_prune_honours_a_custom_window(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", dedup_window_s=2.5)
    spool.add([incoming(0)], now_us=NOW - 10_000_000)  # waited 10 s for storage: the window starts at done()
    spool.done([1], now_us=NOW)

    assert spool.prune(now_us=NOW + 2_500_000) == 0
    assert spool.prune(now_us=NOW + 2_500_001) == 1
    assert spool.known_keys() == 0
    spool.close()


def test_done_of_unknown_or_already_done_ids_changes_nothing(spool: Spool) -> None:
    spool.add([incoming(seq) for seq in range(3)], now_us=NOW)

    assert spool.done([]) == 0
    assert spool.done([0, 4, 99, -1]) == 0
    assert spool.pending == 3
    assert spool.done([2, 2]) == 1
    assert spool.done([2]) == 0
    assert spool.done([2, 77]) == 0
    assert spool.pending == 2
    assert spool.known_keys() == 3
    assert seqs(spool.take(10)) == [0, 2]
    spool.close()


def test_reopening_brings_back_the_same_pending_frames(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    spool = Spool(path)
    spool.add([incoming(seq) for seq in range(6)], now_us=NOW)
    spool.done([1, 4])
    before = spool.take(100)
    spool.close()

    reopened = Spool(path)

    assert reopened.salvage is None
    assert reopened.pending == 4
    assert reopened.known_keys() == 6
    assert reopened.take(100) == before
    assert seqs(before) == [1, 2, 4, 5]  # ids 1 and 4 held seq 0 and 3
    assert reopened.add([incoming(1), incoming(6)], now_us=NOW).accepted == (False, True)
    assert seqs(reopened.take(100)) == [1, 2, 4, 5, 6]
    reopened.close()


# -- R11: a bounded spool ------------------------------------------------------------------------------------


def test_drop_oldest_keeps_the_newest_frames_and_counts_the_drops(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", max_frames=10, policy="drop-oldest")

    result = spool.add([incoming(seq) for seq in range(15)], now_us=NOW)

    assert result.accepted == (True,) * 15  # all were spooled (and acknowledged); five were then dropped
    assert (result.duplicates, result.rejected, result.dropped_oldest) == (0, (), 5)
    assert spool.pending == 10
    assert seqs(spool.take(100)) == list(range(5, 15))

    more = spool.add([incoming(15), incoming(16)], now_us=NOW)
    assert more.dropped_oldest == 2
    assert spool.pending == 10
    assert seqs(spool.take(100)) == list(range(7, 17))
    # a dropped frame's key is forgotten: its retry is spooled again
    assert spool.add([incoming(0)], now_us=NOW).accepted == (True,)
    assert seqs(spool.take(100)) == [*range(8, 17), 0]
    spool.close()


def test_drop_oldest_never_drops_frames_already_stored(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", max_frames=3, policy="drop-oldest")
    spool.add([incoming(seq) for seq in range(3)], now_us=NOW)
    spool.done([1, 2])

    result = spool.add([incoming(seq) for seq in range(3, 6)], now_us=NOW)

    assert result.dropped_oldest == 1  # only seq 2 waited; stored keys do not count against the limit
    assert seqs(spool.take(100)) == [3, 4, 5]
    assert spool.known_keys() == 5
    spool.close()


def test_reject_new_refuses_exactly_the_overflow(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", max_frames=10, policy="reject-new")

    result = spool.add([incoming(seq) for seq in range(15)], now_us=NOW)

    assert result.accepted == (True,) * 10 + (False,) * 5
    assert result.rejected == (10, 11, 12, 13, 14)
    assert (result.duplicates, result.dropped_oldest) == (0, 0)
    assert spool.pending == 10
    assert seqs(spool.take(100)) == list(range(10))

    # once storage caught up, a retry of a refused frame is accepted: refusing remembers no key
    spool.done([1, 2])
    later = spool.add([incoming(10), incoming(11), incoming(12)], now_us=NOW)
    assert later.accepted == (True, True, False)
    assert later.rejected == (2,)
    assert spool.pending == 10
    spool.close()


def test_reject_new_counts_a_duplicate_of_a_spooled_frame_as_a_duplicate(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", max_frames=10, policy="reject-new")
    spool.add([incoming(seq) for seq in range(10)], now_us=NOW)

    result = spool.add([incoming(3), incoming(10), incoming(9), incoming(11), incoming(3)], now_us=NOW)

    assert result.accepted == (False,) * 5
    assert result.duplicates == 3
    assert result.rejected == (1, 3)
    assert result.dropped_oldest == 0
    assert spool.pending == 10
    assert seqs(spool.take(100)) == list(range(10))
    spool.close()


@pytest.mark.parametrize("policy", ["drop-oldest", "reject-new"])
def test_a_duplicate_while_full_costs_no_frame(tmp_path: Path, policy: OverflowPolicy) -> None:
    """Once, with drop-oldest, a duplicate arriving while full first dropped the oldest waiting frame."""
    spool = Spool(tmp_path / "spool.sqlite", max_frames=4, policy=policy)
    spool.add([incoming(seq) for seq in range(5)], now_us=NOW)
    spool.done([r.id for r in spool.take(1)])  # seq 1 is stored, 2..4 wait (seq 0 was dropped or refused)
    spool.add([incoming(5)], now_us=NOW)
    before = spool.take(100)

    result = spool.add([incoming(1), incoming(2), incoming(5)], now_us=NOW)  # one stored, two waiting

    assert result.accepted == (False, False, False)
    assert result.duplicates == 3
    assert (result.rejected, result.dropped_oldest) == ((), 0)
    assert spool.pending == 4
    assert spool.take(100) == before
    spool.close()


def test_a_lowered_limit_takes_effect_on_the_next_add(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    spool = Spool(path)
    spool.add([incoming(seq) for seq in range(8)], now_us=NOW)
    spool.close()

    smaller = Spool(path, max_frames=5, policy="drop-oldest")
    assert smaller.pending == 8
    result = smaller.add([incoming(8)], now_us=NOW)
    assert result.dropped_oldest == 4
    assert smaller.pending == 5
    assert seqs(smaller.take(100)) == [4, 5, 6, 7, 8]
    smaller.close()

    refusing = Spool(path, max_frames=3, policy="reject-new")
    assert refusing.add([incoming(9)], now_us=NOW).rejected == (0,)
    assert refusing.pending == 5
    refusing.close()


# -- R12: restarts and damaged files -------------------------------------------------------------------------

N_FRAMES = 200
N_STORED = 20  # the first frames are stored: their rows keep only the key
FRAMES = [incoming(seq, samples=16) for seq in range(N_FRAMES)]
ORIGINALS = {m.payload for m in FRAMES}


def _build(path: Path) -> None:
    spool = Spool(path)
    for start in range(0, N_FRAMES, 50):
        spool.add(FRAMES[start : start + 50], now_us=NOW + start)
    spool.done(range(1, N_STORED + 1))
    spool.close()  # checkpoints the WAL into the main file and removes it


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed spool file: 200 frames, the first 20 stored; no WAL left beside it."""
    path = tmp_path_factory.mktemp("pristine") / "spool.sqlite"
    _build(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["spool.sqlite"]
    return path


def _check_reopened(spool: Spool, path: Path) -> None:
    """What must hold after opening a (possibly) damaged spool."""
    rows = spool.take(10 * N_FRAMES)
    assert len(rows) == spool.pending <= N_FRAMES - N_STORED
    for row in rows:
        try:
            decode(row.payload)
        except FrameError:
            # Damage inside a payload leaves SQLite's structure intact: integrity_check passes, the spool opens as
            # it is, and the frame checksum is what catches it (the service dead-letters such a row as
            # "spool_corrupt"). A salvaged spool holds only rows whose checksum was verified.
            assert spool.salvage is None
        else:
            assert row.payload in ORIGINALS  # an intact checksum: the very bytes that were spooled
    assert len({r.payload for r in rows}) == len(rows)
    if spool.salvage is not None:
        assert spool.salvage.quarantined.exists()
        assert spool.salvage.quarantined.parent == path.parent
        assert spool.salvage.quarantined.name.startswith("spool.sqlite.corrupt-")
        assert spool.salvage.salvaged == spool.pending
        assert spool.salvage.lost >= 0
    # the spool works: it takes a new frame, and reopens cleanly
    assert spool.add([incoming(N_FRAMES)], now_us=NOW).accepted == (True,)
    pending = spool.pending
    spool.close()
    again = Spool(path)
    assert again.salvage is None
    assert again.pending == pending
    again.close()


damages = st.one_of(
    st.tuples(
        st.just("overwrite"),
        st.lists(st.tuples(st.integers(0, 2**30), st.binary(min_size=1, max_size=600)), min_size=1, max_size=4),
    ),
    st.tuples(st.just("truncate"), st.integers(0, 2**30)),
    st.tuples(st.just("header"), st.binary(min_size=100, max_size=100)),
)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damage=damages)
@example(damage=("overwrite", [(27, bytes(20) + b"\x05")]))  # schema format 5: "unsupported file format"
def test_a_damaged_file_opens_and_yields_only_intact_frames(pristine: Path, damage: tuple[str, object]) -> None:
    data = bytearray(pristine.read_bytes())
    kind, detail = damage
    if kind == "overwrite":
        assert isinstance(detail, list)
        for offset, chunk in detail:
            start = offset % len(data)
            data[start : start + len(chunk)] = chunk[: len(data) - start]
    elif kind == "truncate":
        assert isinstance(detail, int)
        del data[detail % len(data) :]
    else:
        assert isinstance(detail, bytes)
        data[:100] = detail
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spool.sqlite"
        path.write_bytes(bytes(data))

        spool = Spool(path)  # never raises

        _check_reopened(spool, path)
        if kind == "header":  # no longer an SQLite file: nothing can be read from it
            assert spool.salvage is not None
            assert (spool.salvage.salvaged, spool.salvage.lost) == (0, 0)


def test_a_file_that_is_no_database_opens_empty(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    garbage = random.Random(12).randbytes(50_000)
    path.write_bytes(garbage)

    spool = Spool(path)

    assert spool.salvage is not None
    assert (spool.salvage.salvaged, spool.salvage.lost) == (0, 0)
    assert spool.salvage.quarantined.read_bytes() == garbage
    assert spool.pending == 0
    assert spool.take(10) == []
    assert spool.add([incoming(0)], now_us=NOW).accepted == (True,)
    spool.close()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm"))) == [
        "spool.sqlite",
        spool.salvage.quarantined.name,
    ]


def test_an_empty_file_opens_as_a_new_spool(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    path.write_bytes(b"")

    spool = Spool(path)

    assert spool.salvage is None
    assert spool.pending == 0
    spool.close()


PAGE = 4096


def _damaged(tmp_path: Path, data: bytearray) -> Path:
    path = tmp_path / "spool.sqlite"
    path.write_bytes(bytes(data))
    return path


def test_a_broken_table_page_loses_exactly_its_rows(tmp_path: Path, pristine: Path) -> None:
    data = bytearray(pristine.read_bytes())
    victim = data.index(FRAMES[N_FRAMES // 2].payload) // PAGE  # a leaf page of waiting frames
    assert data[victim * PAGE] == 0x0D  # (a table b-tree leaf)
    page = bytes(data[victim * PAGE : (victim + 1) * PAGE])
    on_page = [m.seq for m in FRAMES if m.payload in page]
    assert min(on_page) > N_STORED and len(on_page) > 3
    data[victim * PAGE : victim * PAGE + 8] = b"\xff" * 8  # its page header: the page no longer parses
    path = _damaged(tmp_path, data)

    spool = Spool(path)

    assert spool.salvage is not None
    assert (spool.salvage.salvaged, spool.salvage.lost) == (N_FRAMES - N_STORED - len(on_page), len(on_page))
    assert seqs(spool.take(1000)) == [s for s in range(N_STORED, N_FRAMES) if s not in on_page]
    assert spool.known_keys() == N_FRAMES - len(on_page)  # stored keys are salvaged too: they still deduplicate
    _check_reopened(spool, path)
    again = Spool(path)
    assert again.add([FRAMES[0], FRAMES[on_page[0]]], now_us=NOW).accepted == (False, True)
    again.close()


def test_a_truncated_file_gives_back_the_rows_it_still_holds(tmp_path: Path, pristine: Path) -> None:
    """SQLite refuses a file shorter than its header says: the salvage reads it anyway (writable_schema)."""
    data = pristine.read_bytes()
    cut = data.index(FRAMES[150].payload) // PAGE * PAGE  # the page holding seq 150 and all after it are gone
    kept = [m.seq for m in FRAMES if m.payload in data[:cut]]  # (stored rows have no payload left)
    assert kept == list(range(N_STORED, N_STORED + len(kept)))
    assert 0 < len(kept) < 150 - N_STORED
    path = _damaged(tmp_path, bytearray(data[:cut]))

    spool = Spool(path)

    assert spool.salvage is not None
    assert (spool.salvage.salvaged, spool.salvage.lost) == (len(kept), N_FRAMES - N_STORED - len(kept))
    assert [r.payload for r in spool.take(1000)] == [FRAMES[seq].payload for seq in kept]
    assert spool.known_keys() == N_STORED + len(kept)
    _check_reopened(spool, path)


def test_a_broken_index_page_loses_nothing(tmp_path: Path, pristine: Path) -> None:
    """Indexes are redundant: the salvage reads the table alone (it once took its bounds from an index)."""
    data = bytearray(pristine.read_bytes())
    victim = next(p for p in range(1, len(data) // PAGE) if data[p * PAGE] == 0x0A)  # an index b-tree leaf
    data[victim * PAGE : victim * PAGE + 8] = b"\xff" * 8
    path = _damaged(tmp_path, data)

    spool = Spool(path)

    assert spool.salvage is not None
    assert (spool.salvage.salvaged, spool.salvage.lost) == (N_FRAMES - N_STORED, 0)
    assert [r.payload for r in spool.take(1000)] == [m.payload for m in FRAMES[N_STORED:]]
    assert spool.known_keys() == N_FRAMES
    _check_reopened(spool, path)


def test_an_index_that_disagrees_with_the_table_is_damage(tmp_path: Path) -> None:
    """A stale index page (an old copy of it: a lost write) lists stored frames as waiting.

    quick_check does not compare indexes with the table, and take() would then return the stored rows (payload
    NULL); integrity_check does.
    """
    before = tmp_path / "before.sqlite"
    spool = Spool(before)
    spool.add(FRAMES, now_us=NOW)
    spool.close()
    after = tmp_path / "after.sqlite"
    shutil.copyfile(before, after)
    spool = Spool(after)
    spool.done(range(1, N_STORED + 1))
    spool.close()
    with sqlite3.connect(after) as conn:
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'frames_done'").fetchone()[0]
    data = bytearray(after.read_bytes())
    stale = before.read_bytes()[(root - 1) * PAGE : root * PAGE]
    assert stale != data[(root - 1) * PAGE : root * PAGE]
    data[(root - 1) * PAGE : root * PAGE] = stale
    path = _damaged(tmp_path, data)

    spool = Spool(path)

    assert spool.salvage is not None
    assert (spool.salvage.salvaged, spool.salvage.lost) == (N_FRAMES - N_STORED, 0)
    assert spool.pending == N_FRAMES - N_STORED
    assert [r.payload for r in spool.take(1000)] == [m.payload for m in FRAMES[N_STORED:]]
    _check_reopened(spool, path)


def test_a_waiting_row_whose_text_no_longer_decodes_is_salvaged_around(tmp_path: Path, pristine: Path) -> None:
    """quick_check passes, but every take() would fail on the row: it is damage, and only that row is lost."""
    data = bytearray(pristine.read_bytes())
    row = data.index(FRAMES[150].payload)
    site = data.rindex(b"s1n1vib", 0, row)  # the row's site, node and stream, a few bytes before its payload
    assert row - site < 80
    data[site] = 0xFF
    path = _damaged(tmp_path, data)

    spool = Spool(path)

    assert spool.salvage is not None
    assert (spool.salvage.salvaged, spool.salvage.lost) == (N_FRAMES - N_STORED - 1, 1)
    assert seqs(spool.take(1000)) == [s for s in range(N_STORED, N_FRAMES) if s != 150]
    _check_reopened(spool, path)


def test_a_garbled_schema_opens_an_empty_spool(tmp_path: Path, pristine: Path) -> None:
    """The schema text is garbled: SQLite's error message quotes it, not as UTF-8 (once a UnicodeDecodeError).

    Nothing can be read without the schema: every row stays in the quarantined file, none is counted.
    """
    data = bytearray(pristine.read_bytes())
    data[data.index(b"CREATE TABLE frames") + 7] = 0xFF
    path = _damaged(tmp_path, data)

    spool = Spool(path)

    assert spool.salvage is not None
    assert (spool.salvage.salvaged, spool.salvage.lost) == (0, 0)
    assert spool.salvage.quarantined.read_bytes() == bytes(data)
    assert spool.pending == 0
    _check_reopened(spool, path)


def test_a_damaged_payload_opens_as_is_and_fails_its_checksum(tmp_path: Path, pristine: Path) -> None:
    """SQLite cannot see damage inside a blob: the spool opens, the frame checksum catches it on the way out.

    (The service dead-letters such a row as ``spool_corrupt``.)
    """
    data = bytearray(pristine.read_bytes())
    data[data.index(FRAMES[150].payload) + 40] ^= 0x01
    path = _damaged(tmp_path, data)

    spool = Spool(path)

    assert spool.salvage is None
    assert spool.pending == N_FRAMES - N_STORED
    rows = spool.take(1000)
    assert seqs(rows) == list(range(N_STORED, N_FRAMES))
    with pytest.raises(BadChecksum):
        decode(rows[150 - N_STORED].payload)
    assert [r.payload for r in rows if r.seq != 150] == [m.payload for m in FRAMES[N_STORED:] if m.seq != 150]
    spool.close()


# -- a crash (kill -9) with committed frames still in the WAL ------------------------------------------------


def _crash_copy(tmp_path: Path, batches: int) -> Path:
    """Spool ``batches`` transactions of 5 frames, then copy the files as a kill -9 would leave them."""
    live = tmp_path / "live" / "spool.sqlite"
    spool = Spool(live)
    for b in range(batches):
        spool.add([incoming(seq) for seq in range(5 * b, 5 * b + 5)], now_us=NOW)
    crashed = tmp_path / "crashed" / "spool.sqlite"
    crashed.parent.mkdir()
    for suffix in ("", "-wal", "-shm"):
        shutil.copyfile(str(live) + suffix, str(crashed) + suffix)
    spool.close()
    return crashed


def _wal(path: Path) -> Path:
    return Path(str(path) + "-wal")


def test_committed_frames_in_the_wal_survive_a_crash(tmp_path: Path) -> None:
    crashed = _crash_copy(tmp_path, batches=3)
    assert _wal(crashed).stat().st_size > 0

    spool = Spool(crashed)

    assert spool.salvage is None
    assert spool.pending == 15
    assert [r.payload for r in spool.take(100)] == [payload(seq) for seq in range(15)]
    spool.close()


def test_a_torn_wal_tail_loses_only_the_last_transaction(tmp_path: Path) -> None:
    crashed = _crash_copy(tmp_path, batches=3)
    wal = _wal(crashed)
    with wal.open("r+b") as f:
        f.truncate(wal.stat().st_size - 100)  # the last frame (the commit of batch 3) is cut short

    spool = Spool(crashed)

    assert spool.salvage is None
    assert spool.pending == 10
    assert [r.payload for r in spool.take(100)] == [payload(seq) for seq in range(10)]
    spool.close()


def test_a_garbled_wal_tail_loses_only_the_last_transaction(tmp_path: Path) -> None:
    crashed = _crash_copy(tmp_path, batches=3)
    wal = _wal(crashed)
    with wal.open("r+b") as f:
        f.seek(wal.stat().st_size - 200)
        f.write(random.Random(3).randbytes(200))

    spool = Spool(crashed)

    assert spool.salvage is None
    assert spool.pending == 10
    assert [r.payload for r in spool.take(100)] == [payload(seq) for seq in range(10)]
    spool.close()


def test_a_wal_garbled_from_its_first_frame_is_ignored_whole(tmp_path: Path) -> None:
    crashed = _crash_copy(tmp_path, batches=3)
    wal = _wal(crashed)
    with wal.open("r+b") as f:
        f.seek(32)  # just past the WAL header: the first frame's header
        f.write(b"\x00" * 24)

    spool = Spool(crashed)

    assert spool.salvage is None
    assert spool.pending == 0  # even the schema was only in the WAL: the spool starts afresh
    assert spool.known_keys() == 0
    spool.close()


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _crash_copy(tmp_path_factory.mktemp("crash"), batches=3)


wal_damages = st.one_of(
    st.tuples(
        st.just("overwrite"),
        st.lists(st.tuples(st.integers(0, 2**30), st.binary(min_size=1, max_size=64)), min_size=1, max_size=3),
    ),
    st.tuples(st.just("truncate"), st.integers(0, 2**30)),
)


@settings(max_examples=40, deadline=None)
@given(damage=wal_damages)
def test_a_damaged_wal_loses_whole_transactions_from_the_damage_on(
    crashed: Path, damage: tuple[str, object]
) -> None:
    """The WAL's frame checksums chain: recovery keeps the transactions committed before the first bad frame."""
    wal = bytearray(_wal(crashed).read_bytes())
    kind, detail = damage
    if kind == "overwrite":
        assert isinstance(detail, list)
        for offset, chunk in detail:
            start = offset % len(wal)
            wal[start : start + len(chunk)] = chunk[: len(wal) - start]
    else:
        assert isinstance(detail, int)
        del wal[detail % len(wal) :]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spool.sqlite"
        for suffix in ("", "-shm"):
            shutil.copyfile(str(crashed) + suffix, str(path) + suffix)
        _wal(path).write_bytes(bytes(wal))

        spool = Spool(path)

        assert spool.salvage is None
        assert spool.pending in (0, 5, 10, 15)
        assert [r.payload for r in spool.take(100)] == [payload(seq) for seq in range(spool.pending)]
        spool.close()


@pytest.mark.slow
def test_a_locked_file_is_reported_not_quarantined(tmp_path: Path) -> None:
    """Only damage moves a spool aside: a lock (another process, a full disk) leaves the file where it is."""
    path = tmp_path / "spool.sqlite"
    first = Spool(path)
    first.add([incoming(0)], now_us=NOW)
    first.close()
    holder = sqlite3.connect(path, timeout=0)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(SpoolError, match="locked"):
            Spool(path)
    finally:
        holder.rollback()
        holder.close()
    assert sorted(p.name for p in tmp_path.iterdir() if "corrupt" in p.name) == []
    reopened = Spool(path)
    assert reopened.salvage is None and reopened.pending == 1
    reopened.close()
