# Runs under MicroPython: memory and time of the interpreter on one model.
# usage: tflite_latency.py MODEL viper|python
# Prints JSON: model bytes, heap taken by loading (parsed graph, prepared ops, arena), heap allocated per
# inference over 200 inferences, arena bytes, microseconds per inference (the best of 5 batches of 40: the
# machine's other work only ever adds time).
import gc
import json
import sys
import time
from array import array

from firmware_py.tflite.interpreter import Interpreter

with open(sys.argv[1], "rb") as f:
    data = f.read()
gc.collect()
before_load = gc.mem_alloc()
model = Interpreter(data, use_viper=sys.argv[2] == "viper")
inp = array("f" if model.input.dtype == 0 else "b", [0] * model.input_size)
out = array("f" if model.output.dtype == 0 else "b", [0] * model.output_size)
gc.collect()
load_bytes = gc.mem_alloc() - before_load
for i in range(model.input_size):
    inp[i] = ((i * 37) % 200) - 100 if model.input.dtype != 0 else ((i * 37) % 200 - 100) / 50
model.run(inp, out)
gc.collect()
gc.disable()
runs = 200
before = gc.mem_alloc()
i = 0
while i < runs:  # no range iterator: only what inference allocates is counted
    model.run(inp, out)
    i += 1
per_run = (gc.mem_alloc() - before) / runs
us = None
for _ in range(5):
    t = time.ticks_us()
    for _ in range(runs // 5):
        model.run(inp, out)
    batch = time.ticks_diff(time.ticks_us(), t) / (runs // 5)
    us = batch if us is None or batch < us else us
gc.enable()
print(
    json.dumps(
        {
            "model_bytes": len(data),
            "load_heap": load_bytes,
            "arena": model.arena_bytes,
            "alloc_per_inference": per_run,
            "us": us,
            "kernels": model.kernels,
        }
    )
)
