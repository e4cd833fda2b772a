# copy_bytes(dst, offset, src, n): copy the first n bytes of any buffer (array('h'), array('f'), ...)
# into any writable buffer at byte offset, without allocating. MicroPython refuses slice assignment between
# buffers of different item types, so the fast path is a viper loop; plain fallbacks cover ports without a
# native emitter, and CPython.
# IMPLEMENTATION names the one in use: "viper", "uctypes" or "cpython".
from .compat import IS_MICROPYTHON

copy_bytes = None
IMPLEMENTATION = "cpython"
if IS_MICROPYTHON:
    try:
        from .viper_copy import copy_bytes

        IMPLEMENTATION = "viper"
    except (ImportError, SyntaxError, ValueError):
        copy_bytes = None

if copy_bytes is None:
    if IS_MICROPYTHON:
        import uctypes

        IMPLEMENTATION = "uctypes"

        def copy_bytes(dst, offset, src, n):
            uctypes.bytearray_at(uctypes.addressof(dst) + offset, n)[:] = uctypes.bytearray_at(
                uctypes.addressof(src), n
            )

    else:

        def copy_bytes(dst, offset, src, n):
            memoryview(dst).cast("B")[offset : offset + n] = memoryview(src).cast("B")[:n]
