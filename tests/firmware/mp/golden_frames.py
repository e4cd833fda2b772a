# Runs under MicroPython: encode every golden vector with firmware_py.frame and decode every golden hex.
# Prints one JSON line per vector: {"name", "hex", "decoded"} for the pytest side to compare.
import json
import sys
from array import array
from binascii import hexlify, unhexlify

from firmware_py import frame

ENCODINGS = {"int16": frame.INT16, "int8": frame.INT8, "float32": frame.FLOAT32}
TYPES = {"samples": frame.SAMPLES, "embedding": frame.EMBEDDING}

with open(sys.argv[1]) as f:
    vectors = json.load(f)

for v in vectors:
    encoding = ENCODINGS[v["encoding"]]
    rows = v["values"]
    encoder = frame.FrameEncoder(
        v["node"],
        len(rows),
        len(rows[0]),
        v["period_us"],
        encoding,
        v.get("scales"),
        v.get("zero_point", 0),
        TYPES[v.get("type", "samples")],
    )
    samples = array(frame.typecode(encoding), [x for row in rows for x in row])
    out = encoder.encode(v["seq"], v["t0_us"], samples, v.get("flags", 0))
    decoded = frame.decode(unhexlify(v["hex"]))
    decoded["values"] = list(decoded["values"])
    print(json.dumps({"name": v["name"], "hex": hexlify(out).decode(), "decoded": decoded}))
