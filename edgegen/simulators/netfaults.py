"""Network faults for virtual nodes: a TCP relay between MQTT clients and a real broker that degrades the link.

The node and the broker stay real; only the wire between them changes, so what a test or a replay sees (QoS 1
resends with DUP, reconnects, resumed sessions) is what a plant with a bad link would see. The relay cuts each
byte stream into whole MQTT packets (fixed header: type and flags, then the remaining-length varint), so it can
lose client->broker PUBLISHes and delay packets without ever breaking the framing.

One thread runs a selectors loop over non-blocking sockets: no per-connection threads, and every wait is bounded
by the next packet due, the next cut, or a short tick that lets ``close()`` stop it promptly.
"""

from __future__ import annotations

import errno
import logging
import math
import random
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from edgegen.simulators.errors import NetFaultsError

log = logging.getLogger(__name__)

PUBLISH = 3  # MQTT packet type of PUBLISH
TICK_S = 0.05  # longest the loop sleeps: how soon close() is noticed
CONNECT_TIMEOUT_S = 5.0  # to open the upstream connection for an accepted client
PAUSE_READ_BYTES = 1 << 20  # queued (delayed) bytes per direction above which reading stops: TCP backpressure
RECV_BYTES = 65536


@dataclass(frozen=True)
class NetFaults:
    """What the link does wrong. The default is a perfect link."""

    loss: float = 0.0  # probability that a client->broker PUBLISH packet is lost
    delay_ms: float = 0.0  # one-way delay added to every packet, both directions
    jitter_ms: float = 0.0  # uniform +- jitter on that delay (order preserved, as on TCP)
    disconnect_every_s: float | None = None  # cut every live connection this often
    seed: int = 0

    def __post_init__(self) -> None:
        _number("loss", self.loss)
        if not 0 <= self.loss < 1:
            raise NetFaultsError("loss", f"expected a probability with 0 <= loss < 1, got {self.loss!r}")
        for name in ("delay_ms", "jitter_ms"):
            value = getattr(self, name)
            _number(name, value)
            if value < 0:
                raise NetFaultsError(name, f"expected a duration >= 0 ms, got {value!r}")
        if self.disconnect_every_s is not None:
            _number("disconnect_every_s", self.disconnect_every_s)
            if self.disconnect_every_s <= 0:
                raise NetFaultsError(
                    "disconnect_every_s", f"expected None or a period > 0 s, got {self.disconnect_every_s!r}"
                )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise NetFaultsError("seed", f"expected an integer, got {self.seed!r}")

    def lost(self, publishes: int) -> list[bool]:
        """Which of the first ``publishes`` client->broker PUBLISHes (in the order the proxy sees them, over
        all its connections) this link loses: the proxy draws exactly these decisions."""
        rng = random.Random(self.seed)
        return [rng.random() < self.loss for _ in range(publishes)]


def _number(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise NetFaultsError(name, f"expected a finite number, got {value!r}")


@dataclass(frozen=True)
class DroppedPublish:
    """A PUBLISH the proxy lost, for tests that check each one was recovered."""

    index: int  # its place among the client->broker PUBLISHes the proxy saw, from 0 (see NetFaults.lost)
    connection: int  # which accepted connection, counted from 0
    topic: str
    packet_id: int | None  # None at QoS 0
    dup: bool
    payload: bytes

    @classmethod
    def parse(cls, index: int, connection: int, packet: bytes) -> DroppedPublish:
        first = packet[0]
        qos = (first >> 1) & 3
        at = _header_length(packet)
        topic_len = int.from_bytes(packet[at : at + 2], "big")
        at += 2
        topic = packet[at : at + topic_len].decode("utf-8", "replace")
        at += topic_len
        packet_id = None
        if qos:
            packet_id = int.from_bytes(packet[at : at + 2], "big")
            at += 2
        return cls(index, connection, topic, packet_id, bool(first & 0x08), bytes(packet[at:]))


def _ignore(mask: int) -> None:
    """The handler of an unregistered socket."""


class MalformedPacket(Exception):
    """The stream is not MQTT: the remaining length runs past four bytes."""


def _header_length(buf: bytes | bytearray) -> int:
    """Bytes in the fixed header of the packet at buf[0] (which must hold the whole header)."""
    at = 1
    while buf[at] & 0x80:
        at += 1
    return at + 1


def packet_length(buf: bytes | bytearray) -> int | None:
    """Total length of the MQTT packet at the start of ``buf``; None while its fixed header is incomplete."""
    remaining = 0
    for i in range(4):
        if len(buf) < 2 + i:
            return None
        byte = buf[1 + i]
        remaining |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return 2 + i + remaining
    raise MalformedPacket("remaining length longer than 4 bytes")


class PacketSplitter:
    """Cuts a byte stream into whole MQTT packets."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        packets = []
        while (n := packet_length(self._buf)) is not None and len(self._buf) >= n:
            packets.append(bytes(self._buf[:n]))
            del self._buf[:n]
        return packets


class _Pipe:
    """One direction of a connection: packets from ``src`` wait in a queue until due, then go to ``dst``."""

    def __init__(self, src: socket.socket, dst: socket.socket) -> None:
        self.src = src
        self.dst = dst
        self.splitter = PacketSplitter()
        self.queue: deque[tuple[float, bytes]] = deque()
        self.queued_bytes = 0
        self.written = 0  # bytes of queue[0] already sent
        self.last_due = 0.0  # no packet is due before the one ahead of it: order preserved
        self.eof = False  # src sends no more
        self.shut = False  # ... and everything before its EOF went out, then dst's write side was shut
        self.blocked = False  # dst's send buffer is full: wait for it to drain

    def push(self, due: float, packet: bytes) -> None:
        self.last_due = max(due, self.last_due)
        self.queue.append((self.last_due, packet))
        self.queued_bytes += len(packet)

    def pump(self, now: float, writable: bool) -> tuple[int, float | None]:
        """Send what is due; return (packets completed, when the next one is due). Raises OSError if dst is
        gone."""
        done = 0
        self.blocked = False
        while self.queue:
            due, packet = self.queue[0]
            if due > now:
                return done, due
            if not writable:
                return done, None
            try:
                self.written += self.dst.send(memoryview(packet)[self.written :])
            except BlockingIOError:
                self.blocked = True
                return done, None
            if self.written < len(packet):
                self.blocked = True
                return done, None
            self.queue.popleft()
            self.queued_bytes -= len(packet)
            self.written = 0
            done += 1
        if self.eof and not self.shut and writable:
            self.shut = True
            self.dst.shutdown(socket.SHUT_WR)  # pass the half-close on, after the packets before it
        return done, None


@dataclass
class _Conn:
    index: int
    client: socket.socket
    upstream: socket.socket
    connect_deadline: float
    connecting: bool = True
    up: _Pipe = field(init=False)  # client -> broker
    down: _Pipe = field(init=False)  # broker -> client

    def __post_init__(self) -> None:
        self.up = _Pipe(self.client, self.upstream)
        self.down = _Pipe(self.upstream, self.client)

    @property
    def finished(self) -> bool:
        return self.up.shut and self.down.shut


class FaultProxy:
    """A TCP relay from ``url`` to the broker at upstream_host:upstream_port that applies ``faults``.

    Counters (exact, safe to read from any thread): ``connections`` accepted, ``packets_forwarded`` (whole
    packets written on, both directions), ``publishes_seen`` (client->broker PUBLISHes, lost or not),
    ``publishes_dropped``, ``disconnects`` (connections cut by ``disconnect_every_s``), ``active`` (open now);
    ``dropped`` lists the lost PUBLISHes.
    """

    def __init__(self, upstream_host: str, upstream_port: int, faults: NetFaults, host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        # Resolved once, here: a name lookup in the loop would stall every connection (and cannot be bounded).
        family, _, _, _, address = socket.getaddrinfo(upstream_host, upstream_port, type=socket.SOCK_STREAM)[0]
        self._upstream_family = socket.AddressFamily(family)
        self._upstream_addr: tuple[Any, ...] = address
        self.faults = faults
        self._loss_rng = random.Random(faults.seed)  # the same stream NetFaults.lost() draws
        self._jitter_rng = random.Random(f"{faults.seed}/jitter")  # separate: delays never shift the losses
        self._lock = threading.Lock()
        self._connections = 0
        self._packets_forwarded = 0
        self._publishes_seen = 0
        self._dropped: list[DroppedPublish] = []
        self._disconnects = 0
        self._conns: list[_Conn] = []
        self._interest: dict[socket.socket, int] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._sel = selectors.DefaultSelector()
        listen_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, 0), family=listen_family, backlog=128)
        self._listener.setblocking(False)
        self.host = host
        self.port: int = self._listener.getsockname()[1]
        self.url = f"mqtt://[{host}]:{self.port}" if ":" in host else f"mqtt://{host}:{self.port}"
        self.failure: BaseException | None = None  # set if the loop itself failed (a bug): all is closed

    # -- counters --------------------------------------------------------------------------------------------

    @property
    def connections(self) -> int:
        with self._lock:
            return self._connections

    @property
    def packets_forwarded(self) -> int:
        with self._lock:
            return self._packets_forwarded

    @property
    def publishes_seen(self) -> int:
        with self._lock:
            return self._publishes_seen

    @property
    def publishes_dropped(self) -> int:
        with self._lock:
            return len(self._dropped)

    @property
    def dropped(self) -> list[DroppedPublish]:
        with self._lock:
            return list(self._dropped)

    @property
    def disconnects(self) -> int:
        with self._lock:
            return self._disconnects

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._conns)

    @property
    def running(self) -> bool:
        """Whether the relay's thread is still up (false once close() has returned, unless it hung)."""
        return self._thread is not None and self._thread.is_alive()

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the proxy is already started")
        self._thread = threading.Thread(target=self._run, name=f"netfaults-{self.port}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop accepting, close every connection (both sides) and the listener; returns within about 1 s."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        else:
            self._listener.close()
            self._sel.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the loop --------------------------------------------------------------------------------------------

    def _run(self) -> None:
        self._want(self._listener, selectors.EVENT_READ, lambda mask: self._accept())
        period = self.faults.disconnect_every_s
        next_cut = time.monotonic() + period if period is not None else math.inf
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                if now >= next_cut:
                    self._cut_all()
                    next_cut = max(next_cut + period, now) if period is not None else math.inf
                wake = min(now + TICK_S, next_cut)
                for conn in list(self._conns):
                    due = self._pump(conn, now)
                    if due is not None:
                        wake = min(wake, due)
                for key, mask in self._sel.select(max(0.0, wake - time.monotonic())):
                    handler: Callable[[int], None] = key.data
                    handler(mask)
        except BaseException as exc:  # a bug, not a network fault: keep it for the caller, close everything
            log.exception("netfaults proxy loop failed")
            self.failure = exc
        finally:
            for conn in list(self._conns):
                self._drop_conn(conn)
            self._sel.close()
            self._listener.close()

    def _want(self, sock: socket.socket, events: int, handler: Callable[[int], None]) -> None:
        """Keep ``sock``'s selector registration at ``events`` (0: unregistered)."""
        current = self._interest.get(sock, 0)
        if events == current:
            return
        if not events:
            self._sel.unregister(sock)
            del self._interest[sock]
        elif not current:
            self._sel.register(sock, events, handler)
            self._interest[sock] = events
        else:
            self._sel.modify(sock, events, handler)
            self._interest[sock] = events

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of file descriptors: refuse this one, keep serving
                log.warning("netfaults: accept failed: %s", exc)
                return
            upstream = socket.socket(self._upstream_family, socket.SOCK_STREAM)
            for sock in (client, upstream):
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small MQTT packets, timed
            with self._lock:
                index = self._connections
                self._connections += 1
                conn = _Conn(index, client, upstream, time.monotonic() + CONNECT_TIMEOUT_S)
                self._conns.append(conn)
            err = upstream.connect_ex(self._upstream_addr)
            if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
                log.warning("netfaults: cannot reach %s:%d: %s", *self.upstream, errno.errorcode.get(err, err))
                self._drop_conn(conn)
                continue
            self._interests(conn)

    def _on_event(self, conn: _Conn, sock: socket.socket, mask: int) -> None:
        if conn not in self._conns:
            return  # closed earlier in this round of events
        try:
            if sock is conn.upstream and conn.connecting and mask & selectors.EVENT_WRITE:
                err = conn.upstream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise OSError(err, f"connect to {self.upstream[0]}:{self.upstream[1]}: {errno.errorcode[err]}")
                conn.connecting = False
            if mask & selectors.EVENT_READ:
                self._read(conn, conn.up if sock is conn.client else conn.down)
            self._pump(conn, time.monotonic())
        except (OSError, MalformedPacket) as exc:  # a reset, a refused connect, not MQTT: end this connection
            log.debug("netfaults: connection %d closed: %s", conn.index, exc)
            self._drop_conn(conn)

    def _read(self, conn: _Conn, pipe: _Pipe) -> None:
        try:
            data = pipe.src.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        if not data:
            pipe.eof = True  # a half-close: forwarded once the packets before it have gone
            return
        now = time.monotonic()
        for packet in pipe.splitter.feed(data):
            if pipe is conn.up and packet[0] >> 4 == PUBLISH and self._lose(conn, packet):
                continue
            pipe.push(now + self._delay_s(), packet)

    def _lose(self, conn: _Conn, packet: bytes) -> bool:
        lost = self._loss_rng.random() < self.faults.loss
        with self._lock:
            index = self._publishes_seen
            self._publishes_seen += 1
            if lost:
                self._dropped.append(DroppedPublish.parse(index, conn.index, packet))
        return lost

    def _delay_s(self) -> float:
        f = self.faults
        if not f.delay_ms and not f.jitter_ms:
            return 0.0
        jitter = self._jitter_rng.uniform(-f.jitter_ms, f.jitter_ms) if f.jitter_ms else 0.0
        return max(0.0, f.delay_ms + jitter) / 1000

    def _pump(self, conn: _Conn, now: float) -> float | None:
        """Forward what is due on both pipes; close the connection when finished or broken. Returns when the
        next packet is due."""
        if conn not in self._conns:
            return None
        try:
            if conn.connecting and now > conn.connect_deadline:
                raise OSError(errno.ETIMEDOUT, f"connect to {self.upstream[0]}:{self.upstream[1]} timed out")
            sent_up, due_up = conn.up.pump(now, writable=not conn.connecting)
            sent_down, due_down = conn.down.pump(now, writable=True)
        except OSError as exc:
            log.debug("netfaults: connection %d closed: %s", conn.index, exc)
            self._drop_conn(conn)
            return None
        if sent_up or sent_down:
            with self._lock:
                self._packets_forwarded += sent_up + sent_down
        if conn.finished:
            self._drop_conn(conn)
            return None
        self._interests(conn)
        dues = [d for d in (due_up, due_down) if d is not None]
        return min(dues) if dues else None

    def _interests(self, conn: _Conn) -> None:
        up, down = conn.up, conn.down
        read = selectors.EVENT_READ
        write = selectors.EVENT_WRITE
        client = (read if not up.eof and up.queued_bytes < PAUSE_READ_BYTES else 0) | (
            write if down.blocked else 0
        )
        if conn.connecting:
            upstream = write
        else:
            upstream = (read if not down.eof and down.queued_bytes < PAUSE_READ_BYTES else 0) | (
                write if up.blocked else 0
            )
        self._want(conn.client, client, lambda mask: self._on_event(conn, conn.client, mask))
        self._want(conn.upstream, upstream, lambda mask: self._on_event(conn, conn.upstream, mask))

    def _drop_conn(self, conn: _Conn) -> None:
        with self._lock:
            if conn not in self._conns:
                return
            self._conns.remove(conn)
        for sock in (conn.client, conn.upstream):
            self._want(sock, 0, _ignore)
            sock.close()

    def _cut_all(self) -> None:
        """The link goes down: every live connection is closed on both sides, whatever was in flight is lost."""
        conns = list(self._conns)
        for conn in conns:
            self._drop_conn(conn)
        with self._lock:
            self._disconnects += len(conns)
