# Runs under MicroPython: heap bytes allocated per steady-state step of a stream node (test signal -> frame ->
# link), against the same loop doing nothing, and microseconds per step. Prints JSON for pytest.
import gc
import json
import time

from firmware_py.frame import INT16, FrameEncoder
from firmware_py.node import StreamNode
from firmware_py.sources import SineSource


class NullLink:
    def __init__(self):
        self.frames = 0

    def publish(self, topic, payload, qos):
        self.frames += 1


def heap_delta(fn, n):
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    fn(n)
    after = gc.mem_alloc()
    gc.enable()
    return after - before


link = NullLink()
source = SineSource(3, 50, 10000, 1_700_000_000_000_000, [1.3, 2.6, 3.9], 20000, 400, 1)
encoder = FrameEncoder("node-1", 50, 3, 10000, INT16, [0.001, 0.001, 0.001])
node = StreamNode("site", "node-1", "vib", source, link, encoder)
node.step()  # first call: anything lazily created is created now


def steps(n):
    for _ in range(n):
        node.step()


def idle(n):
    for _ in range(n):
        pass


N = 200
out = {
    "step_bytes": heap_delta(steps, N),
    "idle_bytes": heap_delta(idle, N),
    "steps": N,
    "frames": link.frames,
}
t = time.ticks_us()
steps(N)
out["us_per_step"] = time.ticks_diff(time.ticks_us(), t) / N
print(json.dumps(out))
