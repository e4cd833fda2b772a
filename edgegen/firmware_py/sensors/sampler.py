# A window source over a live sensor: samples every period_us (ticks_us pacing), n_samples per window.
# The window's timestamp is the wall clock at its first sample.
from ..compat import const, sleep_us, ticks_add, ticks_diff, ticks_us

_SPIN_US = const(200)  # below this, busy-wait instead of sleeping: sleep granularity is coarse on boards


class SensorSource:
    def __init__(self, sensor, n_samples, period_us, clock_us):
        self.sensor = sensor
        self.n_channels = sensor.channels
        self.n_samples = n_samples
        self.period_us = period_us
        self._clock_us = clock_us  # wall-clock microseconds (firmware_py.app.now_us)
        self.windows = 0

    def read(self, samples):
        sensor = self.sensor
        c = self.n_channels
        period = self.period_us
        t0 = self._clock_us()
        start = ticks_us()
        for i in range(self.n_samples):
            due = ticks_add(start, i * period)
            wait = ticks_diff(due, ticks_us())
            if wait > _SPIN_US:
                sleep_us(wait - _SPIN_US)
            while ticks_diff(due, ticks_us()) > 0:
                pass
            sensor.read_into(samples, i * c)
        self.windows += 1
        return t0
