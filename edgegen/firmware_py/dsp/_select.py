# Pick the viper kernels where the port has a native emitter, else the plain ones.
from ..compat import IS_MICROPYTHON

kernels = None
IMPLEMENTATION = "python"
if IS_MICROPYTHON:
    try:
        from ..dsp import kernels_viper as kernels

        IMPLEMENTATION = "viper"
    except (ImportError, SyntaxError, ValueError):
        kernels = None
if kernels is None:
    from ..dsp import kernels


def use_plain():
    """Switch to the plain-Python kernels (benchmarks compare the two)."""
    global kernels, IMPLEMENTATION
    from ..dsp import kernels as plain

    kernels = plain
    IMPLEMENTATION = "python"
