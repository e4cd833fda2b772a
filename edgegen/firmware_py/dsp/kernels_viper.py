# DSP inner loops compiled by the viper emitter; same contracts as kernels.py. int16 loads are unsigned in viper
# and are sign-extended by hand; coefficient and parameter arrays are int16 / non-negative int32.
import micropython


@micropython.viper
def biquad(buf: ptr16, state: ptr16, coef: ptr16, p: ptr32):
    n = int(p[0])
    stride = int(p[1])
    at = int(p[2])
    b0 = int(coef[0])
    if b0 > 32767:
        b0 -= 65536
    b1 = int(coef[1])
    if b1 > 32767:
        b1 -= 65536
    b2 = int(coef[2])
    if b2 > 32767:
        b2 -= 65536
    a1 = int(coef[3])
    if a1 > 32767:
        a1 -= 65536
    a2 = int(coef[4])
    if a2 > 32767:
        a2 -= 65536
    x1 = int(state[0])
    if x1 > 32767:
        x1 -= 65536
    x2 = int(state[1])
    if x2 > 32767:
        x2 -= 65536
    y1 = int(state[2])
    if y1 > 32767:
        y1 -= 65536
    y2 = int(state[3])
    if y2 > 32767:
        y2 -= 65536
    i = 0
    while i < n:
        x = int(buf[at])
        if x > 32767:
            x -= 65536
        acc = b0 * x + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2
        y = (acc + 8192) >> 14
        if y > 32767:
            y = 32767
        if y < -32768:
            y = -32768
        buf[at] = y
        x2 = x1
        x1 = x
        y2 = y1
        y1 = y
        at += stride
        i += 1
    state[0] = x1
    state[1] = x2
    state[2] = y1
    state[3] = y2


@micropython.viper
def window(src: ptr16, dst: ptr16, table: ptr16, p: ptr32):
    n = int(p[0])
    stride = int(p[1])
    at = int(p[2])
    i = 0
    while i < n:
        v = int(src[at])
        if v > 32767:
            v -= 65536
        w = int(table[i])
        if w > 32767:
            w -= 65536
        dst[i] = (v * w + 16384) >> 15
        at += stride
        i += 1


@micropython.viper
def fft(z: ptr16, tw: ptr16, p: ptr32):
    n = int(p[0])
    log2n = int(p[1])
    stride = int(p[2])
    sines = int(p[3])
    j = 0
    i = 0
    while i < n - 1:
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
        i += 1
    size = 2
    stage = 0
    while stage < log2n:
        half = size >> 1
        step = (n // size) * stride
        start = 0
        while start < n:
            t = 0
            k = start
            while k < start + half:
                wr = int(tw[t])
                if wr > 32767:
                    wr -= 65536
                ws = int(tw[sines + t])
                if ws > 32767:
                    ws -= 65536
                m = k + half
                mr = int(z[2 * m])
                if mr > 32767:
                    mr -= 65536
                mi = int(z[2 * m + 1])
                if mi > 32767:
                    mi -= 65536
                xr = (mr * wr + mi * ws + 16384) >> 15
                xi = (mi * wr - mr * ws + 16384) >> 15
                ar = int(z[2 * k])
                if ar > 32767:
                    ar -= 65536
                ai = int(z[2 * k + 1])
                if ai > 32767:
                    ai -= 65536
                z[2 * k] = (ar + xr + 1) >> 1
                z[2 * k + 1] = (ai + xi + 1) >> 1
                z[2 * m] = (ar - xr + 1) >> 1
                z[2 * m + 1] = (ai - xi + 1) >> 1
                t += step
                k += 1
            start += size
        size <<= 1
        stage += 1


@micropython.viper
def rfft_split(z: ptr16, spec: ptr16, tw: ptr16, p: ptr32):
    m = int(p[0])
    sines = int(p[1])
    k = 0
    while k <= m:
        a = k
        if k == m:
            a = 0
        b = m - k
        if k == 0:
            b = 0
        zr = int(z[2 * a])
        if zr > 32767:
            zr -= 65536
        zi = int(z[2 * a + 1])
        if zi > 32767:
            zi -= 65536
        cr = int(z[2 * b])
        if cr > 32767:
            cr -= 65536
        ci = int(z[2 * b + 1])
        if ci > 32767:
            ci -= 65536
        ci = 0 - ci
        er = zr + cr
        ei = zi + ci
        o_r = zi - ci
        o_i = cr - zr
        c = int(tw[k])
        if c > 32767:
            c -= 65536
        s = int(tw[sines + k])
        if s > 32767:
            s -= 65536
        wr = (o_r * c + o_i * s + 16384) >> 15
        wi = (o_i * c - o_r * s + 16384) >> 15
        spec[2 * k] = (er + wr + 2) >> 2
        spec[2 * k + 1] = (ei + wi + 2) >> 2
        k += 1
