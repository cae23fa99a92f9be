"""The row-wise CPU kernels of softmax cross-entropy (``minidense.kernels.cross_entropy``):
against the formula in float64, against the array-op path devices use, and through
``F.cross_entropy`` (ties, huge logits, NaN rows, one class, empty input)."""

import numpy as np
import pytest

import minidense as md
import minidense.functional as F
from minidense.kernels import cross_entropy as K
from minidense.ops.activation import stable_log_softmax

RNG = np.random.default_rng(0)


def formula(x):
    x = x.astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7, 4), (1, 1), (33, 1), (5, 9), (0, 3)])
def test_log_softmax_rows_matches_the_formula_and_the_array_path(dtype, shape):
    x = (RNG.standard_normal(shape) * 5).astype(dtype)
    if x.size:
        x[0, :] = 2.0  # ties
    got = K.log_softmax_rows(x)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    assert got.dtype == dtype and got.shape == shape
    np.testing.assert_allclose(got, formula(x), rtol=tol, atol=tol)
    np.testing.assert_allclose(got, stable_log_softmax(x, 1), rtol=tol, atol=tol)


def test_log_softmax_rows_huge_logits_and_nan_rows():
    x = np.array([[1e4, -1e4, 0.0], [np.nan, 1.0, 2.0], [1.0, np.nan, 2.0], [3.0, 1.0, np.nan]])
    got = K.log_softmax_rows(x)
    np.testing.assert_allclose(got[0], [0.0, -2e4, -1e4])
    assert np.isnan(got[1:]).all()  # a NaN in a row spoils the whole row, as in NumPy/PyTorch


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_rows_match_the_formula(dtype):
    x = RNG.standard_normal((11, 5)).astype(dtype)
    t = RNG.integers(0, 5, 11)
    coef = RNG.uniform(0, 2, 11).astype(dtype)
    lsm = K.log_softmax_rows(x)
    want = np.exp(formula(x))
    want[np.arange(11), t] -= 1
    want *= coef[:, None]
    got = K.cross_entropy_grad_rows(lsm, t, coef)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-7)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_values_and_gradients_as_the_array_path(reduction, monkeypatch):
    """F.cross_entropy on (N, C, H, W) with weights and ignored pixels, through the kernels and
    through the array ops (the kernels switched off)."""
    x = RNG.standard_normal((2, 4, 3, 5))
    t = RNG.integers(0, 4, (2, 3, 5))
    t[0, 0, :2] = -100
    w = np.array([0.5, 1.0, 2.0, 1.5])
    g = RNG.standard_normal(t.shape) if reduction == "none" else None

    def run():
        xt = md.tensor(x, requires_grad=True)
        loss = F.cross_entropy(xt, t, weight=w, reduction=reduction)
        loss.backward(grad=g)
        return loss.numpy(), xt.grad.numpy()

    fused = run()
    monkeypatch.setattr(K, "log_softmax_rows", lambda a: stable_log_softmax(a, 1))
    monkeypatch.setattr(K, "cross_entropy_grad_rows", _array_grad)
    arrays = run()
    for a, b in zip(fused, arrays, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    assert (fused[1][0, :, 0, :2] == 0).all()  # ignored pixels pass no gradient


def _array_grad(lsm, t, coef):
    grad = np.exp(lsm)
    grad[np.arange(len(t)), t] -= 1
    return grad * coef[:, None]


def test_cross_entropy_gradcheck_through_the_kernels():
    x = md.tensor(RNG.standard_normal((3, 3, 2, 2)), requires_grad=True)
    t = RNG.integers(0, 3, (3, 2, 2))
    assert md.gradcheck(lambda x: F.cross_entropy(x, t), [x])
