# The microcontroller's internal temperature sensor, where the port has one, in 0.01 degC per count.
# ESP32: esp32.mcu_temperature() (whole degrees). RP2040/RP2350: ADC channel 4, 27 degC at 0.706 V,
# -1.721 mV/degC (datasheet section 4.9.5).
from ..errors import SensorError


class MCUTemperature:
    channels = 1
    scales = [0.01]

    def __init__(self):
        self._read = None

    def init(self):
        try:
            import esp32

            if hasattr(esp32, "mcu_temperature"):
                self._read = lambda: esp32.mcu_temperature() * 100
                return
        except ImportError:
            pass
        try:
            from machine import ADC

            adc = ADC(4)
            self._read = lambda: int((27 - (adc.read_u16() * 3.3 / 65535 - 0.706) / 0.001721) * 100)
            adc.read_u16()
        except (ImportError, OSError, ValueError, TypeError):
            raise SensorError("no internal temperature sensor on this port") from None

    def read_into(self, samples, at):
        samples[at] = self._read()
