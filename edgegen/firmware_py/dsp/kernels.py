# DSP inner loops in plain Python (fallback for ports without a native emitter, and CPython); the viper versions
# in kernels_viper.py follow the same contracts. Buffers are int16 arrays read signed.


def _sat16(v):
    return -32768 if v < -32768 else (32767 if v > 32767 else v)


def biquad(buf, state, coef, p):
    """In place, Direct Form I, Q14 coefficients: buf[offset + i*stride] for i < n. p = [n, stride, offset].
    coef = [b0, b1, b2, a1, a2]; state = [x1, x2, y1, y2] (carried between windows)."""
    # One name per line: MicroPython allocates a tuple for multiple assignment of more than three values.
    n = p[0]
    stride = p[1]
    at = p[2]
    b0 = coef[0]
    b1 = coef[1]
    b2 = coef[2]
    a1 = coef[3]
    a2 = coef[4]
    x1 = state[0]
    x2 = state[1]
    y1 = state[2]
    y2 = state[3]
    for _ in range(n):
        x = buf[at]
        acc = b0 * x + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2
        y = _sat16((acc + 8192) >> 14)
        buf[at] = y
        x2 = x1
        x1 = x
        y2 = y1
        y1 = y
        at += stride
    state[0] = x1
    state[1] = x2
    state[2] = y1
    state[3] = y2


def window(src, dst, table, p):
    """dst[i] = src[offset + i*stride] * table[i] (Q15, rounded). p = [n, stride, offset]."""
    n = p[0]
    stride = p[1]
    at = p[2]
    for i in range(n):
        dst[i] = (src[at] * table[i] + 16384) >> 15
        at += stride


def fft(z, tw, p):
    """In-place radix-2 complex FFT of p[0] points stored interleaved (z[2i] real, z[2i+1] imaginary), halving
    every stage: output = DFT / n. p[1] = log2 n. tw: cos(2 pi k / N) for k = 0..N/2, then the sines, Q15; this
    FFT uses every p[2]-th entry and the sines start at p[3]."""
    n = p[0]
    log2n = p[1]
    stride = p[2]
    sines = p[3]
    j = 0
    for i in range(n - 1):  # bit-reversal permutation
        if i < j:
            t = z[2 * i]
            z[2 * i] = z[2 * j]
            z[2 * j] = t
            t = z[2 * i + 1]
            z[2 * i + 1] = z[2 * j + 1]
            z[2 * j + 1] = t
        k = n >> 1
        while k <= j:
            j -= k
            k >>= 1
        j += k
    size = 2
    for _ in range(log2n):
        half = size >> 1
        step = (n // size) * stride
        start = 0
        while start < n:
            t = 0
            for k in range(start, start + half):
                wr = tw[t]
                ws = tw[sines + t]  # exp(-j a) = cos a - j sin a
                m = k + half
                mr = z[2 * m]
                mi = z[2 * m + 1]
                xr = (mr * wr + mi * ws + 16384) >> 15
                xi = (mi * wr - mr * ws + 16384) >> 15
                ar = z[2 * k]
                ai = z[2 * k + 1]
                z[2 * k] = (ar + xr + 1) >> 1
                z[2 * k + 1] = (ai + xi + 1) >> 1
                z[2 * m] = (ar - xr + 1) >> 1
                z[2 * m + 1] = (ai - xi + 1) >> 1
                t += step
            start += size
        size <<= 1


def rfft_split(z, spec, tw, p):
    """From the M-point FFT Z of z[n] = x[2n] + j x[2n+1] (x itself, read as complex) to bins 0..M of the
    N-point real FFT of x, interleaved in spec, halved once more: spec = DFT(x) / N. p = [M, sines offset]."""
    m = p[0]
    sines = p[1]
    for k in range(m + 1):
        a = k if k < m else 0
        b = m - k if k else 0
        zr = z[2 * a]
        zi = z[2 * a + 1]
        cr = z[2 * b]  # conj(Z[M - k])
        ci = -z[2 * b + 1]
        er = zr + cr  # 2 E[k]
        ei = zi + ci
        o_r = zi - ci  # 2 O[k] = -j (Z[k] - conj(Z[M - k]))
        o_i = cr - zr
        c = tw[k]
        s = tw[sines + k]
        wr = (o_r * c + o_i * s + 16384) >> 15  # W^k 2 O[k], W = exp(-j 2 pi / N)
        wi = (o_i * c - o_r * s + 16384) >> 15
        spec[2 * k] = (er + wr + 2) >> 2
        spec[2 * k + 1] = (ei + wi + 2) >> 2
