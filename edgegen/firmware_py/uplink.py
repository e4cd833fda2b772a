# The node's link to the broker: publish() stores a message in the outbox; service(), called from the main loop,
# keeps the connection, sends what is pending and frees what the broker acknowledged.
#
# - QoS 1 with packet-id tracking: up to max_inflight messages in flight, each remembered with its outbox slot.
# - After a lost connection, if the broker kept our session, unacknowledged messages go again with DUP and the
#   same packet id; after max_dup_retries such attempts the session is abandoned: a clean session, new ids.
#   If the broker lost the session, they are simply sent again as new messages.
# - No PUBACK within ack_timeout_ms counts as a lost connection.
# - Reconnects back off exponentially with jitter, so a fleet does not stampede a restarted broker.
# - Sending is rate-limited (drain_per_s, with a burst), so a node reconnecting with a full outbox drains it
#   without flooding the broker; live traffic is far below the limit.
#
# Memory: the in-flight table is a few preallocated arrays; service() allocates nothing in steady state.
from array import array

from .compat import random_bits, sleep_ms, ticks_add, ticks_diff, ticks_ms
from .errors import EdgeError, LinkDown
from .mqtt import DUP, PUBACK
from .outbox import HEADER


class Uplink:
    def __init__(
        self,
        client,
        outbox,
        max_inflight=8,
        ack_timeout_ms=10000,
        max_dup_retries=3,
        drain_per_s=20,
        burst=10,
        backoff_min_ms=500,
        backoff_max_ms=60000,
        subscriptions=(),
    ):
        self.client = client
        self.outbox = outbox
        self.max_inflight = max_inflight
        self.ack_timeout_ms = ack_timeout_ms
        self.max_dup_retries = max_dup_retries
        self.drain_per_s = drain_per_s
        self.burst = burst
        self.backoff_min_ms = backoff_min_ms
        self.backoff_max_ms = backoff_max_ms
        self.subscriptions = subscriptions  # topics (str) subscribed at QoS 1 on every connect
        self.status_topic = None  # with status_payload: published retained on every connect
        self.status_payload = None
        # In-flight table, oldest first.
        self._pids = array("H", [0] * max_inflight)
        self._slots = array("H", [0] * max_inflight)
        self._records = array("I", [0] * max_inflight)
        self._sent_at = array("i", [0] * max_inflight)
        self._tries = bytearray(max_inflight)
        self._count = 0
        self._next_pid = 1
        self._clean_next = False
        self._backoff_ms = backoff_min_ms
        self._retry_at = ticks_ms()
        self._tokens = burst * 1000  # milli-messages
        self._refilled = ticks_ms()
        self.connects = 0
        self.sent = 0
        self.acked = 0
        self.duplicates_sent = 0
        self.last_error = None

    # -- the Link interface --------------------------------------------------------------------------------

    def publish(self, topic, payload, qos=1):
        """Store a message for delivery (topic as bytes). It survives a reboot until the broker has it."""
        self.outbox.push(topic, payload)

    @property
    def inflight(self):
        return self._count

    @property
    def connected(self):
        return self.client.connected

    # -- main-loop work ------------------------------------------------------------------------------------

    def service(self):
        """Connect if due, take acknowledgements, send what the window and rate allow. Never raises LinkDown."""
        client = self.client
        now = ticks_ms()
        if not client.connected:
            if ticks_diff(now, self._retry_at) < 0:
                return
            try:
                self._connect()
            except EdgeError as exc:
                self._lost(exc, now)
                return
        try:
            while True:
                kind = client.poll(0)
                if kind is None:
                    break
                if kind == PUBACK:
                    self._on_ack(client.acked)
            if self._count and ticks_diff(now, self._sent_at[0]) > self.ack_timeout_ms:
                raise LinkDown("no PUBACK within the ack timeout")
            self._refill(now)
            while self._count < self.max_inflight and self._tokens >= 1000:
                slot = self.outbox.next_pending()
                if slot < 0:
                    break
                self._send(slot, self._new_pid(), 0, now)
                self._tokens -= 1000
        except LinkDown as exc:
            self._lost(exc, now)

    def flush(self, timeout_ms):
        """Service until the outbox is empty and nothing is in flight, or the timeout; return whether empty."""
        deadline = ticks_add(ticks_ms(), timeout_ms)
        while self.outbox.depth() or self._count:
            if ticks_diff(deadline, ticks_ms()) <= 0:
                return False
            self.service()
            sleep_ms(1)
        return True

    # -- internals -----------------------------------------------------------------------------------------

    def _connect(self):
        client = self.client
        clean = self._clean_next
        present = client.connect(clean)
        self._clean_next = False
        self.connects += 1
        self._backoff_ms = self.backoff_min_ms
        now = ticks_ms()
        for topic in self.subscriptions:
            client.subscribe(self._new_pid(), topic, 1)
        if self.status_topic is not None and self.status_payload is not None:
            client.publish(self.status_topic, self.status_payload, qos=0, retain=True)
        if present and not clean:
            i = 0
            while i < self._count:
                if self.outbox.record(self._slots[i]) != self._records[i]:
                    self._remove(i)  # the ring overwrote it while we were away
                    continue
                self._tries[i] += 1
                self.duplicates_sent += 1
                self._send(self._slots[i], self._pids[i], i + 1, now)
                i += 1
        else:
            self._requeue_all()

    def _send(self, slot, pid, position, now):
        """Send the outbox message in ``slot`` with ``pid``. position 0: a new entry; n: resend of entry n-1."""
        outbox = self.outbox
        outbox.load(slot)
        packet_len = outbox.packet_len
        pid_at = outbox.pid_at
        buf = outbox.buf
        if position:
            buf[HEADER] |= DUP
        at = HEADER + pid_at
        buf[at] = pid >> 8
        buf[at + 1] = pid & 0xFF
        if not position:
            i = self._count
            self._pids[i] = pid
            self._slots[i] = slot
            self._records[i] = outbox.record(slot)
            self._tries[i] = 0
            self._count = i + 1
            outbox.mark_inflight(slot)
        else:
            i = position - 1
        self._sent_at[i] = now
        self.client.send_raw(buf, HEADER, packet_len)  # in place: the packet sits at buf[HEADER:]
        self.sent += 1

    def _on_ack(self, pid):
        for i in range(self._count):
            if self._pids[i] == pid:
                if self.outbox.ack(self._slots[i], self._records[i]):
                    self.acked += 1
                self._remove(i)
                return

    def _remove(self, i):
        n = self._count - 1
        for j in range(i, n):
            self._pids[j] = self._pids[j + 1]
            self._slots[j] = self._slots[j + 1]
            self._records[j] = self._records[j + 1]
            self._sent_at[j] = self._sent_at[j + 1]
            self._tries[j] = self._tries[j + 1]
        self._count = n

    def _requeue_all(self):
        for i in range(self._count):
            self.outbox.requeue(self._slots[i], self._records[i])
        self._count = 0

    def _new_pid(self):
        pid = self._next_pid
        while True:
            clash = False
            for i in range(self._count):
                if self._pids[i] == pid:
                    clash = True
                    break
            if not clash:
                break
            pid = pid % 65535 + 1
        self._next_pid = pid % 65535 + 1
        return pid

    def _refill(self, now):
        elapsed = ticks_diff(now, self._refilled)
        if elapsed > 0:
            self._tokens = min(self.burst * 1000, self._tokens + elapsed * self.drain_per_s)
            self._refilled = now

    def _lost(self, exc, now):
        self.client.close()
        self.last_error = str(exc)
        for i in range(self._count):
            if self._tries[i] >= self.max_dup_retries:
                # The same message keeps failing on this session: start clean, with new packet ids.
                self._clean_next = True
                self._requeue_all()
                break
        # Full jitter over the upper half: between backoff/2 and backoff.
        half = self._backoff_ms // 2
        delay = half + (random_bits(16) * (half + 1) >> 16)
        self._retry_at = ticks_add(now, delay)
        self._backoff_ms = min(self.backoff_max_ms, self._backoff_ms * 2)
