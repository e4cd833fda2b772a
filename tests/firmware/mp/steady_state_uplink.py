# Runs under MicroPython: heap bytes per steady-state window of the whole node path -- test signal, frame,
# sequence lease, outbox write to flash, MQTT PUBLISH, PUBACK handling -- against a live broker. Prints JSON.
# usage: steady_state_uplink.py PORT STATE_DIR
import gc
import json
import sys

from firmware_py.app import NodeApp
from firmware_py.config import validate

port = int(sys.argv[1])
cfg = validate(
    {
        "site": "ss",
        "node_id": "alloc",
        "mqtt": {"host": "127.0.0.1", "port": port, "keepalive_s": 60, "drain_per_s": 10000, "burst": 100},
        "state_dir": sys.argv[2],
        "speed": 0,
        "status_interval_s": 3600,
        "streams": [
            {
                "name": "vib",
                "channels": 3,
                "window": 50,
                "scales": [0.001, 0.001, 0.001],
                "source": {"kind": "sine"},
            }
        ],
    }
)
app = NodeApp(cfg)
node = app.streams[0]
uplink = app.uplink


def window():
    app.step(node)
    uplink.service()
    app._tick()
    while uplink.inflight or app.outbox.depth():  # until acknowledged: every window does the same work
        uplink.service()


for _ in range(20):  # connect, settle
    window()
N = 1000
gc.collect()
gc.disable()
before = gc.mem_alloc()
for _ in range(N):
    window()
after = gc.mem_alloc()
gc.enable()
print(
    json.dumps(
        {
            "windows": N,
            "bytes": after - before,
            "acked": uplink.acked,
            "dropped": app.outbox.dropped,
            "connects": uplink.connects,
        }
    )
)
app.close()
