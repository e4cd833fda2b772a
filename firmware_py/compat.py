# What differs between MicroPython and CPython, in one place.
# On MicroPython the compiler folds const() wherever it is called; the import only matters on CPython.
import sys

IS_MICROPYTHON = sys.implementation.name == "micropython"

try:
    from micropython import const
except ImportError:

    def const(value):
        return value


if IS_MICROPYTHON:
    from time import sleep_ms, ticks_add, ticks_diff, ticks_ms
else:
    import time as _time

    def ticks_ms():
        return int(_time.monotonic() * 1000)

    def ticks_add(ticks, delta):
        return ticks + delta

    def ticks_diff(new, old):
        return new - old

    def sleep_ms(ms):
        _time.sleep(ms / 1000)
