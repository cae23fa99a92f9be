"""max_pool2d, avg_pool2d, max_unpool2d: loop references, gradchecks, CUDA vs CPU, errors."""

import os

import numba
import numpy as np
import pytest

import minidense
from minidense import gpu
from minidense.kernels import avg_pool as KA
from minidense.kernels import max_pool as KM
from minidense.kernels import unpool as KU
from minidense.ops.pool import avg_pool2d, max_pool2d, max_unpool2d
from minidense.tensor import Tensor
from tests.reference_dense import avg_pool2d_ref, max_pool2d_ref, max_unpool2d_ref
from tests.test_conv import layout

REAL_GPU = os.environ.get("MINIDENSE_TEST_GPU") == "1"


def ties(shape, seed=0, dtype=np.float64):
    """Small integers: most windows hold several equal maxima."""
    return np.random.default_rng(seed).integers(0, 3, shape).astype(dtype)


def distinct(shape, seed=0):
    """Values at least 0.01 apart, so a finite-difference nudge never changes an argmax."""
    rng = np.random.default_rng(seed)
    return rng.permutation(np.prod(shape)).reshape(shape) * 0.01 + rng.uniform(0, 1e-3, shape)


# (H, W, kernel, stride, padding, dilation, ceil_mode)
POOL_CASES = [
    (4, 4, 2, None, 0, 1, False),  # the classic 2x2
    (5, 7, 3, 2, 1, 1, False),  # odd sizes, padding
    (5, 7, 3, 2, 1, 1, True),  # ceil_mode adds a last, partial window
    (5, 5, 2, 2, 1, 1, True),  # ceil_mode's extra window would start in the padding: dropped
    (5, 6, 2, 3, 0, 1, False),  # stride > kernel: some pixels are in no window
    (7, 8, (3, 2), (2, 1), (1, 0), (2, 3), True),  # dilation, rectangular everything
    (1, 1, 1, 1, 0, 1, False),  # 1x1 map
    (3, 3, 3, 1, 0, 1, False),  # output size 1
    (3, 5, 2, 2, 1, 1, True),
]


@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["contiguous", "permuted", "strided"])
def test_max_pool2d_matches_reference_with_ties(case, dtype, kind):
    H, W, k, s, p, d, ceil = case
    x = ties((2, 3, H, W), dtype=dtype)
    out, idx = max_pool2d(Tensor(layout(x, kind)), k, s, p, d, ceil, return_indices=True)
    ref, ref_idx = max_pool2d_ref(x, k, s, p, d, ceil)
    assert out.dtype == dtype and idx.dtype == np.int64
    np.testing.assert_array_equal(out.data, ref)
    np.testing.assert_array_equal(idx.data, ref_idx)  # first maximum wins


def test_ceil_mode_sizes():
    """PyTorch's sizes, including ceil_mode's rule for the last window."""
    x = Tensor(np.zeros((1, 1, 5, 6)))
    assert max_pool2d(x, 3, 2, 1, ceil_mode=False).shape == (1, 1, 3, 3)
    assert max_pool2d(x, 2, 2, 0, ceil_mode=True).shape == (1, 1, 3, 3)
    assert max_pool2d(x, 2, 2, 0, ceil_mode=False).shape == (1, 1, 2, 3)
    # ceil((5 + 2 - 2) / 2) + 1 = 4 windows, but the 4th would start at row 6 - 1 = 5 >= H:
    assert max_pool2d(Tensor(np.zeros((1, 1, 5, 5))), 2, 2, 1, ceil_mode=True).shape[2] == 3


def test_padding_is_minus_infinity():
    x = -np.ones((1, 1, 2, 2))
    out, idx = max_pool2d(Tensor(x), 2, 1, 1, return_indices=True)
    np.testing.assert_array_equal(out.data, -np.ones((1, 1, 3, 3)))  # not 0 from the padding
    # all values tie: each window keeps its first in-image pixel
    np.testing.assert_array_equal(idx.data[0, 0], [[0, 0, 1], [0, 0, 1], [2, 2, 3]])


def test_nan_and_infinities():
    """NaN propagates (PyTorch keeps the last NaN's index); +inf next to -inf is no NaN."""
    x = np.array([[[[1, np.nan, 3, np.nan, np.inf, 2], [0, 0, 5, 0, -np.inf, 7]]]])
    out, idx = KM.max_pool2d_forward(x, 2)
    assert np.isnan(out[0, 0, 0, :2]).all() and out[0, 0, 0, 2] == np.inf
    np.testing.assert_array_equal(idx[0, 0, 0], [1, 3, 4])
    out, idx = KM.max_pool2d_forward(np.full((1, 1, 2, 2), -np.inf), 2)
    assert out[0, 0, 0, 0] == -np.inf and idx[0, 0, 0, 0] == 0


@pytest.mark.parametrize("case", [c for c in POOL_CASES if c[5] == 1])  # avg_pool2d has no dilation
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("kind", ["contiguous", "permuted"])
def test_avg_pool2d_matches_reference(case, count_include_pad, kind):
    H, W, k, s, p, d, ceil = case
    x = np.random.default_rng(1).standard_normal((2, 2, H, W))
    out = avg_pool2d(Tensor(layout(x, kind)), k, s, p, ceil, count_include_pad)
    ref = avg_pool2d_ref(x, k, s, p, ceil, count_include_pad)
    np.testing.assert_allclose(out.data, ref, rtol=1e-12, atol=1e-12)
    out32 = avg_pool2d(Tensor(x.astype(np.float32)), k, s, p, ceil, count_include_pad)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32.data, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "H, W, k, s, p, output_size",
    [
        (4, 6, 2, 2, 0, None),
        (5, 7, 2, 2, 0, (5, 7)),  # odd input: the default would be 4x6
        (5, 7, 3, 2, 1, (1, 1, 5, 7)),  # (N, C, H, W) form
        (5, 5, 2, 2, 0, 5),  # an int: a square output, 5x5
        (5, 5, 2, 2, 0, np.int64(5)),
        (6, 6, 3, 3, 0, None),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_unpool2d_matches_reference(H, W, k, s, p, output_size, dtype):
    x = distinct((2, 3, H, W)).astype(dtype)
    pooled, idx = KM.max_pool2d_forward(x, k, s, p)
    out = max_unpool2d(Tensor(pooled), Tensor(idx), k, s, p, output_size)
    default = tuple((pooled.shape[2 + a] - 1) * s - 2 * p + k for a in range(2))
    hw = (H, W) if output_size is not None else default
    assert out.shape == (2, 3, *hw)
    np.testing.assert_array_equal(out.data, max_unpool2d_ref(pooled, idx, hw))


def test_unpool_of_pool_keeps_the_maxima_in_place():
    """Known answer (c): every window's maximum is back where it was, everything else is 0."""
    x = distinct((2, 3, 6, 8), seed=3)
    pooled, idx = max_pool2d(Tensor(x), 2, return_indices=True)
    back = max_unpool2d(pooled, idx, 2).data
    is_max = x == x.reshape(2, 3, 3, 2, 4, 2).max(axis=(3, 5)).repeat(2, 2).repeat(2, 3)
    np.testing.assert_array_equal(back, np.where(is_max, x, 0))
    assert (back != 0).sum() == pooled.size


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", [POOL_CASES[1], POOL_CASES[2], POOL_CASES[5]])
def test_max_pool2d_gradcheck(case, seed):
    H, W, k, s, p, d, ceil = case
    x = minidense.tensor(distinct((1, 2, H, W), seed), requires_grad=True)
    assert minidense.gradcheck(lambda x: max_pool2d(x, k, s, p, d, ceil), [x])


def test_max_pool2d_backward_overlapping_windows_sum():
    """Stride 1, kernel 3: one pixel is the maximum of up to 9 windows; all their gradients add."""
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 2] = 5.0
    go = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    _, idx = KM.max_pool2d_forward(x, 3, 1)
    gx = KM.max_pool2d_backward(go, idx, x.shape)
    assert gx[0, 0, 1, 2] == go.sum() and gx.sum() == go.sum()


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d_gradcheck(seed, count_include_pad):
    x = minidense.tensor(np.random.default_rng(seed).standard_normal((1, 2, 5, 4)),
                         requires_grad=True)  # fmt: skip
    fn = lambda x: avg_pool2d(x, 3, 2, 1, True, count_include_pad)  # noqa: E731
    assert minidense.gradcheck(fn, [x])


@pytest.mark.parametrize("seed", [0, 1])
def test_max_unpool2d_gradcheck(seed):
    pooled, idx = KM.max_pool2d_forward(distinct((1, 2, 5, 5), seed), 2, 2)
    x = minidense.tensor(np.random.default_rng(seed).standard_normal(pooled.shape),
                         requires_grad=True)  # fmt: skip
    assert minidense.gradcheck(lambda x: max_unpool2d(x, Tensor(idx), 2, 2, 0, (5, 5)), [x])


def test_pool_then_unpool_gradient_is_a_mask():
    x = minidense.tensor(distinct((1, 1, 4, 4)), requires_grad=True)
    pooled, idx = max_pool2d(x, 2, return_indices=True)
    max_unpool2d(pooled, idx, 2).sum().backward()
    np.testing.assert_array_equal(x.grad.data, (max_unpool2d(pooled, idx, 2).data != 0) * 1.0)


# CUDA vs CPU: the max-pool backward adds with atomics (another order where windows overlap).
TWIN_TOL = {np.float32: dict(rtol=1e-6, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-12)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool2d_cuda_matches_cpu(fast_simulator, dtype):
    x = ties((1, 2, 5, 6), dtype=dtype)
    args = (3, 2, 1, 1, True)
    D = gpu.to_device
    out, idx = KM.max_pool2d_forward(x, *args)
    out_d, idx_d = KM.max_pool2d_forward(D(layout(x, "strided").base)[..., ::2], *args)
    np.testing.assert_array_equal(out_d.copy_to_host(), out)
    np.testing.assert_array_equal(idx_d.copy_to_host(), idx)  # first maximum on the GPU too
    go = np.random.default_rng(0).standard_normal(out.shape).astype(dtype)
    gx = KM.max_pool2d_backward(go, idx, x.shape)
    gx_d = KM.max_pool2d_backward(D(go), idx_d, x.shape).copy_to_host()
    assert gx_d.dtype == dtype
    np.testing.assert_allclose(gx_d, gx, **TWIN_TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool2d_cuda_matches_cpu(fast_simulator, dtype):
    x = np.random.default_rng(1).standard_normal((1, 2, 5, 4)).astype(dtype)
    D = gpu.to_device
    for cip in (True, False):
        args = (3, 2, 1, True, cip)
        out = KA.avg_pool2d_forward(x, *args)
        got = KA.avg_pool2d_forward(D(x), *args).copy_to_host()
        assert got.dtype == dtype
        np.testing.assert_allclose(got, out, **TWIN_TOL[dtype])
        go = np.random.default_rng(2).standard_normal(out.shape).astype(dtype)
        gx = KA.avg_pool2d_backward(go, x.shape, *args)
        gx_d = KA.avg_pool2d_backward(D(go), x.shape, *args).copy_to_host()
        np.testing.assert_allclose(gx_d, gx, **TWIN_TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_unpool2d_cuda_matches_cpu(fast_simulator, dtype):
    pooled, idx = KM.max_pool2d_forward(distinct((1, 2, 5, 5)).astype(dtype), 2, 2)
    D = gpu.to_device
    out = KU.max_unpool2d_forward(pooled, idx, 2, 2, 0, (5, 5))
    out_d = KU.max_unpool2d_forward(D(pooled), D(idx), 2, 2, 0, (5, 5)).copy_to_host()
    assert out_d.dtype == dtype
    np.testing.assert_array_equal(out_d, out)
    go = np.random.default_rng(3).standard_normal(out.shape).astype(dtype)
    gx_d = KU.max_unpool2d_backward(D(go), D(idx)).copy_to_host()
    np.testing.assert_array_equal(gx_d, KU.max_unpool2d_backward(go, idx))


def _t(shape, dtype=np.float64):
    return Tensor(np.zeros(shape, dtype=dtype))


_IDX = Tensor(np.zeros((1, 1, 2, 2), dtype=np.int64))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: max_pool2d(_t((3, 4, 4)), 2), ValueError, "input must be 4-D"),
        (lambda: max_pool2d(_t((1, 1, 4, 4)), 2, padding=2), ValueError,
         "padding .* at most half of kernel_size"),
        (lambda: max_pool2d(_t((1, 1, 2, 2)), 3), ValueError, "smaller than the .*kernel"),
        (lambda: max_pool2d(_t((1, 1, 4, 4)), 2, stride=0), ValueError,
         "stride must be positive"),
        (lambda: max_pool2d(_t((1, 1, 4, 4)), 2, padding=-1), ValueError,
         "padding must be >= 0"),
        (lambda: max_pool2d(_t((1, 1, 4, 4)), 0), ValueError, "kernel_size must be positive"),
        (lambda: max_pool2d(_t((1, 1, 4, 4)), 2.5), TypeError, "kernel_size must be an int"),
        (lambda: avg_pool2d(_t((1, 1, 4, 4), np.int32), 2), TypeError, "float32 or float64"),
        (lambda: max_unpool2d(_t((1, 1, 2, 2)), Tensor(np.zeros((1, 1, 2, 2), np.int32)), 2),
         TypeError, "indices must be int64"),
        (lambda: max_unpool2d(_t((1, 1, 2, 2)), Tensor(np.zeros((1, 1, 2, 3), np.int64)), 2),
         ValueError, "indices shape .* must equal input shape"),
        (lambda: max_unpool2d(_t((1, 1, 2, 2)), _IDX, 2, output_size=(6, 4)), ValueError,
         "inconsistent with the pooling arguments: dim 0 must be strictly between 2 and 6"),
        (lambda: max_unpool2d(_t((1, 1, 2, 2)), _IDX, 2, output_size=(4,)), ValueError,
         r"output_size must be \(H, W\) or \(N, C, H, W\)"),
        (lambda: max_unpool2d(_t((1, 1, 2, 2)), _IDX, 2, output_size=4.0), TypeError,
         r"output_size must be \(H, W\) or \(N, C, H, W\) ints, or an int for H = W, got 4.0"),
        (lambda: max_unpool2d(_t((1, 1, 2, 2)), _IDX, 2, output_size=True), TypeError,
         "output_size must be .* got True"),
        (lambda: max_unpool2d(_t((1, 1, 2, 2)), _IDX, 2, output_size=6), ValueError,
         r"output_size \(6, 6\) is inconsistent with the pooling arguments"),
        (lambda: max_unpool2d(_t((1, 1, 2, 2)), Tensor(np.full((1, 1, 2, 2), 16)), 2),
         ValueError, r"indices must lie in \[0, 16\)"),
        (lambda: max_unpool2d(_t((1, 1, 2, 2)), np.zeros((1, 1, 2, 2), np.int64), 2),
         TypeError, "indices must be a minidense Tensor"),
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
def test_pooling_on_real_gpu_matches_cpu():
    x = ties((4, 8, 33, 30), dtype=np.float32)
    D = gpu.to_device
    out, idx = KM.max_pool2d_forward(x, 3, 2, 1, 1, True)
    out_d, idx_d = KM.max_pool2d_forward(D(x), 3, 2, 1, 1, True)
    np.testing.assert_array_equal(out_d.copy_to_host(), out)
    np.testing.assert_array_equal(idx_d.copy_to_host(), idx)
    go = np.random.default_rng(0).standard_normal(out.shape).astype(np.float32)
    np.testing.assert_allclose(
        KM.max_pool2d_backward(D(go), idx_d, x.shape).copy_to_host(),
        KM.max_pool2d_backward(go, idx, x.shape),
        rtol=1e-5,
        atol=1e-5,
    )
    un = KU.max_unpool2d_forward(out, idx, 3, 2, 1, (33, 30))
    un_d = KU.max_unpool2d_forward(D(out), idx_d, 3, 2, 1, (33, 30)).copy_to_host()
    np.testing.assert_array_equal(un_d, un)
    avg = KA.avg_pool2d_forward(x, 3, 2, 1, True, False)
    np.testing.assert_allclose(
        KA.avg_pool2d_forward(D(x), 3, 2, 1, True, False).copy_to_host(), avg, rtol=1e-5
    )
