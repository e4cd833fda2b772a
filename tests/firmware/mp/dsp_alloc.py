# Runs under MicroPython: heap bytes allocated by 1,000 steady-state windows of the DSP chain (DC blocker,
# low-pass, spectrum with band energies, features), and microseconds per window. Prints JSON.
# usage: dsp_alloc.py [python]   (the plain-Python kernels instead of viper)
import gc
import json
import sys
import time
from array import array

from firmware_py.dsp import _select

if len(sys.argv) > 1 and sys.argv[1] == "python":
    _select.use_plain()
from firmware_py.dsp.features import N_FEATURES, features
from firmware_py.dsp.filters import Biquad, DCBlocker
from firmware_py.dsp.spectrum import Spectrum

n = 256
signal = array("h", [((i * 7919) % 4001) - 2000 for i in range(n)])
work = array("h", signal)
dc = DCBlocker(0.5, 1000)
lp = Biquad.lowpass(100, 1000)
spec = Spectrum(n, bands=[(1, 4), (5, 16), (17, 128)])
feats = array("i", [0] * N_FEATURES)


def window():
    dc.process(work, n)
    lp.process(work, n)
    spec.run(work)
    features(work, n, feats)


window()
gc.collect()
gc.disable()
before = gc.mem_alloc()
for _ in range(1000):
    window()
after = gc.mem_alloc()
gc.enable()
t = time.ticks_us()
for _ in range(100):
    window()
us = time.ticks_diff(time.ticks_us(), t) / 100
print(json.dumps({"impl": _select.IMPLEMENTATION, "bytes": after - before, "us_per_window": us}))
