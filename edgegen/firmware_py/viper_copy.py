# Byte copy between any two buffers, compiled to machine code by the viper emitter.
# Imported only on ports with a native emitter (firmware_py.bytecopy falls back otherwise).
import micropython


@micropython.viper
def copy_bytes(dst: ptr8, offset: int, src: ptr8, n: int):
    i = 0
    while i < n:
        dst[offset + i] = src[i]
        i += 1
