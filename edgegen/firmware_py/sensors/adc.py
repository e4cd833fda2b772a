# ADC channels through machine.ADC: read_u16() (0..65535 on every port) centred to int16.
from ..errors import SensorError


class ADCChannels:
    def __init__(self, pins, volts_full_scale=3.3, adc_class=None):
        self.pins = list(pins)
        self.channels = len(self.pins)
        self.scales = [volts_full_scale / 65536] * self.channels
        self._adc_class = adc_class
        self._adcs = []

    def init(self):
        cls = self._adc_class
        if cls is None:
            try:
                from machine import ADC
            except ImportError:
                raise SensorError("no machine.ADC on this port") from None
            cls = ADC
        try:
            self._adcs = [cls(pin) for pin in self.pins]
        except (OSError, ValueError) as exc:
            raise SensorError("ADC on pins %r: %s" % (self.pins, exc)) from None

    def read_into(self, samples, at):
        for adc in self._adcs:
            samples[at] = adc.read_u16() - 32768
            at += 1
