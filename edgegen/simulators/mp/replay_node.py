# Runs under MicroPython (the unix port) or CPython: one replaying node (firmware_py.app.NodeApp) from a config
# file. Prints "#P <windows>" after every window (progress for the host), then one JSON line of counters.
# usage: replay_node.py CONFIG DRAIN_MS
import json
import sys

from firmware_py.app import NodeApp
from firmware_py.config import load

app = NodeApp(load(sys.argv[1]))
source = app.streams[0].node.source
while app.run(1):
    print("#P", source.windows)
app.uplink.flush(int(sys.argv[2]))
u = app.uplink
print(
    json.dumps(
        {
            "windows": source.windows,
            "partial": source.partial,
            "sent": u.sent,
            "acked": u.acked,
            "duplicates": u.duplicates_sent,
            "connects": u.connects,
            "dropped": app.outbox.dropped,
            "depth": app.outbox.depth(),
        }
    )
)
app.close()
