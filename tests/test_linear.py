"""``F.linear`` (and ``nn.Linear``, which runs it): y = x·Wᵀ + b as one op. Against NumPy's
formula, by gradcheck, and its weight gradient in the weight's own layout; bad input named."""

import numpy as np
import pytest

import minidense as md
import minidense.functional as F

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("shape", [(3,), (5, 3), (2, 4, 3), (2, 1, 2, 3), (0, 3)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_forward_and_gradients_match_the_formula(shape, with_bias):
    x = RNG.standard_normal(shape)
    w = RNG.standard_normal((4, 3))
    b = RNG.standard_normal(4) if with_bias else None
    g = RNG.standard_normal(shape[:-1] + (4,))
    ts = [md.tensor(a, requires_grad=True) for a in (x, w)] + (
        [md.tensor(b, requires_grad=True)] if with_bias else [None]
    )
    y = F.linear(*ts)
    want = x @ w.T + (b if with_bias else 0)
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-12, atol=1e-12)
    y.backward(grad=g)
    g2, x2 = g.reshape(-1, 4), x.reshape(-1, 3)
    np.testing.assert_allclose(ts[0].grad.numpy(), g @ w, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ts[1].grad.numpy(), g2.T @ x2, rtol=1e-12, atol=1e-12)
    assert ts[1].grad.numpy().flags["C_CONTIGUOUS"]  # W's layout: no transposed view to copy
    if with_bias:
        np.testing.assert_allclose(ts[2].grad.numpy(), g2.sum(0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("with_bias", [True, False])
def test_gradcheck(with_bias):
    x, w, b = RNG.standard_normal((2, 3, 4)), RNG.standard_normal((5, 4)), RNG.standard_normal(5)
    inputs = [md.tensor(a, requires_grad=True) for a in ((x, w, b) if with_bias else (x, w))]
    assert md.gradcheck(F.linear, inputs)


def test_only_the_gradients_asked_for():
    x = md.tensor(RNG.standard_normal((3, 2)).astype(np.float32))
    layer = md.nn.Linear(2, 4)
    layer.bias.requires_grad = False
    layer(x).sum().backward()
    assert x.grad is None and layer.bias.grad is None
    np.testing.assert_allclose(layer.weight.grad.numpy(), np.tile(x.numpy().sum(0), (4, 1)),
                               rtol=1e-6)  # fmt: skip


def test_the_module_runs_it_as_before():
    md.manual_seed(0)
    layer = md.nn.Linear(3, 2)
    x = RNG.standard_normal((4, 3)).astype(np.float32)
    y = layer(md.tensor(x))
    want = x @ layer.weight.numpy().T + layer.bias.numpy()
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-6, atol=1e-6)
    assert y.dtype == np.float32


def test_bad_input_is_named():
    x, w = md.tensor(np.ones((2, 3))), md.tensor(np.ones((4, 3)))
    with pytest.raises(TypeError, match="linear: input must be a minidense Tensor"):
        F.linear(np.ones((2, 3)), w)
    with pytest.raises(TypeError, match="linear: input must be float32 or float64"):
        F.linear(md.tensor(np.ones((2, 3), np.int64)), w)
    with pytest.raises(ValueError, match=r"linear: weight must be 2-D \(out_features"):
        F.linear(x, md.tensor(np.ones(3)))
    with pytest.raises(ValueError, match=r"last dimension must be weight's in_features \(3\)"):
        F.linear(md.tensor(np.ones((2, 5))), w)
    with pytest.raises(ValueError, match=r"linear: bias must have shape \(4,\)"):
        F.linear(x, w, md.tensor(np.ones(3)))
    with pytest.raises(TypeError, match="weight"):
        F.linear(x, w.float())
