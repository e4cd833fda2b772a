# Pick the viper kernels where the port has a native emitter, else the plain ones.
from firmware_py.compat import IS_MICROPYTHON

kernels = None
IMPLEMENTATION = "python"
if IS_MICROPYTHON:
    try:
        from firmware_py.dsp import kernels_viper as kernels

        IMPLEMENTATION = "viper"
    except (ImportError, SyntaxError, ValueError):
        kernels = None
if kernels is None:
    from firmware_py.dsp import kernels


def use_plain():
    """Switch to the plain-Python kernels (benchmarks compare the two)."""
    global kernels, IMPLEMENTATION
    from firmware_py.dsp import kernels as plain

    kernels = plain
    IMPLEMENTATION = "python"
