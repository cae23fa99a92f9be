"""conv2d and conv_transpose2d: loop references, gradchecks, CUDA (simulator) vs CPU, errors."""

import os

import numba
import numpy as np
import pytest

import minidense
from minidense import gpu
from minidense.kernels import conv as K
from minidense.kernels import conv_batch
from minidense.ops.conv import conv2d, conv_transpose2d
from minidense.tensor import Tensor
from tests.reference_dense import conv2d_ref, conv_transpose2d_ref

REAL_GPU = os.environ.get("MINIDENSE_TEST_GPU") == "1"
# CUDA vs CPU: float32 sums run in another order (tiled matmul vs BLAS), float64 ones barely differ.
TWIN_TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


def layout(a, kind):
    """The same values as ``a`` with contiguous, channels-last (permuted) or gapped strides."""
    if kind == "permuted":
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    if kind == "strided":
        big = np.zeros((*a.shape[:-1], 2 * a.shape[-1]), dtype=a.dtype)
        big[..., ::2] = a
        return big[..., ::2]
    return a


# (x shape, weight shape, stride, padding, dilation, groups)
CONV_CASES = [
    ((2, 3, 5, 6), (4, 3, 3, 3), 1, 1, 1, 1),  # odd sizes, "same" padding
    ((1, 4, 7, 6), (6, 2, 3, 2), (2, 1), (1, 0), (1, 2), 2),  # groups, rectangular everything
    ((2, 2, 6, 6), (3, 2, 2, 2), 3, 0, 1, 1),  # stride > kernel
    ((1, 2, 7, 7), (2, 1, 3, 3), 1, 2, 2, 2),  # dilation, depthwise
    ((1, 3, 1, 1), (5, 3, 1, 1), 1, 0, 1, 1),  # 1x1 map and kernel
    ((3, 4, 3, 5), (6, 2, 1, 1), 1, 0, 1, 2),  # 1x1 kernel, stride 1: x is its own columns
    ((1, 2, 3, 3), (2, 2, 3, 3), 1, 0, 1, 1),  # output size 1
    ((1, 2, 4, 5), (3, 2, 3, 3), 2, 3, 1, 1),  # padding larger than the kernel's half
]


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["contiguous", "permuted", "strided"])
def test_conv2d_forward_matches_reference(case, dtype, kind):
    xs, ws, s, p, d, g = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    out = conv2d(Tensor(layout(x, kind)), Tensor(w), Tensor(b), s, p, d, g)
    assert out.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.data, conv2d_ref(x, w, b, s, p, d, g), rtol=tol, atol=tol)


# (x shape, weight shape, stride, padding, output_padding, groups, dilation)
TRANSPOSED_CASES = [
    ((2, 3, 4, 5), (3, 2, 3, 3), 2, 1, 1, 1, 1),
    ((1, 4, 3, 3), (4, 1, 2, 3), (2, 3), (0, 1), (1, 2), 2, 1),
    ((1, 2, 3, 4), (2, 3, 3, 3), 1, 0, 0, 1, 2),  # dilation
    ((1, 2, 3, 3), (2, 2, 3, 3), 1, 0, 1, 1, 2),  # output_padding >= stride, < dilation
    ((1, 2, 1, 1), (2, 3, 1, 1), 1, 0, 0, 1, 1),  # 1x1
    ((3, 4, 2, 3), (4, 3, 1, 1), 1, 0, 0, 2, 1),  # 1x1 with groups: grad_out is its own columns
    ((1, 1, 4, 4), (1, 1, 4, 4), 2, 1, 0, 1, 1),  # FCN's 2x upsampling geometry
]


@pytest.mark.parametrize("case", TRANSPOSED_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["contiguous", "permuted"])
def test_conv_transpose2d_forward_matches_reference(case, dtype, kind):
    xs, ws, s, p, op, g, d = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[1] * g).astype(dtype)
    out = conv_transpose2d(Tensor(layout(x, kind)), Tensor(layout(w, kind)), Tensor(b),
                           s, p, op, g, d)  # fmt: skip
    ref = conv_transpose2d_ref(x, w, b, s, p, op, g, d)
    assert out.shape == ref.shape and out.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.data, ref, rtol=tol, atol=tol)


def test_transposed_is_adjoint_of_conv():
    """<conv2d(x, w), y> == <x, conv_transpose2d(y, w)> for the same geometry."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4, 7, 6))
    w = rng.standard_normal((6, 2, 3, 2))
    y = conv2d(Tensor(x), Tensor(w), None, 2, 1, (2, 1), 2).data
    v = rng.standard_normal(y.shape)
    xt = conv_transpose2d(Tensor(v), Tensor(w), None, 2, 1, 0, 2, (2, 1)).data
    assert xt.shape == x.shape
    np.testing.assert_allclose(np.vdot(y, v), np.vdot(x, xt), rtol=1e-12)


# Tiny shapes: gradcheck runs two forwards per input element.
GRAD_CASES = [
    ((1, 2, 4, 4), (2, 2, 3, 3), 1, 1, 1, 1),
    ((1, 2, 5, 4), (2, 1, 2, 3), (2, 1), (1, 1), (1, 2), 2),
]
GRAD_TRANSPOSED_CASES = [
    ((1, 2, 3, 3), (2, 1, 3, 3), 2, 1, 1, 2, 1),
    ((1, 2, 2, 3), (2, 2, 2, 3), (1, 2), (0, 1), (1, 0), 1, (2, 1)),
]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", GRAD_CASES)
def test_conv2d_gradcheck(case, seed):
    xs, ws, s, p, d, g = case
    rng = np.random.default_rng(seed)
    x = minidense.tensor(rng.standard_normal(xs), requires_grad=True)
    w = minidense.tensor(rng.standard_normal(ws), requires_grad=True)
    b = minidense.tensor(rng.standard_normal(ws[0]), requires_grad=True)
    assert minidense.gradcheck(lambda x, w, b: conv2d(x, w, b, s, p, d, g), [x, w, b])


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", GRAD_TRANSPOSED_CASES)
def test_conv_transpose2d_gradcheck(case, seed):
    xs, ws, s, p, op, g, d = case
    rng = np.random.default_rng(seed)
    x = minidense.tensor(rng.standard_normal(xs), requires_grad=True)
    w = minidense.tensor(rng.standard_normal(ws), requires_grad=True)
    b = minidense.tensor(rng.standard_normal(ws[1] * g), requires_grad=True)
    fn = lambda x, w, b: conv_transpose2d(x, w, b, s, p, op, g, d)  # noqa: E731
    assert minidense.gradcheck(fn, [x, w, b])


def test_gradient_of_a_reused_input():
    """x feeds two convolutions; its gradient is the sum of both paths."""
    rng = np.random.default_rng(3)
    x = minidense.tensor(rng.standard_normal((1, 2, 4, 4)), requires_grad=True)
    w1 = minidense.tensor(rng.standard_normal((2, 2, 3, 3)))
    w2 = minidense.tensor(rng.standard_normal((2, 2, 1, 1)))
    assert minidense.gradcheck(lambda x: conv2d(x, w1, padding=1) * conv2d(x, w2), [x])


def test_needs_input_grad_skips_unneeded_gradients():
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((3, 2, 3, 3))
    go = rng.standard_normal((1, 3, 2, 2))
    gx, gw, gb = K.conv2d_backward(go, x, w, needs=(False, True, False))
    assert gx is None and gb is None and gw.shape == w.shape


@pytest.mark.parametrize(
    "op, ws, kw",
    [
        (conv2d, (4, 3, 3, 3), {"padding": 1}),  # stride 1: the CPU's shorter backward
        (conv2d, (4, 3, 3, 3), {"padding": 1, "stride": 2}),  # the im2col/col2im path
        (conv_transpose2d, (3, 4, 3, 3), {"stride": 2}),
    ],
)
def test_empty_batch_gives_zero_weight_and_bias_gradients(op, ws, kw):
    """N = 0 runs no chunk, yet the weight and bias get zero gradients (as in PyTorch)."""
    x = minidense.tensor(np.zeros((0, 3, 8, 8)), requires_grad=True)
    w = minidense.tensor(np.ones(ws), requires_grad=True)
    b = minidense.tensor(np.ones(4), requires_grad=True)
    y = op(x, w, b, **kw)
    assert y.shape[:2] == (0, 4)
    y.sum().backward()
    assert x.grad.shape == x.shape
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros(ws))
    np.testing.assert_array_equal(b.grad.numpy(), np.zeros(4))


def test_empty_batch_backward_on_the_simulator(fast_simulator):
    D = gpu.to_device
    x, w, wt = np.zeros((0, 3, 5, 5)), np.ones((4, 3, 3, 3)), np.ones((3, 4, 3, 3))
    for stride in (1, 2):
        go = np.zeros(K.conv2d_forward(x, w, None, stride, 1).shape)
        gx, gw, gb = K.conv2d_backward(D(go), D(x), D(w), stride, 1)
        assert gx.shape == x.shape
        np.testing.assert_array_equal(gw.copy_to_host(), np.zeros(w.shape))
        np.testing.assert_array_equal(gb.copy_to_host(), np.zeros(4))
    go = np.zeros(K.conv_transpose2d_forward(x, wt, None, 2).shape)
    gx, gw, gb = K.conv_transpose2d_backward(D(go), D(x), D(wt), 2)
    assert gx.shape == x.shape
    np.testing.assert_array_equal(gw.copy_to_host(), np.zeros(wt.shape))
    np.testing.assert_array_equal(gb.copy_to_host(), np.zeros(4))


# Stride-1 cases whose input gradient is a convolution (padding <= d·(k - 1)), and one that is not.
STRIDE1_CASES = [
    ((3, 4, 5, 7), (6, 2, 3, 3), 1, 1, 2),  # groups, odd sizes
    ((2, 3, 6, 6), (3, 1, 3, 3), 2, 2, 3),  # dilation, depthwise
    ((2, 2, 4, 5), (5, 2, 2, 3), (0, 2), (1, 1), 1),  # even kernel, padding only along w
    ((1, 2, 5, 5), (4, 2, 3, 1), (1, 0), (2, 1), 1),  # rectangular kernel and dilation
    ((2, 4, 3, 3), (4, 2, 1, 1), 0, 1, 2),  # 1x1
    ((1, 2, 4, 4), (3, 2, 1, 1), 1, 1, 1),  # padding > d·(k - 1): the general path
]


@pytest.mark.parametrize("case", STRIDE1_CASES)
def test_stride1_backward_matches_the_general_path(case, monkeypatch):
    """conv2d's stride-1 backward (one im2col of grad_out) against the im2col/col2im path."""
    xs, ws, p, d, g = case
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    go = rng.standard_normal(K.conv2d_forward(x, w, None, 1, p, d, g).shape)
    fast = K.conv2d_backward(go, x, w, 1, p, d, g)
    monkeypatch.setattr(K, "_transposed_padding", lambda geo: None)
    general = K.conv2d_backward(go, x, w, 1, p, d, g)
    for a, b in zip(fast, general, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


# Many small maps (>= 8 samples, <= 400 positions): the CPU lays the columns side by side.
SIDE_BY_SIDE_CASES = [
    ((9, 3, 5, 7), (4, 3, 3, 3), 1, 1, 1),  # odd sizes, padding 1
    ((8, 2, 6, 6), (3, 2, 3, 3), 1, 2, 2),  # dilation 2, padding 2
    ((10, 2, 4, 5), (5, 2, 2, 3), 1, (0, 2), 1),  # even kernel, padding only along w
    ((12, 2, 7, 6), (3, 2, 3, 3), 2, 1, 1),  # stride 2: the forward only, the general backward
    ((8, 4, 5, 5), (6, 2, 3, 3), 1, 1, 1),  # groups 2: per-sample products
]


@pytest.mark.parametrize("case", SIDE_BY_SIDE_CASES)
def test_many_small_maps_side_by_side_match_the_reference(case, monkeypatch):
    """Forward and gradients against the reference and against the per-sample path (the
    side-by-side layout switched off), with both in one chunk and in chunks of eight."""
    xs, ws, s, p, d = case
    g = xs[1] // ws[1]
    rng = np.random.default_rng(11)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    out = K.conv2d_forward(x, w, None, s, p, d, g)
    np.testing.assert_allclose(out, conv2d_ref(x, w, None, s, p, d, g), rtol=1e-10, atol=1e-10)
    go = rng.standard_normal(out.shape)
    grads = K.conv2d_backward(go, x, w, s, p, d, g)
    monkeypatch.setattr(K, "_side_by_side", lambda *a: False)
    np.testing.assert_allclose(out, K.conv2d_forward(x, w, None, s, p, d, g), rtol=1e-12)
    for a, b in zip(grads, K.conv2d_backward(go, x, w, s, p, d, g), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    monkeypatch.undo()
    monkeypatch.setattr(conv_batch, "CHUNK_BYTES", 8 * x[0].size * 9 * x.itemsize)
    for a, b in zip(K.conv2d_backward(go, x, w, s, p, d, g), grads, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_many_small_maps_gradcheck():
    rng = np.random.default_rng(12)
    x = Tensor(rng.standard_normal((8, 2, 4, 3)), requires_grad=True)
    w = Tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal(3), requires_grad=True)
    assert K._side_by_side(x.data, K.Geometry((3, 3), 1, 1, 1), 8, 12, 1)
    assert minidense.gradcheck(lambda x, w, b: conv2d(x, w, b, padding=1), [x, w, b])


def test_batches_larger_than_one_chunk(monkeypatch):
    """The CPU path runs a batch in chunks of samples; several chunks give the same answer."""
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((5, 2, 5, 4)), rng.standard_normal((3, 2, 3, 3))
    wt = rng.standard_normal((2, 3, 3, 3))
    go, go_t = rng.standard_normal((5, 3, 5, 4)), rng.standard_normal((5, 3, 10, 8))

    def everything():
        return [
            K.conv2d_forward(x, w, None, 1, 1),
            *K.conv2d_backward(go, x, w, 1, 1),
            K.conv_transpose2d_forward(x, wt, None, 2, 1, 1),
            *K.conv_transpose2d_backward(go_t, x, wt, 2, 1, 1),
        ]

    whole = everything()
    monkeypatch.setattr(conv_batch, "CHUNK_BYTES", 1)  # one sample per chunk
    for a, b in zip(everything(), whole, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_pointwise_convs_ask_for_no_column_scratch(monkeypatch, fast_simulator):
    """A 1×1 stride-1 conv uses its input as columns, so no "cols" buffer is requested: on a GPU
    that would be a device allocation per call, never written."""
    asked, scratch = [], K._scratch
    monkeypatch.setattr(K, "_scratch", lambda name, *a: asked.append(name) or scratch(name, *a))
    rng = np.random.default_rng(9)
    x, w, go = (rng.standard_normal(s) for s in ((2, 4, 3, 5), (6, 2, 1, 1), (2, 6, 3, 5)))
    wt = rng.standard_normal((4, 3, 1, 1))  # conv_transpose2d: (C_in, C_out/groups, 1, 1)
    for to in (np.asarray, gpu.to_device):
        K.conv2d_forward(to(x), to(w), None, 1, 0, 1, 2)
        K.conv2d_backward(to(go), to(x), to(w), 1, 0, 1, 2)
        K.conv_transpose2d_backward(to(go), to(x), to(wt), 1, 0, 0, 2)
    assert "cols" not in asked
    K.conv2d_forward(x, w, None, 1, 1, 1, 2)  # padded: columns are needed
    assert "cols" in asked


@pytest.mark.parametrize(
    "xs, ws, s, p, d, g",
    [
        ((2, 4, 4, 3), (2, 2, 3, 2), 2, 1, (1, 2), 2),
        ((1, 2, 3, 3), (2, 2, 2, 2), 1, 0, 1, 1),
        ((2, 4, 3, 3), (6, 2, 1, 1), 1, 0, 1, 2),  # pointwise: the input is its own columns
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_cuda_matches_cpu(fast_simulator, xs, ws, s, p, d, g, dtype):
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    D = gpu.to_device
    want = K.conv2d_forward(x, w, b, s, p, d, g)
    xd = D(x)
    got = K.conv2d_forward(xd, D(w), D(b), s, p, d, g).copy_to_host()
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, **TWIN_TOL[dtype])
    go = rng.standard_normal(want.shape).astype(dtype)
    for a, c in zip(K.conv2d_backward(go, x, w, s, p, d, g),
                    K.conv2d_backward(D(go), xd, D(w), s, p, d, g), strict=True):  # fmt: skip
        np.testing.assert_allclose(c.copy_to_host(), a, **TWIN_TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_transpose2d_cuda_matches_cpu(fast_simulator, dtype):
    rng = np.random.default_rng(8)
    x, w = rng.standard_normal((1, 4, 3, 2)), rng.standard_normal((4, 1, 3, 3))
    x, w, b = x.astype(dtype), w.astype(dtype), np.ones(2, dtype)
    args = (2, 1, 1, 2, 1)  # stride, padding, output_padding, groups, dilation
    D = gpu.to_device
    want = K.conv_transpose2d_forward(x, w, b, *args)
    got = K.conv_transpose2d_forward(D(x), D(w), D(b), *args).copy_to_host()
    np.testing.assert_allclose(got, want, **TWIN_TOL[dtype])
    go = rng.standard_normal(want.shape).astype(dtype)
    got = K.conv_transpose2d_backward(D(go), D(x), D(w), *args)
    for a, c in zip(K.conv_transpose2d_backward(go, x, w, *args), got, strict=True):
        np.testing.assert_allclose(c.copy_to_host(), a, **TWIN_TOL[dtype])


def _t(shape, dtype=np.float64):
    return Tensor(np.zeros(shape, dtype=dtype))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: conv2d(_t((2, 3, 4)), _t((2, 3, 1, 1))), ValueError, "input must be 4-D"),
        (lambda: conv2d(_t((1, 3, 4, 4)), _t((2, 3, 1))), ValueError, "weight must be 4-D"),
        (lambda: conv2d(_t((1, 3, 4, 4)), _t((2, 1, 1, 1)), groups=2), ValueError,
         r"input channels \(3\) must be divisible by groups \(2\)"),
        (lambda: conv2d(_t((1, 4, 4, 4)), _t((3, 2, 1, 1)), groups=2), ValueError,
         "output channels .* divisible by groups"),
        (lambda: conv2d(_t((1, 4, 4, 4)), _t((2, 3, 1, 1))), ValueError,
         "expects 3 input channels with groups=1, but input has 4"),
        (lambda: conv2d(_t((2, 0, 4, 4)), _t((3, 0, 3, 3))), ValueError,
         r"input \(2, 0, 4, 4\) has no channels"),
        (lambda: conv_transpose2d(_t((2, 0, 4, 4)), _t((0, 3, 3, 3))), ValueError,
         "has no channels"),
        (lambda: conv2d(_t((1, 1, 3, 3)), _t((1, 1, 5, 5))), ValueError,
         "larger than the padded input"),
        (lambda: conv2d(_t((1, 1, 3, 3)), _t((1, 1, 3, 3)), dilation=2), ValueError,
         r"dilated to 5x5\) is larger than the padded input \(3x3\)"),
        (lambda: conv2d(_t((1, 1, 3, 3)), _t((1, 1, 1, 1)), padding=-1), ValueError,
         "padding must be >= 0"),
        (lambda: conv2d(_t((1, 1, 3, 3)), _t((1, 1, 1, 1)), stride=0), ValueError,
         "stride must be positive"),
        (lambda: conv2d(_t((1, 1, 3, 3)), _t((1, 1, 1, 1)), stride=(1, 2, 3)), TypeError,
         "stride must be an int or a pair"),
        (lambda: conv2d(_t((1, 1, 3, 3)), _t((1, 1, 1, 1)), _t((2,))), ValueError,
         r"bias must have shape \(1,\)"),
        (lambda: conv2d(np.zeros((1, 1, 3, 3)), _t((1, 1, 1, 1))), TypeError,
         "input must be a minidense Tensor"),
        (lambda: conv2d(_t((1, 1, 3, 3), np.int64), _t((1, 1, 1, 1), np.int64)), TypeError,
         "input must be float32 or float64"),
        (lambda: conv_transpose2d(_t((1, 3, 3, 3)), _t((2, 1, 3, 3))), ValueError,
         "expects 2 input channels, but input has 3"),
        (lambda: conv_transpose2d(_t((1, 1, 3, 3)), _t((1, 1, 3, 3)), stride=2,
                                  output_padding=2), ValueError,
         "output_padding .* must be smaller than stride"),
        (lambda: conv_transpose2d(_t((1, 1, 1, 1)), _t((1, 1, 1, 1)), padding=1), ValueError,
         "is empty"),
    ],
)  # fmt: skip
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_mixed_dtypes_are_refused():
    with pytest.raises(TypeError, match="dtype|float"):
        conv2d(_t((1, 1, 3, 3), np.float32), _t((1, 1, 1, 1), np.float64))


@pytest.mark.gpu
@pytest.mark.skipif(
    not (REAL_GPU and numba.cuda.is_available()),
    reason="needs MINIDENSE_TEST_GPU=1 and an NVIDIA GPU",
)
def test_conv_on_real_gpu_matches_cpu():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((4, 16, 33, 31)).astype(np.float32)
    w = rng.standard_normal((24, 8, 3, 3)).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    D = gpu.to_device
    args = (2, 1, 1, 2)
    want = K.conv2d_forward(x, w, b, *args)
    np.testing.assert_allclose(
        K.conv2d_forward(D(x), D(w), D(b), *args).copy_to_host(), want, rtol=1e-4, atol=1e-4
    )
    go = rng.standard_normal(want.shape).astype(np.float32)
    for a, c in zip(K.conv2d_backward(go, x, w, *args),
                    K.conv2d_backward(D(go), D(x), D(w), *args), strict=True):  # fmt: skip
        np.testing.assert_allclose(c.copy_to_host(), a, rtol=1e-3, atol=1e-3)
    wt = rng.standard_normal((16, 4, 4, 4)).astype(np.float32)
    want = K.conv_transpose2d_forward(x, wt, None, 2, 1, 0, 2)
    got = K.conv_transpose2d_forward(D(x), D(wt), None, 2, 1, 0, 2).copy_to_host()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
