# Runs on the target (a board, or the unix port in a directory laid out as a board's flash), from its root:
# the HIL run of `edgegen hil run`. Reads config.json (the stream and its model), hil.json (mode, window count)
# and hil_inputs.bin; prints framed records (hil_frame) for the host:
#   load: firmware version, model sha256, heap after load, arena, kernels
#   out / us / crc: chunks of the outputs, per-window microseconds, CRC-32 of each window's model input
#   done: windows run, allocation per inference, gc.mem_free low-water
# Embedder mode runs the node's own path: ReplaySource -> Embedder.embed (quantize, interpreter, frame).
# Nothing is printed while windows run; buffers are allocated before the loop.
import gc
import json
from array import array

gc.collect()
heap_start = gc.mem_alloc()

import hashlib  # noqa: E402
import time  # noqa: E402
from binascii import b2a_base64, hexlify  # noqa: E402

from firmware_py.config import load  # noqa: E402
from firmware_py.tflite.interpreter import Interpreter  # noqa: E402
from hil_frame import crc32, emit  # noqa: E402

from firmware_py import VERSION  # noqa: E402

CHUNK = 32  # windows per out/us/crc record: lines stay short for serial links

cfg = load("config.json")
with open("hil.json") as f:
    hil = json.load(f)
stream = cfg["streams"][0]
m = stream["model"]
mode = hil["mode"]
n = hil["windows"]

gc.collect()
heap_code = gc.mem_alloc()
with open(m["path"], "rb") as f:
    data = f.read()
sha = hexlify(hashlib.sha256(data).digest()).decode()
model = Interpreter(data)
period_us = int(round(1000000 / stream["rate_hz"]))
source = None
if mode == "embedder":
    from firmware_py.embedding import Embedder
    from firmware_py.sources import ReplaySource

    runner = Embedder(
        model,
        cfg["node_id"],
        stream["window"],
        stream["channels"],
        period_us,
        stream["scales"],
        m["mean"],
        m["std"],
    )
    inp = runner.inp
    out = runner.out
    window = array("h", [0] * (stream["window"] * stream["channels"]))
    source = ReplaySource(open(hil["inputs"], "rb"), stream["channels"], stream["window"], period_us, 0)  # noqa: SIM115
else:
    runner = model
    inp = array("f" if model.input.dtype == 0 else "b", [0] * model.input_size)
    out = array("f" if model.output.dtype == 0 else "b", [0] * model.output_size)
    window = inp
    source = open(hil["inputs"], "rb")  # noqa: SIM115 -- closed after the loop; the loop is module level
gc.collect()
heap_load = gc.mem_alloc() - heap_code  # model bytes, parsed graph, arena, Embedder: what a node holds
out_bytes = len(bytes(out))
outputs = bytearray(n * out_bytes)  # the harness's own buffers, after the measurement
us = array("i", [0] * n)
model_us = array("i", [0] * n)
crcs = []
emit(
    {
        "k": "load",
        "firmware": VERSION,
        "sha256": sha,
        "mode": mode,
        "kernels": model.kernels,
        "model_bytes": len(data),
        "heap_after_load": heap_load,
        "heap_code": heap_code - heap_start,
        "arena": model.arena_bytes,
        "windows": n,
    }
)

ticks_us = time.ticks_us
ticks_diff = time.ticks_diff
low_water = gc.mem_free()
alloc_max = 0
alloc_total = 0
alloc_windows = 0
alloc_first = -1
count = 0
embedder = mode == "embedder"
while count < n:
    if embedder:
        if source.read(window) is None:
            break
    elif source.readinto(window) != len(bytes(window)):
        break
    gc.collect()
    gc.disable()  # what one inference allocates, with nothing freed in between
    a0 = gc.mem_alloc()
    t0 = ticks_us()
    if embedder:
        runner.embed(count, 0, window)
    else:
        runner.run(inp, out)
    dt = ticks_diff(ticks_us(), t0)
    a = gc.mem_alloc() - a0
    free = gc.mem_free()
    gc.enable()
    us[count] = dt
    model_us[count] = runner.last_us if embedder else dt
    alloc_total += a
    if a:
        alloc_windows += 1
        if alloc_first < 0:
            alloc_first = count
    if a > alloc_max:  # noqa: PLR1730 -- max() is a call on MicroPython
        alloc_max = a
    if free < low_water:  # noqa: PLR1730
        low_water = free
    memoryview(outputs)[count * out_bytes : (count + 1) * out_bytes] = bytes(out)
    crcs.append(crc32(bytes(inp)) & 0xFFFFFFFF)
    count += 1
if embedder:
    source.stream.close()
else:
    source.close()

for start in range(0, count, CHUNK):
    stop = min(count, start + CHUNK)
    emit(
        {"k": "out", "i": start, "b64": b2a_base64(outputs[start * out_bytes : stop * out_bytes]).decode().strip()}
    )
    emit({"k": "us", "i": start, "v": list(us[start:stop]), "model": list(model_us[start:stop])})
    emit({"k": "crc", "i": start, "v": crcs[start:stop]})
emit(
    {
        "k": "done",
        "windows": count,
        "alloc_max": alloc_max,
        "alloc_total": alloc_total,
        "alloc_windows": alloc_windows,
        "alloc_first": alloc_first,
        "mem_free_low": low_water,
        "heap_total": gc.mem_alloc() + gc.mem_free(),
    }
)
