# Sample sources: anything with read(samples) -> t0_us (or None when exhausted) filling a caller-owned array
# with one window of n_samples x n_channels values, sample-major. Timestamps are the samples' own.
from .compat import const

_TABLE_BITS = const(8)
_TABLE_SIZE = const(256)
_PHASE_BITS = const(24)  # phase accumulator: 8 table bits + 16 fractional bits
_PHASE_MASK = const(0xFFFFFF)


def _sine_table():
    import math
    from array import array

    return array("h", [int(round(32767 * math.sin(2 * math.pi * i / _TABLE_SIZE))) for i in range(_TABLE_SIZE)])


class SineSource:
    """A deterministic multi-channel test signal in int16: one sine per channel plus LCG noise.

    Integer-only in read(): a phase accumulator indexes a 256-entry sine table, so boards without an FPU
    produce the same samples as CPython does, bit for bit.
    """

    def __init__(self, n_channels, n_samples, period_us, t_start_us, freqs_hz, amplitude, noise, seed=1):
        if len(freqs_hz) != n_channels:
            raise ValueError("one frequency per channel")
        if not 0 <= amplitude <= 32767 or not 0 <= noise <= 32767 or amplitude + noise > 32767:
            raise ValueError("amplitude + noise must fit int16")
        self.n_channels = n_channels
        self.n_samples = n_samples
        self.period_us = period_us
        self.t_us = t_start_us
        self._table = _sine_table()
        # Phase step per sample: f * period * 2^24 / 1e6, rounded once here.
        self._steps = [int(f * period_us * (1 << _PHASE_BITS) // 1_000_000) & _PHASE_MASK for f in freqs_hz]
        self._phases = [0] * n_channels
        self._amplitude = amplitude
        self._noise = noise
        self._state = seed & 0x7FFFFFFF

    def read(self, samples):
        table = self._table
        amp = self._amplitude
        noise = self._noise
        span = 2 * noise + 1
        state = self._state
        c_count = self.n_channels
        i = 0
        for _ in range(self.n_samples):
            for c in range(c_count):
                phase = self._phases[c]
                value = (table[phase >> 16] * amp) // 32767
                if noise:
                    state = (state * 1103515245 + 12345) & 0x7FFFFFFF
                    value += (state >> 8) % span - noise
                samples[i] = value
                self._phases[c] = (phase + self._steps[c]) & _PHASE_MASK
                i += 1
        self._state = state
        t0 = self.t_us
        self.t_us = t0 + self.n_samples * self.period_us
        return t0


class ReplaySource:
    """Recorded raw samples from a file or stream: int16 little-endian, sample-major (what `edgegen replay`
    and HIL write). readinto() fills the caller's array directly, so replay allocates nothing per window.

    Timestamps continue from ``t_start_us`` at the configured period: the node stamps what it replays.
    Returns None at the end of the data; a partial last window is dropped and counted in ``partial``.
    """

    def __init__(self, stream, n_channels, n_samples, period_us, t_start_us):
        self.stream = stream  # anything with readinto(): an open file, sys.stdin.buffer
        self.n_channels = n_channels
        self.n_samples = n_samples
        self.period_us = period_us
        self.t_us = t_start_us
        self._nbytes = 2 * n_channels * n_samples
        self.windows = 0
        self.partial = 0

    def read(self, samples):
        got = self.stream.readinto(samples) or 0
        while 0 < got < self._nbytes and not got & 1:  # a pipe can deliver a window in pieces
            more = self.stream.readinto(memoryview(samples)[got // 2 :]) or 0
            if not more:
                break
            got += more
        if not got:
            return None
        if got < self._nbytes:
            self.partial += 1
            return None
        self.windows += 1
        t0 = self.t_us
        self.t_us = t0 + self.n_samples * self.period_us
        return t0


_T0_BYTES = const(8)


class TimedReplaySource:
    """Recorded windows that carry their own time: records of [t0_us, uint64 LE][n_samples x n_channels int16
    LE, sample-major] (what `edgegen replay` writes). Stamps are the recording's, so its timing and jitter survive;
    next_t0() peeks at the next window's time without consuming it, for pacing.

    Returns None at the end of the data; a partial last record is dropped and counted in ``partial``.
    """

    def __init__(self, stream, n_channels, n_samples, period_us):
        self.stream = stream
        self.n_channels = n_channels
        self.n_samples = n_samples
        self.period_us = period_us
        self._head = bytearray(_T0_BYTES)
        self._nbytes = 2 * n_channels * n_samples
        self._t0 = None  # the peeked, not yet consumed window time
        self.windows = 0
        self.partial = 0

    def _fill(self, buf, n):
        got = self.stream.readinto(buf) or 0
        while 0 < got < n:  # a pipe can deliver a record in pieces
            more = self.stream.readinto(memoryview(buf)[got:]) or 0
            if not more:
                break
            got += more
        return got

    def next_t0(self):
        if self._t0 is None:
            got = self._fill(self._head, _T0_BYTES)
            if got < _T0_BYTES:
                if got:
                    self.partial += 1
                return None
            self._t0 = int.from_bytes(self._head, "little")
        return self._t0

    def read(self, samples):
        t0 = self.next_t0()
        if t0 is None:
            return None
        self._t0 = None
        if self._fill(samples, self._nbytes) < self._nbytes:
            self.partial += 1
            return None
        self.windows += 1
        return t0
