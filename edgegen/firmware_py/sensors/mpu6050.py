# InvenSense MPU-6050 accelerometer + gyroscope over I2C, register level (register map rev. 4.2).
#
# Channels: ax, ay, az (g), gx, gy, gz (degrees/s). One burst read of 14 bytes from ACCEL_XOUT_H per sample
# into a preallocated buffer; big-endian int16 decoded by hand (struct would allocate a tuple).
from ..compat import const
from ..errors import SensorError

ADDRESS = const(0x68)
SMPLRT_DIV = const(0x19)
CONFIG = const(0x1A)
GYRO_CONFIG = const(0x1B)
ACCEL_CONFIG = const(0x1C)
ACCEL_XOUT_H = const(0x3B)
PWR_MGMT_1 = const(0x6B)
WHO_AM_I = const(0x75)
WHO_AM_I_VALUE = const(0x68)

ACCEL_RANGES_G = (2, 4, 8, 16)  # ACCEL_CONFIG AFS_SEL 0..3: 16384, 8192, 4096, 2048 LSB/g
GYRO_RANGES_DPS = (250, 500, 1000, 2000)  # GYRO_CONFIG FS_SEL 0..3: 131, 65.5, 32.8, 16.4 LSB/(deg/s)


class MPU6050:
    channels = 6

    def __init__(self, i2c, address=ADDRESS, accel_range_g=2, gyro_range_dps=250, dlpf=3, sample_div=0):
        if accel_range_g not in ACCEL_RANGES_G:
            raise ValueError("accel_range_g must be one of 2, 4, 8, 16")
        if gyro_range_dps not in GYRO_RANGES_DPS:
            raise ValueError("gyro_range_dps must be one of 250, 500, 1000, 2000")
        if not 0 <= dlpf <= 6 or not 0 <= sample_div <= 255:
            raise ValueError("dlpf 0..6, sample_div 0..255")
        self.i2c = i2c
        self.address = address
        self._afs = ACCEL_RANGES_G.index(accel_range_g)
        self._fs = GYRO_RANGES_DPS.index(gyro_range_dps)
        self._dlpf = dlpf
        self._div = sample_div
        self._buf = bytearray(14)
        self._one = bytearray(1)
        g = accel_range_g / 32768
        dps = gyro_range_dps / 32768
        self.scales = [g, g, g, dps, dps, dps]

    def _write(self, register, value):
        self._one[0] = value
        self.i2c.writeto_mem(self.address, register, self._one)

    def init(self):
        try:
            self.i2c.readfrom_mem_into(self.address, WHO_AM_I, self._one)
        except OSError as exc:
            raise SensorError("MPU-6050 not found at 0x%02x (%s)" % (self.address, exc)) from None
        if self._one[0] & 0x7E != WHO_AM_I_VALUE:
            raise SensorError(
                "device at 0x%02x is not an MPU-6050 (WHO_AM_I 0x%02x)" % (self.address, self._one[0])
            )
        try:
            self._write(PWR_MGMT_1, 0x01)  # wake, clock from the X gyro PLL
            self._write(SMPLRT_DIV, self._div)
            self._write(CONFIG, self._dlpf)
            self._write(GYRO_CONFIG, self._fs << 3)
            self._write(ACCEL_CONFIG, self._afs << 3)
        except OSError as exc:
            raise SensorError("MPU-6050 configuration failed (%s)" % exc) from None

    def read_into(self, samples, at):
        buf = self._buf
        try:
            self.i2c.readfrom_mem_into(self.address, ACCEL_XOUT_H, buf)
        except OSError as exc:
            raise SensorError("MPU-6050 read failed (%s)" % exc) from None
        for i in (0, 2, 4, 8, 10, 12):  # skip the temperature word at 6
            v = (buf[i] << 8) | buf[i + 1]
            samples[at] = v - 65536 if v > 32767 else v
            at += 1
