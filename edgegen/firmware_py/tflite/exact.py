# Exact arithmetic for the interpreter, so a board with single-precision floats computes the same integers as
# TensorFlow Lite Micro does with doubles.
#
# 1. Requantization multipliers. TFLM derives each from float32 scales with double (and sometimes float32)
#    arithmetic, then QuantizeMultiplier. Here a float is an exact pair (m, e) meaning m * 2**e, built from
#    the float32 bit pattern in the model file; products are exact and every rounding step TFLM takes (to 53
#    bits for a double, to 24 for a float32, round-half-away for TfLiteRound) is applied on integers. Used at
#    load time only.
# 2. gemmlowp fixed point: SaturatingRoundingDoublingHighMul, RoundingDivideByPOT and
#    MultiplyByQuantizedMultiplier with TFLM's default double rounding, on Python ints (C division truncates
#    toward zero; Python's floors: handled).
import struct

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def bit_length(n):
    """Bits in a positive int (MicroPython has no int.bit_length)."""
    k = 0
    while n >= 1 << 16:
        n >>= 16
        k += 16
    while n:
        n >>= 1
        k += 1
    return k


def f32_bits(value):
    """The float32 bit pattern nearest a Python float (for constants such as 6.0 in the kernels)."""
    return struct.unpack("<I", struct.pack("<f", value))[0]


def from_f32(bits):
    """A positive, finite float32 bit pattern as an exact (m, e)."""
    exp = (bits >> 23) & 0xFF
    frac = bits & 0x7FFFFF
    if bits >> 31 or exp == 255:
        raise ValueError("expected a positive finite float32")
    if exp == 0:
        return frac, -149
    return frac | 0x800000, exp - 150


def round_bits(num, den, e, bits):
    """num / den * 2**e rounded to nearest (ties to even) with ``bits`` significant bits, as (m, e)."""
    if num == 0:
        return 0, 0
    shift = bits + 2 - (bit_length(num) - bit_length(den))
    if shift >= 0:
        q, r = divmod(num << shift, den)
    else:
        q, r = divmod(num, den << -shift)
    e -= shift
    extra = bit_length(q) - bits
    if extra > 0:
        dropped = q & ((1 << extra) - 1)
        q >>= extra
        e += extra
        half = 1 << (extra - 1)
        if dropped > half or (dropped == half and (r or q & 1)):
            q += 1
            if q >> bits:
                q >>= 1
                e += 1
    return q, e


def to_double(x):
    return round_bits(x[0], 1, x[1], 53)


def to_float(x):
    return round_bits(x[0], 1, x[1], 24)


def mul(a, b):
    """Exact product."""
    return a[0] * b[0], a[1] + b[1]


def div(a, b, bits=53):
    """a / b rounded to a double (bits=53) or a float32 (bits=24)."""
    return round_bits(a[0], b[0], a[1] - b[1], bits)


def quantize_multiplier(x):
    """TFLite's QuantizeMultiplier of the double x = (m, e): (multiplier in Q31, shift)."""
    m, e = x
    if m == 0:
        return 0, 0
    n = bit_length(m)
    shift = e + n  # frexp: x = (m / 2**n) * 2**shift with m / 2**n in [0.5, 1)
    if n <= 31:
        q = m << (31 - n)
    else:
        drop = n - 31
        q = m >> drop
        if (m >> (drop - 1)) & 1:  # TfLiteRound: half away from zero (x > 0)
            q += 1
    if q == 1 << 31:
        q >>= 1
        shift += 1
    if shift < -31:
        return 0, 0
    return q, shift


def round_half_away(x):
    """TfLiteRound of an exact positive or negative (m, e) to an integer."""
    m, e = x
    if e >= 0:
        return m << e
    neg = m < 0
    m = -m if neg else m
    q = m >> -e
    if (m >> (-e - 1)) & 1:
        q += 1
    return -q if neg else q


# -- fixed point (gemmlowp) ------------------------------------------------------------------------------------


def srdhm(a, b):
    """SaturatingRoundingDoublingHighMul of two int32."""
    if a == INT32_MIN and b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    if ab >= 0:
        return (ab + (1 << 30)) >> 31
    return -((-(ab + 1 - (1 << 30))) >> 31)  # C's division truncates toward zero


def rdbpot(x, exponent):
    """RoundingDivideByPOT: x / 2**exponent rounded half away from zero."""
    if exponent == 0:
        return x
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def mbqm(x, multiplier, shift):
    """MultiplyByQuantizedMultiplier (double rounding, TFLM's default build)."""
    if shift > 0:
        return srdhm(x << shift, multiplier)
    return rdbpot(srdhm(x, multiplier), -shift)
