# CRC-32 (IEEE 802.3, as zlib and binascii compute it), for ports built without binascii.crc32.
# The 256-entry table is built once at import (1 KB); crc32() allocates nothing but its result.
from array import array

_POLY = 0xEDB88320


def _table():
    table = array("I", [0] * 256)
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        table[n] = c
    return table


_TABLE = _table()


def crc32(data, crc=0):
    table = _TABLE
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
