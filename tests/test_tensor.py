"""Tensor basics: dtypes, properties, conversions, operators, comparisons, factories, bad input."""

import numpy as np
import pytest

import minidense as md
from minidense import Tensor

# ----------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize(
    "data, dtype",
    [
        (1.5, np.float32),  # Python float
        ([1.0, 2.0], np.float32),  # list of floats
        ([[1, 2.5]], np.float32),  # mixed list
        (np.float64(2.0), np.float64),  # NumPy float64 scalar keeps its dtype
        (np.ones(3), np.float64),  # float64 arrays stay float64
        (np.ones(3, np.float32), np.float32),
        (3, np.int64),  # Python int
        ([1, 2, 3], np.int64),
        (np.arange(3, dtype=np.int32), np.int32),
        ([True, False], np.bool_),
    ],
)
def test_default_dtypes(data, dtype):
    assert md.tensor(data).dtype == np.dtype(dtype)
    assert Tensor(data).dtype == np.dtype(dtype)


def test_explicit_dtype_and_float64_throughout():
    x = md.tensor([1, 2], dtype=np.float64, requires_grad=True)
    assert x.dtype == np.float64
    y = ((x * 2 + 1) ** 2 / 3 - x).exp().log().sqrt().sum()
    assert y.dtype == np.float64
    y.backward()
    assert x.grad.dtype == np.float64


def test_float32_stays_float32_with_python_and_float64_operands():
    x = md.tensor([1.0, 2.0])
    assert (x * 2.5).dtype == np.float32
    assert (x + np.ones(2)).dtype == np.float32  # arrays meet a tensor in its own dtype
    assert (x**2).dtype == np.float32
    assert (np.float64(3.0) * x).dtype == np.float32


def test_python_floats_meet_float64_tensors_unrounded():
    x = md.tensor(np.ones(1))
    assert (x * 0.1).item() == 0.1  # not float32(0.1) = 0.10000000149...
    assert (0.1 + x - 1).item() == (0.1 + 1.0) - 1.0
    assert md.F.where(np.array([True]), 0.1, x).item() == 0.1


def test_tensor_copies_but_constructor_shares():
    a = np.zeros(3)
    t = md.tensor(a)
    a[0] = 5
    assert t.numpy()[0] == 0
    s = Tensor(a)
    assert s.numpy()[0] == 5


# ----------------------------------------------------------------------------- properties


def test_properties():
    x = md.zeros(2, 3, 4)
    assert x.shape == (2, 3, 4)
    assert x.ndim == 3
    assert x.size == 24
    assert x.dtype == np.float32
    assert x.device == "cpu"
    assert len(x) == 2
    assert not x.requires_grad
    assert x.grad is None
    assert x.is_leaf
    s = md.tensor(2.0)
    assert s.shape == () and s.ndim == 0
    with pytest.raises(TypeError, match="0-d"):
        len(s)


def test_item_and_numpy():
    assert md.tensor(3.25).item() == 3.25
    assert isinstance(md.tensor([[7]]).item(), int)
    assert md.tensor([[1.5]]).item() == 1.5
    with pytest.raises(ValueError, match="one element"):
        md.tensor([1.0, 2.0]).item()
    a = np.arange(6.0).reshape(2, 3)
    x = md.tensor(a)
    n = x.numpy()
    assert isinstance(n, np.ndarray)
    np.testing.assert_array_equal(n, a)
    np.testing.assert_array_equal(np.asarray(x), a)
    assert x.tolist() == a.tolist()


def test_repr_mentions_grad_and_dtype():
    assert "requires_grad=True" in repr(md.tensor([1.0], requires_grad=True))
    assert "float64" in repr(md.tensor(np.ones(1)))
    assert "float64" not in repr(md.tensor([1.0]))


def test_device_moves():
    x = md.ones(2)
    assert x.to("cpu") is x and x.cpu() is x
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda'"):
        x.to("tpu")


def test_as_tensor_does_not_copy():
    a = np.zeros(3, np.float32)
    t = md.as_tensor(a)
    a[1] = 4
    assert t.numpy()[1] == 4
    assert md.as_tensor(t) is t
    assert md.as_tensor(t, dtype=np.float64).dtype == np.float64


def test_bool_of_tensor():
    assert bool(md.tensor(1.0)) is True
    assert bool(md.tensor([0.0])) is False
    with pytest.raises(ValueError, match="ambiguous"):
        bool(md.tensor([1.0, 2.0]))


def test_casts():
    x = md.tensor([1.7, -2.2])
    assert x.double().dtype == np.float64
    assert x.long().dtype == np.int64
    np.testing.assert_array_equal(x.long().numpy(), [1, -2])
    assert x.double().float().dtype == np.float32


def test_cast_backward_returns_gradient_in_input_dtype():
    x = md.tensor([1.0, 2.0], requires_grad=True)
    (x.double() * 3).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.numpy(), [3, 3])


# ------------------------------------------------------------------------- requires_grad, detach


def test_requires_grad_propagates():
    x = md.tensor([1.0, 2.0], requires_grad=True)
    c = md.tensor([3.0, 4.0])
    assert (x * c).requires_grad
    assert not (c * c).requires_grad
    assert not (x * c).is_leaf


def test_detach_shares_data_and_cuts_graph():
    x = md.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.is_leaf
    np.testing.assert_array_equal(d.numpy(), y.numpy())
    z = (d * x).sum()
    z.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])  # d acts as a constant


def test_requires_grad_on_int_or_bool_tensor_is_a_type_error():
    with pytest.raises(TypeError, match="floating"):
        md.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="int64"):
        md.tensor([1, 2]).requires_grad_()
    with pytest.raises(TypeError, match="bool"):
        Tensor([True], requires_grad=True)


# ----------------------------------------------------------------------------- operators


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3)).astype(np.float32)
    b = rng.uniform(0.5, 2.0, (2, 3)).astype(np.float32)
    return a, b


@pytest.mark.parametrize(
    "op",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a * b,
        lambda a, b: a / b,
        lambda a, b: b**a,
        lambda a, b: a @ b.T,
    ],
    ids=["add", "sub", "mul", "div", "pow", "matmul"],
)
def test_binary_operators_match_numpy(pair, op):
    a, b = pair
    out = op(md.tensor(a), md.tensor(b))
    assert isinstance(out, Tensor) and out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), op(a, b), rtol=1e-6)


def test_unary_minus_and_scalar_power(pair):
    a, _ = pair
    np.testing.assert_array_equal((-md.tensor(a)).numpy(), -a)
    np.testing.assert_allclose((md.tensor(a) ** 3).numpy(), a**3, rtol=1e-6)
    np.testing.assert_allclose((md.tensor(a) ** 2).numpy(), a * a, rtol=1e-6)


def test_power_with_array_exponent():
    x = md.tensor([2.0, 3.0])
    np.testing.assert_allclose((x ** np.array([2.0, 0.5])).numpy(), [4.0, np.sqrt(3.0)], rtol=1e-6)


@pytest.mark.parametrize(
    "expr, expected",
    [
        (lambda x: 2 - x, [1.0, -1.0]),
        (lambda x: 2 + x, [3.0, 5.0]),
        (lambda x: 2 * x, [2.0, 6.0]),
        (lambda x: 6 / x, [6.0, 2.0]),
        (lambda x: 2**x, [2.0, 8.0]),
        (lambda x: np.array([1.0, 2.0]) * x, [1.0, 6.0]),
        (lambda x: np.array([1.0, 2.0]) - x, [0.0, -1.0]),
        (lambda x: np.array([1.0, 2.0]) + x, [2.0, 5.0]),
        (lambda x: np.array([3.0, 3.0]) / x, [3.0, 1.0]),
        (lambda x: np.array([[1.0, 2.0]]) @ x, [7.0]),
        (lambda x: x - 1, [0.0, 2.0]),
        (lambda x: x / 2, [0.5, 1.5]),
    ],
)
def test_reflected_operators_give_tensors(expr, expected):
    x = md.tensor([1.0, 3.0], requires_grad=True)
    out = expr(x)
    assert isinstance(out, Tensor)
    assert out.requires_grad
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)


def test_reflected_operator_gradients():
    x = md.tensor([1.0, 2.0], dtype=np.float64, requires_grad=True)
    (2 - x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [-1, -1])
    x.zero_grad()
    (np.array([3.0, 4.0]) * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3, 4])
    x.zero_grad()
    (1 / x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [-1, -0.25])


@pytest.mark.parametrize(
    "op, np_op",
    [
        (lambda a, b: a < b, np.less),
        (lambda a, b: a <= b, np.less_equal),
        (lambda a, b: a > b, np.greater),
        (lambda a, b: a >= b, np.greater_equal),
        (lambda a, b: a == b, np.equal),
        (lambda a, b: a != b, np.not_equal),
    ],
)
def test_comparisons_give_bool_tensors_without_grad(op, np_op):
    a = np.array([1.0, 2.0, 3.0], np.float32)
    b = np.array([2.0, 2.0, 2.0], np.float32)
    x = md.tensor(a, requires_grad=True)
    for other in (md.tensor(b), b, 2.0):
        out = op(x, other)
        assert isinstance(out, Tensor)
        assert out.dtype == np.bool_
        assert not out.requires_grad and out.is_leaf
        np.testing.assert_array_equal(out.numpy(), np_op(a, b))
    # A NumPy array on the left defers to the tensor too.
    out = op(b, x)
    assert isinstance(out, Tensor)
    np.testing.assert_array_equal(out.numpy(), np_op(b, a))


def test_tensor_is_hashable_by_identity():
    a, b = md.zeros(2), md.zeros(2)
    d = {a: 1, b: 2}
    assert d[a] == 1 and d[b] == 2


# ----------------------------------------------------------------------------- factories


def test_factories_shapes_and_dtypes():
    assert md.zeros(2, 3).shape == (2, 3)
    assert md.zeros((2, 3)).shape == (2, 3)
    np.testing.assert_array_equal(md.zeros(2).numpy(), [0, 0])
    np.testing.assert_array_equal(md.ones(2, dtype=np.float64).numpy(), [1, 1])
    assert md.ones(2, dtype=np.float64).dtype == np.float64
    f = md.full((2, 2), 7)
    assert f.dtype == np.float32
    np.testing.assert_array_equal(f.numpy(), np.full((2, 2), 7))
    assert md.full(3, 1.5).shape == (3,)
    for fn in (md.zeros, md.ones, md.randn, md.rand):
        t = fn(4, 5)
        assert t.dtype == np.float32 and t.shape == (4, 5)
        assert fn(2, requires_grad=True).requires_grad
    like = md.tensor(np.ones((2, 2)))
    assert md.zeros_like(like).dtype == np.float64
    np.testing.assert_array_equal(md.ones_like(like).numpy(), np.ones((2, 2)))


def test_factory_values_and_ranges():
    r = md.rand(1000).numpy()
    assert r.min() >= 0 and r.max() < 1
    n = md.randn(2000, dtype=np.float64).numpy()
    assert abs(n.mean()) < 0.1 and 0.9 < n.std() < 1.1


def test_arange():
    a = md.arange(5)
    assert a.dtype == np.int64
    np.testing.assert_array_equal(a.numpy(), np.arange(5))
    b = md.arange(0.0, 1.0, 0.25)
    assert b.dtype == np.float32  # float arguments follow the float32 default
    np.testing.assert_array_equal(b.numpy(), [0, 0.25, 0.5, 0.75])
    assert md.arange(1, 7, 2, dtype=np.float64).dtype == np.float64
    np.testing.assert_array_equal(md.arange(1, 7, 2).numpy(), [1, 3, 5])


def test_manual_seed_reproducibility():
    md.manual_seed(123)
    a, b = md.randn(3, 2).numpy(), md.rand(4).numpy()
    md.manual_seed(123)
    a2, b2 = md.randn(3, 2).numpy(), md.rand(4).numpy()
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)
    md.manual_seed(124)
    assert not np.array_equal(md.randn(3, 2).numpy(), a)
    gen = np.random.default_rng(5)
    c = md.randn(3, generator=gen).numpy()
    np.testing.assert_array_equal(c, np.random.default_rng(5).standard_normal(3).astype(np.float32))


def test_factory_bad_arguments():
    with pytest.raises(ValueError, match="non-negative"):
        md.zeros(-1, 2)
    with pytest.raises(TypeError, match="float32 or float64"):
        md.zeros(2, dtype=np.int64)
    with pytest.raises(TypeError, match="float32 or float64"):
        md.randn(2, dtype=np.float16)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "data",
    ["abc", ["a", "b"], None, [None, 1.0], object(), [object()], [[1.0], [1.0, 2.0]], 1 + 2j],
    ids=["str", "str-list", "None", "None-list", "object", "object-list", "ragged", "complex"],
)
def test_non_numeric_data_is_a_type_error(data):
    with pytest.raises(TypeError, match="numeric"):
        md.tensor(data)
    with pytest.raises(TypeError, match="numeric"):
        Tensor(data)


def test_float16_is_a_type_error():
    with pytest.raises(TypeError, match="float16"):
        md.tensor(np.ones(2, np.float16))
    with pytest.raises(TypeError, match="float16"):
        md.tensor([1.0], dtype=np.float16)


def test_non_numeric_operand_is_a_type_error():
    x = md.tensor([1.0])
    with pytest.raises(TypeError, match="numeric"):
        x + "a"
    with pytest.raises(TypeError, match="numeric"):
        None * x


def test_mixing_float32_and_float64_tensors_is_a_type_error():
    a = md.tensor([1.0, 2.0])
    b = md.tensor(np.array([1.0, 2.0]))
    for op in (
        lambda: a + b,
        lambda: a - b,
        lambda: a * b,
        lambda: a / b,
        lambda: a**b,
        lambda: b @ a,
        lambda: md.F.concat([a, b]),
    ):
        with pytest.raises(TypeError, match="float32.*float64|float64.*float32"):
            op()


def test_shapes_that_do_not_broadcast_are_a_value_error_naming_them():
    a, b = md.ones(3), md.ones(4)
    for op, name in (
        (lambda: a + b, "Add"),
        (lambda: a - b, "Add"),
        (lambda: a * b, "Mul"),
        (lambda: a / b, "Div"),
        (lambda: a**b, "Pow"),
    ):
        with pytest.raises(
            ValueError, match=rf"cannot broadcast shapes \(3,\) and \(4,\) in {name}"
        ):
            op()
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        md.F.where(np.ones(3, bool), a, b)
    with pytest.raises(ValueError, match=r"batch dimensions.*\(2, 3, 4\).*\(3, 4, 5\)"):
        md.ones(2, 3, 4) @ md.ones(3, 4, 5)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 3\)"):
        md.ones(2, 3) @ md.ones(2, 3)


def test_integer_tensors_promote_like_pytorch():
    """int (op) float gives the float side's dtype (float32 by default), never NumPy's float64."""
    i = md.tensor([1, 2, 3])
    f64 = md.tensor([1.0, 2.0, 3.0], dtype="float64")
    assert (i + 0.5).dtype == np.float32
    assert (0.5 * i).dtype == np.float32
    assert (i / 2).dtype == np.float32
    assert (i**0.5).dtype == np.float32
    assert (i * f64).dtype == np.float64
    assert (i**2).dtype == np.int64 and (i**2).tolist() == [1, 4, 9]
    assert (2 - i).dtype == np.int64 and (2 - i).tolist() == [1, 0, -1]
    np.testing.assert_allclose((i / 2).numpy(), [0.5, 1.0, 1.5])


def test_joining_and_selecting_promote_like_arithmetic():
    """cat, stack, where, maximum and minimum of an integer and a float32 tensor are float32, as
    i + f is (NumPy's concatenate and where gave float64, which then refused to mix)."""
    i, f, c = md.tensor([1, 2]), md.tensor([0.5, 2.5]), np.array([True, False])
    for out in (md.F.cat([i, f]), md.F.cat([f, i]), md.F.stack([i, f]), md.F.where(c, i, f),
                md.F.where(c, i, 2.5), md.F.maximum(i, f), md.F.minimum(i, 1.5)):  # fmt: skip
        assert out.dtype == np.float32
    np.testing.assert_array_equal(md.F.where(c, i, f).numpy(), [1.0, 2.5])
    np.testing.assert_array_equal(md.F.maximum(i, f).numpy(), [1.0, 2.5])
    assert md.F.cat([i, md.tensor(np.array([3], np.int32))]).dtype == np.int64
    w = md.tensor([0.5, 2.5], requires_grad=True)
    (md.F.cat([i, w]) * md.ones(4)).sum().backward()  # used to fail: float64 * float32
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 1.0])


def test_astype_refuses_float16():
    with pytest.raises(TypeError, match="float16"):
        md.tensor([1.0]).astype(np.float16)


def test_array_protocol_honours_copy():
    t = md.tensor([1.0, 2.0, 3.0])
    a = np.array(t)  # NumPy 2 asks __array__ for a copy
    a[0] = 99
    np.testing.assert_array_equal(t.numpy(), [1, 2, 3])
    assert np.shares_memory(np.asarray(t), t.data)  # no copy unless needed
    assert np.shares_memory(np.asarray(t, copy=False), t.data)
    assert np.asarray(t, dtype=np.float32, copy=False).dtype == np.float32  # no change needed
    b = np.array(t, dtype=np.float64)
    b[1] = 77
    np.testing.assert_array_equal(t.numpy(), [1, 2, 3])
    assert b.dtype == np.float64
    with pytest.raises(ValueError, match="needs a copy"):
        np.asarray(t, dtype=np.float64, copy=False)
    c = t.__array__(copy=True)
    assert not np.shares_memory(c, t.data)


def test_matmul_promotes_an_integer_side_like_arithmetic():
    w = md.tensor(np.ones((3, 2), np.float32), requires_grad=True)
    i = md.tensor(np.ones((4, 3), np.int64))
    y = i @ w
    assert y.dtype == np.float32 and y.dtype == (i * w[0, 0]).dtype
    np.testing.assert_array_equal(y.numpy(), np.full((4, 2), 3.0))
    (y + md.zeros(2)).sum().backward()  # used to fail: float64 + float32
    assert w.grad.dtype == np.float32
    np.testing.assert_array_equal(w.grad.numpy(), np.full((3, 2), 4.0))
    assert (np.ones((2, 4), np.float32) @ i).dtype == np.float32  # reflected
    assert (i @ np.ones((3, 2), np.float32)).dtype == np.float32
    assert (i @ md.tensor(np.ones((3, 2)), dtype=np.float64)).dtype == np.float64
    assert (i @ md.tensor(np.ones((3, 2), np.int64))).dtype.kind == "i"


def test_array_protocol_of_a_device_tensor():
    from minidense.backend import cuda as C

    if not C.is_available():
        pytest.skip("no CUDA device or simulator")
    t = md.tensor([1.0, 2.0]).to("cuda")
    np.testing.assert_array_equal(np.asarray(t), [1.0, 2.0])  # a host copy
    with pytest.raises(ValueError, match="copying it to the host"):
        np.asarray(t, copy=False)
