# Runs under MicroPython: the node application from a config file, then prints its counters as JSON.
# usage: run_node.py CONFIG MAX_FRAMES DRAIN_MS [hard]   ("hard": exit without closing, as a crash or reset would)
import json
import sys

from firmware_py.app import NodeApp
from firmware_py.config import load

app = NodeApp(load(sys.argv[1]))
first = [stream.node.seq for stream in app.streams]
frames = app.run(None if sys.argv[2] == "-" else int(sys.argv[2]), int(sys.argv[3]))
u = app.uplink
print(
    json.dumps(
        {
            "frames": frames,
            "first_seq": first,
            "next_seq": [stream.node.seq if stream.node else None for stream in app.streams],
            "sent": u.sent,
            "acked": u.acked,
            "duplicates_sent": u.duplicates_sent,
            "connects": u.connects,
            "inflight": u.inflight,
            "depth": app.outbox.depth(),
            "dropped": app.outbox.dropped,
            "corrupt": app.outbox.corrupt,
            "seq_writes": app.seqs.writes,
            "last_error": u.last_error,
        }
    )
)
if len(sys.argv) < 5 or sys.argv[4] != "hard":
    app.close()
