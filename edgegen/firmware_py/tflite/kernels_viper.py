# The interpreter's inner loops compiled to machine code by MicroPython's viper emitter; same contracts as
# edgegen/firmware_py/tflite/kernels.py (see there). Imported only on ports with a native emitter.
#
# Viper reads bytes unsigned, so int8 values are sign-extended by hand; every packed parameter is non-negative
# (signed offsets carry +256), which keeps 32-bit reads through ptr32 correct on 32- and 64-bit ports alike.
# Four arguments at most: the limit of the native calling convention on some architectures.
import micropython


@micropython.viper
def fc_acc(x: ptr8, w: ptr8, acc: ptr32, p: ptr32):
    batches = int(p[0])
    depth = int(p[1])
    n_out = int(p[2])
    x_off = int(p[3]) - 256
    w_off = int(p[4]) - 256
    b = 0
    while b < batches:
        xb = b * depth
        o = 0
        while o < n_out:
            wo = o * depth
            s = 0
            i = 0
            while i < depth:
                xv = int(x[xb + i])
                if xv > 127:
                    xv -= 256
                wv = int(w[wo + i])
                if wv > 127:
                    wv -= 256
                s += (xv + x_off) * (wv + w_off)
                i += 1
            acc[b * n_out + o] = s
            o += 1
        b += 1


@micropython.viper
def conv_acc(x: ptr8, w: ptr8, acc: ptr32, p: ptr32):
    batches = int(p[0])
    in_h = int(p[1])
    in_w = int(p[2])
    in_c = int(p[3])
    out_h = int(p[4])
    out_w = int(p[5])
    out_c = int(p[6])
    k_h = int(p[7])
    k_w = int(p[8])
    s_h = int(p[9])
    s_w = int(p[10])
    d_h = int(p[11])
    d_w = int(p[12])
    pad_h = int(p[13])
    pad_w = int(p[14])
    x_off = int(p[15]) - 256
    n = 0
    b = 0
    while b < batches:
        oy = 0
        while oy < out_h:
            y0 = oy * s_h - pad_h
            ox = 0
            while ox < out_w:
                x0 = ox * s_w - pad_w
                oc = 0
                while oc < out_c:
                    s = 0
                    ky = 0
                    while ky < k_h:
                        iy = y0 + ky * d_h
                        if iy >= 0 and iy < in_h:
                            kx = 0
                            while kx < k_w:
                                ix = x0 + kx * d_w
                                if ix >= 0 and ix < in_w:
                                    xi = ((b * in_h + iy) * in_w + ix) * in_c
                                    wi = ((oc * k_h + ky) * k_w + kx) * in_c
                                    ic = 0
                                    while ic < in_c:
                                        xv = int(x[xi + ic])
                                        if xv > 127:
                                            xv -= 256
                                        wv = int(w[wi + ic])
                                        if wv > 127:
                                            wv -= 256
                                        s += (xv + x_off) * wv
                                        ic += 1
                                kx += 1
                        ky += 1
                    acc[n] = s
                    n += 1
                    oc += 1
                ox += 1
            oy += 1
        b += 1


@micropython.viper
def dw_acc(x: ptr8, w: ptr8, acc: ptr32, p: ptr32):
    batches = int(p[0])
    in_h = int(p[1])
    in_w = int(p[2])
    in_c = int(p[3])
    out_h = int(p[4])
    out_w = int(p[5])
    out_c = int(p[6])
    k_h = int(p[7])
    k_w = int(p[8])
    s_h = int(p[9])
    s_w = int(p[10])
    d_h = int(p[11])
    d_w = int(p[12])
    pad_h = int(p[13])
    pad_w = int(p[14])
    x_off = int(p[15]) - 256
    mult = int(p[16])
    n = 0
    b = 0
    while b < batches:
        oy = 0
        while oy < out_h:
            y0 = oy * s_h - pad_h
            ox = 0
            while ox < out_w:
                x0 = ox * s_w - pad_w
                oc = 0
                while oc < out_c:
                    ic = oc // mult
                    s = 0
                    ky = 0
                    while ky < k_h:
                        iy = y0 + ky * d_h
                        if iy >= 0 and iy < in_h:
                            kx = 0
                            while kx < k_w:
                                ix = x0 + kx * d_w
                                if ix >= 0 and ix < in_w:
                                    xv = int(x[((b * in_h + iy) * in_w + ix) * in_c + ic])
                                    if xv > 127:
                                        xv -= 256
                                    wv = int(w[(ky * k_w + kx) * out_c + oc])
                                    if wv > 127:
                                        wv -= 256
                                    s += (xv + x_off) * wv
                                kx += 1
                        ky += 1
                    acc[n] = s
                    n += 1
                    oc += 1
                ox += 1
            oy += 1
        b += 1


@micropython.viper
def pool(x: ptr8, out: ptr8, p: ptr32):
    batches = int(p[0])
    in_h = int(p[1])
    in_w = int(p[2])
    ch = int(p[3])
    out_h = int(p[4])
    out_w = int(p[5])
    k_h = int(p[6])
    k_w = int(p[7])
    s_h = int(p[8])
    s_w = int(p[9])
    pad_h = int(p[10])
    pad_w = int(p[11])
    lo = int(p[12]) - 256
    hi = int(p[13]) - 256
    average = int(p[14])
    n = 0
    b = 0
    while b < batches:
        oy = 0
        while oy < out_h:
            y0 = oy * s_h - pad_h
            ox = 0
            while ox < out_w:
                x0 = ox * s_w - pad_w
                c = 0
                while c < ch:
                    best = -129
                    total = 0
                    count = 0
                    ky = 0
                    while ky < k_h:
                        iy = y0 + ky
                        if iy >= 0 and iy < in_h:
                            kx = 0
                            while kx < k_w:
                                ix = x0 + kx
                                if ix >= 0 and ix < in_w:
                                    v = int(x[((b * in_h + iy) * in_w + ix) * ch + c])
                                    if v > 127:
                                        v -= 256
                                    total += v
                                    count += 1
                                    if v > best:
                                        best = v
                                kx += 1
                        ky += 1
                    if average:
                        half = count >> 1
                        if total > 0:
                            v = (total + half) // count
                        else:
                            v = 0 - ((half - total) // count)
                    else:
                        v = best
                    if v < lo:
                        v = lo
                    if v > hi:
                        v = hi
                    out[n] = v & 0xFF
                    n += 1
                    c += 1
                ox += 1
            oy += 1
        b += 1


@micropython.viper
def lut(x: ptr8, out: ptr8, table: ptr8, n: int):
    i = 0
    while i < n:
        out[i] = table[x[i]]
        i += 1
