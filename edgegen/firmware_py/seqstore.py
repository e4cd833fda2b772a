# Frame sequence numbers that survive a reboot, without a flash write per frame.
#
# At start a stream continues from the newest frame still in the outbox (exact: no gap, no reuse). If the outbox
# holds none of its frames, it continues from a lease: every LEASE frames the store writes "next start" =
# seq + LEASE to a small JSON file, so after a reboot the stream skips at most LEASE - 1 numbers and never reuses
# one (the gateway de-duplicates by node and sequence number, so reuse would lose data; a skip loses none).
import json
import os

SEQ_MASK = 0xFFFFFFFF
LEASE = 1024


class SeqStore:
    def __init__(self, path):
        self.path = path
        self.writes = 0
        try:
            with open(path) as f:
                saved = json.load(f)
        except (OSError, ValueError):
            saved = {}
        self._leases = {}  # topic (bytes) -> the first number not covered by the written lease
        for key in saved:
            self._leases[key.encode()] = saved[key]

    def first(self, topic, outbox):
        """The first sequence number for ``topic`` (bytes) after a start."""
        last = outbox.newest_payload_seq(topic) if outbox is not None else None
        seq = last + 1 & SEQ_MASK if last is not None else self._leases.get(topic, 0)
        self.advance(topic, seq)
        return seq

    def advance(self, topic, seq):
        """Call with the next sequence number to use; renews the lease when it runs out (rarely writes)."""
        lease = self._leases.get(topic)
        if lease is not None:
            ahead = (lease - seq) & SEQ_MASK
            if 0 < ahead <= LEASE:
                return
        self._leases[topic] = (seq + LEASE) & SEQ_MASK
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({key.decode(): value for key, value in self._leases.items()}, f)
        os.rename(tmp, self.path)
        self.writes += 1
