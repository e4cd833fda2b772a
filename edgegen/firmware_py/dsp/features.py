# Time-domain features of one channel of an int16 window, into a caller-owned array("i"):
#   [0] mean, [1] RMS about the mean, [2] peak |x - mean|, [3] crest factor in Q8, [4] kurtosis in Q8
# (3.0 = 768 for a Gaussian). Integer arithmetic, three passes. Kurtosis is scale-free, so its sums run on the
# deviations scaled to 12 bits: every intermediate stays below 2**62 for windows up to 4,096 samples, and on
# 64-bit ports nothing is allocated. On 32-bit ports the sums exceed small ints: a few long ints per window.
MEAN = 0
RMS = 1
PEAK = 2
CREST_Q8 = 3
KURTOSIS_Q8 = 4
N_FEATURES = 5


def isqrt(n):
    """floor(sqrt(n)) for n >= 0 (Newton's method on integers)."""
    if n < 2:
        return n
    x = n
    y = (x + 1) >> 1
    while y < x:
        x = y
        y = (x + n // x) >> 1
    return x


def features(buf, n, out, stride=1, offset=0):
    total = 0
    at = offset
    for _ in range(n):
        total += buf[at]
        at += stride
    mean = total // n if total >= 0 else -((-total) // n)
    s2 = 0
    peak = 0
    at = offset
    for _ in range(n):
        d = buf[at] - mean
        s2 += d * d
        if d < 0:
            d = -d
        if d > peak:
            peak = d
        at += stride
    rms = isqrt(s2 // n)
    out[MEAN] = mean
    out[RMS] = rms
    out[PEAK] = peak
    out[CREST_Q8] = (peak << 8) // rms if rms else 0
    shift = 0
    while (peak >> shift) > 4095:
        shift += 1
    half = (1 << shift) >> 1
    t2 = 0
    t4 = 0
    at = offset
    for _ in range(n):
        d = (buf[at] - mean + half) >> shift
        d2 = d * d
        t2 += d2
        t4 += d2 * d2
        at += stride
    out[KURTOSIS_Q8] = ((n * t4 // t2) << 8) // t2 if t2 else 0
