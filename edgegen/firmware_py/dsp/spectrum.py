# A radix-2 real FFT on int16 windows and band energies, all buffers allocated at construction.
#
# The N real samples are read as N/2 complex ones (even samples real, odd imaginary), transformed with an
# N/2-point complex FFT and split into bins 0..N/2 of the real transform. Every stage halves, and the window table
# is a half-height Hann, so nothing overflows int16: spectrum = DFT(hann * x) / (2 N). A sine of amplitude A at a
# bin centre reads A / 8 there (Hann's coherent gain is 1/2).
import math
from array import array

from ..dsp import _select


def hann_q15(n):
    """Periodic Hann window at half height, Q15 (peak 16384 = 0.5): the FFT's input headroom."""
    return array("h", [int(round(8192 * (1 - math.cos(2 * math.pi * i / n)))) for i in range(n)])


class Spectrum:
    def __init__(self, n, bands=None, energy_shift=8):
        """n: window length, a power of two (16..4096). bands: (first bin, last bin) pairs, inclusive."""
        log2n = 0
        while (1 << log2n) < n:
            log2n += 1
        if (1 << log2n) != n or not 16 <= n <= 4096:
            raise ValueError("FFT length must be a power of two in 16..4096")
        m = n // 2
        self.n = n
        self.window = hann_q15(n)
        self.work = array("h", [0] * n)  # windowed samples, then the complex FFT in place
        self.spec = array("h", [0] * (2 * (m + 1)))  # bins 0..n/2: real, imaginary interleaved
        cos = [int(round(32767 * math.cos(2 * math.pi * k / n))) for k in range(m + 1)]
        sin = [int(round(32767 * math.sin(2 * math.pi * k / n))) for k in range(m + 1)]
        self.twiddles = array("h", cos + sin)
        self._wp = array("i", [n, 1, 0])
        self._fp = array("i", [m, log2n - 1, 2, m + 1])
        self._sp = array("i", [m, m + 1])
        self.bands = bands or []
        for lo, hi in self.bands:
            if not 0 <= lo <= hi <= m:
                raise ValueError("band bins must lie in 0..n/2")
        self.energies = array("i", [0] * len(self.bands))
        self.energy_shift = energy_shift

    def run(self, samples, stride=1, offset=0):
        """Transform one channel of an interleaved int16 window; fills spec and energies."""
        k = _select.kernels
        p = self._wp
        p[1] = stride
        p[2] = offset
        k.window(samples, self.work, self.window, p)
        k.fft(self.work, self.twiddles, self._fp)
        k.rfft_split(self.work, self.spec, self.twiddles, self._sp)
        self._band_energies()

    def _band_energies(self):
        spec = self.spec
        shift = self.energy_shift
        for b in range(len(self.bands)):
            lo, hi = self.bands[b]
            total = 0
            for k in range(lo, hi + 1):
                re = spec[2 * k]
                im = spec[2 * k + 1]
                total += (re * re + im * im) >> shift
            self.energies[b] = total if total < 0x7FFFFFFF else 0x7FFFFFFF
