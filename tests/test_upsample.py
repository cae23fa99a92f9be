"""interpolate, bed_of_nails, bilinear_kernel: references, known answers, gradchecks, CUDA."""

import os

import numba
import numpy as np
import pytest

import minidense
from minidense import gpu
from minidense.kernels import bed_of_nails as KB
from minidense.kernels import upsample as K
from minidense.ops.conv import conv2d, conv_transpose2d
from minidense.ops.upsample import bed_of_nails, bilinear_kernel, interpolate
from minidense.tensor import Tensor
from tests.reference_dense import bed_of_nails_ref, interpolate_ref
from tests.test_conv import layout

REAL_GPU = os.environ.get("MINIDENSE_TEST_GPU") == "1"


# (H, W, size, scale_factor, mode, align_corners)
INTERP_CASES = [
    (5, 4, None, 1.5, "nearest", None),
    (5, 4, (7, 6), None, "nearest", None),
    (5, 5, None, 2.1, "nearest", None),  # 5 -> 10: PyTorch's exact-doubling shortcut
    (5, 5, None, 1.1, "nearest", None),  # 5 -> 5: copied, not floor(dst / 1.1)
    (3, 7, (2, 5), None, "nearest", None),  # downsampling
    (3, 7, None, (2.5, 0.4), "nearest", None),
    (13, 11, (29, 3), None, "nearest", None),
    (4, 4, (1, 1), None, "nearest", None),
    (1, 1, (3, 2), None, "nearest", None),
    (5, 4, None, 1.5, "bilinear", False),
    (5, 4, (7, 6), None, "bilinear", False),
    (5, 4, (7, 6), None, "bilinear", True),
    (5, 4, None, 2, "bilinear", True),
    (5, 4, None, 2, "bilinear", None),  # None means False
    (1, 1, (3, 1), None, "bilinear", True),  # 1x1 input
    (4, 6, (1, 1), None, "bilinear", True),  # output size 1: src = 0
    (4, 6, (1, 1), None, "bilinear", False),
    (5, 5, None, 1.1, "bilinear", False),
    (3, 7, None, (0.5, 0.34), "bilinear", False),
    (3, 7, (2, 9), None, "bilinear", True),
]


@pytest.mark.parametrize("case", INTERP_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["contiguous", "permuted", "strided"])
def test_interpolate_matches_reference(case, dtype, kind):
    H, W, size, sf, mode, ac = case
    x = np.random.default_rng(0).standard_normal((2, 3, H, W)).astype(dtype)
    out = interpolate(Tensor(layout(x, kind)), size, sf, mode, ac)
    ref = interpolate_ref(x, size, sf, mode, bool(ac))
    assert out.shape == ref.shape and out.dtype == dtype
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(out.data, ref, rtol=tol, atol=tol)


def test_size_and_scale_factor_differ_for_non_integer_ratios():
    """5 * 1.5 = 7.5 -> 7 rows either way, but s = 1/1.5 with the factor and 5/7 with the size."""
    x = Tensor(np.random.default_rng(1).standard_normal((1, 1, 5, 5)))
    by_factor = interpolate(x, scale_factor=1.5, mode="bilinear")
    by_size = interpolate(x, size=(7, 7), mode="bilinear")
    assert by_factor.shape == by_size.shape == (1, 1, 7, 7)
    assert not np.allclose(by_factor.data, by_size.data)
    np.testing.assert_allclose(by_factor.data, interpolate_ref(x.data, None, 1.5, "bilinear"))
    np.testing.assert_allclose(by_size.data, interpolate_ref(x.data, (7, 7), None, "bilinear"))
    # an integer ratio gives the same grid both ways
    np.testing.assert_allclose(
        interpolate(x, scale_factor=2, mode="bilinear").data,
        interpolate(x, size=10, mode="bilinear").data,
    )


def test_align_corners_known_values():
    x = Tensor(np.array([[[[0.0, 1.0, 2.0]]]]))  # 1 x 3
    up = lambda ac: interpolate(x, size=(1, 5), mode="bilinear", align_corners=ac).data  # noqa: E731
    np.testing.assert_allclose(up(True)[0, 0, 0], [0, 0.5, 1, 1.5, 2])  # corners line up
    # src = (dst + 0.5)·3/5 - 0.5 = -0.2 (clamped to 0), 0.4, 1, 1.6, 2.2 (clamped to the edge)
    np.testing.assert_allclose(up(False)[0, 0, 0], [0, 0.4, 1, 1.6, 2])


def test_nearest_known_values():
    x = Tensor(np.arange(3.0).reshape(1, 1, 1, 3))
    np.testing.assert_array_equal(interpolate(x, size=(1, 7)).data[0, 0, 0], [0, 0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(interpolate(x, size=(1, 2)).data[0, 0, 0], [0, 1])


def test_bed_of_nails_matches_reference():
    x = np.random.default_rng(2).standard_normal((2, 3, 3, 4)).astype(np.float32)
    for f in (1, 2, 3):
        out = bed_of_nails(Tensor(layout(x, "permuted")), f)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out.data, bed_of_nails_ref(x, f))


def tent_filter(channels):
    k = np.array([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])
    return np.repeat(k[None, None], channels, axis=0)  # (C, 1, 3, 3), depthwise


def test_bed_of_nails_then_tent_filter_is_bilinear_with_aligned_corners():
    """Known answer (a). Zero insertion puts x[i] at 2i; the 3x3 tent filter then fills every
    hole with the mean of its two (or four) nail neighbours. So output row 2i + t samples the
    input at i + t/2 = dst / 2 = dst·(H-1)/(2H-2): bilinear with align_corners=True onto
    (2H-1) x (2W-1), exactly and borders included. The 2H x 2W output has one more row and
    column, which see only one nail: half the last interpolated row / column."""
    H, W, C = 4, 5, 2
    x = np.random.default_rng(3).standard_normal((1, C, H, W))
    y = conv2d(bed_of_nails(Tensor(x), 2), Tensor(tent_filter(C)), padding=1, groups=C).data
    aligned = interpolate(Tensor(x), size=(2 * H - 1, 2 * W - 1), mode="bilinear",
                          align_corners=True).data  # fmt: skip
    assert y.shape == (1, C, 2 * H, 2 * W)
    np.testing.assert_allclose(y[..., :-1, :-1], aligned, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y[..., -1, :-1], 0.5 * aligned[..., -1, :], rtol=1e-12)
    np.testing.assert_allclose(y[..., :-1, -1], 0.5 * aligned[..., :, -1], rtol=1e-12)
    np.testing.assert_allclose(y[..., -1, -1], 0.25 * x[..., -1, -1], rtol=1e-12)
    # It is neither of the 2x conventions (they sample at dst/2 - 1/4 or dst·(H-1)/(2H-1)):
    for ac in (False, True):
        two_x = interpolate(Tensor(x), scale_factor=2, mode="bilinear", align_corners=ac).data
        assert not np.allclose(y[..., 1:-1, 1:-1], two_x[..., 1:-1, 1:-1])


def test_transposed_conv_with_bilinear_kernel_is_bilinear_inside():
    """Known answer (b). Kernel 4, stride 2, padding 1 with FCN's filter [1/4, 3/4, 3/4, 1/4]
    gives out[2m] = 3/4·x[m] + 1/4·x[m-1], out[2m+1] = 3/4·x[m] + 1/4·x[m+1]: bilinear 2x with
    align_corners=False. At the border the missing neighbour counts as 0 where interpolate
    clamps, so the first and last rows and columns are 3/4 (corners 9/16) of interpolate's."""
    C = 3
    x = np.random.default_rng(4).standard_normal((2, C, 5, 6)) + 2.0
    y = conv_transpose2d(Tensor(x), Tensor(bilinear_kernel(C, dtype=np.float64)), stride=2,
                         padding=1).data  # fmt: skip
    ref = interpolate(Tensor(x), scale_factor=2, mode="bilinear", align_corners=False).data
    assert y.shape == ref.shape == (2, C, 10, 12)
    np.testing.assert_allclose(y[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], rtol=1e-12, atol=1e-12)
    for edge in (np.s_[..., 0, :], np.s_[..., -1, :], np.s_[..., :, 0], np.s_[..., :, -1]):
        assert not np.isclose(y[edge], ref[edge]).any()  # every border pixel differs
    np.testing.assert_allclose(y[..., 0, 1:-1], 0.75 * ref[..., 0, 1:-1], rtol=1e-12)
    np.testing.assert_allclose(y[..., 1:-1, -1], 0.75 * ref[..., 1:-1, -1], rtol=1e-12)
    np.testing.assert_allclose(y[..., 0, 0], 0.5625 * ref[..., 0, 0], rtol=1e-12)


def test_bilinear_kernel_values():
    w = bilinear_kernel(2, 3, kernel_size=4)
    assert w.shape == (2, 3, 4, 4) and w.dtype == np.float32
    tent = np.array([0.25, 0.75, 0.75, 0.25])
    np.testing.assert_allclose(w[0, 0], np.outer(tent, tent))
    np.testing.assert_allclose(w[1, 1], np.outer(tent, tent))
    off_diagonal = [w[i, o] for i in range(2) for o in range(3) if i != o]
    assert all((m == 0).all() for m in off_diagonal)
    odd = bilinear_kernel(1, kernel_size=3, dtype=np.float64)[0, 0]
    np.testing.assert_allclose(odd, np.outer([0.5, 1, 0.5], [0.5, 1, 0.5]))


@pytest.mark.parametrize(
    "size, sf, mode, ac",
    [
        ((5, 7), None, "bilinear", False),
        ((5, 7), None, "bilinear", True),
        (None, 0.6, "bilinear", False),  # downsampling: some inputs get no gradient
        (None, 1.7, "nearest", None),
        ((2, 3), None, "nearest", None),
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_interpolate_gradcheck(size, sf, mode, ac, seed):
    x = minidense.tensor(np.random.default_rng(seed).standard_normal((1, 2, 3, 4)),
                         requires_grad=True)  # fmt: skip
    assert minidense.gradcheck(lambda x: interpolate(x, size, sf, mode, ac), [x])


@pytest.mark.parametrize("factor", [2, 3])
def test_bed_of_nails_gradcheck(factor):
    x = minidense.tensor(np.random.default_rng(5).standard_normal((1, 2, 2, 3)),
                         requires_grad=True)  # fmt: skip
    assert minidense.gradcheck(lambda x: bed_of_nails(x, factor), [x])


def test_upsampling_a_reused_input():
    x = minidense.tensor(np.random.default_rng(6).standard_normal((1, 1, 2, 3)), requires_grad=True)
    fn = lambda x: interpolate(x, size=(3, 5), mode="bilinear") * interpolate(x, size=(3, 5))  # noqa: E731
    assert minidense.gradcheck(fn, [x])


@pytest.mark.parametrize(
    "kw",
    [
        dict(scale_factor=1.5),
        dict(size=(2, 7), mode="nearest"),
        dict(size=(5, 7), mode="bilinear", align_corners=True),
        dict(scale_factor=(2, 1.7), mode="bilinear"),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_interpolate_cuda_matches_cpu(fast_simulator, kw, dtype):
    # Both targets compute the coordinates and weights in the input's dtype, the same way; the
    # backward's atomics may add in another order.
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    x = np.random.default_rng(7).standard_normal((1, 2, 3, 4)).astype(dtype)
    D = gpu.to_device
    out = K.interpolate_forward(x, **kw)
    got = K.interpolate_forward(D(x), **kw).copy_to_host()
    assert got.dtype == dtype
    np.testing.assert_allclose(got, out, **tol)
    go = np.random.default_rng(8).standard_normal(out.shape).astype(dtype)
    gx_d = K.interpolate_backward(D(go), x.shape, **kw).copy_to_host()
    np.testing.assert_allclose(gx_d, K.interpolate_backward(go, x.shape, **kw), **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bed_of_nails_cuda_matches_cpu(fast_simulator, dtype):
    x = np.random.default_rng(9).standard_normal((1, 2, 2, 3)).astype(dtype)
    D = gpu.to_device
    out = KB.bed_of_nails_forward(x, 3)
    np.testing.assert_array_equal(KB.bed_of_nails_forward(D(x), 3).copy_to_host(), out)
    np.testing.assert_array_equal(KB.bed_of_nails_backward(D(out), 3).copy_to_host(), x)


def _t(shape, dtype=np.float64):
    return Tensor(np.zeros(shape, dtype=dtype))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: interpolate(_t((1, 1, 2, 2)), size=4, scale_factor=2), ValueError,
         "exactly one of size and scale_factor"),
        (lambda: interpolate(_t((1, 1, 2, 2))), ValueError, "exactly one of size and scale_factor"),
        (lambda: interpolate(_t((1, 1, 2, 2)), size=4, align_corners=True), ValueError,
         "align_corners can only be set with mode='bilinear'"),
        (lambda: interpolate(_t((1, 1, 2, 2)), size=4, mode="bicubic"), ValueError,
         "mode must be one of"),
        (lambda: interpolate(_t((1, 1, 2, 2)), size=0), ValueError, "size must be a positive int"),
        (lambda: interpolate(_t((1, 1, 2, 2)), size=(2, 2, 2)), ValueError, "size must be"),
        (lambda: interpolate(_t((1, 1, 2, 2)), scale_factor=-2), ValueError,
         "scale_factor must be a positive number"),
        (lambda: interpolate(_t((1, 1, 2, 2)), scale_factor=0.2), ValueError,
         "to an empty output"),
        (lambda: interpolate(_t((1, 2, 2)), size=4), ValueError, "input must be 4-D"),
        # an empty map has no pixel to sample: refused, not read out of bounds
        (lambda: interpolate(_t((2, 3, 0, 5)), size=(8, 8)), ValueError,
         r"input's spatial size \(H, W\) must be > 0, got 0x5"),
        (lambda: interpolate(_t((1, 1, 4, 0)), size=3, mode="bilinear"), ValueError,
         r"input's spatial size \(H, W\) must be > 0, got 4x0"),
        (lambda: interpolate(_t((1, 1, 0, 4)), scale_factor=2), ValueError,
         r"input's spatial size \(H, W\) must be > 0, got 0x4"),
        (lambda: interpolate(np.zeros((1, 1, 2, 2)), size=4), TypeError, "minidense Tensor"),
        (lambda: bed_of_nails(_t((1, 1, 2, 2)), 0), ValueError, "factor must be a positive int"),
        (lambda: bilinear_kernel(2, kernel_size=0), ValueError, "kernel_size must be a positive"),
    ],
)  # fmt: skip
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.gpu
@pytest.mark.skipif(
    not (REAL_GPU and numba.cuda.is_available()),
    reason="needs MINIDENSE_TEST_GPU=1 and an NVIDIA GPU",
)
def test_upsampling_on_real_gpu_matches_cpu():
    x = np.random.default_rng(10).standard_normal((4, 8, 17, 23)).astype(np.float32)
    D = gpu.to_device
    for kw in (dict(scale_factor=2.3), dict(size=(40, 31), mode="bilinear", align_corners=True),
               dict(scale_factor=2, mode="bilinear")):  # fmt: skip
        out = K.interpolate_forward(x, **kw)
        np.testing.assert_allclose(K.interpolate_forward(D(x), **kw).copy_to_host(), out,
                                   rtol=1e-5, atol=1e-6)  # fmt: skip
        go = np.random.default_rng(11).standard_normal(out.shape).astype(np.float32)
        np.testing.assert_allclose(
            K.interpolate_backward(D(go), x.shape, **kw).copy_to_host(),
            K.interpolate_backward(go, x.shape, **kw),
            rtol=1e-4,
            atol=1e-4,
        )
    out = KB.bed_of_nails_forward(x, 2)
    np.testing.assert_array_equal(KB.bed_of_nails_forward(D(x), 2).copy_to_host(), out)
