"""A scripted MQTT broker on a raw socket: it answers CONNECT as told, records every packet, and can drop the
connection right after a PUBLISH, which a real broker cannot be made to do (R1, docs/reliability.md)."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self


@dataclass
class Publish:
    connection: int
    qos: int
    dup: bool
    retain: bool
    pid: int
    topic: str
    payload: bytes


@dataclass
class Connect:
    connection: int
    clean_session: bool
    client_id: str
    keepalive: int
    will_topic: str | None
    will_message: bytes | None
    will_qos: int
    will_retain: bool


@dataclass
class Script:
    """Per connection index: whether CONNACK says the session is present, and whether the first QoS 1
    PUBLISH is dropped (connection closed without PUBACK) instead of acknowledged."""

    session_present: list[bool] = field(default_factory=list)
    drop_first_publish: list[bool] = field(default_factory=list)


def _read_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("peer closed")
        data += chunk
    return data


def read_packet(conn: socket.socket) -> tuple[int, bytes]:
    first = _read_exact(conn, 1)[0]
    length, shift = 0, 0
    while True:
        byte = _read_exact(conn, 1)[0]
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
    return first, _read_exact(conn, length)


def _string(body: bytes, at: int) -> tuple[str, int]:
    (n,) = struct.unpack_from(">H", body, at)
    return body[at + 2 : at + 2 + n].decode(), at + 2 + n


def parse_connect(index: int, body: bytes) -> Connect:
    _, at = _string(body, 0)  # "MQTT"
    flags = body[at + 1]
    (keepalive,) = struct.unpack_from(">H", body, at + 2)
    at += 4
    client_id, at = _string(body, at)
    will_topic = will_message = None
    if flags & 0x04:
        will_topic, at = _string(body, at)
        (n,) = struct.unpack_from(">H", body, at)
        will_message = body[at + 2 : at + 2 + n]
    return Connect(
        index,
        bool(flags & 0x02),
        client_id,
        keepalive,
        will_topic,
        will_message,
        (flags >> 3) & 3,
        bool(flags & 0x20),
    )


def parse_publish(index: int, first: int, body: bytes) -> Publish:
    qos = (first >> 1) & 3
    topic, at = _string(body, 0)
    pid = 0
    if qos:
        (pid,) = struct.unpack_from(">H", body, at)
        at += 2
    return Publish(index, qos, bool(first & 0x08), bool(first & 0x01), pid, topic, body[at:])


class ScriptedBroker:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.connects: list[Connect] = []
        self.publishes: list[Publish] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        self._server.settimeout(0.2)
        index = 0
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(ConnectionError, TimeoutError, OSError):
                    self._session(index, conn)
            index += 1

    def _session(self, index: int, conn: socket.socket) -> None:
        first, body = read_packet(conn)
        if first & 0xF0 != 0x10:
            return
        self.connects.append(parse_connect(index, body))
        present = self.script.session_present[index] if index < len(self.script.session_present) else False
        conn.sendall(bytes([0x20, 2, 1 if present else 0, 0]))
        drop = self.script.drop_first_publish[index] if index < len(self.script.drop_first_publish) else False
        while not self._stop.is_set():
            first, body = read_packet(conn)
            kind = first & 0xF0
            if kind == 0x30:
                publish = parse_publish(index, first, body)
                self.publishes.append(publish)
                if publish.qos == 1:
                    if drop:
                        return  # close without PUBACK
                    conn.sendall(bytes([0x40, 2]) + struct.pack(">H", publish.pid))
            elif kind == 0x80:  # SUBSCRIBE -> SUBACK granting QoS 1
                conn.sendall(bytes([0x90, 3]) + body[:2] + b"\x01")
            elif kind == 0xC0:
                conn.sendall(bytes([0xD0, 0]))
            elif kind == 0xE0:
                return

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(5)
        self._server.close()
