# A bounded, persistent outbox on flash: every QoS 1 message is written here before it is sent and freed only
# when the broker acknowledges it, so a broker outage or a reboot loses nothing the outbox can hold.
#
# One file of fixed-size slots used as a ring. Each slot holds a ready-to-send MQTT PUBLISH packet (packet id left
# zero) behind a 16-byte header:
#
#   0  u32 record number (monotonic; 0 = never used)   6  u16 packet length   10 u16 offset of the packet id
#   4  u8  state: 1 pending, 2 acknowledged            8  u16 topic length    12 u32 CRC-32 of bytes 0-3, 6-11
#   5  u8  reserved                                                                  and 16 to the slot's end
#
# Acknowledging rewrites the state byte only (outside the CRC). At start the slots are scanned: pending slots with
# a good CRC are queued again, bad ones counted in `corrupt` and dropped. When the ring is full the oldest pending
# message is overwritten and counted in `dropped`. Messages drain oldest-first, or newest-first by configuration.
#
# Memory: one slot-sized buffer and two small index arrays, allocated at start; push/load/ack allocate nothing.
# Flash: one slot write per message and a one-byte write per acknowledgement.
import struct
from array import array

from .compat import const
from .mqtt import encode_length

try:
    from binascii import crc32
except ImportError:
    from .crc32 import crc32

_MAGIC = b"EGOB"
_FILE_HEADER = const(16)
HEADER = const(16)
EMPTY = const(0)
PENDING = const(1)
ACKED = const(2)
INFLIGHT = const(3)  # in memory only: sent, not yet acknowledged

OLDEST_FIRST = const(0)
NEWEST_FIRST = const(1)


class Outbox:
    def __init__(self, path, n_slots=64, slot_size=512, order=OLDEST_FIRST):
        if n_slots < 2 or not 64 <= slot_size <= 65535:
            raise ValueError("outbox size")
        self.path = path
        self.n_slots = n_slots
        self.slot_size = slot_size
        self.order = order
        self.buf = bytearray(slot_size)  # the slot last loaded or pushed; the packet starts at HEADER
        mv = memoryview(self.buf)
        self._crc_a = mv[0:4]
        self._crc_b = mv[6:12]
        self._crc_c = mv[HEADER:]
        self._records = array("I", [0] * n_slots)
        self._states = bytearray(n_slots)
        self._state_byte = bytearray(1)
        self.dropped = 0
        self.corrupt = 0
        self._file = self._open()
        self._next_record = 1
        self._head = 0
        self.packet_len = 0  # of the slot last loaded
        self.pid_at = 0
        self._scan()

    # -- file ---------------------------------------------------------------------------------------------

    def _open(self):
        header = bytearray(_FILE_HEADER)
        struct.pack_into("<4sHHH", header, 0, _MAGIC, 1, self.slot_size, self.n_slots)
        try:
            f = open(self.path, "r+b")
            existing = f.read(_FILE_HEADER)
            if existing == header:
                return f
            f.close()  # another geometry or not an outbox: start afresh
        except OSError:
            pass
        f = open(self.path, "w+b")
        f.write(header)
        zero = bytearray(self.slot_size)
        for _ in range(self.n_slots):
            f.write(zero)
        f.flush()
        return f

    def _offset(self, slot):
        return _FILE_HEADER + slot * self.slot_size

    def _scan(self):
        f = self._file
        buf = self.buf
        newest = 0
        for slot in range(self.n_slots):
            f.seek(self._offset(slot))
            f.readinto(buf)
            record, state, packet_len = struct.unpack_from("<IBxH", buf, 0)
            if record == 0:
                continue
            self._records[slot] = record
            if record > newest:
                newest = record
                self._head = (slot + 1) % self.n_slots
            if state == PENDING:
                if packet_len <= self.slot_size - HEADER and self._crc() == struct.unpack_from("<I", buf, 12)[0]:
                    self._states[slot] = PENDING
                else:
                    self.corrupt += 1
                    self._states[slot] = EMPTY
            else:
                self._states[slot] = ACKED
        self._next_record = newest + 1

    def _crc(self):
        # Over the whole slot body, bytes past the packet included: the slot is always written whole.
        return crc32(self._crc_c, crc32(self._crc_b, crc32(self._crc_a)))

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- queue --------------------------------------------------------------------------------------------

    @property
    def max_message(self):
        """Bytes of topic plus payload that fit one slot."""
        return self.slot_size - HEADER - 9  # fixed header, 4-byte length, topic length, packet id

    def depth(self):
        n = 0
        for state in self._states:
            if state in (PENDING, INFLIGHT):
                n += 1
        return n

    def full(self):
        """Whether the next push would overwrite a message not yet acknowledged."""
        state = self._states[self._head]
        return state in (PENDING, INFLIGHT)

    def push(self, topic, payload, retain=False):
        """Store one QoS 1 message; return its slot. Overwrites (and counts) the oldest pending one when full."""
        t = len(topic)
        p = len(payload)
        if t + p > self.max_message:
            raise ValueError("message larger than an outbox slot")
        slot = self._head
        if self._states[slot] == PENDING or self._states[slot] == INFLIGHT:
            self.dropped += 1
        buf = self.buf
        record = self._next_record
        body = 2 + t + 2 + p
        buf[HEADER] = 0x32 | (1 if retain else 0)  # PUBLISH, QoS 1
        at = encode_length(buf, HEADER + 1, body)
        buf[at] = t >> 8
        buf[at + 1] = t & 0xFF
        at += 2
        buf[at : at + t] = topic
        at += t
        pid_at = at - HEADER
        buf[at] = 0
        buf[at + 1] = 0
        at += 2
        buf[at : at + p] = payload
        packet_len = at + p - HEADER
        struct.pack_into("<IBBHHH", buf, 0, record, PENDING, 0, packet_len, t, pid_at)
        struct.pack_into("<I", buf, 12, self._crc())
        f = self._file
        f.seek(self._offset(slot))
        f.write(buf)
        f.flush()
        self._records[slot] = record
        self._states[slot] = PENDING
        self._next_record = record + 1
        self._head = (slot + 1) % self.n_slots
        return slot

    def next_pending(self):
        """The slot to send next (oldest or newest pending, not in flight), or -1."""
        best = -1
        best_record = 0
        newest = self.order == NEWEST_FIRST
        records = self._records
        states = self._states
        for slot in range(self.n_slots):
            if states[slot] == PENDING:
                r = records[slot]
                if best < 0 or (r > best_record if newest else r < best_record):
                    best = slot
                    best_record = r
        return best

    def record(self, slot):
        return self._records[slot]

    def state(self, slot):
        return self._states[slot]

    def load(self, slot):
        """Read the slot into ``buf``; set ``packet_len`` and ``pid_at`` (packet-id offset) of the packet at
        buf[HEADER:]. Fields are read byte by byte: unpacking a tuple would allocate."""
        f = self._file
        f.seek(self._offset(slot))
        buf = self.buf
        f.readinto(buf)
        self.packet_len = buf[6] | (buf[7] << 8)
        self.pid_at = buf[10] | (buf[11] << 8)

    def mark_inflight(self, slot):
        self._states[slot] = INFLIGHT

    def requeue(self, slot, record):
        """A message sent but not acknowledged on a lost connection goes back to pending (if still there)."""
        if self._records[slot] == record and self._states[slot] == INFLIGHT:
            self._states[slot] = PENDING

    def ack(self, slot, record):
        """Free the slot, if it still holds ``record`` (a full ring may have overwritten it meanwhile)."""
        if self._records[slot] != record or self._states[slot] == ACKED:
            return False
        self._state_byte[0] = ACKED
        f = self._file
        f.seek(self._offset(slot) + 4)
        f.write(self._state_byte)
        f.flush()
        self._states[slot] = ACKED
        return True

    def newest_payload_seq(self, topic):
        """The u32 at offset 8 of the newest message on ``topic`` (a frame's sequence number), or None.

        The ring always holds the most recent messages, so if any message on ``topic`` is here, the newest one
        is. Used once at start to continue a stream's sequence numbers after a reboot.
        """
        t = len(topic)
        best = None
        best_record = 0
        buf = self.buf
        for slot in range(self.n_slots):
            r = self._records[slot]
            if r == 0 or r <= best_record:
                continue
            self.load(slot)
            packet_len = self.packet_len
            pid_at = self.pid_at
            topic_at = HEADER + pid_at - t
            if struct.unpack_from(">H", buf, topic_at - 2)[0] != t or buf[topic_at : topic_at + t] != topic:
                continue
            payload_at = HEADER + pid_at + 2
            if HEADER + packet_len - payload_at >= 12:
                best = struct.unpack_from("<I", buf, payload_at + 8)[0]
                best_record = r
        return best
