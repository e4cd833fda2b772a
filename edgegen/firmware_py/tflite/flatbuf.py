# Just enough of the FlatBuffers wire format to read a .tflite file in place: tables with vtables, scalars,
# vectors, strings and sub-tables, all little-endian. No library on the device; runs at load time only.
import struct


class Table:
    """A table at absolute position ``pos`` in ``buf``; field(n) reads the n-th field of the schema."""

    def __init__(self, buf, pos):
        self.buf = buf
        self.pos = pos
        vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        self._vtable = vtable
        self._vsize = struct.unpack_from("<H", buf, vtable)[0]

    def _offset(self, index):
        slot = 4 + 2 * index
        if slot >= self._vsize:
            return 0
        return struct.unpack_from("<H", self.buf, self._vtable + slot)[0]

    def has(self, index):
        return self._offset(index) != 0

    def scalar(self, index, fmt, default=0):
        off = self._offset(index)
        if not off:
            return default
        return struct.unpack_from("<" + fmt, self.buf, self.pos + off)[0]

    def _indirect(self, index):
        off = self._offset(index)
        if not off:
            return 0
        at = self.pos + off
        return at + struct.unpack_from("<I", self.buf, at)[0]

    def table(self, index):
        at = self._indirect(index)
        return Table(self.buf, at) if at else None

    def vector(self, index):
        """(position of the first element, length), or (0, 0) when absent."""
        at = self._indirect(index)
        if not at:
            return 0, 0
        return at + 4, struct.unpack_from("<I", self.buf, at)[0]

    def scalars(self, index, fmt):
        start, n = self.vector(index)
        size = struct.calcsize(fmt)
        return [struct.unpack_from("<" + fmt, self.buf, start + i * size)[0] for i in range(n)]

    def tables(self, index):
        start, n = self.vector(index)
        out = []
        for i in range(n):
            at = start + 4 * i
            out.append(Table(self.buf, at + struct.unpack_from("<I", self.buf, at)[0]))
        return out

    def bytes_view(self, index):
        start, n = self.vector(index)
        return memoryview(self.buf)[start : start + n] if n else None

    def string(self, index):
        view = self.bytes_view(index)
        return bytes(view).decode() if view is not None else ""


def root(buf):
    return Table(buf, struct.unpack_from("<I", buf, 0)[0])
