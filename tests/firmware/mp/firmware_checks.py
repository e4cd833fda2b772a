# Runs under MicroPython: facts about the firmware modules on the real port, printed as JSON for pytest.
import json
import sys
from array import array
from binascii import crc32 as binascii_crc32

from firmware_py.crc32 import crc32 as table_crc32

from firmware_py import bytecopy, frame, sources

out = {}

# The fast byte copy is the viper one on this port, and it copies exactly.
out["copy_impl"] = bytecopy.IMPLEMENTATION
dst = bytearray(10)
bytecopy.copy_bytes(dst, 2, array("h", [1, -2, 0x1234]), 6)
out["copy_bytes"] = list(dst)

# The table CRC (for ports without binascii.crc32) agrees with binascii on the standard check value and more.
data = bytes(range(256)) * 3
out["crc_check"] = table_crc32(b"123456789")
out["crc_agrees"] = table_crc32(data) == binascii_crc32(data)

# A bad checksum is refused by the firmware decoder.
enc = frame.FrameEncoder("n1", 2, 1, 1000, frame.INT16, [0.5])
raw = bytearray(enc.encode(3, 1000, array("h", [7, 8])))
raw[-5] ^= 1
try:
    frame.decode(raw)
    out["bad_crc"] = "accepted"
except ValueError as exc:
    out["bad_crc"] = str(exc)

# The test-signal source: first windows, for comparison with CPython running the same module.
src = sources.SineSource(3, 50, 10000, 1_700_000_000_000_000, [1.3, 2.6, 3.9], 20000, 400, 7)
buf = array("h", [0] * 150)
windows = []
for _ in range(3):
    t0 = src.read(buf)
    windows.append([t0, list(buf)])
out["sine_windows"] = windows

print(json.dumps(out))
sys.exit(0)
