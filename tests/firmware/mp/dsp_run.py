# Runs under MicroPython: the DSP modules on a recorded int16 signal. usage: dsp_run.py SIGNAL.bin N RATE [python]
# The signal is int16 little-endian, 2 interleaved channels. Prints JSON results for pytest to compare with scipy.
import json
import sys
from array import array

from firmware_py.dsp import _select
from firmware_py.dsp.features import N_FEATURES, features
from firmware_py.dsp.filters import Biquad, DCBlocker, Decimator
from firmware_py.dsp.spectrum import Spectrum

if len(sys.argv) > 4 and sys.argv[4] == "python":
    _select.use_plain()
n = int(sys.argv[2])
rate = float(sys.argv[3])
with open(sys.argv[1], "rb") as f:
    raw = f.read()
signal = array("h", raw)
frames = len(signal) // 2
out = {"impl": _select.IMPLEMENTATION}

lp = [Biquad.lowpass(rate / 10, rate), Biquad.lowpass(rate / 10, rate)]
work = array("h", signal)
for start in range(0, frames, n):  # window by window: state carries over
    for ch in range(2):
        lp[ch].process(work, n, 2, 2 * start + ch)
out["lowpass_coef"] = list(lp[0].coef)
out["lowpass"] = list(work)

dc = DCBlocker(0.5, rate)
work = array("h", signal)
dc.process(work, frames, 2, 0)
out["dc_coef"] = list(dc.coef)
out["dc"] = [work[i] for i in range(0, len(work), 2)]

dec = Decimator(4, rate, channels=2)
dst = array("h", [0] * 2 * n)
decimated = []
for start in range(0, frames, n):
    window = array("h", signal[2 * start : 2 * (start + n)])
    got = dec.process(window, n, dst)
    decimated.extend(dst[: 2 * got])
out["decimated"] = decimated
out["decimator_coef"] = list(dec.filters[0].coef)

spec = Spectrum(n, bands=[(1, 4), (5, 16), (17, n // 2)])
specs = []
energies = []
for start in range(0, frames - n + 1, n):
    spec.run(signal, 2, 2 * start)
    specs.append(list(spec.spec))
    energies.append(list(spec.energies))
out["window"] = list(spec.window)
out["spectra"] = specs
out["energies"] = energies

feats = array("i", [0] * N_FEATURES)
fs = []
for start in range(0, frames - n + 1, n):
    features(signal, n, feats, 2, 2 * start + 1)
    fs.append(list(feats))
out["features"] = fs
print(json.dumps(out))
