# A small MQTT 3.1.1 client on raw sockets, for stock MicroPython (no paho there) and CPython alike.
#
# It speaks what a sensor node needs: CONNECT with last will, username/password and TLS; PUBLISH at QoS 0/1 with
# caller-chosen packet ids and the DUP flag; PUBACK; SUBSCRIBE for commands; PINGREQ for keepalive. It keeps no
# message state: the Uplink (edgegen/firmware_py/uplink.py) owns packet ids, retries and the outbox.
#
# Memory: the receive and transmit buffers are allocated once; publish() and poll() allocate nothing.
import struct

from .compat import const, poll_ready, sock_readinto, sock_write, ticks_add, ticks_diff, ticks_ms
from .errors import BrokerRefused, LinkDown

CONNECT = const(0x10)
CONNACK = const(0x20)
PUBLISH = const(0x30)
PUBACK = const(0x40)
SUBSCRIBE = const(0x82)
SUBACK = const(0x90)
PINGREQ = const(0xC0)
PINGRESP = const(0xD0)
DISCONNECT = const(0xE0)
DUP = const(0x08)
RETAIN = const(0x01)


def encode_length(buf, at, n):
    """Write MQTT's variable-length remaining length at buf[at]; return the next offset."""
    while True:
        byte = n & 0x7F
        n >>= 7
        buf[at] = byte | 0x80 if n else byte
        at += 1
        if not n:
            return at


def _put_str(buf, at, data):
    n = len(data)
    buf[at] = n >> 8
    buf[at + 1] = n & 0xFF
    buf[at + 2 : at + 2 + n] = data
    return at + 2 + n


def connect_packet(client_id, keepalive_s, clean_session, will=None, user=None, password=None):
    """The CONNECT packet (allocates: built once per connection). will = (topic, message, qos, retain)."""
    fields = [client_id]
    flags = 0x02 if clean_session else 0
    if will is not None:
        topic, message, qos, retain = will
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        fields += [topic, message]
    if user is not None:
        flags |= 0x80
        fields.append(user)
        if password is not None:
            flags |= 0x40
            fields.append(password)
    blobs = [f.encode() if isinstance(f, str) else bytes(f) for f in fields]
    body = 10 + sum(2 + len(b) for b in blobs)
    buf = bytearray(5 + body)
    buf[0] = CONNECT
    at = encode_length(buf, 1, body)
    at = _put_str(buf, at, b"MQTT")
    buf[at] = 4  # protocol level: 3.1.1
    buf[at + 1] = flags
    buf[at + 2] = keepalive_s >> 8
    buf[at + 3] = keepalive_s & 0xFF
    at += 4
    for blob in blobs:
        at = _put_str(buf, at, blob)
    return memoryview(buf)[:at]


def subscribe_packet(pid, topic, qos):
    data = topic.encode()
    body = 2 + 2 + len(data) + 1
    buf = bytearray(5 + body)
    buf[0] = SUBSCRIBE
    at = encode_length(buf, 1, body)
    struct.pack_into(">H", buf, at, pid)
    at = _put_str(buf, at + 2, data)
    buf[at] = qos
    return memoryview(buf)[: at + 1]


class MQTTClient:
    def __init__(
        self,
        client_id,
        server,
        port=1883,
        keepalive_s=30,
        user=None,
        password=None,
        will=None,
        tls=None,
        timeout_ms=10000,
        max_packet=1024,
        on_message=None,
    ):
        self.client_id = client_id
        self.server = server
        self.port = port
        self.keepalive_s = keepalive_s
        self.user = user
        self.password = password
        self.will = will
        self.tls = tls  # an SSLContext (MicroPython: ssl.SSLContext / tls.SSLContext)
        self.timeout_ms = timeout_ms
        self.on_message = on_message  # on_message(topic: memoryview, payload: memoryview)
        self.sock = None
        self.connected = False
        self.session_present = False
        self._poller = None
        self._rx = bytearray(max_packet)
        self._rx_mv = memoryview(self._rx)
        self._tx = bytearray(max_packet + 8)
        self._small = bytearray(4)
        self._one = bytearray(1)
        self._last_tx = 0
        self._ping_sent = None
        self.acked = None  # set by poll(): the packet id of a PUBACK, consumed by the caller
        self._n = 0  # length of the packet last read
        self.oversize_dropped = 0

    # -- connection --------------------------------------------------------------------------------------

    def connect(self, clean_session):
        """Open the socket, send CONNECT, wait for CONNACK; return whether the broker kept our session."""
        import select
        import socket

        self.close()
        sock = None
        try:
            addr = socket.getaddrinfo(self.server, self.port, 0, socket.SOCK_STREAM)[0][-1]
            sock = socket.socket()
            sock.settimeout(self.timeout_ms / 1000)
            sock.connect(addr)
            nodelay = getattr(socket, "TCP_NODELAY", None)
            if nodelay is not None:  # frames go out whole: Nagle would hold one back for the previous one's ACK
                sock.setsockopt(getattr(socket, "IPPROTO_TCP", 6), nodelay, 1)
            if self.tls is not None:
                try:
                    sock = self.tls.wrap_socket(sock, server_hostname=self.server)
                except ValueError as exc:  # MicroPython's mbedtls reports a failed handshake as ValueError
                    sock.close()
                    raise OSError("TLS handshake: %s" % str(exc).strip()) from None
            self.sock = sock
            self._poller = select.poll()
            self._poller.register(sock, select.POLLIN)
            packet = connect_packet(
                self.client_id, self.keepalive_s, clean_session, self.will, self.user, self.password
            )
            self._send(packet, len(packet))
            kind = self._read_packet(self.timeout_ms)
            n = self._n
        except OSError as exc:
            if sock is not None and sock is not self.sock:
                sock.close()  # a refused or failed connect: else every retry leaks a socket until GC
            self.close()
            raise LinkDown("connect to %s:%d failed: %r" % (self.server, self.port, exc)) from None
        if kind != CONNACK or n != 2:
            self.close()
            raise LinkDown("expected CONNACK")
        code = self._rx[1]
        if code:
            self.close()
            raise BrokerRefused(code)
        self.connected = True
        self.session_present = bool(self._rx[0] & 1)
        self._ping_sent = None
        return self.session_present

    def close(self):
        self.connected = False
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self._poller = None

    def disconnect(self):
        if self.connected:
            try:
                self._small[0] = DISCONNECT
                self._small[1] = 0
                self._send(self._small, 2)
            except LinkDown:
                pass
        self.close()

    # -- sending -----------------------------------------------------------------------------------------

    def _send(self, data, n):
        self.send_raw(data, 0, n)

    def send_raw(self, data, off, n):
        """Write data[off:off + n], however many calls the socket needs, without copying or allocating."""
        if self.sock is None:
            raise LinkDown("not connected")
        try:
            sent = 0
            while sent < n:
                w = sock_write(self.sock, data, off + sent, n - sent)
                if not w:
                    raise OSError("socket closed")
                sent += w
        except OSError as exc:
            self.close()
            raise LinkDown("send failed: %r" % (exc,)) from None
        self._last_tx = ticks_ms()

    def publish(self, topic, payload, qos=1, pid=0, dup=False, retain=False):
        """Send one PUBLISH. topic and payload are bytes-like; the packet is assembled in the transmit buffer."""
        t = len(topic)
        p = len(payload)
        body = 2 + t + (2 if qos else 0) + p
        tx = self._tx
        if body + 5 > len(tx):
            raise ValueError("message larger than the transmit buffer")
        tx[0] = PUBLISH | (qos << 1) | (DUP if dup else 0) | (RETAIN if retain else 0)
        at = encode_length(tx, 1, body)
        tx[at] = t >> 8
        tx[at + 1] = t & 0xFF
        at += 2
        tx[at : at + t] = topic
        at += t
        if qos:
            tx[at] = pid >> 8
            tx[at + 1] = pid & 0xFF
            at += 2
        tx[at : at + p] = payload
        self._send(tx, at + p)

    def subscribe(self, pid, topic, qos=1):
        packet = subscribe_packet(pid, topic, qos)
        self._send(packet, len(packet))

    def ping(self):
        self._small[0] = PINGREQ
        self._small[1] = 0
        self._send(self._small, 2)
        self._ping_sent = ticks_ms()

    # -- receiving ---------------------------------------------------------------------------------------

    def _read_exact(self, mv, n, deadline_ms):
        got = 0
        while got < n:
            if ticks_diff(deadline_ms, ticks_ms()) <= 0:
                raise OSError("read timed out")
            r = sock_readinto(self.sock, mv[got:] if got else mv, n - got)
            if r is None:  # non-blocking read with nothing yet
                continue
            if r == 0:
                raise OSError("connection closed by the broker")
            got += r

    def _read_packet(self, timeout_ms):
        """Read one packet into the receive buffer; return its first byte (or None) and set ``_n``, its length
        (-1: too large, dropped). No tuple: returning one would allocate."""
        if not poll_ready(self._poller, timeout_ms):
            return None
        deadline = ticks_add(ticks_ms(), self.timeout_ms)
        one = self._one
        self._read_exact(one, 1, deadline)
        kind = one[0]
        n = 0
        shift = 0
        while True:
            self._read_exact(one, 1, deadline)
            byte = one[0]
            n |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift > 21:
                raise OSError("malformed remaining length")
        if n > len(self._rx):  # too big for us (e.g. a command we cannot hold): read through and drop it
            left = n
            while left:
                step = min(left, len(self._rx))
                self._read_exact(self._rx_mv, step, deadline)
                left -= step
            self.oversize_dropped += 1
            self._n = -1
            return kind
        if n:
            self._read_exact(self._rx_mv, n, deadline)
        self._n = n
        return kind

    def poll(self, timeout_ms=0):
        """Handle at most one incoming packet. Returns its type (PUBACK, PINGRESP, PUBLISH, ...) or None.

        After a PUBACK, ``acked`` holds its packet id. Raises LinkDown when the connection is gone, and when the
        keepalive ping went unanswered.
        """
        if self.sock is None:
            raise LinkDown("not connected")
        now = ticks_ms()
        if self._ping_sent is not None and ticks_diff(now, self._ping_sent) > self.keepalive_s * 1000:
            self.close()
            raise LinkDown("no PINGRESP within the keepalive")
        if (
            self.keepalive_s
            and self._ping_sent is None
            and ticks_diff(now, self._last_tx) >= self.keepalive_s * 500
        ):
            self.ping()  # at half the keepalive: the broker allows 1.5x before it drops us
        try:
            kind = self._read_packet(timeout_ms)
            n = self._n
        except OSError as exc:
            self.close()
            raise LinkDown("receive failed: %r" % (exc,)) from None
        if kind is None:
            return None
        base = kind & 0xF0
        if base == PUBACK and n == 2:
            self.acked = (self._rx[0] << 8) | self._rx[1]
        elif base == PINGRESP:
            self._ping_sent = None
        elif base == PUBLISH and n > 0:
            self._deliver(kind, n)
        return base

    def _deliver(self, kind, n):
        rx = self._rx
        t = (rx[0] << 8) | rx[1]
        at = 2 + t
        qos = (kind >> 1) & 3
        pid = 0
        if qos:
            pid = (rx[at] << 8) | rx[at + 1]
            at += 2
        if self.on_message is not None:
            self.on_message(self._rx_mv[2 : 2 + t], self._rx_mv[at:n])
        if qos == 1:
            self._small[0] = PUBACK
            self._small[1] = 2
            self._small[2] = pid >> 8
            self._small[3] = pid & 0xFF
            self._send(self._small, 4)
