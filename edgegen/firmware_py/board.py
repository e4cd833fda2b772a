# What comes from the board: buses, the watchdog, the status LED. Imported lazily, so the unix port and CPython
# (which have no such hardware) run everything else; tests replace make_i2c with a register-level fake.
from .errors import ConfigError


def make_i2c(cfg):
    """A machine.I2C (hardware) or SoftI2C from {"id", "scl", "sda", "freq", "soft"}."""
    try:
        from machine import I2C, Pin, SoftI2C
    except ImportError:
        raise ConfigError("i2c: no machine.I2C on this port") from None
    freq = cfg.get("freq", 400000)
    if cfg.get("soft"):
        return SoftI2C(scl=Pin(cfg["scl"]), sda=Pin(cfg["sda"]), freq=freq)
    if "scl" in cfg:
        return I2C(cfg.get("id", 0), scl=Pin(cfg["scl"]), sda=Pin(cfg["sda"]), freq=freq)
    return I2C(cfg.get("id", 0), freq=freq)


def make_watchdog(timeout_ms):
    try:
        from machine import WDT
    except ImportError:
        raise ConfigError("watchdog_ms: no machine.WDT on this port (set it to 0)") from None
    return WDT(timeout=timeout_ms)


class StatusLED:
    def __init__(self, pin):
        from machine import Pin

        self._pin = Pin(pin, Pin.OUT)
        self._on = 0

    def toggle(self):
        self._on ^= 1
        self._pin.value(self._on)
