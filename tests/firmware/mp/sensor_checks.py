# Runs under MicroPython: sensor drivers against register-level fakes of the hardware, and the node app's
# handling of a missing sensor. usage: sensor_checks.py STATE_DIR. Prints JSON.
import json
import sys
import time
from array import array

from firmware_py.app import NodeApp
from firmware_py.config import validate
from firmware_py.errors import SensorError
from firmware_py.sensors.adc import ADCChannels
from firmware_py.sensors.mpu6050 import MPU6050
from firmware_py.sensors.sampler import SensorSource

from firmware_py import board


class FakeMPU6050Bus:
    """An I2C bus with (or without) an MPU-6050 at 0x68: a register file, answering like the chip."""

    def __init__(self, present=True, who_am_i=0x68):
        self.present = present
        self.regs = bytearray(128)
        self.regs[0x75] = who_am_i
        self.writes = []
        self.reads = 0

    def _check(self, addr):
        if not self.present or addr != 0x68:
            raise OSError(19)  # ENODEV: nobody acknowledged the address

    def writeto_mem(self, addr, reg, buf):
        self._check(addr)
        self.writes.append([reg, buf[0]])
        self.regs[reg] = buf[0]

    def readfrom_mem_into(self, addr, reg, buf):
        self._check(addr)
        self.reads += 1
        for i in range(len(buf)):
            buf[i] = self.regs[reg + i]


out = {}
bus = FakeMPU6050Bus()
mpu = MPU6050(bus)
mpu.init()
out["init_writes"] = bus.writes
bus2 = FakeMPU6050Bus()
MPU6050(bus2, accel_range_g=8, gyro_range_dps=1000, dlpf=1, sample_div=4).init()
out["init_writes_8g"] = bus2.writes
out["scales"] = mpu.scales
# ACCEL_XOUT_H..GYRO_ZOUT_L: ax=-32768, ay=32767, az=1, temperature (skipped), gx=-1, gy=256, gz=-256
bus.regs[0x3B : 0x3B + 14] = bytes(
    [0x80, 0x00, 0x7F, 0xFF, 0x00, 0x01, 0x12, 0x34, 0xFF, 0xFF, 0x01, 0x00, 0xFF, 0x00]
)
samples = array("h", [0] * 12)
mpu.read_into(samples, 6)
out["decoded"] = list(samples)

for name, fake in (("missing", FakeMPU6050Bus(present=False)), ("wrong_chip", FakeMPU6050Bus(who_am_i=0x70))):
    try:
        MPU6050(fake).init()
        out[name] = "no error"
    except SensorError as exc:
        out[name] = str(exc)


class FakeADC:
    def __init__(self, pin):
        self.pin = pin

    def read_u16(self):
        return (0, 65535, 32768, 40000)[self.pin]


adc = ADCChannels([0, 1, 2, 3], adc_class=FakeADC)
adc.init()
vals = array("h", [0] * 4)
adc.read_into(vals, 0)
out["adc"] = list(vals)


def clock():
    return 1700000000000000


src = SensorSource(mpu, 20, 1000, clock)  # 20 samples at 1 kHz
window = array("h", [0] * 120)
t = time.ticks_us()
out["window_t0"] = src.read(window)
out["window_us"] = time.ticks_diff(time.ticks_us(), t)
out["window_reads"] = bus.reads

# The app with the sensor missing at start: stream down, error on the status, the rest keeps running; the
# sensor appears and the stream starts within sensor_retry_s.
shared = FakeMPU6050Bus(present=False)
board.make_i2c = lambda cfg: shared

cfg = validate(
    {
        "site": "hw",
        "node_id": "imu1",
        "mqtt": {"host": "127.0.0.1", "port": 1, "backoff_min_ms": 5000},
        "state_dir": sys.argv[1],
        "speed": 1,
        "sensor_retry_s": 1,
        "status_interval_s": 1,
        "streams": [{"name": "imu", "rate_hz": 1000, "window": 10, "source": {"kind": "mpu6050"}}],
    }
)
app = NodeApp(cfg)
out["down_at_start"] = app.streams[0].node is None
out["status_at_start"] = json.loads(app.uplink.status_payload)
app.run(max_ms=300)
out["frames_while_missing"] = app.outbox.depth()
shared.present = True
app.run(max_ms=1500)
out["up_after_retry"] = app.streams[0].node is not None
out["frames_after_retry"] = app.outbox.depth()
out["status_after"] = json.loads(app.uplink.status_payload)
app.close(clean=False)
print(json.dumps(out))
