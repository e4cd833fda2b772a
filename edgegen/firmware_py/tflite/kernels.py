# The interpreter's inner loops in plain Python: the fallback for ports without a native emitter, and what
# CPython runs. edgegen/firmware_py/tflite/kernels_viper.py holds the same loops compiled by the viper emitter.
#
# Conventions shared with the viper versions: buffers are byte buffers read as signed int8; accumulators are an
# array('i'); parameters come packed in an array('i') ``p`` (see the P_* indexes in ops.py), with signed offsets
# stored plus 256 so that every packed value is non-negative.


def fc_acc(x, w, acc, p):
    """acc[b * n_out + o] = sum_i (x[b, i] + x_off) * (w[o, i] + w_off)."""
    batches = p[0]
    depth = p[1]
    n_out = p[2]
    x_off = p[3] - 256
    w_off = p[4] - 256
    for b in range(batches):
        xb = b * depth
        for o in range(n_out):
            wo = o * depth
            s = 0
            for i in range(depth):
                xv = x[xb + i]
                wv = w[wo + i]
                s += ((xv - 256 if xv > 127 else xv) + x_off) * ((wv - 256 if wv > 127 else wv) + w_off)
            acc[b * n_out + o] = s


def conv_acc(x, w, acc, p):
    """2-D convolution sums, NHWC input, OHWI filter; padded cells contribute nothing."""
    batches, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, s_h, s_w, d_h, d_w, pad_h, pad_w, x_off = p[:16]
    x_off -= 256  # (unpacking a slice allocates: the fallback is allowed to, the viper kernels are not)
    n = 0
    for b in range(batches):
        for oy in range(out_h):
            y0 = oy * s_h - pad_h
            for ox in range(out_w):
                x0 = ox * s_w - pad_w
                for oc in range(out_c):
                    s = 0
                    for ky in range(k_h):
                        iy = y0 + ky * d_h
                        if iy < 0 or iy >= in_h:
                            continue
                        for kx in range(k_w):
                            ix = x0 + kx * d_w
                            if ix < 0 or ix >= in_w:
                                continue
                            xi = ((b * in_h + iy) * in_w + ix) * in_c
                            wi = ((oc * k_h + ky) * k_w + kx) * in_c
                            for ic in range(in_c):
                                xv = x[xi + ic]
                                wv = w[wi + ic]
                                s += ((xv - 256 if xv > 127 else xv) + x_off) * (wv - 256 if wv > 127 else wv)
                    acc[n] = s
                    n += 1


def dw_acc(x, w, acc, p):
    """Depthwise convolution sums: output channel ic * mult + m sees input channel ic; filter 1HW(C*mult)."""
    batches, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, s_h, s_w, d_h, d_w, pad_h, pad_w, x_off, mult = p[
        :17
    ]
    x_off -= 256
    n = 0
    for b in range(batches):
        for oy in range(out_h):
            y0 = oy * s_h - pad_h
            for ox in range(out_w):
                x0 = ox * s_w - pad_w
                for oc in range(out_c):
                    ic = oc // mult
                    s = 0
                    for ky in range(k_h):
                        iy = y0 + ky * d_h
                        if iy < 0 or iy >= in_h:
                            continue
                        for kx in range(k_w):
                            ix = x0 + kx * d_w
                            if ix < 0 or ix >= in_w:
                                continue
                            xv = x[((b * in_h + iy) * in_w + ix) * in_c + ic]
                            wv = w[(ky * k_w + kx) * out_c + oc]
                            s += ((xv - 256 if xv > 127 else xv) + x_off) * (wv - 256 if wv > 127 else wv)
                    acc[n] = s
                    n += 1


def pool(x, out, p):
    """Max or average pooling (p[14]: 1 = average), written straight to int8 with the activation clamp."""
    batches, in_h, in_w, ch, out_h, out_w, k_h, k_w, s_h, s_w, pad_h, pad_w, lo, hi, average = p[:15]
    lo -= 256
    hi -= 256
    n = 0
    for b in range(batches):
        for oy in range(out_h):
            y0 = oy * s_h - pad_h
            for ox in range(out_w):
                x0 = ox * s_w - pad_w
                for c in range(ch):
                    best = -129
                    total = 0
                    count = 0
                    for ky in range(k_h):
                        iy = y0 + ky
                        if iy < 0 or iy >= in_h:
                            continue
                        for kx in range(k_w):
                            ix = x0 + kx
                            if ix < 0 or ix >= in_w:
                                continue
                            v = x[((b * in_h + iy) * in_w + ix) * ch + c]
                            v = v - 256 if v > 127 else v
                            total += v
                            count += 1
                            if v > best:
                                best = v
                    if average:
                        half = count >> 1
                        v = (total + half) // count if total > 0 else -((half - total) // count)
                    else:
                        v = best
                    v = lo if v < lo else (hi if v > hi else v)
                    out[n] = v & 0xFF
                    n += 1


def lut(x, out, table, n):
    """out[i] = table[x[i]]: every int8 -> int8 function (activations, requantize) as a 256-byte table."""
    for i in range(n):
        out[i] = table[x[i]]
