# edgegen node firmware for stock MicroPython (also importable on CPython for virtual nodes).
# Modules are MicroPython-first: const(), preallocated buffers, no allocation in steady-state loops.
VERSION = "0.1.0"
