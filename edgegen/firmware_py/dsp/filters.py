# Fixed-point IIR filters on int16 samples, in place, state carried between windows.
#
# Biquad: Direct Form I with Q14 coefficients (RBJ cookbook designs, computed once with floats at start-up).
# DCBlocker: a first-order high-pass biquad at a low corner, removing the sensor's DC offset.
# Decimator: anti-alias low-pass, then every factor-th sample.
import math
from array import array

from ..dsp import _select

Q = 14


def _q14(value):
    v = int(round(value * (1 << Q)))
    if not -32768 <= v <= 32767:
        raise ValueError("filter coefficient outside Q14 range (|c| < 2)")
    return v


class Biquad:
    def __init__(self, b0, b1, b2, a1, a2):
        """Coefficients as floats, a0 normalised to 1: y = b0 x + b1 x1 + b2 x2 - a1 y1 - a2 y2."""
        self.coef = array("h", [_q14(b0), _q14(b1), _q14(b2), _q14(a1), _q14(a2)])
        self.state = array("h", [0, 0, 0, 0])
        self._p = array("i", [0, 1, 0])

    @classmethod
    def lowpass(cls, cutoff_hz, rate_hz, q=0.7071):
        return cls(*_rbj(cutoff_hz, rate_hz, q, "low"))

    @classmethod
    def highpass(cls, cutoff_hz, rate_hz, q=0.7071):
        return cls(*_rbj(cutoff_hz, rate_hz, q, "high"))

    def reset(self):
        for i in range(4):
            self.state[i] = 0

    def process(self, buf, n, stride=1, offset=0):
        """Filter buf[offset + i * stride] for i < n in place (one channel of interleaved samples)."""
        p = self._p
        p[0] = n
        p[1] = stride
        p[2] = offset
        _select.kernels.biquad(buf, self.state, self.coef, p)


def _rbj(f0, fs, q, kind):
    if not 0 < f0 < fs / 2:
        raise ValueError("cutoff must lie between 0 and half the sample rate")
    w0 = 2 * math.pi * f0 / fs
    alpha = math.sin(w0) / (2 * q)
    cos_w0 = math.cos(w0)
    a0 = 1 + alpha
    if kind == "low":
        b0 = (1 - cos_w0) / 2
        b1 = 1 - cos_w0
    else:
        b0 = (1 + cos_w0) / 2
        b1 = -(1 + cos_w0)
    return b0 / a0, b1 / a0, b0 / a0, -2 * cos_w0 / a0, (1 - alpha) / a0


class DCBlocker(Biquad):
    """First-order high-pass y = x - x1 + r y1 (r = 1 - 2 pi fc / fs): removes DC, passes the signal."""

    def __init__(self, cutoff_hz, rate_hz):
        r = 1 - 2 * math.pi * cutoff_hz / rate_hz
        if not 0 < r < 1:
            raise ValueError("DC-blocker cutoff too high for the sample rate")
        super().__init__(1, -1, 0, -r, 0)


class Decimator:
    """Low-pass at 0.4 x the output rate (80 % of its Nyquist frequency), then keep every factor-th sample."""

    def __init__(self, factor, rate_hz, channels=1):
        if factor < 2:
            raise ValueError("decimation factor must be at least 2")
        self.factor = factor
        self.channels = channels
        self.filters = [Biquad.lowpass(0.4 * rate_hz / factor, rate_hz) for _ in range(channels)]
        self._phase = 0

    def process(self, src, n_samples, dst):
        """Filter n_samples interleaved frames of src in place, write the kept ones to dst; return how many."""
        c = self.channels
        for ch in range(c):
            self.filters[ch].process(src, n_samples, c, ch)
        out = 0
        i = self._phase
        while i < n_samples:
            base = i * c
            for ch in range(c):
                dst[out * c + ch] = src[base + ch]
            out += 1
            i += self.factor
        self._phase = i - n_samples
        return out
