# Runs under MicroPython: framed records for the host (edgegen/hil/framing.py parses them).
#   #EG1 <payload bytes, decimal> <crc32 of payload, 8 hex digits> <payload: compact JSON>
# The marker lets the host skip REPL noise; length and CRC catch lines a serial link cut short or garbled.
import json

try:
    from binascii import crc32
except ImportError:  # ports built without binascii.crc32
    from firmware_py.crc32 import crc32


def line(record):
    payload = json.dumps(record, separators=(",", ":"))
    data = payload.encode()
    return "#EG1 %d %08x %s" % (len(data), crc32(data) & 0xFFFFFFFF, payload)


def emit(record):
    print(line(record))
