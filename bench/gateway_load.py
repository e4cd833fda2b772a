"""The gateway daemon under load: 100+ virtual nodes through a real mosquitto into a real InfluxDB 1.x, against
a pass-through baseline, in one run.

    .venv/bin/python -m bench.gateway_load [--nodes 120] [--samples-per-frame 50] [--rate-hz 100]
        [--frames-per-node 40] [--latency-s 8] [--quick]

The defaults are the realistic edge workload, as the gateway's own virtual nodes and demo send it: vibration or
process sensors sampled at 100 Hz, 50 samples (0.5 s) per frame, scored at a 1 s model step, so a model step
spans two frames. ``--samples-per-frame 10 --rate-hz 10`` is the worst case for scoring: 1 s frames of 10
samples, one model step per frame, the most model work per sample stored.

Throwaway mosquitto and influxd processes (bench/harness/servers.py) serve every configuration; each one has its
own site and a fresh database. Configurations, measured one after the other:

- baseline: the least a subscriber can do. paho-mqtt QoS 1 with acknowledgement on receipt, decode, flatten to
  line protocol with the gateway's own code, POST to /write in batches (up to 500 frames; a short batch waits
  once, up to 0.2 s, for the next arrival, as the gateway's writer does). No validation, spool, de-duplication,
  model or metrics;
- gw-off: one gateway, analytics.enabled = false;
- gw-on: one gateway, the SKAB generative model bound to every stream (period_s 1.0, warmup_rows 20, so it
  steps once per second of node time whatever the frame size);
- gw-off-x2, gw-off-x3: the same without scoring (scale-out of the durable path alone);
- gw-on-x2, gw-on-x3: 2 and 3 gateways with scoring in one MQTT v5 shared-subscription group (mqtt.shared_group;
  client id, state dir and HTTP port per process).
Gateways are real processes (``python -m edgegen.cli gateway run --config ...``) with the defaults otherwise
(spool_sync full, batch_frames 500, flush_interval_s 0.2).

Virtual nodes: --nodes paho clients driven by one selector thread, each publishing QoS 1 frames of 8 int16
channels x --samples-per-frame samples at --rate-hz (a frame holds F = samples / rate seconds of data, 0.5 s by
default; 8 channels, so the SKAB model scores them) on edgegen/v1/{site}/node-{i}/data/vib, seq increasing. A
*sample* is one 8-channel sample instant, i.e. one point of the ``samples`` measurement. Warm-up lengths are set
in node time and turned into frames per node (rounded up) from F. Phases, per configuration:

1. warm-up (not measured): 24 s of node time per node, 16 s more per extra gateway (48 frames + 32 per extra
   gateway at the defaults, 24 + 16 in the worst case) on a node clock in the past, published as fast as
   possible, until all are stored, so connections are open and every stream is calibrated (20 model rows of
   1 s, plus the bin that completes the last) before the clock starts. With scoring, rounds of 8 s more follow
   until every gateway scores every stream (edgegen_analytics_streams{phase="scoring"} in each gateway's
   /metrics; at most 32 s);
2. throughput: a backlog of --frames-per-node frames per node (continuing the node clock, F per frame) handed
   to the clients at once and published as fast as the broker takes them. Throughput = stored samples / (time
   the last became queryable - time of the first publish). Queryable is seen by polling InfluxDB every 50 ms (a
   count over the last two frames' node time, then over the whole backlog); the end is the midpoint between the
   last poll that found the backlog incomplete and the first that found it complete. CPU: user + system seconds
   of the consumer process(es) over the same interval (/proc/PID/stat) per 10k samples; influxd's likewise, for
   context (model outputs are written too). The publishers, mosquitto and influxd share the machine with the
   consumer; every configuration pays the same for them. "pub done": when the broker had acknowledged the whole
   backlog to the nodes, so a window much longer than that is the consumer's;
3. latency, at a fixed load below saturation: each node publishes one frame per F in real time (its clock is
   the wall clock; the frame of node time [t - F, t) goes out at t plus the node's slot, a random permutation of
   N slots F/N apart each round, so the load is even) for --latency-s seconds (rounded up to whole frames):
   nodes / F frames/s, nodes x rate samples/s (120 nodes: 240 frames/s, 12,000 samples/s by default). The
   node clock jumps from the past to the wall clock here, a gap longer than max_gap_s, so with scoring each
   stream's model context restarts once (analytics_restarts counts these).
   Every 100 ms InfluxDB is asked for the stored count per node (within this phase's node-time window). The k-th
   frame of a node counts as stored between the last poll that did not cover k+1 frames of that node (or its
   publish, if later) and the first that did; latency = the midpoint of that interval - the wall time the frame
   was handed to paho, so +-50 ms resolution per frame. With one consumer a node's frames are stored in order
   and this is each frame's own latency; with shared subscriptions they may not be, and the k-th completion
   stands in for the k-th frame.
Afterwards each configuration's stored samples are counted per field (c0..c7) and compared with what was sent
(anything missing is flagged as loss), and the gateways' counters and WARNING/ERROR log lines are listed.
Figures are ratios against the baseline, with the absolute numbers for context. A gateway acknowledges a message
only after its spool commit, so mosquitto's per-client in-flight window (max_inflight_messages: --inflight, 20
by default as in mosquitto) bounds what each gateway holds unacknowledged.
"""

from __future__ import annotations

import argparse
import heapq
import http.client
import json
import math
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from bench.harness.servers import InfluxDB, Mosquitto, ServerMissing, find_binary, free_port
from edgegen.gateway.protocol import Encoding, Frame, data_filter, data_topic, decode, encode, parse_topic
from edgegen.gateway.protocol.frame import MAX_SAMPLES
from edgegen.gateway.storage.lineprotocol import chunks, encode_records
from edgegen.gateway.storage.records import Record
from edgegen.models import shipped

REPO = Path(__file__).resolve().parents[1]
MODEL = shipped.generative_models() / "skab"
STREAM = "vib"
CHANNELS = 8
PERIOD_S = 1.0  # the model step (analytics binding period_s)
WARMUP_ROWS = 20  # the least gateway.config allows
# Warm-up lengths in node time; frames per node = ceil(node seconds / frame duration) (Workload.frames)
WARMUP_S = 24.0  # > warmup_rows (20) model rows of 1 s per stream, plus the bin that completes the last
WARMUP_PER_EXTRA_PROCESS_S = 16.0  # a gateway of k sees ~1/k of each stream; the gaps it interpolates count as
# rows, yet calibrating every stream in every process takes longer (simulated with gateway.analytics.resample and
# 1 s frames: 3 gateways need 31 s per stream at the median, 50 s at the 99th percentile; shorter frames spread a
# stream's node time more evenly over the gateways, so need no more)
MAX_EXTRA_WARMUP_S = 32.0  # node time the warm-up may add, 8 s at a time, until every gateway scores every stream
EXTRA_WARMUP_ROUND_S = 8.0
MOSQUITTO_MAX_QUEUED = 100_000  # bench/harness/servers.py: beyond it mosquitto drops QoS 1 messages silently
BASE = np.array([0.03, 0.04, 1.3, 0.1, 79.0, 26.0, 230.0, 32.0])  # SKAB-like channel levels (skab_like.py)
SWING = np.array([0.005, 0.005, 0.3, 0.05, 1.0, 0.5, 5.0, 2.0])
SCALES = tuple(float(np.float32(s)) for s in (BASE + 4 * SWING) / 30_000)  # int16 counts -> units
I16 = npt.NDArray[np.int16]


@dataclass(frozen=True)
class Workload:
    """What every virtual node sends: frames of ``samples`` 8-channel sample instants, ``period_us`` apart."""

    samples: int  # per frame
    period_us: int  # between samples

    @classmethod
    def of(cls, samples_per_frame: int, rate_hz: float) -> Workload:
        return cls(samples_per_frame, round(1e6 / rate_hz))

    @property
    def rate_hz(self) -> float:
        return 1e6 / self.period_us

    @property
    def frame_us(self) -> int:
        return self.samples * self.period_us

    @property
    def frame_s(self) -> float:
        return self.frame_us / 1e6

    def frames(self, node_s: float) -> int:
        """Frames per node that cover at least ``node_s`` seconds of node time (one at least)."""
        return max(1, math.ceil(round(node_s * 1e6) / self.frame_us))

    def warmup_frames(self, processes: int) -> int:
        """The first warm-up round: WARMUP_S of node time, WARMUP_PER_EXTRA_PROCESS_S more per extra gateway."""
        return self.frames(WARMUP_S + WARMUP_PER_EXTRA_PROCESS_S * max(0, processes - 1))

    def describe(self) -> str:
        steps = self.frame_s / PERIOD_S
        return (
            f"frames of {self.samples} samples x {CHANNELS} int16 channels ({self.frame_s:g} s at "
            f"{self.rate_hz:g} Hz; {steps:g} model step{'' if steps == 1 else 's'} of {PERIOD_S:g} s per frame)"
        )


# -- virtual nodes -------------------------------------------------------------------------------------------


class Signal:
    """A node's 8 channels: slow sinusoids around SKAB-like levels, with noise, as int16 counts."""

    def __init__(self, index: int, workload: Workload) -> None:
        self.workload = workload
        self.rng = np.random.default_rng(1000 + index)
        self.phase = self.rng.uniform(0, 2 * np.pi, size=CHANNELS)
        self.scales = np.asarray(SCALES)

    def frame(self, node_id: str, seq: int, t0_us: int) -> bytes:
        samples, period_us = self.workload.samples, self.workload.period_us
        t = (t0_us + np.arange(samples) * period_us) / 1e6
        physical = BASE + SWING * np.sin(2 * np.pi * t[:, None] / 60.0 + self.phase)
        physical += self.rng.normal(0.0, 0.1, (samples, CHANNELS)) * SWING
        counts: I16 = np.round(physical / self.scales).astype(np.int16)
        return encode(Frame(node_id, seq, t0_us, period_us, Encoding.INT16, counts, SCALES))


@dataclass(order=True)
class Job:
    due: float  # wall time
    order: int
    node: int = field(compare=False)
    seq: int = field(compare=False)
    payload: bytes = field(compare=False)


class Fleet:
    """``n`` paho clients (QoS 1, clean sessions) on one thread: a select loop over their sockets publishes each
    job when due and records the wall time it was handed to paho."""

    def __init__(self, url: str, site: str, n: int, tag: str, max_inflight: int = 100) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 1883
        self.node_ids = [f"node-{i}" for i in range(n)]
        self.topics = [str(data_topic(site, node, STREAM)) for node in self.node_ids]
        self.published: dict[tuple[int, int], float] = {}
        self.scheduled = 0
        self.acked = 0
        self.last_ack = 0.0  # wall time of the latest PUBACK from the broker
        self.connected = 0
        self.error: BaseException | None = None
        self._incoming: deque[list[Job]] = deque()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._clients = []
        for node in self.node_ids:
            client = paho.Client(
                CallbackAPIVersion.VERSION2, client_id=f"bench-{tag}-{node}", protocol=MQTTProtocolVersion.MQTTv311
            )
            client.max_inflight_messages_set(max_inflight)
            client.on_connect = self._on_connect
            client.on_publish = self._on_publish
            self._clients.append(client)
        self._thread = threading.Thread(target=self._main, name="fleet", daemon=True)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self.error = RuntimeError(f"node connection refused: {reason}")
        else:
            self.connected += 1

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        self.acked += 1
        self.last_ack = time.time()

    def start(self, timeout_s: float = 30.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout_s) or self.error is not None:
            raise RuntimeError(f"virtual nodes did not connect: {self.error!r}")

    def schedule(self, jobs: list[Job]) -> None:
        self.scheduled += len(jobs)
        self._incoming.append(jobs)

    def first_publish_since(self, seq: int) -> float:
        return min(t for (_, s), t in list(self.published.items()) if s >= seq)

    def wait_acked(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.acked < self.scheduled:
            if self.error is not None:
                raise RuntimeError(f"virtual nodes failed: {self.error!r}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the broker acknowledged {self.acked} of {self.scheduled} publishes")
            time.sleep(0.02)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _main(self) -> None:
        try:
            self._run()
        except BaseException as exc:
            self.error = exc
            self._ready.set()

    def _run(self) -> None:
        for client in self._clients:
            client.connect(self.host, self.port, keepalive=60)
        by_socket: dict[Any, Any] = {client.socket(): client for client in self._clients}
        sockets = list(by_socket)
        heap: list[Job] = []
        last_misc = time.monotonic()
        while not self._stop.is_set():
            if not self._ready.is_set() and self.connected == len(self._clients):
                self._ready.set()
            while self._incoming:
                for job in self._incoming.popleft():
                    heapq.heappush(heap, job)
            now = time.time()
            handed = 0
            while heap and heap[0].due <= now and handed < 500:
                job = heapq.heappop(heap)
                at = time.time()
                self._clients[job.node].publish(self.topics[job.node], job.payload, qos=1)
                self.published[(job.node, job.seq)] = at
                handed += 1
            busy = bool(heap) and heap[0].due <= time.time()
            timeout = 0.0 if busy else min(0.01, heap[0].due - time.time()) if heap else 0.01
            writable = [s for s, c in by_socket.items() if c.want_write()]
            readable, ready_w, _ = select.select(sockets, writable, [], max(0.0, timeout))
            for s in readable:
                by_socket[s].loop_read()
            for s in ready_w:
                by_socket[s].loop_write()
            if time.monotonic() - last_misc > 1.0:
                last_misc = time.monotonic()
                for client in self._clients:
                    client.loop_misc()
        for client in self._clients:
            client.disconnect()
            with suppress(OSError, ValueError):
                client.loop_write()


# -- InfluxDB ------------------------------------------------------------------------------------------------


class Influx:
    def __init__(self, url: str, database: str) -> None:
        self.url = url
        self.database = database

    def query(self, q: str) -> list[dict[str, Any]]:
        params = urllib.parse.urlencode({"db": self.database, "q": q, "epoch": "u"})
        with urllib.request.urlopen(f"{self.url}/query?{params}", timeout=30) as response:
            results: list[dict[str, Any]] = json.loads(response.read()).get("results", [])
        if results and "error" in results[0]:
            raise RuntimeError(f"InfluxQL {q!r}: {results[0]['error']}")
        series: list[dict[str, Any]] = results[0].get("series", []) if results else []
        return series

    def count(self, site: str, lo_us: int, hi_us: int) -> int:
        """Samples (count of c0) of the site with node time in [lo_us, hi_us)."""
        return self.scalar(f"SELECT count(c0) FROM samples WHERE site = '{site}' AND {_between(lo_us, hi_us)}")

    def scalar(self, q: str) -> int:
        series = self.query(q)
        return int(series[0]["values"][0][1]) if series else 0

    def counts_by_node(self, site: str, lo_us: int, hi_us: int) -> dict[str, int]:
        series = self.query(
            f"SELECT count(c0) FROM samples WHERE site = '{site}' AND {_between(lo_us, hi_us)} GROUP BY node"
        )
        return {s["tags"]["node"]: int(s["values"][0][1]) for s in series}

    def field_counts(self, site: str) -> list[int]:
        """count(c0) .. count(c7) over the site's whole history."""
        series = self.query(f"SELECT count(*) FROM samples WHERE site = '{site}'")
        return [int(v or 0) for v in series[0]["values"][0][1:]] if series else [0] * CHANNELS


def _between(lo_us: int, hi_us: int) -> str:
    return f"time >= {lo_us}u AND time < {hi_us}u"


# -- consumers -----------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc/<pid>/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return math.nan
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Consumer(Protocol):
    pids: list[int]
    logs: list[Path]

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def metrics(self) -> list[dict[str, float]]: ...


def _terminate(proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


_METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def scrape(port: int) -> dict[str, float]:
    """A gateway's /metrics as {name{labels}: value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _METRIC_LINE.match(line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def metric(values: dict[str, float], name: str) -> float:
    """Sum of a metric over its label sets (a bare name or name{labels} prefix)."""
    return sum(v for k, v in values.items() if k == name or k.startswith(name + "{"))


class Gateways:
    """``n`` gateway processes, each with its own client id, state dir and HTTP port."""

    def __init__(
        self,
        workdir: Path,
        n: int,
        mqtt_url: str,
        influx_url: str,
        database: str,
        site: str,
        scoring: bool,
        spool_sync: str,
        free_port: Callable[[], int],
        profile: bool = False,
    ) -> None:
        self.profile = profile
        self.procs: list[subprocess.Popen[bytes]] = []
        self.pids: list[int] = []
        self.logs: list[Path] = []
        self.ports: list[int] = []
        self.configs: list[Path] = []
        for i in range(n):
            port = free_port()
            lines = [
                'log_level = "INFO"',
                "[mqtt]",
                f'url = "{mqtt_url}"',
                f'client_id = "gw-{site}-{i}"',
                f'site = "{site}"',
                *([f'shared_group = "{site}"'] if n > 1 else []),
                "[storage]",
                'kind = "influx1"',
                f'influx_url = "{influx_url}"',
                f'database = "{database}"',
                "[gateway]",
                f'state_dir = "{workdir / f"state-{i}"}"',
                f"http_port = {port}",
                f'spool_sync = "{spool_sync}"',
                "[analytics]",
                f"enabled = {'true' if scoring else 'false'}",
            ]
            if scoring:
                lines += [
                    "[[analytics.bindings]]",
                    f'streams = "{site}/+/+"',
                    f'model = "{MODEL}"',
                    f"period_s = {PERIOD_S}",
                    f"warmup_rows = {WARMUP_ROWS}",
                ]
            config = workdir / f"gateway-{i}.toml"
            config.write_text("\n".join(lines) + "\n")
            self.configs.append(config)
            self.ports.append(port)
            self.logs.append(workdir / f"gateway-{i}.log")

    def start(self) -> None:
        for config, log_path in zip(self.configs, self.logs, strict=True):
            with log_path.open("ab") as log:
                profile = ["-m", "cProfile", "-o", str(config.with_suffix(".prof"))] if self.profile else []
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        *profile,
                        "-m",
                        "edgegen.cli",
                        "gateway",
                        "run",
                        "--config",
                        str(config),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=REPO,
                )
            self.procs.append(proc)
            self.pids.append(proc.pid)
        deadline = time.monotonic() + 90
        for proc, port in zip(self.procs, self.ports, strict=True):
            while not _ready(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gateway on port {port} did not become ready (see {self.logs})")
                time.sleep(0.1)
        time.sleep(0.5)  # the SUBACK follows the CONNACK that /readyz reports

    def metrics(self) -> list[dict[str, float]]:
        return [scrape(port) for port in self.ports]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            _terminate(proc)


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


class Baseline:
    """The pass-through subscriber (:func:`baseline_worker`) as a process of its own."""

    def __init__(self, workdir: Path, mqtt_url: str, influx_url: str, database: str, site: str) -> None:
        self.args = [mqtt_url, influx_url, database, site, str(workdir / "baseline.ready")]
        self.ready_file = workdir / "baseline.ready"
        self.logs = [workdir / "baseline.log"]
        self.pids: list[int] = []
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.logs[0].open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bench.gateway_load", "--baseline-worker", *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        self.pids = [self.proc.pid]
        deadline = time.monotonic() + 60
        while not self.ready_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the baseline subscriber did not start (see {self.logs[0]})")
            time.sleep(0.05)

    def metrics(self) -> list[dict[str, float]]:
        return []

    def stop(self) -> None:
        if self.proc is not None:
            _terminate(self.proc)


def baseline_worker(mqtt_url: str, influx_url: str, database: str, site: str, ready_file: str) -> None:
    """Subscribe QoS 1 (paho acknowledges on receipt), decode, POST line protocol; until SIGTERM."""
    mq, influx = urlsplit(mqtt_url), urlsplit(influx_url)
    arrived: deque[tuple[str, bytes]] = deque()
    wake = threading.Event()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    conn = http.client.HTTPConnection(influx.hostname or "127.0.0.1", influx.port or 8086, timeout=30)

    def post(path: str, params: dict[str, str], body: bytes = b"") -> None:
        conn.request("POST", f"{path}?{urllib.parse.urlencode(params)}", body=body)
        response = conn.getresponse()
        text = response.read()
        if response.status >= 300:
            raise RuntimeError(f"InfluxDB {path}: {response.status} {text[:200]!r}")

    post("/query", {"q": f'CREATE DATABASE "{database}"'})

    def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        client.subscribe(data_filter(site), qos=1)

    def on_subscribe(client: Any, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        Path(ready_file).touch()

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        arrived.append((msg.topic, bytes(msg.payload)))
        wake.set()

    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"baseline-{site}", protocol=MQTTProtocolVersion.MQTTv311
    )
    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    client.connect(mq.hostname or "127.0.0.1", mq.port or 1883, keepalive=60)
    client.loop_start()
    params = {"db": database, "precision": "u"}

    def take(batch: list[tuple[str, bytes]], limit: int) -> None:
        while arrived and len(batch) < limit:
            batch.append(arrived.popleft())

    written = 0
    while not (stop.is_set() and not arrived):
        batch: list[tuple[str, bytes]] = []
        take(batch, 500)
        if len(batch) < 500:  # like the gateway: one wait for more, ended by the next arrival or 0.2 s
            wake.clear()
            if not arrived:
                wake.wait(0.2)
            take(batch, 500)
        if not batch:
            continue
        records = []
        for topic, payload in batch:
            t = parse_topic(topic)
            records.append(Record.of(t.site, t.name or "", decode(payload)))
        lines, _ = encode_records(records)
        for chunk in chunks(lines):
            post("/write", params, "\n".join(chunk).encode())
        written += len(batch)
    client.loop_stop()
    client.disconnect()
    print(f"baseline: wrote {written} frames", flush=True)


# -- one configuration ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    name: str
    processes: int  # 0: the baseline
    scoring: bool = False


@dataclass
class Result:
    setup: Setup
    samples_per_frame: int
    frames_sent: int = 0
    samples_stored: list[int] = field(default_factory=list)  # per field c0..c7, whole history
    throughput: float = math.nan  # samples/s
    window_s: float = math.nan
    publish_done_s: float = math.nan
    cpu_per_10k: float = math.nan
    influx_cpu_per_10k: float = math.nan
    latencies_ms: list[float] = field(default_factory=list)
    latency_missing: int = 0
    poll_ms: list[float] = field(default_factory=list)  # InfluxDB polls of the latency phase
    rows_scored: float = 0.0  # model rows during the throughput window, all processes
    streams_scoring: list[int] = field(default_factory=list)  # per process, at the start of the window
    scores_stored: int = 0
    gateway_counters: dict[str, float] = field(default_factory=dict)
    log_problems: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def expected(self) -> int:
        return self.frames_sent * self.samples_per_frame

    @property
    def complete(self) -> bool:
        return bool(self.samples_stored) and all(n == self.expected for n in self.samples_stored)


@dataclass
class Plan:
    """One configuration's node schedule: seq k of every node carries node time [t0(k), t0(k) + one frame)."""

    workload: Workload
    nodes: int
    backlog: int  # frames per node
    latency_frames: int  # frames per node of the latency phase
    base_us: int  # node clock of the first warm-up frame
    rng: np.random.Generator
    next_seq: int = 0

    def t0(self, k: int) -> int:
        return self.base_us + k * self.workload.frame_us

    def order(self) -> list[int]:
        """The nodes in a random order: mosquitto hands shared-subscription messages round-robin, so a fixed
        order would pin each node to one gateway (N divisible by the group size), which real nodes do not do."""
        return [int(i) for i in self.rng.permutation(self.nodes)]


class Run:
    def __init__(self, args: argparse.Namespace, mqtt_url: str, influx_url: str, influxd_pid: int) -> None:
        self.args = args
        self.mqtt_url = mqtt_url
        self.influx_url = influx_url
        self.influxd_pid = influxd_pid
        self.workload = Workload.of(args.samples_per_frame, args.rate_hz)
        self.run_id = time.strftime("%H%M%S")

    def measure(self, setup: Setup, workdir: Path, free_port: Callable[[], int]) -> Result:
        site = f"{setup.name}-{self.run_id}"
        database = f"bench_{setup.name.replace('-', '_')}_{self.run_id}"
        workdir.mkdir(parents=True, exist_ok=True)
        influx = Influx(self.influx_url, database)
        consumer: Consumer
        if setup.processes == 0:
            consumer = Baseline(workdir, self.mqtt_url, self.influx_url, database, site)
        else:
            consumer = Gateways(
                workdir,
                setup.processes,
                self.mqtt_url,
                self.influx_url,
                database,
                site,
                setup.scoring,
                self.args.spool_sync,
                free_port,
                self.args.profile,
            )
        n, backlog, w = self.args.nodes, self.args.frames_per_node, self.workload
        frames = w.warmup_frames(setup.processes) + w.frames(MAX_EXTRA_WARMUP_S) + backlog
        past_s = 120 + math.ceil(frames * w.frame_s)  # the node time of the backlog ends 2 min (or more) ago
        latency_frames = w.frames(self.args.latency_s)
        base_us = (int(time.time()) - past_s) * 1_000_000
        plan = Plan(w, n, backlog, latency_frames, base_us, np.random.default_rng(7))
        result = Result(setup, w.samples)
        signals = [Signal(i, w) for i in range(n)]
        consumer.start()
        fleet = Fleet(self.mqtt_url, site, n, setup.name)
        try:
            fleet.start()
            self._warm_up(fleet, signals, influx, site, plan, consumer, result)
            self._throughput(fleet, signals, influx, site, plan, consumer, result)
            self._latency(fleet, signals, influx, site, plan, result)
            fleet.wait_acked(30)
        except Exception as exc:
            result.error = f"{type(exc).__name__}: {exc}"
        finally:
            result.frames_sent = fleet.scheduled
            fleet.close()
            try:
                self._verify(influx, site, consumer, result)
            finally:
                consumer.stop()
        result.log_problems = _log_problems(consumer.logs)
        return result

    def _rounds(self, fleet: Fleet, signals: list[Signal], plan: Plan, frames: int) -> tuple[int, int]:
        """Queue ``frames`` frames per node, all due now, round by round in a random node order; return the seq
        range."""
        first = plan.next_seq
        jobs = []
        for k in range(first, first + frames):
            for rank, i in enumerate(plan.order()):
                payload = signals[i].frame(fleet.node_ids[i], k, plan.t0(k))
                jobs.append(Job(0.0, k * plan.nodes + rank, i, k, payload))
        plan.next_seq += frames
        fleet.schedule(jobs)
        return first, first + frames

    def _warm_up(
        self,
        fleet: Fleet,
        signals: list[Signal],
        influx: Influx,
        site: str,
        plan: Plan,
        consumer: Consumer,
        result: Result,
    ) -> None:
        """Publish until every gateway scores every stream: split across gateways, a stream needs more frames."""
        w = plan.workload
        frames = w.warmup_frames(result.setup.processes)
        limit = frames + w.frames(MAX_EXTRA_WARMUP_S)
        while True:
            first, last = self._rounds(fleet, signals, plan, frames)
            lo, hi, want = plan.t0(first), plan.t0(last), plan.nodes * (last - first) * w.samples
            _wait_count(influx, site, lo, hi, want, 180, "warm-up")
            if not result.setup.scoring:
                return
            deadline = time.monotonic() + 2  # calibration precedes the write: at most a scrape's delay
            while time.monotonic() < deadline:
                result.streams_scoring = [
                    int(m.get('edgegen_analytics_streams{phase="scoring"}', 0)) for m in consumer.metrics()
                ]
                if min(result.streams_scoring) >= plan.nodes:
                    return
                time.sleep(0.2)
            if plan.next_seq >= limit:
                return  # reported: streams_scoring shows how many
            frames = min(w.frames(EXTRA_WARMUP_ROUND_S), limit - plan.next_seq)

    def _throughput(
        self,
        fleet: Fleet,
        signals: list[Signal],
        influx: Influx,
        site: str,
        plan: Plan,
        consumer: Consumer,
        result: Result,
    ) -> None:
        want = plan.nodes * plan.backlog * plan.workload.samples
        rows_before = sum(metric(m, "edgegen_analytics_rows_total") for m in consumer.metrics())
        cpu_before = [cpu_seconds(pid) for pid in consumer.pids]
        influx_before = cpu_seconds(self.influxd_pid)
        first, last = self._rounds(fleet, signals, plan, plan.backlog)  # published as fast as the broker takes
        tail_want = plan.nodes * min(2, plan.backlog) * plan.workload.samples
        previous = time.time()
        polls, progress, progress_at = 0, -1, time.monotonic()
        while True:
            time.sleep(0.05)
            polls += 1
            started = time.time()
            tail = influx.count(site, plan.t0(last - 2), plan.t0(last))
            got = influx.count(site, plan.t0(first), plan.t0(last)) if tail >= tail_want or polls % 40 == 0 else 0
            now_tau = (started + time.time()) / 2
            if got >= want:
                done_at = (previous + now_tau) / 2
                break
            previous = now_tau
            if got > progress:
                progress, progress_at = got, time.monotonic()
            elif time.monotonic() - progress_at > 30:
                raise RuntimeError(f"throughput phase: {progress} of {want} samples stored, no progress for 30 s")
        cpu_after = [cpu_seconds(pid) for pid in consumer.pids]
        influx_after = cpu_seconds(self.influxd_pid)
        rows_after = sum(metric(m, "edgegen_analytics_rows_total") for m in consumer.metrics())
        started_at = fleet.first_publish_since(first)
        result.window_s = done_at - started_at
        result.publish_done_s = fleet.last_ack - started_at
        result.throughput = want / result.window_s
        used = sum(a - b for a, b in zip(cpu_after, cpu_before, strict=True))
        result.cpu_per_10k = used / want * 10_000
        result.influx_cpu_per_10k = (influx_after - influx_before) / want * 10_000
        result.rows_scored = rows_after - rows_before

    def _latency(
        self, fleet: Fleet, signals: list[Signal], influx: Influx, site: str, plan: Plan, result: Result
    ) -> None:
        """Real time, one frame per frame duration F per node: each node sends the frame of node time
        [start + (k - 1) F, start + k F) at a random moment of the next F (a node-order slot of F/N)."""
        first, n_frames, samples = plan.next_seq, plan.latency_frames, plan.workload.samples
        frame_s, frame_us = plan.workload.frame_s, plan.workload.frame_us
        start_us = (int(time.time()) + 2) * 1_000_000
        start = start_us / 1e6
        jobs = []
        for k in range(n_frames):
            t0_us = start_us + (k - 1) * frame_us
            due = start + k * frame_s
            for rank, i in enumerate(plan.order()):
                payload = signals[i].frame(fleet.node_ids[i], first + k, t0_us)
                jobs.append(Job(due + rank / plan.nodes * frame_s, k * plan.nodes + rank, i, first + k, payload))
        plan.next_seq += n_frames
        lo_us, hi_us = start_us - frame_us, start_us + n_frames * frame_us
        fleet.schedule(jobs)
        polls: list[tuple[float, dict[str, int]]] = []
        want = n_frames * samples
        deadline = start + n_frames * frame_s + 30
        while time.time() < deadline:
            started = time.time()
            counts = influx.counts_by_node(site, lo_us, hi_us)
            ended = time.time()
            polls.append(((started + ended) / 2, counts))
            result.poll_ms.append(1000 * (ended - started))
            if len(counts) == plan.nodes and min(counts.values()) >= want:
                break
            time.sleep(max(0.0, 0.1 - (time.time() - started)))
        taus = np.asarray([tau for tau, _ in polls])
        for i, node in enumerate(fleet.node_ids):
            stored = np.asarray([c.get(node, 0) for _, c in polls])
            for k in range(n_frames):
                j = int(np.searchsorted(stored, (k + 1) * samples, side="left"))
                if j >= len(polls):
                    result.latency_missing += 1
                    continue
                published = fleet.published[(i, first + k)]
                after = max(published, taus[j - 1]) if j > 0 else published  # not yet visible, or not yet sent
                result.latencies_ms.append(1000 * ((after + taus[j]) / 2 - published))

    def _verify(self, influx: Influx, site: str, consumer: Consumer, result: Result) -> None:
        try:
            result.samples_stored = influx.field_counts(site)
            if result.setup.scoring:
                result.scores_stored = influx.scalar(f"SELECT count(score) FROM scores WHERE site = '{site}'")
            counters: dict[str, float] = {}
            for m in consumer.metrics():
                for name in (
                    "edgegen_frames_stored_total",
                    "edgegen_frames_duplicate_total",
                    "edgegen_frames_rejected_total",
                    "edgegen_analytics_rows_total",
                    "edgegen_analytics_late_samples_total",
                    "edgegen_analytics_filled_bins_total",
                    "edgegen_analytics_restarts_total",
                    "edgegen_analytics_failures_total",
                    "edgegen_spool_overflow_total",
                ):
                    counters[name] = counters.get(name, 0.0) + metric(m, name)
            result.gateway_counters = counters
        except Exception as exc:
            result.error = result.error or f"verification: {type(exc).__name__}: {exc}"


def _wait_count(influx: Influx, site: str, lo_us: int, hi_us: int, want: int, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while (got := influx.count(site, lo_us, hi_us)) < want:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: {got} of {want} samples stored after {timeout_s:.0f} s")
        time.sleep(0.2)


def _log_problems(logs: list[Path]) -> list[str]:
    out = []
    for path in logs:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            if "disconnected: Normal disconnection" in line:  # our SIGTERM at the end
                continue
            if any(word in line for word in ("WARNING", "ERROR", "CRITICAL", "Traceback")):
                out.append(f"{path.name}: {line.strip()}")
    return out


# -- the run -------------------------------------------------------------------------------------------------

SETUPS = (
    Setup("baseline", 0),
    Setup("gw-off", 1),
    Setup("gw-on", 1, scoring=True),
    Setup("gw-on-x2", 2, scoring=True),
    Setup("gw-on-x3", 3, scoring=True),
    Setup("gw-off-x2", 2),
    Setup("gw-off-x3", 3),
)


def _installed(name: str) -> bool:
    try:
        find_binary(name)
    except ServerMissing:
        return False
    return True


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


def report(results: list[Result], args: argparse.Namespace) -> None:
    base = next((r.throughput for r in results if r.setup.processes == 0), math.nan)
    w = Workload.of(args.samples_per_frame, args.rate_hz)
    print(
        f"{args.nodes} nodes, {w.describe()}; throughput: a backlog of {args.frames_per_node} frames/node "
        f"({args.nodes * args.frames_per_node * w.samples:,} samples); latency: {args.latency_s} s "
        f"({w.frames(args.latency_s)} frames/node) in real time, 1 frame per {w.frame_s:g} s per node "
        f"({args.nodes / w.frame_s:,.0f} frames/s, {args.nodes * w.rate_hz:,.0f} samples/s offered); "
        f"mosquitto max_inflight_messages {args.inflight}; gateway spool_sync {args.spool_sync}"
    )
    header = (
        f"{'setup':9} {'procs':>5} {'samples/s':>9} {'x base':>6} {'window s':>8} {'pub done':>8} {'p50 ms':>6} "
        f"{'p99 ms':>6} {'CPU s/10k':>9} {'influxd':>7} {'stored/sent':>15} {'rows scored':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        stored = min(r.samples_stored) if r.samples_stored else 0
        check = f"{stored}/{r.expected}" + ("" if r.complete else "!")
        procs = "-" if r.setup.processes == 0 else str(r.setup.processes)
        rows = f"{r.rows_scored:.0f}" if r.setup.scoring else "-"
        p50, p99 = _percentile(r.latencies_ms, 50), _percentile(r.latencies_ms, 99)
        print(
            f"{r.setup.name:9} {procs:>5} {r.throughput:9,.0f} {r.throughput / base:6.2f} {r.window_s:8.2f} "
            f"{r.publish_done_s:8.2f} {p50:6.0f} {p99:6.0f} {r.cpu_per_10k:9.3f} {r.influx_cpu_per_10k:7.3f} "
            f"{check:>15} {rows:>11}"
        )
    for line in (
        "samples/s: first publish -> last sample of the backlog queryable; x base: ratio to the baseline's;",
        "window s: that interval; pub done: s until the broker had acknowledged the whole backlog to the nodes;",
        "p50/p99: publish -> queryable at the fixed load (+-50 ms per frame); CPU s/10k: user+sys seconds of the",
        "consumer process(es) per 10k samples over the window; influxd: the same for InfluxDB; stored/sent:",
        "samples of the whole run, every field c0..c7 counted (! = missing); rows scored: model rows, window.",
    ):
        print(line)
    on = next((r for r in results if r.setup.name == "gw-on"), None)
    if on is not None:
        ratio = on.throughput / base
        verdict = "met" if ratio >= 0.8 else "NOT met"
        print(f"target: gateway with scoring >= 0.8 x the baseline's throughput: {ratio:.2f}, {verdict}")
    for r in results:
        notes = []
        if r.error:
            notes.append(f"ERROR {r.error}")
        if not r.complete:
            notes.append(f"LOSS: stored per field {r.samples_stored}, sent {r.expected}")
        if r.latency_missing:
            notes.append(f"{r.latency_missing} latency-phase frames not stored in time")
        if r.poll_ms:
            notes.append(f"latency polls {np.median(r.poll_ms):.0f} ms median, {max(r.poll_ms):.0f} ms max")
        if r.setup.scoring:
            notes.append(
                f"streams scoring per process {r.streams_scoring}; scores points stored {r.scores_stored}"
            )
        counters = {k.removeprefix("edgegen_").removesuffix("_total"): v for k, v in r.gateway_counters.items()}
        if counters:
            notes.append(", ".join(f"{k} {v:.0f}" for k, v in counters.items() if v))
        if r.log_problems:
            notes.append(f"{len(r.log_problems)} WARNING/ERROR log lines, first: {r.log_problems[0]}")
        print(f"  {r.setup.name}: " + "; ".join(notes))


def _workload(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Workload:
    if not 1 <= args.samples_per_frame <= MAX_SAMPLES:
        parser.error(f"--samples-per-frame must be 1..{MAX_SAMPLES}")
    if not 0 < args.rate_hz <= 1e6 or abs(1e6 / args.rate_hz - round(1e6 / args.rate_hz)) > 1e-6:
        parser.error("--rate-hz must divide 1 s into whole microseconds (a frame carries its period in us)")
    return Workload.of(args.samples_per_frame, args.rate_hz)


def main() -> None:
    if len(sys.argv) == 7 and sys.argv[1] == "--baseline-worker":
        baseline_worker(*sys.argv[2:7])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=120, help="virtual nodes (one stream each)")
    parser.add_argument("--frames-per-node", type=int, default=40, help="throughput backlog per node")
    parser.add_argument("--latency-s", type=int, default=8, help="seconds of the fixed-rate latency phase")
    parser.add_argument(
        "--samples-per-frame", type=int, default=50, help="8-channel sample instants per frame (default 50)"
    )
    parser.add_argument(
        "--rate-hz", type=float, default=100.0, help="sample rate of every node (default 100; 1e6/rate: whole us)"
    )
    parser.add_argument(
        "--inflight", type=int, default=20, help="mosquitto max_inflight_messages (its default: 20)"
    )
    parser.add_argument("--spool-sync", choices=("full", "normal"), default="full", help="gateway.spool_sync")
    parser.add_argument(
        "--setups", default=",".join(s.name for s in SETUPS), help="which configurations, in order"
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench/gateway_load"), help="scratch directory")
    parser.add_argument(
        "--profile", action="store_true", help="run gateways under cProfile (event-loop thread) into the workdir"
    )
    parser.add_argument("--quick", action="store_true", help="sanity run: 100 nodes, 10 frames/node, 3 s latency")
    args = parser.parse_args()
    if args.quick:
        args.nodes, args.frames_per_node, args.latency_s = 100, 10, 3
    workload = _workload(parser, args)
    setups = [s for name in args.setups.split(",") for s in SETUPS if s.name == name]
    missing = [name for name in ("mosquitto", "influxd") if not _installed(name)]
    if missing:
        print(f"skipped: {' and '.join(missing)} not installed (the README's test command installs them)")
        return
    frames_per_client = (
        workload.warmup_frames(max(s.processes for s in SETUPS))
        + workload.frames(MAX_EXTRA_WARMUP_S)
        + args.frames_per_node
        + workload.frames(args.latency_s)
    )
    if args.nodes * frames_per_client >= MOSQUITTO_MAX_QUEUED:
        parser.error(f"nodes x frames ({args.nodes * frames_per_client}) must stay below {MOSQUITTO_MAX_QUEUED}")

    workdir = args.workdir / time.strftime("%Y%m%d-%H%M%S")
    mosquitto = Mosquitto(workdir / "mosquitto")
    with mosquitto.conf.open("a") as conf:
        conf.write(f"max_inflight_messages {args.inflight}\n")
    influxd = InfluxDB(workdir / "influxdb")
    started, load_before = time.monotonic(), os.getloadavg()[0]
    results = []
    mosquitto.start()
    try:
        influxd.start()
        assert influxd.proc is not None
        run = Run(args, mosquitto.url, influxd.url, influxd.proc.pid)
        for setup in setups:
            t = time.monotonic()
            results.append(run.measure(setup, workdir / setup.name, free_port))
            print(f"[{setup.name}: {time.monotonic() - t:.0f} s]", flush=True)
    finally:
        influxd.stop()
        mosquitto.stop()
    report(results, args)
    print(
        f"run time {time.monotonic() - started:.0f} s on {os.cpu_count()} CPUs; 1-min load average before "
        f"{load_before:.2f}, after {os.getloadavg()[0]:.2f}; logs and state in {workdir}"
    )


if __name__ == "__main__":
    main()
