# Models a node runs on every window: the encoder (the node half of a partitioned model, whose output goes as an
# EMBEDDING frame instead of, or beside, the raw samples) and the pre-score (which decides when the raw window
# goes too: event-triggered raw).
#
# Input quantization is integer-only: raw count x of channel c becomes
#   q = clamp(round(x * scale_c / (std_c * s_in)) + round(-mean_c / (std_c * s_in)) + zp_in)
# with the ratio held as a Q31 multiplier computed once, exactly (firmware_py/tflite/exact.py), and one rounding
# (half away from zero) per value -- not gemmlowp's two, which would round differently on ties. On 64-bit ports
# nothing is allocated per window; on 32-bit ones the Q31 multiplier and x * multiplier are long ints, two small
# heap objects per value. (Rounding the two terms separately may differ by one step from rounding their sum.)
# The multiplier and bias come from the config's floats: a port with single-precision floats may compute them one
# ulp apart from the host's hil.model_report.node_quantize, which assumes double precision.
import struct
from array import array

from . import frame
from .compat import ticks_diff, ticks_us
from .errors import ModelError
from .tflite import exact
from .tflite.schema import INT8


def _f32(bits):
    return struct.unpack("<f", struct.pack("<I", bits))[0]


class WindowModel:
    """An int8 model fed one window of raw int16 counts."""

    def __init__(self, interpreter, n_samples, n_channels, scales, mean=None, std=None):
        t_in = interpreter.input
        t_out = interpreter.output
        if t_in.dtype != INT8 or t_out.dtype != INT8:
            raise ModelError("node models must take and return int8")
        if t_in.size != n_samples * n_channels or (len(t_in.shape) >= 2 and t_in.shape[-1] != n_channels):
            raise ModelError(
                "model input %r does not take a window of %d samples x %d channels"
                % (t_in.shape, n_samples, n_channels)
            )
        self.model = interpreter
        self.n_channels = n_channels
        mean = mean or [0.0] * n_channels
        std = std or [1.0] * n_channels
        s_in = exact.from_f32(t_in.scale)
        s_in_float = _f32(t_in.scale)
        self.mult = array("i", [0] * n_channels)
        self.shift = array("b", [0] * n_channels)  # right shift applied to x * mult
        self.bias = array("i", [0] * n_channels)
        for c in range(n_channels):
            ratio = exact.div(exact.from_f32(exact.f32_bits(scales[c] / std[c])), s_in)
            m, sh = exact.quantize_multiplier(ratio)
            if not 1 <= 31 - sh <= 62:
                raise ModelError("channel %d: input scale ratio out of range" % c)
            self.mult[c] = m
            self.shift[c] = 31 - sh
            v = -mean[c] / (std[c] * s_in_float)
            self.bias[c] = t_in.zero_point + (int(v + 0.5) if v >= 0 else -int(-v + 0.5))
        self.inp = array("b", [0] * t_in.size)
        self.out = array("b", [0] * t_out.size)
        self.last_us = None

    def run(self, samples):
        """Quantize the window and run the model; the result is in ``out``."""
        inp = self.inp
        mult = self.mult
        shift = self.shift
        bias = self.bias
        nc = self.n_channels
        c = 0
        for i in range(len(inp)):
            x = samples[i]
            r = shift[c]
            if x >= 0:
                q = ((x * mult[c] + (1 << (r - 1))) >> r) + bias[c]
            else:
                q = bias[c] - ((-x * mult[c] + (1 << (r - 1))) >> r)
            inp[i] = -128 if q < -128 else (127 if q > 127 else q)
            c += 1
            if c == nc:
                c = 0
        started = ticks_us()
        self.model.run(inp, self.out)
        self.last_us = ticks_diff(ticks_us(), started)


class Embedder(WindowModel):
    def __init__(self, interpreter, node_id, n_samples, n_channels, period_us, scales, mean=None, std=None):
        super().__init__(interpreter, n_samples, n_channels, scales, mean, std)
        t_out = interpreter.output
        self.encoder = frame.FrameEncoder(
            node_id,
            1,
            t_out.size,
            n_samples * period_us,
            frame.INT8,
            [_f32(t_out.scale)],
            t_out.zero_point,
            frame.EMBEDDING,
        )

    def embed(self, seq, t0_us, samples):
        """Run the encoder on the window; return its EMBEDDING frame (valid until the next call)."""
        self.run(samples)
        return self.encoder.encode(seq, t0_us, self.out)


class Prescorer(WindowModel):
    """A one-output model whose score marks a window worth sending raw: above a fixed ``threshold`` (in the
    output's real units), or -- with ``calibrate`` windows -- above the ``quantile`` of the node's own first
    ``calibrate`` scores (nothing fires while it calibrates). Calibration allocates once, when it ends."""

    def __init__(
        self, interpreter, n_samples, n_channels, scales, threshold, mean=None, std=None, calibrate=0, quantile=0.9
    ):
        super().__init__(interpreter, n_samples, n_channels, scales, mean, std)
        t_out = interpreter.output
        if t_out.size != 1:
            raise ModelError("a pre-score model has one output, this one %d" % t_out.size)
        # real score (q - zp) * scale > threshold  <=>  q > zp + floor(threshold / scale), q an integer
        v = threshold / _f32(t_out.scale)
        steps = int(v)
        if steps > v:
            steps -= 1
        self.threshold_q = t_out.zero_point + steps
        self.quantile = quantile
        self.seen = array("b", [0] * calibrate)
        self.calibrating = calibrate
        self.fired = 0

    def fires(self, samples):
        self.run(samples)
        score = self.out[0]
        if self.calibrating:
            n = len(self.seen)
            self.seen[n - self.calibrating] = score
            self.calibrating -= 1
            if not self.calibrating:
                ordered = sorted(self.seen)
                self.threshold_q = ordered[min(n - 1, int(self.quantile * (n - 1) + 0.5))]
            return False
        if score > self.threshold_q:
            self.fired += 1
            return True
        return False
