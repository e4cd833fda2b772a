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
    from time import sleep_ms, sleep_us, ticks_add, ticks_diff, ticks_ms, ticks_us
else:
    import time as _time

    def ticks_ms():
        return int(_time.monotonic() * 1000)

    def ticks_us():
        return int(_time.monotonic() * 1000000)

    def sleep_us(us):
        _time.sleep(us / 1000000)

    def ticks_add(ticks, delta):
        return ticks + delta

    def ticks_diff(new, old):
        return new - old

    def sleep_ms(ms):
        _time.sleep(ms / 1000)


# Sockets: MicroPython streams read with readinto(buf, n) and write with write(buf, off, n), neither allocating;
# CPython sockets use recv_into / send. Polling: MicroPython's ipoll() allocates nothing; CPython has only poll().
if IS_MICROPYTHON:

    def sock_readinto(sock, buf, n):
        return sock.readinto(buf, n)

    def sock_write(sock, buf, off, n):
        return sock.write(buf, off, n)

    def poll_ready(poller, timeout_ms):
        for _ in poller.ipoll(timeout_ms):
            return True
        return False

else:

    def sock_readinto(sock, buf, n):
        return sock.recv_into(buf, n)

    def sock_write(sock, buf, off, n):
        return sock.send(memoryview(buf)[off : off + n])

    def poll_ready(poller, timeout_ms):
        return bool(poller.poll(timeout_ms))


try:
    from random import getrandbits as random_bits
except ImportError:  # ports built without the random module
    import os as _os

    def random_bits(bits):
        return int.from_bytes(_os.urandom(4), "little") & ((1 << bits) - 1)
