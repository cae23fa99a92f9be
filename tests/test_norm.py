"""Batch norm's fused CPU kernels (``minidense.kernels.norm``): against a per-channel formula,
against the array-op path that devices use, and by gradcheck through ``F.batch_norm``; the same
for batch norm with its ReLU fused in (``F.batch_norm_relu``, which ``nn.Sequential`` uses)."""

import numpy as np
import pytest

import minidense as md
from minidense.kernels import norm as K
from minidense.ops import norm as ops_norm

SHAPES = [(2, 3), (3, 2, 5), (2, 3, 4, 5), (1, 2, 1, 7), (2, 1, 3, 3, 2)]


def formula(x, gamma, beta, eps):
    """Straight from the definition, one channel at a time, in float64."""
    y = np.empty(x.shape)
    for c in range(x.shape[1]):
        v = x[:, c].astype(np.float64)
        mean = v.sum() / v.size
        var = ((v - mean) ** 2).sum() / v.size
        y[:, c] = (v - mean) / np.sqrt(var + eps) * gamma[c] + beta[c]
    return y


def data(shape, dtype, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 2 + offset).astype(dtype)
    gamma = rng.uniform(-2, 2, shape[1]).astype(dtype)
    beta = rng.uniform(-1, 1, shape[1]).astype(dtype)
    return x, gamma, beta


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_matches_the_formula_and_the_array_path(shape, dtype):
    x, gamma, beta = data(shape, dtype)
    y, mean, var, (mean64, inv_std) = K.batch_norm_train_forward(x, gamma, beta, 1e-5)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert (
        y.dtype == mean.dtype == var.dtype == dtype and mean64.dtype == inv_std.dtype == np.float64
    )
    assert y.shape == x.shape and mean.shape == var.shape == mean64.shape == (shape[1],)
    np.testing.assert_allclose(y, formula(x, gamma, beta, 1e-5), rtol=tol, atol=tol)
    y2, _, mean2, var2, inv_std2 = ops_norm._forward_arrays(x, gamma, beta, 1e-5)
    np.testing.assert_allclose(y, y2, rtol=tol, atol=tol)
    for got, want in ((mean, mean2), (mean64, mean2), (var, var2), (inv_std, inv_std2.ravel())):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_forward_in_float32_keeps_precision_far_from_zero():
    # Sums in float64 and a centred second pass: a mean of 1000 does not eat the variance.
    x, gamma, beta = data((4, 3, 16, 16), np.float32, offset=1000.0)
    y = K.batch_norm_train_forward(x, gamma, beta, 1e-5)[0]
    np.testing.assert_allclose(y, formula(x, gamma, beta, 1e-5), rtol=1e-3, atol=1e-3)


def test_forward_accepts_non_contiguous_input():
    x, gamma, beta = data((3, 5, 4, 2), np.float64)
    view = x.transpose(0, 1, 3, 2)
    y = K.batch_norm_train_forward(view, gamma, beta, 1e-3)[0]
    np.testing.assert_allclose(y, formula(view, gamma, beta, 1e-3), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("need_input", [True, False])
def test_backward_matches_the_array_path(shape, need_input):
    x, gamma, beta = data(shape, np.float64, seed=1)
    g = np.random.default_rng(2).standard_normal(shape)
    stats = K.batch_norm_train_forward(x, gamma, beta, 1e-5)[3]
    gx, gg, gb = K.batch_norm_train_backward(g, x, stats, gamma, need_input)
    axes = ops_norm._channel_axes(x)[0]
    _, xhat, _, _, inv_std = ops_norm._forward_arrays(x, gamma, beta, 1e-5)
    gx2, gg2, gb2 = ops_norm._backward_arrays(g, xhat, gamma, beta, inv_std, need_input)
    np.testing.assert_allclose(gg, gg2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gb, gb2, rtol=1e-12, atol=1e-12)
    if need_input:
        np.testing.assert_allclose(gx, gx2, rtol=1e-10, atol=1e-12)
        # Σ over each channel of the input gradient is 0: a shift of x changes nothing.
        np.testing.assert_allclose(gx.sum(axis=axes), 0, atol=1e-10)
    else:
        assert gx is None


@pytest.mark.parametrize("shape", [(3, 2), (2, 3, 4), (2, 2, 3, 2)])
@pytest.mark.parametrize("fn, seed", [("batch_norm", 3), ("batch_norm_relu", 12)])
def test_functional_batch_norm_gradcheck(shape, fn, seed):
    x, gamma, beta = data(shape, np.float64, seed=seed)
    xt, wt, bt = (md.tensor(a, requires_grad=True) for a in (x, gamma, beta))

    def f(x, w, b):
        return getattr(md.functional, fn)(x, None, None, w, b, training=True)

    assert md.gradcheck(f, [xt, wt, bt])


def test_gradients_of_the_affine_parameters_alone():
    # The first layer of a net normalises an input that needs no gradient: only γ and β get one.
    x, gamma, beta = data((2, 3, 4, 4), np.float64, seed=4)
    xt = md.tensor(x)
    wt, bt = md.tensor(gamma, requires_grad=True), md.tensor(beta, requires_grad=True)
    y = md.functional.batch_norm(xt, None, None, wt, bt, training=True)
    (y * y).sum().backward()
    xhat = formula(x, np.ones(3), np.zeros(3), 1e-5) - 0.0
    expected_gb = (2 * y.numpy()).sum(axis=(0, 2, 3))
    np.testing.assert_allclose(bt.grad.numpy(), expected_gb, rtol=1e-10)
    np.testing.assert_allclose(wt.grad.numpy(), (2 * y.numpy() * xhat).sum(axis=(0, 2, 3)),
                               rtol=1e-10)  # fmt: skip
    assert xt.grad is None


def test_functional_batch_norm_defaults_and_errors():
    # PyTorch's signature: γ = 1 and β = 0 when not given, evaluation mode by default.
    x, _, _ = data((2, 3, 4), np.float32, seed=5)
    y = md.functional.batch_norm(md.tensor(x), None, None, training=True)
    np.testing.assert_allclose(y.numpy(), formula(x, np.ones(3), np.zeros(3), 1e-5), atol=1e-5)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    md.functional.batch_norm(md.tensor(x), rm, rv, training=True, momentum=0.5)
    np.testing.assert_allclose(rm, 0.5 * x.mean(axis=(0, 2)), rtol=1e-5)
    y = md.functional.batch_norm(md.tensor(x), rm, rv)  # evaluation: the running statistics
    np.testing.assert_allclose(y.numpy(), (x - rm[:, None]) / np.sqrt(rv[:, None] + 1e-5),
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    with pytest.raises(ValueError, match="needs running_mean and running_var"):
        md.functional.batch_norm(md.tensor(x), None, None)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        md.functional.batch_norm(md.tensor(x), None, None, md.tensor(np.ones(2, np.float32)))


@pytest.mark.parametrize("wrap", [np.asarray, md.tensor], ids=["ndarray", "Tensor"])
def test_running_statistics_are_updated_in_place_as_arrays_or_tensors(wrap):
    """A Tensor's ``*=`` would rebind a local name: its array must be updated instead."""
    x, _, _ = data((4, 3, 2, 2), np.float32, seed=6)
    rm, rv = wrap(np.zeros(3, np.float32)), wrap(np.ones(3, np.float32))
    md.functional.batch_norm(md.tensor(x), rm, rv, training=True, momentum=0.1)
    m = x.size // 3
    want_mean = 0.1 * x.mean(axis=(0, 2, 3))
    want_var = 0.9 + 0.1 * x.var(axis=(0, 2, 3)) * m / (m - 1)  # the unbiased variance
    got_mean, got_var = (v.numpy() if isinstance(v, md.Tensor) else v for v in (rm, rv))
    np.testing.assert_allclose(got_mean, want_mean, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got_var, want_var, rtol=1e-5)
    y = md.functional.batch_norm(md.tensor(x), rm, rv)  # evaluation reads them back
    want = (x - want_mean[:, None, None]) / np.sqrt(want_var[:, None, None] + 1e-5)
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(0, 4, 3, 3), (0, 4), (2, 4, 0, 3)])
def test_group_norm_of_an_empty_input_is_empty_and_has_a_backward(shape):
    x = md.tensor(np.zeros(shape, np.float32), requires_grad=True)
    layer = md.nn.GroupNorm(2, 4)
    y = layer(x)
    assert y.shape == shape and y.dtype == np.float32
    y.sum().backward()
    assert x.grad.shape == shape
    np.testing.assert_array_equal(layer.weight.grad.numpy(), np.zeros(4))
    np.testing.assert_array_equal(layer.bias.grad.numpy(), np.zeros(4))
    assert md.functional.group_norm(x, 4).shape == shape


# ------------------------------------------------------------------ batch norm + ReLU, fused


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_relu_forward_is_relu_of_the_formula_and_of_the_array_path(shape, dtype):
    x, gamma, beta = data(shape, dtype, seed=6)
    y, mean, var, _ = K.batch_norm_train_forward(x, gamma, beta, 1e-5, relu=True)
    plain = K.batch_norm_train_forward(x, gamma, beta, 1e-5)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, np.maximum(formula(x, gamma, beta, 1e-5), 0), rtol=tol, atol=tol)
    np.testing.assert_array_equal(y, np.maximum(plain[0], 0))  # bit for bit: same operations
    np.testing.assert_array_equal(mean, plain[1])
    assert (y == 0).any() and (y > 0).any()
    y2 = ops_norm._forward_arrays(x, gamma, beta, 1e-5, relu=True)[0]
    np.testing.assert_allclose(y, y2, rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("need_input", [True, False])
def test_fused_relu_backward_matches_the_array_path(shape, need_input):
    x, gamma, beta = data(shape, np.float64, seed=7)
    g = np.random.default_rng(8).standard_normal(shape)
    y, _, _, stats = K.batch_norm_train_forward(x, gamma, beta, 1e-5, relu=True)
    got = K.batch_norm_train_backward(g, x, stats, gamma, need_input, y=y)
    _, xhat, _, _, inv_std = ops_norm._forward_arrays(x, gamma, beta, 1e-5)
    want = ops_norm._backward_arrays(g, xhat, gamma, beta, inv_std, need_input, relu=True)
    for a, b in zip(got, want, strict=True):
        if a is None:
            assert b is None and not need_input
        else:
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_relu_equals_batch_norm_then_relu_values_and_gradients(dtype):
    x, gamma, beta = data((3, 4, 5, 6), dtype, seed=9)
    g = np.random.default_rng(10).standard_normal(x.shape).astype(dtype)
    results = []
    for fused in (True, False):
        ts = [md.tensor(a, requires_grad=True) for a in (x, gamma, beta)]
        rm, rv = np.zeros(4, dtype), np.ones(4, dtype)
        if fused:
            y = md.functional.batch_norm_relu(ts[0], rm, rv, ts[1], ts[2], training=True)
        else:
            y = md.functional.relu(md.functional.batch_norm(ts[0], rm, rv, ts[1], ts[2], True))
        y.backward(grad=g)
        results.append([y.numpy(), rm, rv] + [t.grad.numpy() for t in ts])
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    # Evaluation mode: the running statistics, then the ReLU.
    rm, rv = results[0][1], results[0][2]
    y = md.functional.batch_norm_relu(md.tensor(x), rm, rv, gamma, beta)
    want = md.functional.relu(md.functional.batch_norm(md.tensor(x), rm, rv, gamma, beta))
    np.testing.assert_array_equal(y.numpy(), want.numpy())


def test_fused_relu_ties_at_zero_and_nan_follow_relu():
    # γ = 0 and β = 0 in channel 0: every output is exactly 0, where ReLU's gradient is 0 (as in
    # PyTorch), so that channel passes no gradient. A NaN input stays NaN.
    x, gamma, beta = data((2, 2, 3, 3), np.float64, seed=11)
    gamma[0] = beta[0] = 0.0
    ts = [md.tensor(a, requires_grad=True) for a in (x, gamma, beta)]
    y = md.functional.batch_norm_relu(ts[0], None, None, ts[1], ts[2], training=True)
    assert (y.numpy()[:, 0] == 0).all()
    y.sum().backward()
    assert (ts[0].grad.numpy()[:, 0] == 0).all() and ts[2].grad.numpy()[0] == 0
    x[0, 1, 0, 0] = np.nan
    y = md.functional.batch_norm_relu(md.tensor(x), None, None, gamma, beta, training=True)
    assert np.isnan(y.numpy()[:, 1]).all()  # the NaN spoils its channel's statistics, as in torch


def test_sequential_fuses_batch_norm_and_relu_and_nothing_else():
    md.manual_seed(0)
    x = md.tensor(np.random.default_rng(13).standard_normal((2, 3, 6, 6)).astype(np.float32))
    layers = [md.nn.Conv2d(3, 4, 3, padding=1), md.nn.BatchNorm2d(4), md.nn.ReLU()]
    seq = md.nn.Sequential(*layers)
    calls = []
    original = md.functional.batch_norm_relu
    try:
        md.functional.batch_norm_relu = lambda *a: calls.append(1) or original(*a)
        y = seq(x)
    finally:
        md.functional.batch_norm_relu = original
    assert calls == [1]  # the BatchNorm2d + ReLU pair ran as one op
    one_by_one = x
    for m in layers:
        one_by_one = m(one_by_one)
    np.testing.assert_allclose(y.numpy(), one_by_one.numpy(), rtol=1e-6, atol=1e-6)
    y.sum().backward()
    g_fused = [p.grad.numpy().copy() for p in seq.parameters()]
    seq.zero_grad()
    one_by_one.sum().backward()
    for a, p in zip(g_fused, seq.parameters(), strict=True):
        np.testing.assert_allclose(a, p.grad.numpy(), rtol=1e-5, atol=1e-6)

    class MyBN(md.nn.BatchNorm2d):  # its own forward must run: no fusion
        def forward(self, x):
            return super().forward(x) * 2

    class MyReLU(md.nn.ReLU):
        def forward(self, x):
            return super().forward(x) + 1

    bn = md.nn.BatchNorm2d(3)
    assert bn.fuses_with(md.nn.ReLU())
    assert not bn.fuses_with(MyReLU()) and not bn.fuses_with(md.nn.Sigmoid())
    assert not MyBN(3).fuses_with(md.nn.ReLU())
    y = md.nn.Sequential(MyBN(3), md.nn.ReLU())(x)
    np.testing.assert_allclose(y.numpy(), np.maximum(2 * bn(x).numpy(), 0), rtol=1e-5, atol=1e-5)
    y = md.nn.Sequential(md.nn.BatchNorm2d(3), MyReLU())(x)
    np.testing.assert_allclose(y.numpy(), np.maximum(bn(x).numpy(), 0) + 1, rtol=1e-5, atol=1e-5)


def test_fused_relu_backward_uses_the_forward_output_as_its_mask():
    """Where γ·x̂ + β is positive but rounds to 0 or below in x's dtype, the forward passes the
    value, so the gradient must pass too: the kernel reads the mask from the output, not from a
    recomputation in another precision."""
    x = np.array([0.0, 1.0, 2.0, 7.0], np.float32).reshape(1, 1, 4, 1)
    mean, inv_std = x.astype(np.float64).mean(), 1 / np.sqrt(x.astype(np.float64).var() + 1e-5)
    h = (np.float64(x[0, 0, 1, 0]) - mean) * inv_std
    gamma = np.ones(1, np.float32)
    beta = -np.array([h], np.float32)  # γ·x̂ + β = h − float32(h), tiny
    assert h + np.float64(beta[0]) > 0  # positive here, while float32(h) + β is exactly 0
    y, _, _, stats = K.batch_norm_train_forward(x, gamma, beta, 1e-5, relu=True)
    assert 0 < y[0, 0, 1, 0] < 1e-6
    g = np.ones_like(x)
    _, _, g_beta = K.batch_norm_train_backward(g, x, stats, gamma, True, y=y)
    assert g_beta[0] == (y > 0).sum()  # Σ g over the unmasked entries, this one included
