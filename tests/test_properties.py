"""Property tests for every kernel family (conv, pool, unpool, upsample, RoI, NMS).

hypothesis draws shapes, strides, paddings, dilations, groups, modes and memory layouts
(contiguous, permuted, gapped). Each kernel is checked against the loop references in
``reference_dense.py`` / ``reference_roi.py`` and against invariants that hold whatever the
numbers:

- conv2d with a delta kernel is the (zero-padded, shifted) identity; conv_transpose2d is the
  adjoint of conv2d, ``<conv(x), y> = <x, convT(y)>``, and conv2d's gradients obey the same
  identities;
- max_unpool2d ∘ max_pool2d keeps every maximum at its position and zeros elsewhere;
- nearest upsampling by f then f×f average pooling is the identity, and so is bilinear on a
  constant map; bed-of-nails then the stride-f subsample is the identity;
- RoIAlign / RoIWarp / RoIPool of a constant map are that constant for boxes inside the map;
- NMS keeps no two boxes of one class with IoU above the threshold, and every dropped box has a
  kept, better-ranked box above it.

The CUDA kernels run the same comparisons under the simulator on tiny shapes and few examples.
At the end: determinism — the same inputs give bit-identical CPU results run after run and with
another thread count (in a subprocess), backward passes included.
"""

import hashlib
import json
import os
import subprocess
import sys

import numba
import numpy as np
import pytest
import reference_dense as RD
import reference_roi as RR
import strategies as S
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import minidense
from minidense import gpu
from minidense.kernels import avg_pool as KPA
from minidense.kernels import bed_of_nails as KB
from minidense.kernels import conv as KC
from minidense.kernels import max_pool as KPM
from minidense.kernels import roi_align as KR
from minidense.kernels import roi_pool as KRP
from minidense.kernels import unpool as KPU
from minidense.kernels import upsample as KU
from minidense.ops.boxes import batched_nms, box_iou, nms
from minidense.ops.conv import conv_transpose2d

# MINIDENSE_PROPERTY_SCALE=10 runs ten times as many examples (a deeper, slower search).
SCALE = max(1, int(os.environ.get("MINIDENSE_PROPERTY_SCALE", "1")))
CPU = settings(max_examples=20 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SIM = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
DTYPES = st.sampled_from((np.float32, np.float64))


def arrays(data, shape, dtype=np.float64, **kw):
    return data.draw(S.float_arrays(shape, dtype, **kw))


def on_device(*arrays):
    return [gpu.to_device(a) for a in arrays]


# ----------------------------------------------------------------------------- convolution


@CPU
@given(data=st.data(), g=S.conv_geometries(), dtype=DTYPES, bias=st.booleans())
def test_conv2d_matches_reference(data, g, dtype, bias):
    x, w = arrays(data, g["x"], dtype), arrays(data, g["w"], dtype)
    b = arrays(data, (g["w"][0],), dtype) if bias else None
    args = (g["stride"], g["padding"], g["dilation"], g["groups"])
    out = KC.conv2d_forward(x, w, b, *args)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, RD.conv2d_ref(x, w, b, *args), **TOL[dtype])


@CPU
@given(data=st.data(), g=S.conv_geometries(), dtype=DTYPES)
def test_conv_transpose2d_matches_reference(data, g, dtype):
    s, d = g["stride"], g["dilation"]
    op = tuple(data.draw(st.integers(0, max(s[i], d[i]) - 1)) for i in range(2))
    # Transposed weight: (C_in, C_out/groups, kH, kW).
    x = arrays(data, g["x"], dtype)
    w = arrays(data, (g["x"][1], g["w"][0] // g["groups"], *g["w"][2:]), dtype)
    args = (s, g["padding"], op, g["groups"], d)
    expected_hw = [(g["x"][2 + i] - 1) * s[i] - 2 * g["padding"][i] + d[i] * (g["w"][2 + i] - 1)
                   + op[i] + 1 for i in range(2)]  # fmt: skip
    if min(expected_hw) < 1:  # refused by the op (the kernels trust their callers)
        with pytest.raises(ValueError, match="is empty"):
            conv_transpose2d(minidense.tensor(x), minidense.tensor(w), None, *args)
        return
    out = KC.conv_transpose2d_forward(x, w, None, *args)
    np.testing.assert_allclose(out, RD.conv_transpose2d_ref(x, w, None, *args), **TOL[dtype])


@CPU
@given(data=st.data(), g=S.conv_geometries())
def test_conv_transpose2d_is_the_adjoint_of_conv2d(data, g):
    """<conv(x), y> = <x, convT(y)> with the same weight, stride, padding and dilation; and
    conv2d's backward pass is that adjoint (grad_x = convT(y)) and <grad_w, w> = <conv(x), y>."""
    x, w = arrays(data, g["x"]), arrays(data, g["w"])
    s, p, d, groups = g["stride"], g["padding"], g["dilation"], g["groups"]
    out = KC.conv2d_forward(x, w, None, s, p, d, groups)
    y = arrays(data, out.shape)
    # output_padding recovers x's size exactly: H - ((Ho - 1)·s - 2p + d·(k - 1) + 1) < s
    span = [d[i] * (w.shape[2 + i] - 1) + 1 for i in range(2)]  # the dilated kernel
    op = tuple(
        x.shape[2 + i] - ((out.shape[2 + i] - 1) * s[i] - 2 * p[i] + span[i]) for i in (0, 1)
    )
    back = KC.conv_transpose2d_forward(y, w, None, s, p, op, groups, d)
    assert back.shape == x.shape
    lhs = np.vdot(out, y)
    np.testing.assert_allclose(lhs, np.vdot(x, back), rtol=1e-10, atol=1e-10)
    gx, gw, _ = KC.conv2d_backward(y, x, w, s, p, d, groups, needs=(True, True, False))
    np.testing.assert_allclose(gx, back, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.vdot(gw, w), lhs, rtol=1e-10, atol=1e-10)


@CPU
@given(data=st.data(), g=S.conv_geometries(max_groups=1), dtype=DTYPES)
def test_conv2d_with_a_delta_kernel_is_the_shifted_identity(data, g, dtype):
    """A kernel that is 1 at tap (i, j) of channel c -> c copies x, shifted by the padding and the
    tap: out = pad(x)[oh·s + i·d, ow·s + j·d] — exactly, zeros included."""
    C = g["x"][1]
    kh, kw = g["w"][2:]
    i, j = data.draw(st.integers(0, kh - 1)), data.draw(st.integers(0, kw - 1))
    w = np.zeros((C, C, kh, kw), dtype)
    w[np.arange(C), np.arange(C), i, j] = 1
    x = arrays(data, g["x"], dtype)
    (sh, sw), (ph, pw), (dh, dw) = g["stride"], g["padding"], g["dilation"]
    out = KC.conv2d_forward(x, w, None, (sh, sw), (ph, pw), (dh, dw), 1)
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    Ho, Wo = out.shape[2:]
    want = padded[:, :, i * dh : i * dh + (Ho - 1) * sh + 1 : sh,
                  j * dw : j * dw + (Wo - 1) * sw + 1 : sw]  # fmt: skip
    np.testing.assert_array_equal(out, want)


# ----------------------------------------------------------------------------- pooling


def window_overlaps_input(ref_idx):
    """False when some window holds padding only (possible with dilation, e.g. a 1-pixel-wide
    input, kernel 2, dilation 2, padding 1: taps at -1 and 1). Then the output is -inf and the
    kernels, like PyTorch, name pixel h0·W + w0 (which can lie outside the plane) while the
    reference says -1; that corner is left out here (reported, not settled)."""
    return bool((ref_idx >= 0).all())


@CPU
@given(data=st.data(), g=S.pool_geometries(), dtype=DTYPES)
def test_max_pool2d_matches_reference_and_routes_gradients(data, g, dtype):
    x = arrays(data, g["x"], dtype)
    args = (g["kernel_size"], g["stride"], g["padding"], g["dilation"], g["ceil_mode"])
    want, want_idx = RD.max_pool2d_ref(x, *args)
    assume(window_overlaps_input(want_idx))
    out, idx = KPM.max_pool2d_forward(x, *args)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(idx, want_idx)
    go = arrays(data, out.shape, dtype)
    gx = KPM.max_pool2d_backward(go, idx, x.shape)
    ref = np.zeros(x.shape, np.float64).reshape(*x.shape[:2], -1)
    for n, c in np.ndindex(*x.shape[:2]):
        np.add.at(ref[n, c], idx[n, c].ravel(), go[n, c].ravel())
    np.testing.assert_allclose(gx, ref.reshape(x.shape), **TOL[dtype])


@CPU
@given(data=st.data(), g=S.pool_geometries(dilation=False), dtype=DTYPES,
       count_include_pad=st.booleans())  # fmt: skip
def test_avg_pool2d_matches_reference(data, g, dtype, count_include_pad):
    x = arrays(data, g["x"], dtype)
    args = (g["kernel_size"], g["stride"], g["padding"], g["ceil_mode"], count_include_pad)
    out = KPA.avg_pool2d_forward(x, *args)
    np.testing.assert_allclose(out, RD.avg_pool2d_ref(x, *args), **TOL[dtype])
    # Its backward is its adjoint: <avg(x), y> = <x, avg_backward(y)>.
    y = arrays(data, out.shape, dtype)
    gx = KPA.avg_pool2d_backward(y, x.shape, *args)
    np.testing.assert_allclose(np.vdot(out, y), np.vdot(x, gx), **TOL[dtype])


@CPU
@given(data=st.data(), g=S.pool_geometries(dilation=False, ceil_mode=False), dtype=DTYPES)
def test_max_unpool_of_max_pool_keeps_the_maxima_in_place(data, g, dtype):
    x = arrays(data, g["x"], dtype)
    k, s, p = g["kernel_size"], g["stride"], g["padding"]
    out, idx = KPM.max_pool2d_forward(x, k, s, p, 1, False)
    up = KPU.max_unpool2d_forward(out, idx, k, s, p, x.shape[2:])
    assert up.shape == x.shape
    np.testing.assert_array_equal(up, RD.max_unpool2d_ref(out, idx, x.shape[2:]))
    kept = np.zeros(x.shape, bool).reshape(*x.shape[:2], -1)
    for n, c in np.ndindex(*x.shape[:2]):
        kept[n, c, idx[n, c].ravel()] = True
    kept = kept.reshape(x.shape)
    np.testing.assert_array_equal(up[kept], x[kept])  # every maximum at its position
    assert not up[~kept].any()  # and zeros elsewhere
    # The backward gathers at the indices: <unpool(v), y> = <v, gather(y)> — when no two
    # windows share a maximum (overlapping windows may; unpooling then writes it once, while
    # the gather, as in PyTorch, hands the gradient to each).
    y = arrays(data, up.shape, dtype)
    g_v = KPU.max_unpool2d_backward(y, idx)
    flat = idx.reshape(*idx.shape[:2], -1)
    if all(len(np.unique(flat[n, c])) == flat.shape[2] for n, c in np.ndindex(*flat.shape[:2])):
        np.testing.assert_allclose(np.vdot(up, y), np.vdot(out, g_v), **TOL[dtype])
    np.testing.assert_array_equal(
        g_v, np.take_along_axis(y.reshape(*y.shape[:2], -1), flat, axis=2).reshape(out.shape)
    )


# ----------------------------------------------------------------------------- upsampling


@CPU
@given(data=st.data(), args=S.upsample_arguments(), dtype=DTYPES)
def test_interpolate_matches_reference_and_its_backward_is_the_adjoint(data, args, dtype):
    shape, kw = args
    x = arrays(data, shape, dtype)
    out = KU.interpolate_forward(x, **kw)
    ref = RD.interpolate_ref(x, kw.get("size"), kw.get("scale_factor"), kw["mode"],
                             kw.get("align_corners", False))  # fmt: skip
    np.testing.assert_allclose(out, ref, **TOL[dtype])
    y = arrays(data, out.shape, dtype)
    gx = KU.interpolate_backward(y, x.shape, kw.get("size"), kw.get("scale_factor"), kw["mode"],
                                 kw.get("align_corners"))  # fmt: skip
    np.testing.assert_allclose(np.vdot(out, y), np.vdot(x, gx), **TOL[dtype])


@CPU
@given(data=st.data(), shape=S.shapes(4, 4, max_side=4), f=st.integers(1, 3), dtype=DTYPES,
       by_size=st.booleans())  # fmt: skip
def test_nearest_upsampling_then_average_pooling_is_the_identity(data, shape, f, dtype, by_size):
    x = arrays(data, shape, dtype)
    kw = dict(size=(shape[2] * f, shape[3] * f)) if by_size else dict(scale_factor=f)
    up = KU.interpolate_forward(x, mode="nearest", **kw)
    np.testing.assert_allclose(KPA.avg_pool2d_forward(up, f), x, **TOL[dtype])


@CPU
@given(data=st.data(), args=S.upsample_arguments(), dtype=DTYPES)
def test_upsampling_a_constant_map_then_pooling_gives_the_constant(data, args, dtype):
    shape, kw = args
    c = data.draw(st.floats(-3, 3, width=32))
    x = np.full(shape, c, dtype)
    up = KU.interpolate_forward(x, **kw)
    np.testing.assert_allclose(up, c, **TOL[dtype])
    f = data.draw(st.integers(1, min(up.shape[2:])))
    np.testing.assert_allclose(KPA.avg_pool2d_forward(up, f), c, **TOL[dtype])


@CPU
@given(data=st.data(), shape=S.shapes(4, 4, max_side=4), f=st.integers(1, 4), dtype=DTYPES)
def test_bed_of_nails_then_the_matching_subsample_is_the_identity(data, shape, f, dtype):
    x = arrays(data, shape, dtype)
    up = KB.bed_of_nails_forward(x, f)
    np.testing.assert_array_equal(up, RD.bed_of_nails_ref(x, f))
    np.testing.assert_array_equal(up[:, :, ::f, ::f], x)
    assert np.abs(up).sum() == pytest.approx(np.abs(x).sum(), rel=1e-5)  # zeros between
    # ... and the subsample is also its backward pass
    np.testing.assert_array_equal(KB.bed_of_nails_backward(up, f), x)


# ----------------------------------------------------------------------------- RoI ops


@st.composite
def constant_map_problems(draw):
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    H, W = draw(st.integers(2, 6)), draw(st.integers(2, 6))
    scale = draw(st.sampled_from((1.0, 0.5, 0.25)))
    # At least one cell wide: an aligned box of size 0 with adaptive sampling has no samples
    # and gives 0 (torchvision does the same), which is not what this property is about.
    rois = draw(S.rois_inside(N, H, W, scale, margin=1.0, min_size=1.0))
    size = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return (N, C, H, W), rois, size, scale, draw(st.integers(-1, 3)), draw(st.booleans())


@CPU
@given(problem=constant_map_problems(), dtype=DTYPES, c=st.floats(-3, 3, width=32))
def test_roi_ops_of_a_constant_map_give_the_constant_inside(problem, dtype, c):
    shape, rois, size, scale, sr, aligned = problem
    x = np.full(shape, c, dtype)
    rois = rois.astype(dtype)
    for out in (
        KR.roi_align_forward(x, rois, size, scale, sr, aligned),
        KR.roi_warp_forward(x, rois, size, scale, sr, aligned),
        KRP.roi_pool_forward(x, rois, size, scale)[0],
    ):
        assert out.shape == (len(rois), shape[1], *size) and out.dtype == dtype
        np.testing.assert_allclose(out, c, **TOL[dtype])


@st.composite
def roi_problems(draw, max_side=5):
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    H, W = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    scale = draw(st.sampled_from((0.5, 1.0, 1 / 3)))
    coord = st.floats(-2 / scale, (max(H, W) + 2) / scale, width=32)
    size = st.floats(0, (max(H, W) + 1) / scale, width=32)
    rows = []
    for _ in range(draw(st.integers(0, 3))):
        x1, y1 = draw(coord), draw(coord)
        rows.append([draw(st.integers(0, N - 1)), x1, y1, x1 + draw(size), y1 + draw(size)])
    rois = np.array(rows, dtype=np.float64).reshape(-1, 5)
    out = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    return (N, C, H, W), rois, out, scale, draw(st.integers(-1, 2)), draw(st.booleans())


def _roi_reference(op, x, rois, size, scale, sr, aligned):
    if op == "pool":
        return RR.roi_pool_ref(x, rois, *size, scale)[0]
    return RR.roi_align_ref(x, rois, *size, scale, sr, aligned, quantize=op == "warp")


def _roi_kernel(op, x, rois, size, scale, sr, aligned):
    if isinstance(rois, np.ndarray):
        rois = rois.astype(x.dtype)  # as the ops pass them: the kernels trust their callers
    if op == "pool":
        return KRP.roi_pool_forward(x, rois, size, scale)[0]
    fwd = KR.roi_warp_forward if op == "warp" else KR.roi_align_forward
    return fwd(x, rois, size, scale, sr, aligned)


@settings(max_examples=15 * SCALE, deadline=None)
@given(data=st.data(), problem=roi_problems(), op=st.sampled_from(("align", "warp", "pool")))
def test_roi_ops_match_reference_on_any_layout(data, problem, op):
    shape, rois, size, scale, sr, aligned = problem
    x = arrays(data, shape)
    np.testing.assert_allclose(_roi_kernel(op, x, rois, size, scale, sr, aligned),
                               _roi_reference(op, x, rois, size, scale, sr, aligned),
                               rtol=1e-10, atol=1e-10)  # fmt: skip


# ----------------------------------------------------------------------------- NMS


@CPU
@given(data=st.data(), n=st.integers(0, 12), thr=st.sampled_from((0.0, 0.3, 0.5, 0.9)),
       classes=st.integers(1, 3))  # fmt: skip
def test_nms_invariants(data, n, thr, classes):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    xy = rng.uniform(0, 20, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 10, (n, 2))], 1)
    scores = rng.integers(0, 4, n) / 4.0  # ties on purpose
    cats = rng.integers(0, classes, n)
    keep = batched_nms(boxes, scores, cats, thr)
    assert keep.tolist() == RR.nms_ref(boxes, scores, thr, cats)
    rank = {int(i): r for r, i in enumerate(keep)}
    assert all(
        scores[a] >= scores[b] for a, b in zip(keep[:-1], keep[1:], strict=True)
    )  # by decreasing score
    iou = box_iou(boxes, boxes)
    for a in keep:
        for b in keep:
            assert a == b or cats[a] != cats[b] or not iou[a, b] > thr
    order = sorted(range(n), key=lambda i: (-scores[i], i))
    for i in set(range(n)) - set(rank):  # dropped: a better-ranked kept box of its class covers it
        assert any(cats[j] == cats[i] and iou[i, j] > thr and order.index(j) < order.index(i)
                   for j in rank)  # fmt: skip
    if classes == 1:
        assert nms(boxes, scores, thr).tolist() == keep.tolist()


# ----------------------------------------------------------------------------- CUDA (simulator)


@SIM
@given(data=st.data(), g=S.conv_geometries(max_side=4, max_groups=2))
def test_cuda_conv2d_and_conv_transpose2d_match_reference(fast_simulator, data, g):
    x, w = arrays(data, g["x"]), arrays(data, g["w"])
    args = (g["stride"], g["padding"], g["dilation"], g["groups"])
    out = KC.conv2d_forward(*on_device(x, w), None, *args).copy_to_host()
    np.testing.assert_allclose(out, RD.conv2d_ref(x, w, None, *args), rtol=1e-10, atol=1e-12)
    # The transposed convolution with the same weight, read as (C_in, C_out/groups, kH, kW),
    # maps conv2d's output back towards x's size (when that is not empty).
    s, p, d, groups = args
    sizes = [(out.shape[2 + i] - 1) * s[i] - 2 * p[i] + d[i] * (w.shape[2 + i] - 1) + 1
             for i in (0, 1)]  # fmt: skip
    if min(sizes) >= 1:
        y = arrays(data, out.shape)
        back = KC.conv_transpose2d_forward(*on_device(y, w), None, s, p, 0, groups, d)
        ref = RD.conv_transpose2d_ref(y, w, None, s, p, 0, groups, d)
        np.testing.assert_allclose(back.copy_to_host(), ref, rtol=1e-10, atol=1e-12)


@SIM
@given(data=st.data(), g=S.pool_geometries(max_side=4))
def test_cuda_pooling_matches_reference(fast_simulator, data, g):
    x = arrays(data, g["x"])
    args = (g["kernel_size"], g["stride"], g["padding"], g["dilation"], g["ceil_mode"])
    (xd,) = on_device(x)
    want, want_idx = RD.max_pool2d_ref(x, *args)
    assume(window_overlaps_input(want_idx))
    out, idx = KPM.max_pool2d_forward(xd, *args)
    np.testing.assert_array_equal(out.copy_to_host(), want)
    np.testing.assert_array_equal(idx.copy_to_host(), want_idx)
    avg = (g["kernel_size"], g["stride"], g["padding"], g["ceil_mode"], True)
    if g["dilation"] == (1, 1):
        np.testing.assert_allclose(KPA.avg_pool2d_forward(xd, *avg).copy_to_host(),
                                   RD.avg_pool2d_ref(x, *avg), rtol=1e-12)  # fmt: skip
    if g["dilation"] == (1, 1) and not g["ceil_mode"]:  # then x's size is a valid unpool size
        k, s, p = g["kernel_size"], g["stride"], g["padding"]
        up = KPU.max_unpool2d_forward(out, idx, k, s, p, x.shape[2:]).copy_to_host()
        np.testing.assert_array_equal(up, RD.max_unpool2d_ref(want, want_idx, x.shape[2:]))


@SIM
@given(data=st.data(), args=S.upsample_arguments(max_side=3), f=st.integers(1, 3))
def test_cuda_upsampling_matches_reference(fast_simulator, data, args, f):
    shape, kw = args
    x = arrays(data, shape)
    (xd,) = on_device(x)
    ref = RD.interpolate_ref(x, kw.get("size"), kw.get("scale_factor"), kw["mode"],
                             kw.get("align_corners", False))  # fmt: skip
    np.testing.assert_allclose(KU.interpolate_forward(xd, **kw).copy_to_host(), ref,
                               rtol=1e-10, atol=1e-12)  # fmt: skip
    nails = KB.bed_of_nails_forward(xd, f)
    np.testing.assert_array_equal(nails.copy_to_host(), RD.bed_of_nails_ref(x, f))
    np.testing.assert_array_equal(KB.bed_of_nails_backward(nails, f).copy_to_host(), x)


@SIM
@given(data=st.data(), problem=roi_problems(max_side=4),
       op=st.sampled_from(("align", "warp", "pool")))  # fmt: skip
def test_cuda_roi_ops_match_reference(fast_simulator, data, problem, op):
    shape, rois, size, scale, sr, aligned = problem
    x = arrays(data, shape, layout="contiguous")
    out = _roi_kernel(op, *on_device(x, rois), size, scale, sr, aligned).copy_to_host()
    np.testing.assert_allclose(out, _roi_reference(op, x, rois, size, scale, sr, aligned),
                               rtol=1e-10, atol=1e-10)  # fmt: skip


# ----------------------------------------------------------------------------- determinism


def fingerprints():
    """SHA-256 of every CPU forward and backward output on fixed, larger-than-tiny inputs (so
    the parallel loops split the work), by name. Overlapping pooling windows, many overlapping
    RoIs and a non-integer upsampling factor make any race or summation-order change show."""
    rng = np.random.default_rng(1234)
    x = rng.standard_normal((3, 16, 13, 11)).astype(np.float32)
    w = rng.standard_normal((12, 8, 3, 3)).astype(np.float32)
    out = {}
    y = KC.conv2d_forward(x, w, None, 1, 1, 1, 2)
    out["conv2d"] = y
    out["conv2d_backward"] = KC.conv2d_backward(rng.standard_normal(y.shape).astype(np.float32),
                                                x, w, 1, 1, 1, 2)  # fmt: skip
    y, idx = KPM.max_pool2d_forward(x, 3, 1, 1)
    out["max_pool2d"] = (y, idx)
    out["max_pool2d_backward"] = KPM.max_pool2d_backward(np.ones_like(y) + y, idx, x.shape)
    y = KPA.avg_pool2d_forward(x, 3, 2, 1)
    out["avg_pool2d_backward"] = KPA.avg_pool2d_backward(y * 3, x.shape, 3, 2, 1)
    for mode in ("bilinear", "nearest"):
        y = KU.interpolate_forward(x, scale_factor=2.5, mode=mode)
        out[f"{mode}"] = y
        out[f"{mode}_backward"] = KU.interpolate_backward(y * y, x.shape, None, 2.5, mode, None)
    xy = rng.uniform(0, 9, (64, 2))
    rois = np.concatenate([rng.integers(0, 3, (64, 1)), xy, xy + rng.uniform(1, 6, (64, 2))], 1)
    rois = rois.astype(np.float32)
    g = rng.standard_normal((64, 16, 3, 3)).astype(np.float32)
    out["roi_align"] = KR.roi_align_forward(x, rois, (3, 3), 1.0, 2, True)
    out["roi_align_backward"] = KR.roi_align_backward(g, rois, x.shape, 1.0, 2, True)
    out["roi_warp_backward"] = KR.roi_warp_backward(g, rois, x.shape, 1.0, -1, False)
    y, arg = KRP.roi_pool_forward(x, rois, (3, 3), 1.0)
    out["roi_pool_backward"] = KRP.roi_pool_backward(g, arg, rois, x.shape)

    def digest(v):
        parts = v if isinstance(v, tuple) else (v,)
        h = hashlib.sha256()
        for p in parts:
            if p is not None:
                h.update(np.ascontiguousarray(p).tobytes())
        return h.hexdigest()

    return {k: digest(v) for k, v in out.items()}


def test_cpu_results_are_bit_identical_run_after_run_and_across_thread_counts():
    first, again = fingerprints(), fingerprints()
    assert first == again
    # Another process with another number of Numba threads must give the same bits.
    threads = 1 if numba.config.NUMBA_NUM_THREADS > 1 else 2
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), NUMBA_ENABLE_CUDASIM="1")
    code = "import json, test_properties as t; print(json.dumps(t.fingerprints()))"
    r = subprocess.run([sys.executable, "-c", code], cwd=os.path.dirname(__file__), env=env,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    other = json.loads(r.stdout.strip().splitlines()[-1])
    differ = sorted(k for k in first if first[k] != other[k])
    n = numba.config.NUMBA_NUM_THREADS
    assert not differ, f"{differ} differ between {n} and {threads} Numba threads"
