# Runs under MicroPython: the outbox's ring, order, persistence and corruption handling. Prints JSON.
# usage: outbox_checks.py DIR
import json
import sys

from firmware_py.outbox import NEWEST_FIRST, OLDEST_FIRST, Outbox

d = sys.argv[1]
out = {}
topic = b"edgegen/v1/s/n/data/x"


def drain(ob):
    order = []
    while True:
        slot = ob.next_pending()
        if slot < 0:
            return order
        ob.load(slot)
        order.append(ob.buf[16 + ob.pid_at + 2])  # first payload byte: the message number
        ob.mark_inflight(slot)
        ob.ack(slot, ob.record(slot))


ob = Outbox(d + "/a.bin", 4, 128)
for i in range(10):
    ob.push(topic, bytes([i]) * 20)
out["full_depth"] = ob.depth()
out["dropped"] = ob.dropped
ob.close()
ob = Outbox(d + "/a.bin", 4, 128)  # "reboot"
out["after_reopen_depth"] = ob.depth()
out["oldest_first"] = drain(ob)
ob.close()

ob = Outbox(d + "/b.bin", 8, 128, NEWEST_FIRST)
for i in range(5):
    ob.push(topic, bytes([i]) * 20)
out["newest_first"] = drain(ob)
ob.close()

ob = Outbox(d + "/c.bin", 8, 128, OLDEST_FIRST)
for i in range(5):
    ob.push(topic, bytes([i]) * 20)
ob.close()
with open(d + "/c.bin", "r+b") as f:  # flip one payload byte of the third message (slot 2)
    f.seek(16 + 2 * 128 + 60)
    b = f.read(1)
    f.seek(16 + 2 * 128 + 60)
    f.write(bytes([b[0] ^ 0xFF]))
ob = Outbox(d + "/c.bin", 8, 128)
out["corrupt"] = ob.corrupt
out["survivors"] = drain(ob)
out["newest_seq_source"] = ob.newest_payload_seq(topic)
ob.close()

ob = Outbox(d + "/d.bin", 8, 128)
try:
    ob.push(topic, bytes(200))
    out["oversize"] = "accepted"
except ValueError as exc:
    out["oversize"] = str(exc)
print(json.dumps(out))
