"""ReLU's parallel CPU kernels (``minidense.kernels.relu``, for large float arrays) against
NumPy's formula, through ``F.relu`` values and gradients, with NaN, zeros and ties."""

import numpy as np
import pytest

import minidense as md
import minidense.functional as F
from minidense.kernels import relu as K

N = K.MIN_SIZE + 17  # an odd size above the kernels' threshold


def data(dtype):
    x = np.random.default_rng(0).standard_normal(N).astype(dtype)
    x[:5] = [0.0, -0.0, np.nan, np.inf, -np.inf]
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_match_numpy(dtype):
    x = data(dtype)
    y, pos = K.relu_forward(x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))  # NaN in the same places
    np.testing.assert_array_equal(pos, x > 0)
    g = np.random.default_rng(1).standard_normal(N).astype(dtype)
    g[7] = np.nan  # a NaN gradient where x <= 0 stays out, as in PyTorch
    x[7] = -1.0
    _, pos = K.relu_forward(x)
    got = K.relu_backward(g, pos)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, np.where(x > 0, g, 0))


@pytest.mark.parametrize("shape", [(2, 3, 80, 80), (N,)])
def test_relu_op_uses_them_with_the_same_values_and_gradients(shape):
    x = np.random.default_rng(2).standard_normal(shape)
    x.flat[:3] = 0.0  # ties at 0: the gradient there is 0
    xt = md.tensor(x, requires_grad=True)
    y = F.relu(xt)
    np.testing.assert_array_equal(y.numpy(), np.maximum(x, 0))
    g = np.random.default_rng(3).standard_normal(shape)
    y.backward(grad=g)
    np.testing.assert_array_equal(xt.grad.numpy(), g * (x > 0))


def test_small_non_contiguous_and_integer_inputs_keep_numpys_path():
    x = np.random.default_rng(4).standard_normal((300, 300))[:, ::2]  # large, not contiguous
    xt = md.tensor(x, requires_grad=True)
    F.relu(xt).sum().backward()
    np.testing.assert_array_equal(xt.grad.numpy(), (x > 0).astype(np.float64))
    ints = md.tensor(np.arange(-3, N - 3))
    np.testing.assert_array_equal(F.relu(ints).numpy(), np.maximum(np.arange(-3, N - 3), 0))
