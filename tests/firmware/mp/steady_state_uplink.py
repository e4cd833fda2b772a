# Runs under MicroPython: heap bytes allocated by the node's main loop (NodeApp.run) over 1,000 windows: test
# signal, frame, sequence lease, outbox write to flash, MQTT PUBLISH and PUBACK, status tick, against a live
# broker, link-paced. Prints JSON.  usage: steady_state_uplink.py PORT STATE_DIR
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
app.run(max_frames=30, drain_ms=5000)  # connect, settle, drain
N = 900  # stays below sequence 1024, where the lease file is rewritten (one ~0.5 KB allocation)
gc.collect()
gc.disable()
before = gc.mem_alloc()
app.run(max_frames=N)
after = gc.mem_alloc()
gc.enable()
app.uplink.flush(10000)
print(
    json.dumps(
        {
            "windows": N,
            "bytes": after - before,
            "acked": app.uplink.acked,
            "dropped": app.outbox.dropped,
            "connects": app.uplink.connects,
        }
    )
)
app.close()
