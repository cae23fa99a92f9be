"""Slow loop references for the dense ops, written straight from their definitions.

Each function loops over output elements (or input elements, for the scatter-style transposed
convolution and unpooling) and follows the formula in DESIGN.md / PyTorch's documentation, with
no clever indexing, so that it can be read and trusted. Use tiny shapes only.
"""

import math

import numpy as np


def _pair(v):
    return tuple(v) if isinstance(v, tuple | list) else (v, v)


# ----------------------------------------------------------------------------- convolutions


def conv2d_ref(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """out[n, o, oh, ow] = b[o] + Σ_{c in o's group, i, j} x[n, c, oh·s - p + i·d, ow·s - p + j·d]
    · w[o, c - group start, i, j], with x = 0 outside the image."""
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((N, O, Ho, Wo), dtype=np.float64)
    per_group_out = O // groups
    for n in range(N):
        for o in range(O):
            c0 = (o // per_group_out) * Cg
            for oh in range(Ho):
                for ow in range(Wo):
                    acc = 0.0 if b is None else float(b[o])
                    for c in range(Cg):
                        for i in range(kh):
                            for j in range(kw):
                                ih, iw = oh * sh - ph + i * dh, ow * sw - pw + j * dw
                                if 0 <= ih < H and 0 <= iw < W:
                                    acc += float(x[n, c0 + c, ih, iw]) * float(w[o, c, i, j])
                    out[n, o, oh, ow] = acc
    return out


def conv_transpose2d_ref(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Every input pixel x[n, c, ih, iw] adds x·w[c, o', i, j] at output position
    (ih·s - p + i·d, iw·s - p + j·d) of channel o = group start + o'; positions outside
    [0, Hout) x [0, Wout) are dropped. Hout = (H-1)·s - 2p + d·(k-1) + output_padding + 1."""
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    (oph, opw) = _pair(output_padding)
    N, C, H, W = x.shape
    _, Og, kh, kw = w.shape
    Ho = (H - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    Wo = (W - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    out = np.zeros((N, Og * groups, Ho, Wo), dtype=np.float64)
    per_group_in = C // groups
    for n in range(N):
        for c in range(C):
            o0 = (c // per_group_in) * Og
            for ih in range(H):
                for iw in range(W):
                    for o in range(Og):
                        for i in range(kh):
                            for j in range(kw):
                                oh, ow = ih * sh - ph + i * dh, iw * sw - pw + j * dw
                                if 0 <= oh < Ho and 0 <= ow < Wo:
                                    out[n, o0 + o, oh, ow] += float(x[n, c, ih, iw]) * float(
                                        w[c, o, i, j]
                                    )
    if b is not None:
        out += np.asarray(b, dtype=np.float64)[None, :, None, None]
    return out


# ----------------------------------------------------------------------------- pooling


def pool_size_ref(n, k, s, p, d, ceil_mode):
    """PyTorch's documented formula: floor or ceil of (n + 2p - d(k-1) - 1)/s + 1, and in ceil
    mode the last window must start inside the input or the left padding."""
    exact = (n + 2 * p - d * (k - 1) - 1) / s + 1
    out = math.ceil(exact) if ceil_mode else math.floor(exact)
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def max_pool2d_ref(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """(out, indices): max over each window (padding = -inf), scanned row-major with strict '>',
    so the first maximum wins; index = h·W + w in the input plane."""
    (kh, kw) = _pair(kernel_size)
    (sh, sw) = _pair(kernel_size if stride is None else stride)
    (ph, pw), (dh, dw) = _pair(padding), _pair(dilation)
    N, C, H, W = x.shape
    Ho, Wo = (
        pool_size_ref(H, kh, sh, ph, dh, ceil_mode),
        pool_size_ref(W, kw, sw, pw, dw, ceil_mode),
    )
    out = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    idx = np.zeros((N, C, Ho, Wo), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for oh in range(Ho):
                for ow in range(Wo):
                    best, arg = -np.inf, -1
                    for i in range(kh):
                        for j in range(kw):
                            ih, iw = oh * sh - ph + i * dh, ow * sw - pw + j * dw
                            if 0 <= ih < H and 0 <= iw < W and (x[n, c, ih, iw] > best or arg < 0):
                                best, arg = x[n, c, ih, iw], ih * W + iw
                    out[n, c, oh, ow], idx[n, c, oh, ow] = best, arg
    return out, idx


def avg_pool2d_ref(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Mean of the window's input pixels; the divisor is the window clipped to the padded input
    (count_include_pad) or the number of input pixels in it."""
    (kh, kw) = _pair(kernel_size)
    (sh, sw) = _pair(kernel_size if stride is None else stride)
    (ph, pw) = _pair(padding)
    N, C, H, W = x.shape
    Ho, Wo = pool_size_ref(H, kh, sh, ph, 1, ceil_mode), pool_size_ref(W, kw, sw, pw, 1, ceil_mode)
    out = np.zeros((N, C, Ho, Wo), dtype=np.float64)
    for n in range(N):
        for c in range(C):
            for oh in range(Ho):
                for ow in range(Wo):
                    total, inside, padded = 0.0, 0, 0
                    for i in range(kh):
                        for j in range(kw):
                            ih, iw = oh * sh - ph + i, ow * sw - pw + j
                            if -ph <= ih < H + ph and -pw <= iw < W + pw:
                                padded += 1
                            if 0 <= ih < H and 0 <= iw < W:
                                total += x[n, c, ih, iw]
                                inside += 1
                    out[n, c, oh, ow] = total / (padded if count_include_pad else inside)
    return out


def max_unpool2d_ref(x, indices, out_hw):
    """out[n, c].flat[indices[n, c, h, w]] = x[n, c, h, w], zeros elsewhere."""
    N, C = x.shape[:2]
    out = np.zeros((N, C, *out_hw), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            plane = out[n, c].reshape(-1)
            for h in range(x.shape[2]):
                for w in range(x.shape[3]):
                    plane[indices[n, c, h, w]] = x[n, c, h, w]
    return out


# ----------------------------------------------------------------------------- upsampling


def _out_size_and_scale(n_in, size, factor):
    if size is not None:
        return size, None
    return int(math.floor(n_in * factor)), factor


def nearest_index_ref(dst, n_in, n_out, factor):
    """PyTorch CPU: same size -> identity; exactly double -> dst // 2; else
    min(floor(dst · s), n_in - 1) in float32, s = 1/scale_factor or n_in/n_out."""
    if n_out == n_in:
        return dst
    if n_out == 2 * n_in:
        return dst // 2
    s = np.float32(1.0 / factor) if factor is not None else np.float32(n_in) / np.float32(n_out)
    return min(int(math.floor(np.float32(dst) * s)), n_in - 1)


def linear_taps_ref(dst, n_in, n_out, factor, align_corners):
    """(i0, i1, weight of i1) for one output index, DESIGN.md's bilinear rule."""
    if n_out == n_in:
        return dst, dst, 0.0
    if align_corners:
        src = dst * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    else:
        s = 1.0 / factor if factor is not None else n_in / n_out
        src = max((dst + 0.5) * s - 0.5, 0.0)
    i0 = min(int(math.floor(src)), n_in - 1)
    return i0, min(i0 + 1, n_in - 1), min(max(src - i0, 0.0), 1.0)


def interpolate_ref(x, size=None, scale_factor=None, mode="nearest", align_corners=False):
    N, C, H, W = x.shape
    sizes = _pair(size) if size is not None else (None, None)
    factors = _pair(scale_factor) if scale_factor is not None else (None, None)
    Ho, fh = _out_size_and_scale(H, sizes[0], factors[0])
    Wo, fw = _out_size_and_scale(W, sizes[1], factors[1])
    out = np.zeros((N, C, Ho, Wo), dtype=np.float64)
    for oh in range(Ho):
        for ow in range(Wo):
            if mode == "nearest":
                ih, iw = nearest_index_ref(oh, H, Ho, fh), nearest_index_ref(ow, W, Wo, fw)
                out[:, :, oh, ow] = x[:, :, ih, iw]
            else:
                y0, y1, ly = linear_taps_ref(oh, H, Ho, fh, align_corners)
                x0, x1, lx = linear_taps_ref(ow, W, Wo, fw, align_corners)
                out[:, :, oh, ow] = (
                    (1 - ly) * (1 - lx) * x[:, :, y0, x0]
                    + (1 - ly) * lx * x[:, :, y0, x1]
                    + ly * (1 - lx) * x[:, :, y1, x0]
                    + ly * lx * x[:, :, y1, x1]
                )
    return out


def bed_of_nails_ref(x, factor):
    N, C, H, W = x.shape
    out = np.zeros((N, C, H * factor, W * factor), dtype=x.dtype)
    for i in range(H):
        for j in range(W):
            out[:, :, i * factor, j * factor] = x[:, :, i, j]
    return out
