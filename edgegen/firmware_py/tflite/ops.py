# One class per supported op. __init__ is TFLM's "prepare": it checks types and shapes and computes every
# requantization parameter once, exactly as TFLM does (firmware_py/tflite/exact.py). run() is "eval": the inner
# loops go to the kernels (viper or plain Python); requantization of each output runs here on Python ints.
import math
import struct
from array import array

from ..bytecopy import copy_bytes
from ..errors import ModelError
from ..tflite import exact
from ..tflite import schema as s


def _fail(op, message):
    raise ModelError("op %d %s: %s" % (op.index, op.name, message))


def _scale(tensor):
    return exact.from_f32(tensor.scale)


def _s8(u):
    return u - 256 if u > 127 else u


def _clamp(v, lo, hi):
    return lo if v < lo else (hi if v > hi else v)


def activation_range(activation, out_tensor):
    """TFLM's CalculateActivationRangeQuantized for int8 (Quantize() divides in float32, then rounds)."""
    zp = out_tensor.zero_point
    scale = _scale(out_tensor)

    def q(value):
        if value == 0:
            return zp
        return zp + exact.round_half_away(exact.div((value, 0), scale, 24))

    if activation == s.ACT_NONE:
        return -128, 127
    if activation == s.ACT_RELU:
        return max(-128, q(0)), 127
    if activation == s.ACT_RELU6:
        return max(-128, q(0)), min(127, q(6))
    if activation == s.ACT_RELU_N1_TO_1:
        return max(-128, q(-1)), min(127, q(1))
    raise ModelError("fused activation %d is not supported" % activation)


def padding(pad_type, in_size, k, stride, dilation):
    """(output size, padding before) as TFLM's ComputePaddingHeightWidth."""
    eff = (k - 1) * dilation + 1
    if pad_type == s.PADDING_SAME:
        out = (in_size + stride - 1) // stride
    else:
        out = (in_size - eff + stride) // stride
    total = (out - 1) * stride + eff - in_size
    return out, (total if total > 0 else 0) // 2


def _int32_list(tensor):
    data = tensor.data
    return [struct.unpack_from("<i", data, 4 * i)[0] for i in range(tensor.size)]


class Step:
    """Common checks. ``graph.tensors`` are shared; views are bound later by the arena planner."""

    def __init__(self, op, graph, kernels):
        self.op = op
        self.k = kernels
        self.t = graph.tensors
        self.x = self.t[op.inputs[0]]
        self.y = self.t[op.outputs[0]]

    def need(self, tensor, dtype, what):
        if tensor.dtype != dtype:
            _fail(
                self.op, "%s must be %s, got %s" % (what, s.TYPE_NAMES.get(dtype), s.TYPE_NAMES.get(tensor.dtype))
            )

    def const(self, index, what):
        tensor = self.t[index]
        if tensor.data is None:
            _fail(self.op, "%s must be a constant" % what)
        return tensor


class _Requantizing(Step):
    """Shared by the ops that accumulate int32 sums: bias, per-channel multiplier, zero point, clamp."""

    def setup_requant(self, weights, bias_index, n_channels, activation, product_in_float32):
        x, y = self.x, self.y
        self.need(x, s.INT8, "input")
        self.need(y, s.INT8, "output")
        self.need(weights, s.INT8, "filter")
        per_channel = len(weights.scales) > 1
        if per_channel and len(weights.scales) != n_channels:
            _fail(self.op, "%d filter scales for %d channels" % (len(weights.scales), n_channels))
        if any(weights.zero_points):
            _fail(self.op, "filter zero points must be 0")
        in_scale = _scale(x)
        out_scale = _scale(y)
        self.mult = array("i", [0] * n_channels)
        self.shift = array("b", [0] * n_channels)
        for c in range(n_channels):
            f = exact.from_f32(weights.scales[c if per_channel else 0])
            product = exact.mul(in_scale, f)
            if product_in_float32:
                product = exact.to_float(product)
            self.mult[c], self.shift[c] = exact.quantize_multiplier(exact.div(product, out_scale))
        self.bias = None
        if bias_index >= 0:
            bias = self.const(bias_index, "bias")
            self.need(bias, s.INT32, "bias")
            if bias.size != n_channels:
                _fail(self.op, "bias has %d values for %d channels" % (bias.size, n_channels))
            self.bias = array("i", _int32_list(bias))
        self.n_channels = n_channels
        self.lo, self.hi = activation_range(activation, y)

    def requantize(self, acc, n, out):
        bias = self.bias
        mult = self.mult
        shift = self.shift
        zp = self.y.zero_point
        lo = self.lo
        hi = self.hi
        nc = self.n_channels
        mbqm = exact.mbqm
        c = 0
        for i in range(n):
            v = acc[i]
            if bias is not None:
                v += bias[c]
            v = mbqm(v, mult[c], shift[c]) + zp
            out[i] = (lo if v < lo else (hi if v > hi else v)) & 0xFF
            c += 1
            if c == nc:
                c = 0


class FullyConnected(_Requantizing):
    def __init__(self, op, graph, kernels):
        super().__init__(op, graph, kernels)
        w = self.const(op.inputs[1], "weights")
        if len(w.shape) != 2:
            _fail(op, "weights must be 2-D, got %r" % (w.shape,))
        n_out, depth = w.shape
        if self.x.size % depth:
            _fail(op, "input of %d values is not a multiple of depth %d" % (self.x.size, depth))
        options = op.options
        activation = options.scalar(0, "b") if options is not None else 0
        if options is not None and options.scalar(1, "b"):
            _fail(op, "shuffled weights are not supported")
        bias = op.inputs[2] if len(op.inputs) > 2 else -1
        # TFLM multiplies input and filter scale in float32 for per-tensor weights, in double per channel.
        self.setup_requant(w, bias, n_out, activation, product_in_float32=len(w.scales) <= 1)
        self.w = w.data
        batches = self.x.size // depth
        if batches * n_out != self.y.size:
            _fail(op, "output has %d values, expected %d" % (self.y.size, batches * n_out))
        self.n = batches * n_out
        self.p = array("i", [batches, depth, n_out, 256 - self.x.zero_point, 256])

    def run(self, acc):
        self.k.fc_acc(self.x.view, self.w, acc, self.p)
        self.requantize(acc, self.n, self.y.view)


class Conv(_Requantizing):
    """CONV_2D and DEPTHWISE_CONV_2D (NHWC)."""

    def __init__(self, op, graph, kernels, depthwise):
        super().__init__(op, graph, kernels)
        x, y = self.x, self.y
        w = self.const(op.inputs[1], "filter")
        if len(x.shape) != 4 or len(w.shape) != 4 or len(y.shape) != 4:
            _fail(op, "tensors must be 4-D")
        batches, in_h, in_w, in_c = x.shape
        _, out_h, out_w, out_c = y.shape
        o = op.options
        pad_type = o.scalar(0, "b")
        s_w = o.scalar(1, "i")
        s_h = o.scalar(2, "i")
        if depthwise:
            mult = o.scalar(3, "i")
            activation = o.scalar(4, "b")
            d_w = o.scalar(5, "i", 1)
            d_h = o.scalar(6, "i", 1)
            _, k_h, k_w, w_c = w.shape
            if w_c != out_c or out_c != in_c * mult:
                _fail(op, "filter %r does not match %d input channels x multiplier %d" % (w.shape, in_c, mult))
        else:
            mult = 1
            activation = o.scalar(3, "b")
            d_w = o.scalar(4, "i", 1)
            d_h = o.scalar(5, "i", 1)
            w_o, k_h, k_w, w_i = w.shape
            if w_o != out_c or w_i != in_c:
                _fail(op, "filter %r does not match %d -> %d channels" % (w.shape, in_c, out_c))
        want_h, pad_h = padding(pad_type, in_h, k_h, s_h, d_h)
        want_w, pad_w = padding(pad_type, in_w, k_w, s_w, d_w)
        if (want_h, want_w) != (out_h, out_w):
            _fail(op, "output %dx%d, expected %dx%d" % (out_h, out_w, want_h, want_w))
        bias = op.inputs[2] if len(op.inputs) > 2 else -1
        self.setup_requant(w, bias, out_c, activation, product_in_float32=False)
        self.w = w.data
        self.n = y.size
        self.kernel = kernels.dw_acc if depthwise else kernels.conv_acc
        self.p = array(
            "i",
            [
                batches,
                in_h,
                in_w,
                in_c,
                out_h,
                out_w,
                out_c,
                k_h,
                k_w,
                s_h,
                s_w,
                d_h,
                d_w,
                pad_h,
                pad_w,
                256 - x.zero_point,
                mult,
            ],
        )

    def run(self, acc):
        self.kernel(self.x.view, self.w, acc, self.p)
        self.requantize(acc, self.n, self.y.view)


class Pool(Step):
    def __init__(self, op, graph, kernels, average):
        super().__init__(op, graph, kernels)
        x, y = self.x, self.y
        self.need(x, s.INT8, "input")
        self.need(y, s.INT8, "output")
        if x.scales != y.scales or x.zero_points != y.zero_points:
            _fail(op, "input and output quantization must match")
        batches, in_h, in_w, ch = x.shape
        o = op.options
        pad_type = o.scalar(0, "b")
        s_w = o.scalar(1, "i")
        s_h = o.scalar(2, "i")
        k_w = o.scalar(3, "i")
        k_h = o.scalar(4, "i")
        lo, hi = activation_range(o.scalar(5, "b"), y)
        out_h, pad_h = padding(pad_type, in_h, k_h, s_h, 1)
        out_w, pad_w = padding(pad_type, in_w, k_w, s_w, 1)
        if y.shape != (batches, out_h, out_w, ch):
            _fail(op, "output %r, expected %r" % (y.shape, (batches, out_h, out_w, ch)))
        self.p = array(
            "i",
            [
                batches,
                in_h,
                in_w,
                ch,
                out_h,
                out_w,
                k_h,
                k_w,
                s_h,
                s_w,
                pad_h,
                pad_w,
                lo + 256,
                hi + 256,
                1 if average else 0,
            ],
        )

    def run(self, acc):
        self.k.pool(self.x.view, self.y.view, self.p)


class Table(Step):
    """Every int8 -> int8 elementwise op as a 256-entry table built at load: RELU, RELU6, LOGISTIC, TANH and
    QUANTIZE between int8 scales. The integer ones reproduce TFLM exactly; LOGISTIC and TANH are computed from
    the real function, where TFLM uses gemmlowp's fixed-point approximation: they agree within 1 LSB."""

    def __init__(self, op, graph, kernels):
        super().__init__(op, graph, kernels)
        x, y = self.x, self.y
        self.need(x, s.INT8, "input")
        self.need(y, s.INT8, "output")
        if x.size != y.size:
            _fail(op, "input and output sizes differ")
        code = op.code
        f = self._function(op, code)
        self.table = bytearray(f(_s8(u)) & 0xFF for u in range(256))
        self.n = x.size

    def _function(self, op, code):
        x, y = self.x, self.y
        zx = x.zero_point
        zy = y.zero_point
        if code == s.RELU:
            # TFLM rescales: multiplier from the float32 ratio of scales, clamped at the output's zero point.
            m, sh = exact.quantize_multiplier(exact.div(_scale(x), _scale(y), 24))
            lo = max(-128, zy)
            return lambda v: _clamp(zy + exact.mbqm(v - zx, m, sh), lo, 127)
        if code == s.RELU6:
            # TFLM clamps in the input's quantization: between its zero point and round(6 / scale) + zero point.
            six = _clamp(exact.round_half_away(exact.div((6, 0), _scale(x), 24)) + zx, -128, 127)
            return lambda v: _clamp(v, zx, six)
        if code == s.QUANTIZE:
            m, sh = exact.quantize_multiplier(exact.div(_scale(x), _scale(y)))
            return lambda v: _clamp(exact.mbqm(v - zx, m, sh) + zy, -128, 127)
        sx = struct.unpack("<f", struct.pack("<I", x.scale))[0]
        if code == s.LOGISTIC:
            if zy != -128 or y.scale != exact.f32_bits(1 / 256):
                _fail(op, "output must be quantized with scale 1/256 and zero point -128")
            return lambda v: _clamp(_round(256 / (1 + math.exp(-(v - zx) * sx))) - 128, -128, 127)
        if zy != 0 or y.scale != exact.f32_bits(1 / 128):
            _fail(op, "output must be quantized with scale 1/128 and zero point 0")
        return lambda v: _clamp(_round(128 * math.tanh((v - zx) * sx)), -128, 127)

    def run(self, acc):
        self.k.lut(self.x.view, self.y.view, self.table, self.n)


def _round(v):
    """Round half away from zero, as TFLM's fixed-point rounding does."""
    return int(v + 0.5) if v >= 0 else -int(-v + 0.5)


def _broadcast_index(shape, out_shape):
    """For each output element, the flat index of the input element it reads (numpy broadcasting rules)."""
    rank = len(out_shape)
    shape = (1,) * (rank - len(shape)) + tuple(shape)
    strides = [0] * rank
    step = 1
    for d in range(rank - 1, -1, -1):
        strides[d] = 0 if shape[d] == 1 else step
        step *= shape[d]
    index = array("H", [0] * _product(out_shape))
    coords = [0] * rank
    for n in range(len(index)):
        flat = 0
        for d in range(rank):
            flat += coords[d] * strides[d]
        index[n] = flat
        d = rank - 1
        while d >= 0:
            coords[d] += 1
            if coords[d] < out_shape[d]:
                break
            coords[d] = 0
            d -= 1
    return index


def _product(shape):
    n = 1
    for d in shape:
        n *= d
    return n


class Binary(Step):
    """ADD and MUL, with broadcasting."""

    def __init__(self, op, graph, kernels):
        super().__init__(op, graph, kernels)
        a = self.x
        b = self.t[op.inputs[1]]
        y = self.y
        self.b = b
        for tensor, what in ((a, "input 1"), (b, "input 2"), (y, "output")):
            self.need(tensor, s.INT8, what)
        activation = op.options.scalar(0, "b") if op.options is not None else 0
        self.lo, self.hi = activation_range(activation, y)
        self.n = y.size
        self.ia = None if a.shape == y.shape else _broadcast_index(a.shape, y.shape)
        self.ib = None if b.shape == y.shape else _broadcast_index(b.shape, y.shape)
        sa, sb, sy = _scale(a), _scale(b), _scale(y)
        self.add = op.code == s.ADD
        if self.add:
            larger = exact.from_f32(max(a.scale, b.scale))  # positive float32s order like their bit patterns
            twice_max = (larger[0], larger[1] + 1)
            self.m1, self.s1 = self._smaller_than_one(exact.div(sa, twice_max))
            self.m2, self.s2 = self._smaller_than_one(exact.div(sb, twice_max))
            self.mo, self.so = self._smaller_than_one(exact.div(twice_max, (sy[0], sy[1] + 20)))
        else:
            self.mo, self.so = exact.quantize_multiplier(exact.div(exact.mul(sa, sb), sy))

    def _smaller_than_one(self, real):
        m, shift = exact.quantize_multiplier(real)
        if shift > 0:
            _fail(self.op, "rescale multiplier above one")
        return m, shift

    def run(self, acc):
        xa = self.x.view
        xb = self.b.view
        out = self.y.view
        ia = self.ia
        ib = self.ib
        za = -self.x.zero_point
        zb = -self.b.zero_point
        zy = self.y.zero_point
        lo = self.lo
        hi = self.hi
        srdhm = exact.srdhm
        rdbpot = exact.rdbpot
        mbqm = exact.mbqm
        for i in range(self.n):
            u = xa[i if ia is None else ia[i]]
            v = xb[i if ib is None else ib[i]]
            u = (u - 256 if u > 127 else u) + za
            v = (v - 256 if v > 127 else v) + zb
            if self.add:
                r = rdbpot(srdhm(u << 20, self.m1), -self.s1) + rdbpot(srdhm(v << 20, self.m2), -self.s2)
                r = rdbpot(srdhm(r, self.mo), -self.so) + zy
            else:
                r = zy + mbqm(u * v, self.mo, self.so)
            out[i] = (lo if r < lo else (hi if r > hi else r)) & 0xFF


class Reshape(Step):
    """RESHAPE, EXPAND_DIMS, SQUEEZE: the same bytes under another shape."""

    def __init__(self, op, graph, kernels):
        super().__init__(op, graph, kernels)
        if self.x.nbytes != self.y.nbytes or self.x.dtype != self.y.dtype:
            _fail(op, "input and output differ in size or type")
        if self.x.scales != self.y.scales or self.x.zero_points != self.y.zero_points:
            _fail(op, "input and output quantization differ")

    def run(self, acc):
        if self.y.view is not self.x.view:
            copy_bytes(self.y.arena, self.y.offset, self.x.view, self.x.nbytes)


class Concat(Step):
    """CONCATENATION of int8 tensors that share the output's quantization (as TFLM requires: the converter puts
    a QUANTIZE in front of any input that does not)."""

    def __init__(self, op, graph, kernels):
        super().__init__(op, graph, kernels)
        y = self.y
        self.need(y, s.INT8, "output")
        options = op.options
        axis = options.scalar(0, "i") if options is not None else 0
        if options is not None and options.scalar(1, "b") != s.ACT_NONE:
            _fail(op, "a fused activation on CONCATENATION is not supported")
        rank = len(y.shape)
        axis = axis + rank if axis < 0 else axis
        self.inputs = [self.t[i] for i in op.inputs]
        outer = _product(y.shape[:axis])
        self.outer = outer
        self.chunks = []  # bytes per outer step, per input
        for t in self.inputs:
            self.need(t, s.INT8, "input")
            if t.scales != y.scales or t.zero_points != y.zero_points:
                _fail(op, "inputs must share the output's quantization")
            if len(t.shape) != rank or t.size % max(outer, 1):
                _fail(op, "input %r does not concatenate into %r on axis %d" % (t.shape, y.shape, axis))
            self.chunks.append(t.size // outer)
        if sum(self.chunks) * outer != y.size:
            _fail(op, "inputs do not add up to the output")
        self._copies = None

    def run(self, acc):
        if self._copies is None:  # slices made once, after the arena is planned; reused without allocating
            copies = []
            out_at = self.y.offset
            for o in range(self.outer):
                for t, n in zip(self.inputs, self.chunks):
                    copies.append((out_at, t.view[o * n : (o + 1) * n], n))
                    out_at += n
            self._copies = copies
        arena = self.y.arena
        for at, src, n in self._copies:
            copy_bytes(arena, at, src, n)


class Mean(Step):
    def __init__(self, op, graph, kernels):
        super().__init__(op, graph, kernels)
        x, y = self.x, self.y
        self.need(x, s.INT8, "input")
        self.need(y, s.INT8, "output")
        axes_tensor = self.const(op.inputs[1], "axis")
        self.need(axes_tensor, s.INT32, "axis")
        rank = len(x.shape)
        axes = sorted({a + rank if a < 0 else a for a in _int32_list(axes_tensor)})
        kept = [d for d in range(rank) if d not in axes]
        count = 1
        for a in axes:
            count *= x.shape[a]
        out_size = 1
        for d in kept:
            out_size *= x.shape[d]
        if out_size != y.size:
            _fail(op, "output has %d values, expected %d" % (y.size, out_size))
        # Each input element's output index.
        self.index = array("H", [0] * x.size)
        coords = [0] * rank
        for n in range(x.size):
            flat = 0
            for d in kept:
                flat = flat * x.shape[d] + coords[d]
            self.index[n] = flat
            d = rank - 1
            while d >= 0:
                coords[d] += 1
                if coords[d] < x.shape[d]:
                    break
                coords[d] = 0
                d -= 1
        m, sh = exact.quantize_multiplier(exact.div(_scale(x), _scale(y)))
        # TFLM folds the division by the element count into the multiplier.
        log2 = exact.bit_length(count) - 1
        k = min(log2, 32, 31 + sh)
        self.m = (m << k) // count
        self.sh = sh - k
        self.count = count
        self.n_out = out_size

    def run(self, acc):
        x = self.x.view
        index = self.index
        n_out = self.n_out
        for i in range(n_out):
            acc[i] = 0
        for i in range(self.x.size):
            v = x[i]
            acc[index[i]] += v - 256 if v > 127 else v
        out = self.y.view
        bias = self.x.zero_point * self.count
        zy = self.y.zero_point
        for i in range(n_out):
            r = exact.mbqm(acc[i] - bias, self.m, self.sh) + zy
            out[i] = (-128 if r < -128 else (127 if r > 127 else r)) & 0xFF


class Softmax(Step):
    """Along the last axis. exp() of every possible (max - x) difference is tabled at load in Q20, so running
    it is integer-only; TFLM uses gemmlowp's fixed-point exp: they agree within 1 LSB."""

    def __init__(self, op, graph, kernels):
        super().__init__(op, graph, kernels)
        x, y = self.x, self.y
        self.need(x, s.INT8, "input")
        self.need(y, s.INT8, "output")
        if y.zero_point != -128 or y.scale != exact.f32_bits(1 / 256):
            _fail(op, "output must be quantized with scale 1/256 and zero point -128")
        beta = struct.unpack("<f", struct.pack("<I", op.options.scalar(0, "I")))[0]
        sx = struct.unpack("<f", struct.pack("<I", x.scale))[0]
        self.exp = array("i", [int(math.exp(-d * beta * sx) * (1 << 20) + 0.5) for d in range(256)])
        self.depth = x.shape[-1]
        self.rows = x.size // self.depth

    def run(self, acc):
        x = self.x.view
        out = self.y.view
        depth = self.depth
        table = self.exp
        for r in range(self.rows):
            base = r * depth
            top = -128
            for i in range(base, base + depth):
                v = x[i]
                v = v - 256 if v > 127 else v
                if v > top:
                    top = v
            total = 0
            for i in range(base, base + depth):
                v = x[i]
                total += table[top - (v - 256 if v > 127 else v)]
            for i in range(base, base + depth):
                v = x[i]
                e = table[top - (v - 256 if v > 127 else v)]
                q = (e * 512 + total) // (2 * total) - 128
                out[i] = (127 if q > 127 else q) & 0xFF


class Quantize(Step):
    """float32 -> int8 (TFLM: float32 division by the scale, round half away, clamp)."""

    def __init__(self, op, graph, kernels):
        super().__init__(op, graph, kernels)
        self.need(self.x, s.FLOAT32, "input")
        self.need(self.y, s.INT8, "output")
        self.scale = struct.unpack("<f", struct.pack("<I", self.y.scale))[0]
        self.tmp = array("f", [0.0])

    def run(self, acc):
        x = self.x.view
        out = self.y.view
        tmp = self.tmp
        zp = self.y.zero_point
        for i in range(self.x.size):
            tmp[0] = x[i] / self.scale  # stored as float32: the rounding of a float32 division
            q = _round(tmp[0]) + zp
            out[i] = (-128 if q < -128 else (127 if q > 127 else q)) & 0xFF


class Dequantize(Step):
    """int8 -> float32: scale * (q - zero point), rounded to float32."""

    def __init__(self, op, graph, kernels):
        super().__init__(op, graph, kernels)
        self.need(self.x, s.INT8, "input")
        self.need(self.y, s.FLOAT32, "output")
        self.scale = struct.unpack("<f", struct.pack("<I", self.x.scale))[0]

    def run(self, acc):
        x = self.x.view
        out = self.y.view
        zp = self.x.zero_point
        for i in range(self.x.size):
            v = x[i]
            out[i] = self.scale * ((v - 256 if v > 127 else v) - zp)


def build(op, graph, kernels):
    code = op.code
    if code == s.FULLY_CONNECTED:
        return FullyConnected(op, graph, kernels)
    if code == s.CONV_2D:
        return Conv(op, graph, kernels, False)
    if code == s.DEPTHWISE_CONV_2D:
        return Conv(op, graph, kernels, True)
    if code in (s.MAX_POOL_2D, s.AVERAGE_POOL_2D):
        return Pool(op, graph, kernels, code == s.AVERAGE_POOL_2D)
    if code in (s.ADD, s.MUL):
        return Binary(op, graph, kernels)
    if code in (s.RESHAPE, s.EXPAND_DIMS, s.SQUEEZE):
        return Reshape(op, graph, kernels)
    if code == s.CONCATENATION:
        return Concat(op, graph, kernels)
    if code == s.MEAN:
        return Mean(op, graph, kernels)
    if code == s.SOFTMAX:
        return Softmax(op, graph, kernels)
    if code == s.DEQUANTIZE:
        return Dequantize(op, graph, kernels)
    if code == s.QUANTIZE:
        if graph.tensors[op.inputs[0]].dtype == s.FLOAT32:
            return Quantize(op, graph, kernels)
        return Table(op, graph, kernels)
    return Table(op, graph, kernels)  # RELU, RELU6, LOGISTIC, TANH
