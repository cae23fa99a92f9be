"""In-place edge cases found by comparing minidense with PyTorch on cases the first tests did not
use: a tensor that requires grad written into one that does not, ``**=``, an integer tensor
clamped to a float bound, ops that save only what their backward reads (so that changing a
tensor they do not need is no error, as in PyTorch), and copies (deepcopy, pickle) of tensors
that have views.
"""

import copy
import pickle
import re

import numpy as np
import pytest

import minidense as md
from minidense import nn, optim

DEVICES = ["cpu", "cuda"]


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ------------------------------------------------------------ writing a grad into a plain tensor


@pytest.mark.parametrize("device", DEVICES)
def test_item_assignment_of_a_tensor_that_requires_grad_is_recorded(device):
    """``out[i] = f(w)`` into a plain tensor: ``out`` joins the graph, the gradient reaches w."""
    w_np = rand(3)
    w = md.tensor(w_np, requires_grad=True)
    out = md.zeros(2, 3, dtype=np.float64).to(device)
    out[0] = w.to(device) * 2
    out[1] = w.to(device) * w.to(device)
    assert out.requires_grad and not out.is_leaf
    (out * out).sum().backward()
    # d/dw [(2w)² + (w²)²] = 8w + 4w³
    np.testing.assert_allclose(w.grad.numpy(), 8 * w_np + 4 * w_np**3, rtol=1e-12)


def test_copy_and_fill_from_a_tensor_that_requires_grad_are_recorded():
    w = md.tensor(rand(3), requires_grad=True)
    s = md.tensor(1.5, dtype=np.float64, requires_grad=True)
    x = md.zeros(2, 3, dtype=np.float64)
    x.copy_(w)  # broadcast over the rows
    y = md.zeros(4, dtype=np.float64)
    y.fill_(s)
    (x.sum() * 3 + (y * y).sum()).backward()
    np.testing.assert_allclose(w.grad.numpy(), np.full(3, 6.0))
    assert s.grad.item() == pytest.approx(4 * 2 * 1.5)


def test_copy_casts_and_keeps_the_gradient():
    w = md.tensor(rand(3), requires_grad=True)  # float64 into float32: the cast is recorded
    x = md.zeros(3)
    x.copy_(w)
    assert x.dtype == np.float32 and x.requires_grad
    (x * 2).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), np.full(3, 2.0))


def test_gradcheck_a_plain_tensor_filled_by_item_assignment():
    def fn(w, v):
        out = md.zeros(3, 4, dtype=np.float64)
        out[::2, 1:3] = w  # stepped slice, broadcast
        out.T[-1] = v * v  # through a transposed view, negative index
        return out * out

    assert md.gradcheck(fn, [md.tensor(rand(2), requires_grad=True),
                             md.tensor(rand(3, seed=1), requires_grad=True)])  # fmt: skip


def test_copy_from_a_tensor_that_requires_grad_into_a_parameter_is_refused():
    p = nn.Parameter(np.zeros(3))
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        p.copy_(md.tensor(rand(3), requires_grad=True))
    with md.no_grad():  # loading values into a parameter: the usual way
        p.copy_(md.tensor(rand(3), requires_grad=True))
    assert p.is_leaf


# ------------------------------------------------------------- a number too big for integers


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "dtype, value",
    [(np.int32, 1e30), (np.int32, 2**31), (np.int64, float("nan")), (np.uint8, -1),
     (np.uint8, 256), (np.int64, float("inf"))],
)  # fmt: skip
def test_a_number_that_does_not_fit_an_integer_tensor_is_refused(device, dtype, value):
    """NumPy wraps it silently (t[0] = 1e30 on int32 gave -2**31); PyTorch refuses, so do we:
    item assignment, fill_ and copy_ of a number."""
    t = md.tensor(np.array([1, 2], dtype)).to(device)
    for write in (lambda: t.__setitem__(0, value), lambda: t.fill_(value), lambda: t.copy_(value)):
        with pytest.raises(
            ValueError, match=re.escape(f"fill_: {value} does not fit the {t.dtype}")
        ):
            write()
    assert t.numpy().tolist() == [1, 2] and t._version == 0
    t[0] = 2.9  # in range: truncated, as PyTorch
    t.fill_(np.iinfo(dtype).max)
    assert t.numpy().tolist() == [np.iinfo(dtype).max] * 2


# ------------------------------------------------------------------------------------- **=


@pytest.mark.parametrize("device", DEVICES)
def test_ipow_updates_in_place(device):
    """Without ``__ipow__``, ``p **= 2`` would rebind ``p`` and leave the tensor unchanged."""
    a = np.array([1.0, 2.0, -3.0])
    t = md.tensor(a).to(device)
    alias, version = t, t._version
    t **= 2
    assert t is alias and t._version == version + 1
    np.testing.assert_array_equal(alias.numpy(), a**2)
    t.pow_(md.tensor(np.array([0.5, 1.0, 0.0])).to(device))  # a tensor exponent
    np.testing.assert_allclose(alias.numpy(), [1.0, 4.0, 1.0])
    i = md.tensor(np.array([2, 3])).to(device)
    i **= 3
    assert i.dtype == np.int64 and i.numpy().tolist() == [8, 27]


def test_ipow_follows_the_safety_rules():
    p = nn.Parameter(np.array([1.0, 2.0]))
    with pytest.raises(RuntimeError, match=r"pow_: a leaf Variable that requires grad"):
        p **= 2
    with md.no_grad():
        p **= 2
    np.testing.assert_array_equal(p.numpy(), [1.0, 4.0])
    i = md.tensor(np.array([4, 9]))
    with pytest.raises(TypeError, match=r"pow_: result type float32 can't be cast"):
        i **= 0.5  # as PyTorch: a float result does not fit an integer tensor


def test_gradcheck_through_pow_on_a_non_leaf():
    def fn(x, e):
        y = x * x + 1  # positive, so a tensor exponent has a gradient
        y **= 3
        y.pow_(e)
        return y

    assert md.gradcheck(fn, [md.tensor(rand(2, 3), requires_grad=True),
                             md.tensor(rand(3, seed=1) * 0.3, requires_grad=True)])  # fmt: skip


# ------------------------------------------------------------- clamp: an integer meets a float


@pytest.mark.parametrize("device", DEVICES)
def test_clamping_an_integer_tensor_to_a_float_bound_gives_floats(device):
    """As PyTorch: the bound is not truncated (clamp(min=0.5) once gave 0 for -3)."""
    t = md.tensor(np.array([-3, 0, 5])).to(device)
    lo = t.clamp(min=0.5)
    assert lo.dtype == np.float32 and lo.numpy().tolist() == [0.5, 0.5, 5.0]
    assert t.clamp(-0.5, np.float32(2.5)).numpy().tolist() == [-0.5, 0.0, 2.5]
    assert t.clamp(max=2).dtype == np.int64  # integer bounds keep integers
    with pytest.raises(TypeError, match=r"clamp_: result type float32 can't be cast"):
        t.clamp_(min=0.5)
    assert t.numpy().tolist() == [-3, 0, 5]


# ------------------------------------------------- an op saves only what its backward reads


@pytest.mark.parametrize(
    "op",
    [lambda u, c: u * c, lambda u, c: c * u, lambda u, c: u / c, lambda u, c: u @ c.T,
     lambda u, c: c.T @ u, lambda u, c: u.reshape(-1) @ c.reshape(-1)],
    ids=["mul", "rmul", "div", "matmul", "rmatmul", "dot"],
)  # fmt: skip
def test_changing_an_input_the_backward_does_not_read_is_no_error(op):
    """u's gradient through u·c needs c, not u: changing u in place after the op is fine (as in
    PyTorch), and the gradient is the one of the values the op saw."""
    x = md.tensor(rand(3, 3), requires_grad=True)
    c_np = rand(3, 3, seed=1) + 3.0
    u = x * 1
    y = op(u, md.tensor(c_np))
    u.add_(100.0)
    y.sum().backward()
    xr = md.tensor(x.numpy(), requires_grad=True)
    op(xr * 1, md.tensor(c_np)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xr.grad.numpy(), rtol=1e-12)


def test_an_optimizer_step_on_a_weight_whose_value_the_backward_does_not_read():
    """A first layer's weight: its gradient is g·x, so a step between forward and backward is
    no error (PyTorch agrees); the weight of a deeper layer is read and the step is caught."""
    w = nn.Parameter(rand(2, 3))
    x = md.tensor(rand(4, 3, seed=1))
    loss = (x @ w.T).sum()
    with md.no_grad():
        w -= 0.1
    loss.backward()
    np.testing.assert_allclose(w.grad.numpy(), np.tile(x.numpy().sum(axis=0), (2, 1)))
    h = md.tensor(rand(4, 3, seed=1), requires_grad=True)
    loss = (h @ w.T).sum()
    with md.no_grad():
        w -= 0.1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_the_version_check_still_catches_a_value_the_backward_reads():
    x = md.tensor(rand(3), requires_grad=True)
    u = x * 1
    y = u * x  # x's gradient reads u
    u.mul_(2)
    with pytest.raises(RuntimeError, match="input 0 of Mul, is at version 1"):
        y.sum().backward()
    v = x * 1
    z = 1.0 / v  # Div: v's gradient reads v
    v.add_(1)
    with pytest.raises(RuntimeError, match="of Div, is at version 1"):
        z.sum().backward()


# ---------------------------------------------------------- copies of tensors that have views


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_copied_view_stays_a_view_of_the_copied_root(how):
    """A view's family keeps weak references to the live views: a copy once kept the original's
    (deepcopy: the copied view went stale after a write to the copied root) or failed (pickle)."""
    copy_of = copy.deepcopy if how == "deepcopy" else lambda o: pickle.loads(pickle.dumps(o))
    x = md.tensor(np.zeros((2, 3)))
    v, t = x[0], x.T
    x.add_(1)
    x2, v2, t2 = copy_of((x, v, t))
    x2.add_(1)
    assert v2.numpy().tolist() == [2.0] * 3 and t2.numpy()[:, 0].tolist() == [2.0] * 3
    v2.fill_(5.0)
    assert x2.numpy()[0].tolist() == [5.0] * 3 and t2.numpy()[:, 0].tolist() == [5.0] * 3
    assert x2._version == 3 and x._version == 1  # the count goes with the copy, not back
    assert x.numpy().tolist() == [[1.0] * 3] * 2 and v.numpy().tolist() == [1.0] * 3


def test_a_trained_model_pickles():
    """Forward, backward and an optimizer step view the parameters; pickling worked before the
    version counters came and must still."""
    md.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    model(md.tensor(rand(2, 3).astype(np.float32))).sum().backward()
    optim.SGD(model.parameters(), lr=0.1, momentum=0.9).step()
    clone = pickle.loads(pickle.dumps(model))
    for p, q in zip(model.parameters(), clone.parameters(), strict=True):
        np.testing.assert_array_equal(p.numpy(), q.numpy())
        assert q._version == p._version
