"""Every foundation op: forward against NumPy and float64 gradcheck.

Forwards run in float32 and float64, on contiguous, permuted-stride and strided (gapped) inputs.
Gradchecks are full-Jacobian, float64, on tiny shapes, for a couple of seeds.
"""

import numpy as np
import pytest
import strategies as S
from hypothesis import given, settings
from hypothesis import strategies as st

import minidense as md
from minidense import gradcheck

F = md.F
DTYPES = (np.float32, np.float64)
LAYOUTS = ("contiguous", "permuted", "strided")
SEEDS = (0, 1)


# ----------------------------------------------------------------------------- helpers


def sample(shape, seed=0, domain="any", dtype=np.float64):
    """Random values for an op's domain: "any", "pos" (0.5..2), "nonzero" (0.2 ≤ |x| ≤ 2)."""
    rng = np.random.default_rng(seed)
    if domain == "pos":
        a = rng.uniform(0.5, 2.0, shape)
    elif domain == "nonzero":
        a = rng.uniform(0.2, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    else:
        a = rng.uniform(-2.0, 2.0, shape)
    return np.asarray(a, dtype=dtype)


def with_layout(a, layout):
    """The same values as ``a``, stored contiguously, with permuted strides, or with gaps."""
    if layout == "permuted":
        out = np.asfortranarray(a)  # reversed strides: a permuted, non-C-contiguous layout
        if not out.flags.c_contiguous:
            return out
        # (2, 1)-like shapes are C-contiguous either way: fall back to gaps.
    if layout in ("permuted", "strided") and a.ndim >= 1:
        base = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        base[..., ::2] = a
        out = base[..., ::2]
        assert not out.flags.c_contiguous or a.size <= 1
        return out
    return np.ascontiguousarray(a)


def tol(dtype):
    return {"rtol": 2e-6, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-11, "atol": 1e-12}


def check_forward(md_fn, np_fn, arrays, dtypes=DTYPES, layouts=LAYOUTS):
    """``md_fn(*tensors)`` equals ``np_fn(*arrays)`` (computed in float64) for each dtype/layout."""
    for dtype in dtypes:
        for layout in layouts:
            inputs = [with_layout(a.astype(dtype), layout) for a in arrays]
            out = md_fn(*[md.Tensor(x) for x in inputs])  # Tensor(): no copy, the layout stays
            expected = np.asarray(np_fn(*[x.astype(np.float64) for x in inputs]))
            assert out.dtype == dtype, (layout, out.dtype)
            assert out.shape == expected.shape, (layout, out.shape, expected.shape)
            np.testing.assert_allclose(out.numpy(), expected, **tol(dtype), err_msg=layout)


def check_grad(md_fn, arrays, layout="contiguous"):
    inputs = [
        md.Tensor(with_layout(a.astype(np.float64), layout), requires_grad=True) for a in arrays
    ]
    assert gradcheck(md_fn, inputs)


# ----------------------------------------------------------------------------- unary elementwise


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def _softmax(a, axis):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


UNARY = {
    "neg": (lambda x: -x, np.negative, "any"),
    "exp": (lambda x: x.exp(), np.exp, "any"),
    "F.exp": (F.exp, np.exp, "any"),
    "log": (lambda x: x.log(), np.log, "pos"),
    "F.log": (F.log, np.log, "pos"),
    "sqrt": (F.sqrt, np.sqrt, "pos"),
    "abs": (F.abs, np.abs, "nonzero"),
    "pow2": (lambda x: x**2, lambda a: a**2, "any"),
    "pow3": (lambda x: x**3, lambda a: a**3, "any"),
    "pow0.5": (lambda x: x**0.5, np.sqrt, "pos"),
    "pow-1": (lambda x: x**-1, lambda a: 1 / a, "nonzero"),
    "pow0": (lambda x: x**0, np.ones_like, "any"),
    "relu": (F.relu, lambda a: np.maximum(a, 0), "nonzero"),
    "relu_method": (lambda x: x.relu(), lambda a: np.maximum(a, 0), "nonzero"),
    "leaky_relu": (
        lambda x: F.leaky_relu(x, 0.1),
        lambda a: np.where(a > 0, a, 0.1 * a),
        "nonzero",
    ),
    "leaky_relu_default": (F.leaky_relu, lambda a: np.where(a > 0, a, 0.01 * a), "nonzero"),
    "sigmoid": (F.sigmoid, _sigmoid, "any"),
    "tanh": (F.tanh, np.tanh, "any"),
    "clamp": (lambda x: F.clamp(x, -0.5, 0.7), lambda a: np.clip(a, -0.5, 0.7), "any"),
    "clamp_min": (lambda x: x.clamp(min=0.3), lambda a: np.maximum(a, 0.3), "any"),
    "clamp_max": (lambda x: x.clamp(max=-0.3), lambda a: np.minimum(a, -0.3), "any"),
    "softmax": (F.softmax, lambda a: _softmax(a, -1), "any"),
    "softmax_axis0": (lambda x: F.softmax(x, 0), lambda a: _softmax(a, 0), "any"),
    "log_softmax": (F.log_softmax, lambda a: np.log(_softmax(a, -1)), "any"),
    "log_softmax_axis-2": (
        lambda x: x.log_softmax(-2),
        lambda a: np.log(_softmax(a, -2)),
        "any",
    ),
}


@pytest.mark.parametrize("name", UNARY)
def test_unary_forward(name):
    md_fn, np_fn, domain = UNARY[name]
    check_forward(md_fn, np_fn, [sample((3, 4), 0, domain)])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", UNARY)
def test_unary_gradcheck(name, seed):
    md_fn, _, domain = UNARY[name]
    check_grad(md_fn, [sample((2, 3), seed, domain)], layout=LAYOUTS[seed])


def test_relu_keeps_nan_and_dtype_as_pytorch():
    x = md.tensor(np.array([-1.0, 0.0, np.nan, 2.0], np.float32), requires_grad=True)
    y = F.relu(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.numpy(), [0, 0, np.nan, 2])  # a NaN is not hidden as 0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 0, 1])


def test_gradients_at_kinks_follow_pytorch():
    x = md.tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    x.abs().sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [-1, 0, 1])  # sign(0) = 0
    x.zero_grad()
    F.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 1])
    x.zero_grad()
    F.leaky_relu(x, 0.2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.2, 0.2, 1])
    x.zero_grad()
    F.clamp(x, 0.0, 2.0).sum().backward()  # the bounds themselves pass the gradient
    np.testing.assert_array_equal(x.grad.numpy(), [0, 1, 1])


def test_activations_are_stable_for_large_inputs():
    x = md.tensor(np.array([-1000.0, 0.0, 1000.0], np.float32), requires_grad=True)
    s = F.sigmoid(x)
    np.testing.assert_array_equal(s.numpy(), [0.0, 0.5, 1.0])
    s.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()
    big = md.tensor(np.array([[1000.0, 0.0, -1000.0]], np.float32), requires_grad=True)
    np.testing.assert_allclose(F.softmax(big).numpy(), [[1, 0, 0]])
    lsm = F.log_softmax(big)
    np.testing.assert_allclose(lsm.numpy(), [[0, -1000, -2000]])
    lsm.sum().backward()
    assert np.isfinite(big.grad.numpy()).all()
    assert np.tanh(1000.0) == F.tanh(md.tensor(1000.0)).item()


def test_softmax_rows_sum_to_one_and_bad_axis():
    x = md.randn(3, 5)
    np.testing.assert_allclose(F.softmax(x, 1).sum(1).numpy(), np.ones(3), rtol=1e-6)
    with pytest.raises(ValueError, match="axis=2"):
        F.softmax(x, 2)


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape, axis", [((2, 0), 1), ((2, 0, 3), 1), ((0, 3), 0), ((0, 3), 1)])
def test_softmax_of_an_empty_axis_is_empty(fn, shape, axis):
    """No maximum to shift by exists along an empty axis: an empty result, not NumPy's error."""
    x = md.tensor(np.zeros(shape, np.float32), requires_grad=True)
    y = getattr(F, fn)(x, axis)
    assert y.shape == shape and y.dtype == np.float32
    y.sum().backward()
    assert x.grad.shape == shape


def test_clamp_bad_bounds():
    with pytest.raises(ValueError, match="at least one"):
        F.clamp(md.ones(2))
    with pytest.raises(ValueError, match="min must be <= max"):
        F.clamp(md.ones(2), 1.0, 0.0)


# ----------------------------------------------------------------------------- binary elementwise


def _cond(a, b):
    """A fixed random condition of the broadcast shape of ``a`` and ``b``."""
    shape = np.broadcast_shapes(a.shape, b.shape)
    return np.random.default_rng(7).random(shape) > 0.5


BINARY = {
    "add": (lambda a, b: a + b, np.add, "any", "any"),
    "sub": (lambda a, b: a - b, np.subtract, "any", "any"),
    "mul": (lambda a, b: a * b, np.multiply, "any", "any"),
    "div": (lambda a, b: a / b, np.divide, "any", "nonzero"),
    "pow": (lambda a, b: a**b, np.power, "pos", "any"),
    "maximum": (F.maximum, np.maximum, "any", "any"),
    "minimum": (F.minimum, np.minimum, "any", "any"),
    "where": (
        lambda a, b: F.where(_cond(a, b), a, b),
        lambda a, b: np.where(_cond(a, b), a, b),
        "any",
        "any",
    ),
}
PAIRS = [((2, 3), (2, 3)), ((3, 1), (1, 4)), ((4,), (2, 3, 4)), ((), (2, 3)), ((2, 3), ())]


@pytest.mark.parametrize("shapes", PAIRS, ids=str)
@pytest.mark.parametrize("name", BINARY)
def test_binary_forward(name, shapes):
    md_fn, np_fn, da, db = BINARY[name]
    a, b = sample(shapes[0], 0, da), sample(shapes[1], 1, db)
    check_forward(md_fn, np_fn, [a, b])


@pytest.mark.parametrize("shapes", PAIRS, ids=str)
@pytest.mark.parametrize("name", BINARY)
def test_binary_gradcheck(name, shapes):
    md_fn, _, da, db = BINARY[name]
    a, b = sample(shapes[0], 2, da), sample(shapes[1], 3, db)
    check_grad(md_fn, [a, b], layout="permuted")


def test_pow_with_tensor_exponent_gradients():
    a = md.tensor(np.array([2.0, 3.0]), requires_grad=True)
    b = md.tensor(np.array([3.0, 0.5]), requires_grad=True)
    (a**b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [3 * 4.0, 0.5 / np.sqrt(3.0)])
    np.testing.assert_allclose(b.grad.numpy(), [8 * np.log(2.0), np.sqrt(3.0) * np.log(3.0)])


def test_maximum_ties_send_the_gradient_to_the_first_argument():
    a = md.tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = md.tensor(np.array([1.0, 3.0]), requires_grad=True)
    F.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [1, 0])
    np.testing.assert_array_equal(b.grad.numpy(), [0, 1])


def test_where_with_scalars_and_bad_condition():
    x = md.tensor(np.array([1.0, -2.0]), requires_grad=True)
    y = F.where((x > 0).data, x, 0.0)
    np.testing.assert_array_equal(y.numpy(), [1.0, 0.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1, 0])
    assert F.where(x > 0, 1.0, x).dtype == np.float64  # a bool Tensor works as condition too
    with pytest.raises(TypeError, match="bool"):
        F.where(np.array([1, 0]), x, x)


# ----------------------------------------------------------------------------- reductions

AXES = [None, 0, -1, 1, (0, 2), (-1, -3), (2, 0, 1)]
REDUCTIONS = {
    "sum": (F.sum, np.sum),
    "mean": (F.mean, np.mean),
    "max": (F.max, np.max),
    "min": (F.min, np.min),
}


def _unique(shape, seed):
    """Distinct values (max/min have kinks at ties)."""
    rng = np.random.default_rng(seed)
    return rng.permutation(np.prod(shape)).reshape(shape) / 7.0 - 1.0


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction_forward(name, axis, keepdims):
    md_fn, np_fn = REDUCTIONS[name]
    check_forward(
        lambda x: md_fn(x, axis, keepdims),
        lambda a: np_fn(a, axis=axis, keepdims=keepdims),
        [_unique((2, 3, 4), 0)],
    )


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction_gradcheck(name, axis, keepdims):
    md_fn, _ = REDUCTIONS[name]
    check_grad(lambda x: md_fn(x, axis, keepdims), [_unique((2, 3, 4), 1)], layout="strided")


def test_reduction_methods():
    a = _unique((2, 3), 0)
    x = md.tensor(a)
    np.testing.assert_allclose(x.sum(1).numpy(), a.sum(1))
    np.testing.assert_allclose(x.mean(axis=0, keepdims=True).numpy(), a.mean(0, keepdims=True))
    np.testing.assert_allclose(x.max().numpy(), a.max())
    np.testing.assert_allclose(x.min(-1).numpy(), a.min(-1))
    np.testing.assert_allclose(x.sum(np.int64(1)).numpy(), a.sum(1))  # NumPy integer axes work
    np.testing.assert_array_equal(x.argmax(1).numpy(), a.argmax(1))


def test_max_ties_share_the_gradient():
    x = md.tensor(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 0.0]]), requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0.5, 0.5], [1, 0, 0]])
    x.zero_grad()
    x.min().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0, 0], [0, 0.5, 0.5]])


def test_reduction_bad_axis():
    x = md.ones(2, 3)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        x.sum(2)
    with pytest.raises(ValueError, match="axis -3 is out of range"):
        x.max((0, -3))


# ----------------------------------------------------------------------------- edge shapes


def test_zero_d_scalars():
    x = md.tensor(np.float64(0.7), requires_grad=True)
    y = (x * x).exp() + 3.0
    assert y.shape == () and y.ndim == 0
    np.testing.assert_allclose(y.item(), np.exp(0.49) + 3)
    assert x.sum().shape == () and x.max().shape == () and x.mean().shape == ()
    assert gradcheck(lambda t: (t * t).exp().sum() + t.max() * t.mean(), [x])
    (x.sum() * 2).backward()
    assert x.grad.shape == () and x.grad.item() == 2.0


def test_size_one_axes():
    a = sample((3, 1, 2), 0)
    x = md.tensor(a, requires_grad=True)
    np.testing.assert_allclose(x.sum(1).numpy(), a[:, 0])
    np.testing.assert_allclose(x.max(1, keepdims=True).numpy(), a)
    assert x.squeeze(1).shape == (3, 2) and x.squeeze().shape == (3, 2)
    assert x.squeeze(0).shape == (3, 1, 2)  # not size one: unchanged
    assert gradcheck(lambda t: t.max(1) * t.sum(1) + t.squeeze(), [x])


def test_empty_axes():
    x = md.tensor(np.zeros((0, 3)), requires_grad=True)
    s = x.sum(axis=0)
    np.testing.assert_array_equal(s.numpy(), np.zeros(3))
    assert x.sum().item() == 0.0
    s.sum().backward()
    assert x.grad.shape == (0, 3)
    assert x.max(axis=1).shape == (0,)  # reducing the non-empty axis is fine
    with pytest.raises(ValueError, match=r"max over an empty axis.*\(0, 3\)"):
        x.max(axis=0)
    with pytest.raises(ValueError, match="empty axis"):
        x.min()
    with pytest.raises(ValueError, match="empty axis"):
        x.max()
    assert x.flatten(1).shape == (0, 3)
    assert x.flatten().shape == (0,)
    assert (x + md.tensor(np.ones(3))).shape == (0, 3)


# ----------------------------------------------------------------------------- matmul

MATMUL = [
    ((2, 3), (3, 4)),
    ((2, 2, 3), (2, 3, 4)),  # batched
    ((2, 1, 2, 3), (3, 3, 2)),  # batch dims broadcast to (2, 3)
    ((3,), (3, 4)),  # 1-D @ 2-D
    ((2, 3), (3,)),  # 2-D @ 1-D
    ((3,), (3,)),  # 1-D @ 1-D: a scalar
    ((3,), (2, 3, 2)),  # 1-D @ batched
    ((2, 2, 3), (3,)),  # batched @ 1-D
    ((1, 3), (3, 1)),
]


@pytest.mark.parametrize("shapes", MATMUL, ids=str)
def test_matmul_forward(shapes):
    check_forward(lambda a, b: a @ b, np.matmul, [sample(shapes[0], 0), sample(shapes[1], 1)])
    check_forward(F.matmul, np.matmul, [sample(shapes[0], 2), sample(shapes[1], 3)])


@pytest.mark.parametrize("shapes", MATMUL, ids=str)
def test_matmul_gradcheck(shapes):
    for seed, layout in zip(SEEDS, ("contiguous", "permuted"), strict=True):
        check_grad(
            lambda a, b: a @ b, [sample(shapes[0], seed), sample(shapes[1], seed + 5)], layout
        )


def test_matmul_bad_shapes():
    with pytest.raises(ValueError, match="at least one dimension"):
        md.tensor(2.0) @ md.ones(2)
    with pytest.raises(ValueError, match=r"\(3,\).*\(4, 2\)"):
        md.ones(3) @ md.ones(4, 2)


# ----------------------------------------------------------------------------- shape ops

MASK = np.random.default_rng(3).random((2, 3, 2)) > 0.4
SHAPE_OPS = {
    "reshape": (lambda x: x.reshape(3, -1), lambda a: a.reshape(3, -1)),
    "reshape_tuple": (lambda x: F.reshape(x, (4, 3)), lambda a: a.reshape(4, 3)),
    "view": (lambda x: x.view(12), lambda a: a.reshape(12)),
    "transpose": (lambda x: x.transpose(0, 2), lambda a: a.swapaxes(0, 2)),
    "transpose_default": (lambda x: F.transpose(x), lambda a: a.swapaxes(-1, -2)),
    "permute": (lambda x: x.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1)),
    "F.permute": (lambda x: F.permute(x, (1, 2, 0)), lambda a: a.transpose(1, 2, 0)),
    "T": (lambda x: x.T, lambda a: a.T),
    "flatten": (lambda x: x.flatten(), lambda a: a.reshape(-1)),
    "flatten_1": (lambda x: F.flatten(x, 1), lambda a: a.reshape(2, 6)),
    "flatten_0_1": (lambda x: x.flatten(0, 1), lambda a: a.reshape(6, 2)),
    "flatten_-2": (lambda x: x.flatten(-2), lambda a: a.reshape(2, 6)),
    "unsqueeze": (lambda x: x.unsqueeze(1), lambda a: a[:, None]),
    "unsqueeze_-1": (lambda x: x.unsqueeze(-1), lambda a: a[..., None]),
    "pad_last": (lambda x: F.pad(x, (1, 2)), lambda a: np.pad(a, ((0, 0), (0, 0), (1, 2)))),
    "pad_2axes_value": (
        lambda x: F.pad(x, (1, 0, 0, 2), value=0.5),
        lambda a: np.pad(a, ((0, 0), (0, 2), (1, 0)), constant_values=0.5),
    ),
    "pad_all": (
        lambda x: F.pad(x, (0, 1, 1, 1, 2, 0)),
        lambda a: np.pad(a, ((2, 0), (1, 1), (0, 1))),
    ),
    "slice": (lambda x: x[1:, ::2], lambda a: a[1:, ::2]),
    "slice_negative_step": (lambda x: x[:, ::-1, 1:], lambda a: a[:, ::-1, 1:]),
    "int": (lambda x: x[1], lambda a: a[1]),
    "int_neg": (lambda x: x[-1, :, 0], lambda a: a[-1, :, 0]),
    "all_ints": (lambda x: x[1, 2, 0], lambda a: a[1, 2, 0]),
    "none_ellipsis": (lambda x: x[None, ..., 1], lambda a: a[None, ..., 1]),
    "ellipsis_none": (lambda x: x[..., None, :1], lambda a: a[..., None, :1]),
    "bool_mask": (lambda x: x[MASK], lambda a: a[MASK]),
    "bool_mask_axis0": (lambda x: x[np.array([False, True])], lambda a: a[np.array([False, True])]),
    "bool_tensor_mask": (lambda x: x[md.tensor(MASK)], lambda a: a[MASK]),
    "int_array_repeats": (lambda x: x[[0, 0, 1]], lambda a: a[[0, 0, 1]]),
    "int_array_axis1": (lambda x: x[:, [2, 0, 2, 2]], lambda a: a[:, [2, 0, 2, 2]]),
    "int_arrays_pair": (lambda x: x[[0, 1, 1], [2, 2, 0]], lambda a: a[[0, 1, 1], [2, 2, 0]]),
    "int_tensor": (lambda x: x[md.tensor([1, 1, -1])], lambda a: a[[1, 1, -1]]),
    "int_array_and_slice": (lambda x: x[1:, np.array([1, 1])], lambda a: a[1:, np.array([1, 1])]),
}


@pytest.mark.parametrize("name", SHAPE_OPS)
def test_shape_op_forward(name):
    md_fn, np_fn = SHAPE_OPS[name]
    check_forward(md_fn, np_fn, [sample((2, 3, 2), 0)])


@pytest.mark.parametrize("name", SHAPE_OPS)
def test_shape_op_gradcheck(name):
    md_fn, _ = SHAPE_OPS[name]
    check_grad(md_fn, [sample((2, 3, 2), 1)], layout="permuted")


def test_getitem_backward_scatter_adds_repeated_indices():
    x = md.tensor(np.array([10.0, 20.0, 30.0]), requires_grad=True)
    y = x[[0, 0, 1]]
    np.testing.assert_array_equal(y.numpy(), [10, 10, 20])
    y.backward(np.array([1.0, 2.0, 4.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0, 0.0])
    m = md.tensor(np.zeros((2, 2)), requires_grad=True)
    m[[1, 1, 1], [0, 0, 1]].sum().backward()
    np.testing.assert_array_equal(m.grad.numpy(), [[0, 0], [2, 1]])


def test_getitem_bad_index():
    with pytest.raises(IndexError, match=r"\(2, 3\)"):
        md.ones(2, 3)[5]
    with pytest.raises(IndexError):
        md.ones(2, 3)[np.array([True, False, True])]


def test_iterating_a_tensor_gives_rows():
    rows = list(md.tensor(np.arange(6.0).reshape(3, 2)))
    assert len(rows) == 3
    np.testing.assert_array_equal(rows[2].numpy(), [4, 5])


def test_shape_op_errors():
    x = md.ones(2, 3)
    with pytest.raises(ValueError, match=r"cannot reshape.*\(2, 3\).*\(4, 2\)"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match="permutation"):
        x.permute(0, 0)
    with pytest.raises(ValueError, match=r"dim1=2 is out of range for a tensor with 2 dimensions"):
        x.transpose(0, 2)
    with pytest.raises(ValueError, match="start_dim"):
        md.ones(2, 3, 4).flatten(2, 1)
    with pytest.raises(ValueError, match="even length"):
        F.pad(x, (1, 2, 3))
    with pytest.raises(ValueError, match="non-negative"):
        F.pad(x, (-1, 0))


CONCAT = {
    "concat0": (
        lambda a, b, c: F.concat([a, b, c]),
        lambda a, b, c: np.concatenate([a, b, c]),
        [(1, 3), (2, 3), (3, 3)],
    ),
    "cat-1": (
        lambda a, b, c: F.cat([a, b, c], axis=-1),
        lambda a, b, c: np.concatenate([a, b, c], -1),
        [(2, 1), (2, 3), (2, 2)],
    ),
    "stack0": (
        lambda a, b, c: F.stack([a, b, c]),
        lambda a, b, c: np.stack([a, b, c]),
        [(2, 3)] * 3,
    ),
    "stack-1": (
        lambda a, b, c: F.stack([a, b, c], axis=-1),
        lambda a, b, c: np.stack([a, b, c], -1),
        [(2, 3)] * 3,
    ),
    "stack1": (
        lambda a, b, c: F.stack((a, b, c), 1),
        lambda a, b, c: np.stack([a, b, c], 1),
        [(2, 3)] * 3,
    ),
}


@pytest.mark.parametrize("name", CONCAT)
def test_concat_stack_forward(name):
    md_fn, np_fn, shapes = CONCAT[name]
    check_forward(md_fn, np_fn, [sample(s, i) for i, s in enumerate(shapes)])


@pytest.mark.parametrize("name", CONCAT)
def test_concat_stack_gradcheck(name):
    md_fn, _, shapes = CONCAT[name]
    check_grad(md_fn, [sample(s, i + 3) for i, s in enumerate(shapes)], layout="permuted")


def test_concat_with_constant_inputs_and_errors():
    x = md.tensor(np.ones((1, 2)), requires_grad=True)
    c = md.tensor(np.zeros((2, 2)))
    y = F.concat([c, x, c])
    y.backward(np.arange(10.0).reshape(5, 2))
    np.testing.assert_array_equal(x.grad.numpy(), [[4, 5]])
    with pytest.raises(ValueError, match=r"tensor 1 has shape \(2, 3\)"):
        F.concat([md.ones(2, 2), md.ones(2, 3)])
    with pytest.raises(ValueError, match="at least one"):
        F.concat([])
    with pytest.raises(ValueError, match=r"tensor 1 has shape \(3,\)"):
        F.stack([md.ones(2), md.ones(3)])


# ----------------------------------------------------------------------------- losses


def ce_ref(x, t, w=None, ignore_index=-100, reduction="mean"):
    """PyTorch's cross-entropy, one sample at a time: the mean divides by the summed weights."""
    C = x.shape[1]
    rows = np.moveaxis(x, 1, -1).reshape(-1, C).astype(np.float64)
    labels = t.reshape(-1)
    losses, weights = np.zeros(len(labels)), np.zeros(len(labels))
    for i, (row, c) in enumerate(zip(rows, labels, strict=True)):
        if c == ignore_index:
            continue
        m = row.max()
        lse = m + np.log(np.sum(np.exp(row - m)))
        weights[i] = 1.0 if w is None else w[c]
        losses[i] = weights[i] * (lse - row[c])
    if reduction == "none":
        return losses.reshape(t.shape)
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / weights.sum()


CE_CASES = {
    "NC": ((4, 3), None, -100),
    "NC_weight": ((4, 3), [0.2, 1.0, 3.0], -100),
    "NC_ignore": ((5, 3), None, 1),
    "NC_weight_ignore": ((5, 3), [0.2, 1.0, 3.0], 2),
    "NCHW": ((2, 3, 2, 2), None, -100),
    "NCHW_weight_ignore": ((2, 3, 2, 2), [0.5, 2.0, 1.0], 0),
    "NCL_ignore_default": ((2, 4, 3), [1.0, 0.1, 0.3, 2.0], -100),
}


def _ce_inputs(case, seed):
    shape, weight, ignore = CE_CASES[case]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 2
    t = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    if ignore == -100 and case.endswith("default"):
        t.flat[0] = -100  # the default ignore_index
    w = None if weight is None else np.array(weight)
    return x, t, w, ignore


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", CE_CASES)
def test_cross_entropy_forward(case, reduction):
    x, t, w, ignore = _ce_inputs(case, 0)
    expected = ce_ref(x, t, w, ignore, reduction)
    for dtype in DTYPES:
        weight = None if w is None else md.tensor(w.astype(dtype))
        out = F.cross_entropy(
            md.tensor(x.astype(dtype)),
            md.tensor(t),
            weight,
            ignore_index=ignore,
            reduction=reduction,
        )
        assert out.dtype == dtype and out.shape == np.shape(expected)
        np.testing.assert_allclose(
            out.numpy(), expected, rtol=1e-5 if dtype == np.float32 else 1e-12
        )
    # Labels and weights may also be NumPy arrays / lists.
    out = F.cross_entropy(md.tensor(x), t, None if w is None else list(w), ignore, reduction)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", CE_CASES)
def test_cross_entropy_gradcheck(case, reduction):
    x, t, w, ignore = _ce_inputs(case, 1)
    assert gradcheck(
        lambda z: F.cross_entropy(z, t, w, ignore_index=ignore, reduction=reduction),
        [md.tensor(x, requires_grad=True)],
    )


def test_cross_entropy_known_values():
    # Uniform logits over C classes: the loss is log C for every sample.
    x = md.zeros(3, 4, requires_grad=True)
    loss = F.cross_entropy(x, md.tensor([0, 1, 3]))
    np.testing.assert_allclose(loss.item(), np.log(4), rtol=1e-6)
    loss.backward()
    # grad = (softmax − onehot) / N
    expected = (np.full((3, 4), 0.25) - np.eye(4)[[0, 1, 3]]) / 3
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)


def test_cross_entropy_weighted_mean_divides_by_summed_weights():
    x = np.array([[2.0, 0.0], [0.0, 2.0]])
    t = np.array([0, 0])
    w = np.array([3.0, 1.0])
    per_sample = ce_ref(x, t, reduction="none")
    expected = (3 * per_sample[0] + 3 * per_sample[1]) / 6  # both targets are class 0 (w = 3)
    np.testing.assert_allclose(F.cross_entropy(md.tensor(x), t, w).item(), expected, rtol=1e-12)


def test_cross_entropy_ignored_targets_get_zero_loss_and_gradient():
    x = md.tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)
    t = np.array([1, 5, 2])
    loss = F.cross_entropy(x, t, ignore_index=5, reduction="none")
    assert loss.numpy()[1] == 0
    loss.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy()[1], 0)
    assert np.all(x.grad.numpy()[[0, 2]] != 0)


def test_cross_entropy_bad_input():
    x = md.zeros(2, 3)
    with pytest.raises(ValueError, match=r"class 3.*3 classes"):
        F.cross_entropy(x, md.tensor([0, 3]))
    with pytest.raises(ValueError, match="class -1"):
        F.cross_entropy(x, md.tensor([-1, 0]))
    with pytest.raises(ValueError, match=r"target must have shape \(2,\)"):
        F.cross_entropy(x, md.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"target must have shape \(2, 4\)"):
        F.cross_entropy(md.zeros(2, 3, 4), md.tensor([0, 1]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, md.tensor([0, 1]), reduction="avg")
    with pytest.raises(TypeError, match="integer"):
        F.cross_entropy(x, md.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        F.cross_entropy(x, md.tensor([0, 1]), weight=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        F.cross_entropy(md.zeros(3), md.tensor([0, 1, 2]))


def _bce_ref(x, y, w=None):
    s = 1 / (1 + np.exp(-x))
    loss = -(y * np.log(s) + (1 - y) * np.log(1 - s))
    return loss if w is None else loss * w


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_with_logits_forward(reduction, weighted):
    x, y = sample((3, 4), 0) * 3, np.random.default_rng(1).random((3, 4))
    w = sample((3, 4), 2, "pos") if weighted else None
    ref = _bce_ref(x, y, w)
    ref = {"mean": ref.mean(), "sum": ref.sum(), "none": ref}[reduction]
    for dtype in DTYPES:
        out = F.binary_cross_entropy_with_logits(
            md.tensor(x.astype(dtype)), md.tensor(y.astype(dtype)), w, reduction=reduction
        )
        assert out.dtype == dtype
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_with_logits_gradcheck(reduction, weighted):
    x, y = sample((2, 3), 3) * 3, np.random.default_rng(4).random((2, 3))
    w = sample((2, 3), 5, "pos") if weighted else None
    assert gradcheck(
        lambda a, b: F.binary_cross_entropy_with_logits(a, b, w, reduction=reduction),
        [md.tensor(x, requires_grad=True), md.tensor(y, requires_grad=True)],
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits_is_stable_for_huge_logits(dtype):
    x = md.tensor(np.array([1000.0, -1000.0, 1000.0, -1000.0], dtype), requires_grad=True)
    y = md.tensor(np.array([0.0, 1.0, 1.0, 0.0], dtype))
    loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    np.testing.assert_array_equal(loss.numpy(), [1000.0, 1000.0, 0.0, 0.0])
    loss.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, -1.0, 0.0, 0.0])  # sigmoid(x) − y


def test_bce_with_logits_gradient_is_exact_at_zero():
    x = md.tensor(np.zeros(3), requires_grad=True)
    y = np.array([0.0, 0.3, 1.0])
    F.binary_cross_entropy_with_logits(x, y, reduction="sum").backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0.5 - y)  # sigmoid(0) − y, exactly
    x32 = md.tensor(np.zeros(2, np.float32), requires_grad=True)
    F.binary_cross_entropy_with_logits(x32, np.array([0.0, 1.0]), reduction="mean").backward()
    np.testing.assert_array_equal(x32.grad.numpy(), np.array([0.25, -0.25], np.float32))
    assert F.binary_cross_entropy_with_logits(x, y, reduction="sum").item() == pytest.approx(
        3 * np.log(2)
    )


def _smooth_l1_ref(d, beta):
    ad = np.abs(d)
    if beta == 0:
        return ad
    return np.where(ad < beta, 0.5 * d * d / beta, ad - 0.5 * beta)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("beta", [1.0, 0.5, 1 / 9, 0.0])
def test_smooth_l1_forward_and_gradcheck(beta, reduction):
    x, t = sample((3, 4), 0), sample((3, 4), 1)
    ref = _smooth_l1_ref(x - t, beta)
    ref = {"mean": ref.mean(), "sum": ref.sum(), "none": ref}[reduction]
    for dtype in DTYPES:
        out = F.smooth_l1_loss(
            md.tensor(x.astype(dtype)), md.tensor(t.astype(dtype)), beta, reduction
        )
        assert out.dtype == dtype
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert gradcheck(
        lambda a, b: F.smooth_l1_loss(a, b, beta=beta, reduction=reduction),
        [md.tensor(x[:2], requires_grad=True), md.tensor(t[:2], requires_grad=True)],
    )


def test_smooth_l1_known_values():
    x = md.tensor(np.array([0.0, 0.5, 2.0, -3.0]), requires_grad=True)
    loss = F.smooth_l1_loss(x, np.zeros(4), beta=1.0, reduction="none")
    np.testing.assert_allclose(loss.numpy(), [0.0, 0.125, 1.5, 2.5])
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.5, 1.0, -1.0])
    l1 = F.smooth_l1_loss(x, np.zeros(4), beta=0.0, reduction="sum")
    assert l1.item() == 5.5
    with pytest.raises(ValueError, match="beta"):
        F.smooth_l1_loss(x, np.zeros(4), beta=-1.0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_forward_and_gradcheck(reduction):
    x, t = sample((3, 4), 0), sample((3, 4), 1)
    ref = (x - t) ** 2
    ref = {"mean": ref.mean(), "sum": ref.sum(), "none": ref}[reduction]
    for dtype in DTYPES:
        out = F.mse_loss(md.tensor(x.astype(dtype)), md.tensor(t.astype(dtype)), reduction)
        assert out.dtype == dtype
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert gradcheck(
        lambda a, b: F.mse_loss(a, b, reduction=reduction),
        [md.tensor(x, requires_grad=True), md.tensor(t, requires_grad=True)],
    )


@pytest.mark.parametrize(
    "loss",
    [F.binary_cross_entropy_with_logits, F.smooth_l1_loss, F.mse_loss],
    ids=lambda f: f.__name__,
)
def test_elementwise_losses_bad_input(loss):
    x = md.zeros(2, 3)
    with pytest.raises(ValueError, match=r"target must have input's shape \(2, 3\)"):
        loss(x, md.zeros(3))
    with pytest.raises(ValueError, match="reduction"):
        loss(x, md.zeros(2, 3), reduction="max")
    with pytest.raises(TypeError, match="float32.*float64|float64.*float32"):
        loss(x, md.tensor(np.zeros((2, 3))))


# ----------------------------------------------------------------------------- property tests


@settings(max_examples=15, deadline=None)
@given(data=st.data(), shapes=S.broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
def test_property_broadcast_add_mul(data, shapes):
    a = data.draw(S.float_arrays(shapes[0]))
    b = data.draw(S.float_arrays(shapes[1]))
    out = md.tensor(a) * md.tensor(b) + md.tensor(b)
    np.testing.assert_allclose(out.numpy(), a * b + b, rtol=1e-12, atol=1e-12)
    ta, tb = md.tensor(a, requires_grad=True), md.tensor(b, requires_grad=True)
    assert gradcheck(lambda x, y: x * y + x + y, [ta, tb])


@settings(max_examples=15, deadline=None)
@given(data=st.data(), shape=S.shapes(min_dims=0, max_dims=3, max_side=3))
def test_property_sum_over_random_axes(data, shape):
    axis = data.draw(S.reduction_axes(len(shape)))
    keepdims = data.draw(st.booleans())
    a = data.draw(S.float_arrays(shape))
    x = md.tensor(a, requires_grad=True)
    out = x.sum(axis, keepdims)
    np.testing.assert_allclose(out.numpy(), a.sum(axis=axis, keepdims=keepdims), atol=1e-12)
    assert gradcheck(lambda t: t.sum(axis, keepdims) * 2.0, [x])


@settings(max_examples=10, deadline=None)
@given(data=st.data(), shape=S.shapes(min_dims=1, max_dims=3, max_side=3))
def test_property_max_over_random_axes(data, shape):
    axis = data.draw(S.reduction_axes(len(shape)))
    a = data.draw(S.float_arrays(shape, unique=True))
    x = md.tensor(a, requires_grad=True)
    np.testing.assert_array_equal(x.max(axis).numpy(), a.max(axis=axis))
    assert gradcheck(lambda t: t.max(axis), [x])


@settings(max_examples=10, deadline=None)
@given(data=st.data(), shapes=S.matmul_shapes())
def test_property_matmul(data, shapes):
    a = data.draw(S.float_arrays(shapes[0]))
    b = data.draw(S.float_arrays(shapes[1]))
    np.testing.assert_allclose((md.tensor(a) @ md.tensor(b)).numpy(), a @ b, atol=1e-12)
    assert gradcheck(
        lambda x, y: x @ y, [md.tensor(a, requires_grad=True), md.tensor(b, requires_grad=True)]
    )
