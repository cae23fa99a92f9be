"""In-place ops (``+=``, ``add_``, ``copy_``...), views, version counters and the safety rules.

Values against NumPy on both targets (the CUDA path under the simulator), gradients through
in-place ops by gradcheck, every refusal, and the hand-written SGD loop against ``optim.SGD``.
"""

import numpy as np
import pytest

import minidense as md
from minidense import nn, optim

DEVICES = ["cpu", "cuda"]


def rand(*shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def on(device, array, **kw):
    return md.tensor(array, **kw).to(device)


# ------------------------------------------------------------------------------ values


OPS = {
    "iadd": (lambda t, o: t.__iadd__(o), np.add),
    "isub": (lambda t, o: t.__isub__(o), np.subtract),
    "imul": (lambda t, o: t.__imul__(o), np.multiply),
    "itruediv": (lambda t, o: t.__itruediv__(o), np.divide),
    "add_alpha": (lambda t, o: t.add_(o, alpha=0.5), lambda a, b: a + 0.5 * b),
    "sub_alpha": (lambda t, o: t.sub_(o, alpha=2), lambda a, b: a - 2 * b),
    "copy_": (lambda t, o: t.copy_(o), lambda a, b: np.broadcast_to(b, a.shape)),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("rhs_shape", [(2, 3), (3,), (1, 3), (2, 1), ()])
def test_inplace_op_writes_the_broadcast_result_into_its_own_storage(device, op, rhs_shape):
    fn, ref = OPS[op]
    a, b = rand(2, 3), rand(*rhs_shape, seed=1) + 3.0  # away from 0 for the division
    t = on(device, a)
    storage, version = t.data, t._version
    out = fn(t, on(device, b))
    assert out is t and t.data is storage and t.device == device
    assert t._version == version + 1
    np.testing.assert_allclose(t.numpy(), ref(a, b), rtol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_a_right_hand_side_overlapping_the_target(device):
    """``t += t.T`` reads the old values everywhere, as the out-of-place ``t + t.T`` does."""
    a = rand(3, 3)
    t = on(device, a)
    t += t.T
    t.sub_(t[0], alpha=0.5)  # a row of t itself, broadcast over the rows it overwrites
    b = a + a.T
    np.testing.assert_allclose(t.numpy(), b - 0.5 * b[0], rtol=1e-12)


def test_an_integer_tensor_refuses_a_fractional_alpha():
    t = md.tensor([1, 2])
    with pytest.raises(TypeError, match=r"add_: result type float32 can't be cast"):
        t.add_(md.tensor([1, 1]), alpha=0.5)
    t.add_(md.tensor([1, 1]), alpha=2)
    assert t.numpy().tolist() == [3, 4]


@pytest.mark.parametrize("device", DEVICES)
def test_numbers_clamp_fill_zero(device):
    a = rand(2, 3)
    t = on(device, a)
    t += 1.5
    t *= 2
    t /= 4
    t -= 0.25
    np.testing.assert_allclose(t.numpy(), (a + 1.5) * 2 / 4 - 0.25)
    t.clamp_(-0.5, 0.5)
    np.testing.assert_allclose(t.numpy(), np.clip((a + 1.5) * 2 / 4 - 0.25, -0.5, 0.5))
    assert t.fill_(7).numpy().tolist() == [[7.0] * 3] * 2
    assert t.zero_().numpy().tolist() == [[0.0] * 3] * 2
    assert t._version == 7


@pytest.mark.parametrize("device", DEVICES)
def test_integer_tensors_keep_their_dtype(device):
    t = on(device, np.array([1, 2, 3], np.int32))
    t += np.int64(2)
    t *= on(device, np.array([2, 2, 2], np.int64))  # int64 into int32: same kind, cast
    assert t.dtype == np.int32 and t.numpy().tolist() == [6, 8, 10]
    t.fill_(2.7)  # fill_ casts, as PyTorch's
    assert t.numpy().tolist() == [2, 2, 2]


def test_a_float_result_into_an_integer_tensor_is_refused():
    t = md.tensor([1, 2, 3])
    with pytest.raises(TypeError, match=r"add_: result type float32 can't be cast to the desired "
                                        r"output type int64"):  # fmt: skip
        t += 0.5
    with pytest.raises(TypeError, match=r"div_: result type float32 can't be cast"):
        t /= 2
    with pytest.raises(TypeError, match=r"can't be cast to the desired output type bool"):
        md.tensor([True, False]).add_(1)
    assert t.numpy().tolist() == [1, 2, 3] and t._version == 0  # nothing written


def test_shape_device_and_float_mixing_are_refused():
    t = md.zeros(3)
    with pytest.raises(ValueError, match=r"add_: output with shape \(3,\) doesn't match the "
                                         r"broadcast shape"):  # fmt: skip
        t += md.zeros(2, 3)
    with pytest.raises(
        ValueError,
        match=r"mul_: other of shape \(4,\) does not broadcast with the tensor.s shape \(3,\)",
    ):
        t *= np.ones(4, np.float32)
    with pytest.raises(ValueError, match=r"copy_: src of shape \(2,\) cannot be broadcast to "
                                         r"the tensor's shape \(3,\)"):  # fmt: skip
        t.copy_(np.zeros(2))
    with pytest.raises(ValueError, match=r"sub_: all tensors must be on one device"):
        t -= md.zeros(3).to("cuda")
    with pytest.raises(TypeError, match=r"add_: mixed float dtypes \(the tensor is float32, other "
                                        r"is float64\)"):  # fmt: skip
        t += md.zeros(3, dtype=np.float64)
    with pytest.raises(TypeError, match=r"alpha must be a number, got str"):
        t.add_(1, alpha="2")
    with pytest.raises(TypeError, match=r"fill_: value must be a number, got str"):
        t.fill_("1")
    with pytest.raises(ValueError, match=r"fill_: value must be a number or a 0-d tensor"):
        t.fill_(md.zeros(3))
    with pytest.raises(
        TypeError, match=r"add_: other must be a number, an array or a Tensor, got str"
    ):
        t += "a"
    assert t._version == 0


def test_copy_casts_moves_and_broadcasts():
    t = md.zeros(2, 3)
    t.copy_(md.tensor([1, 2, 3]).to("cuda"))  # int64 on the GPU → float32 on the CPU
    assert t.dtype == np.float32 and t.device == "cpu"
    assert t.numpy().tolist() == [[1.0, 2.0, 3.0]] * 2
    t.copy_(t.T.T[::-1])  # a source overlapping the target
    assert t.numpy().tolist() == [[1.0, 2.0, 3.0]] * 2


def test_read_only_memory_is_refused_with_a_hint():
    a = np.ones(3, np.float32)
    a.flags.writeable = False
    with pytest.raises(ValueError, match=r"read-only.*clone\(\) it first"):
        md.Tensor(a).mul_(2)


# ------------------------------------------------------------------------------ safety rules


def test_a_leaf_that_requires_grad_is_refused_outside_no_grad():
    p = nn.Parameter(np.ones(3, np.float32))
    with pytest.raises(RuntimeError, match=r"sub_: a leaf Variable that requires grad is being "
                                           r"used in an in-place operation \(the leaf: Parameter "
                                           r"of shape \(3,\)"):  # fmt: skip
        p -= 1
    with pytest.raises(RuntimeError, match=r"a view of a leaf Variable that requires grad"):
        p[1:].zero_()
    assert p.numpy().tolist() == [1.0, 1.0, 1.0] and p._version == 0
    with md.no_grad():
        p -= 1
        p[1:] += 1
    # 3 writes: ``-=``, then ``p[1:] += 1`` is add_ on a view and __setitem__'s copy_ (PyTorch too)
    assert p.numpy().tolist() == [0.0, 1.0, 1.0] and p._version == 3 and p.is_leaf


def test_a_view_made_under_no_grad_is_refused_with_grad_mode_on():
    y = md.tensor(rand(3), requires_grad=True) * 2
    with md.no_grad():
        v = y[:2]
    with pytest.raises(RuntimeError, match=r"mul_: this view was made under no_grad\(\).*"
                                           r"both inside no_grad\(\).*or both outside"):  # fmt: skip
        v *= 3
    with md.no_grad():
        v *= 3  # both inside: allowed, not recorded
    np.testing.assert_allclose(y.numpy()[:2], v.numpy())


def test_backward_refuses_a_saved_tensor_modified_in_place():
    x = md.tensor(rand(3), requires_grad=True)
    y = x.exp()  # Exp saves its output
    y += 1
    with pytest.raises(RuntimeError, match=r"one of the variables needed for gradient computation "
                                           r"has been modified by an inplace operation: \[float64 "
                                           r"tensor of shape \(3,\)\], which is output 0 of Exp, is "
                                           r"at version 1; expected version 0 instead"):  # fmt: skip
        y.sum().backward()
    a = x * 1
    b = a * x  # Mul saves both inputs
    with md.no_grad():
        a.mul_(2)
    with pytest.raises(RuntimeError, match=r"which is input 0 of Mul, is at version 1"):
        b.sum().backward()


def test_an_op_that_saved_nothing_does_not_mind():
    """As in PyTorch: Add saves nothing, so changing its input afterwards is fine."""
    x = md.tensor(rand(3), requires_grad=True)
    y = x * 1
    z = y + 1
    y.mul_(3)
    (z.sum() + y.sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 4.0, 4.0])


def test_an_optimizer_step_between_forward_and_backward_is_caught():
    # Two layers: the second weight is read by the backward (its input requires grad). A lone
    # first layer's weight is not (its gradient is g·x), so there PyTorch and we raise nothing.
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    opt = optim.SGD(model.parameters(), lr=0.1)
    loss = (model(md.tensor(rand(4, 3, dtype=np.float32))) ** 2).mean()
    for p in model.parameters():
        p.grad = md.zeros_like(p)
    opt.step()
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation"):
        loss.backward()


def test_every_inplace_op_bumps_one_counter_shared_by_views_and_detach():
    t = md.zeros(2, 3)
    v, d = t.T, t.detach()
    assert (t._version, v._version, d._version) == (0, 0, 0)
    v += 1
    d.mul_(2)
    t[0, 1] = 5.0
    assert t._version == v._version == d._version == 3
    assert t.numpy().tolist() == [[2.0, 5.0, 2.0], [2.0, 2.0, 2.0]]


# ------------------------------------------------------------------------------ views


@pytest.mark.parametrize("device", DEVICES)
def test_writes_through_views_reach_the_base_and_every_other_view(device):
    """On the GPU a transpose or a strided slice is a copy; the values still agree, as in
    PyTorch where they share memory."""
    a = rand(2, 3, 4)
    t = on(device, a)
    tr = t.permute(2, 0, 1)  # a copy on the GPU, a NumPy view on the CPU
    flat = t.transpose(1, 2).reshape(-1)  # a copy on both targets
    row = t[1, :, ::2]  # strided slice
    col = tr[3]
    want = a.copy()
    row *= 10
    want[1, :, ::2] *= 10
    col += 1
    want[:, :, 3] += 1
    t[0] = -1.0
    want[0] = -1.0
    flat[:4] = np.array([7.0, 8, 9, 10])
    w = want.transpose(0, 2, 1).reshape(-1)  # a copy in NumPy too
    w[:4] = [7, 8, 9, 10]
    want = w.reshape(2, 4, 3).transpose(0, 2, 1)
    np.testing.assert_array_equal(t.numpy(), want)
    np.testing.assert_array_equal(tr.numpy(), want.transpose(2, 0, 1))
    np.testing.assert_array_equal(flat.numpy(), want.transpose(0, 2, 1).reshape(-1))
    np.testing.assert_array_equal(row.numpy(), want[1, :, ::2])
    np.testing.assert_array_equal(col.numpy(), want[:, :, 3])
    assert t._version == tr._version == flat._version == 4


def test_advanced_indexing_makes_a_copy_and_cannot_be_assigned_through():
    t = md.zeros(4)
    c = t[[0, 2]]
    c += 1
    assert t.numpy().tolist() == [0.0] * 4 and t._version == 0
    with pytest.raises(TypeError, match=r"item assignment takes ints, slices, None and \.\.\..*"
                                        r"F\.where"):  # fmt: skip
        t[np.array([True, False, True, False])] = 1.0


def test_data_assignment_replaces_storage_and_is_checked():
    t = md.zeros(2, 2)
    v = t[0]
    t.data = np.ones((3,), np.float32)  # shape may change, as PyTorch's .data =
    assert t.shape == (3,) and t._version == 0
    v += 2  # the old view keeps the old storage
    assert v.numpy().tolist() == [2.0, 2.0] and t.numpy().tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(TypeError, match=r"data must be a Tensor or an array \(NumPy or CUDA\), "
                                        r"got list.*copy_"):  # fmt: skip
        t.data = [1.0, 2.0]
    with pytest.raises(TypeError, match=r"this tensor requires grad, so its data must be floating"):
        md.zeros(2, requires_grad=True).data = np.zeros(2, np.int64)
    with pytest.raises(TypeError, match=r"data must be a float32, float64, integer or bool array"):
        t.data = np.zeros(2, np.float16)


def test_grad_assignment_is_checked():
    p = nn.Parameter(np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError, match=r"assigned grad expected to be a Tensor or None but got "
                                        r"grad of type ndarray"):  # fmt: skip
        p.grad = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"assigned grad has shape \(3, 2\), but the tensor has "
                                         r"\(2, 3\)"):  # fmt: skip
        p.grad = md.zeros(3, 2)
    with pytest.raises(TypeError, match=r"assigned grad has dtype float64, but the tensor is "
                                        r"float32"):  # fmt: skip
        p.grad = md.zeros(2, 3, dtype=np.float64)
    with pytest.raises(ValueError, match=r"assigned grad is on 'cuda', but the tensor is on 'cpu'"):
        p.grad = md.zeros(2, 3).to("cuda")
    assert p.grad is None
    p.grad = md.ones(2, 3)
    p.grad = None
    assert p.grad is None


# ------------------------------------------------------------------------------ gradients


def _check(fn, *arrays):
    inputs = [md.tensor(a, requires_grad=True) for a in arrays]
    assert md.gradcheck(fn, inputs)


def test_gradcheck_through_inplace_arithmetic_on_a_non_leaf():
    def fn(x, w):
        y = x * 1
        y.mul_(w)  # needs y's old value for w's gradient: it was cloned
        y += x
        y.sub_(w, alpha=0.5)
        y /= w * w + 1
        return y.clamp_(-0.4, 0.4)

    _check(fn, rand(2, 3), rand(2, 3, seed=1))


def test_gradcheck_through_inplace_ops_on_views():
    def fn(x, w):
        y = x * 1
        before = y[0]  # a view made before the writes: moves to the new base
        y[1:].mul_(w[1:])  # through a basic-index view
        y.T[2] += w[0, 2]  # through a transposed view (a 0-d right-hand side)
        y.reshape(-1)[:2] = w[0, :2] * 3  # __setitem__ through a reshape
        return y, before * 2

    _check(fn, rand(3, 3), rand(3, 3, seed=1))


def test_gradcheck_fill_copy_and_zero():
    def fn(x, s, src):
        y = x * 2
        y[0].fill_(s)  # the 0-d value's gradient is the sum over the filled region
        y[1].copy_(src)  # broadcast (3,) → row
        y[2, 1:].zero_()
        return y

    _check(fn, rand(3, 3), np.array(0.7), rand(3, seed=2))


def test_gradcheck_a_leaf_that_does_not_require_grad_joins_the_graph():
    def fn(w):
        acc = md.zeros(3, dtype=np.float64)  # a leaf without grad
        acc += w * w
        acc[1:] *= w[:2]
        return acc

    _check(fn, rand(3))


def test_inplace_on_a_gpu_tensor_records_like_the_cpu():
    x_np, w_np = rand(2, 3), rand(2, 3, seed=1)
    grads = {}
    for device in DEVICES:
        x = md.tensor(x_np, requires_grad=True)
        w = md.tensor(w_np, requires_grad=True)
        y = x.to(device) * 1
        y.T[1] *= w.to(device).T[1]
        y += 1
        (y * y).sum().backward()
        grads[device] = (y.numpy(), x.grad.numpy(), w.grad.numpy())
    for cpu, gpu in zip(grads["cpu"], grads["cuda"], strict=True):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-12)


# ------------------------------------------------------------------------------ training by hand


def _model_and_data(seed=0):
    md.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((32, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 3.0], np.float32))[:, None]
    return model, md.tensor(x), md.tensor(y)


def test_a_hand_written_sgd_loop_trains_and_matches_optim_sgd_step_for_step():
    by_hand, x, y = _model_and_data()
    with_opt, _, _ = _model_and_data()
    opt = optim.SGD(with_opt.parameters(), lr=0.05)
    losses = []
    for _ in range(20):
        loss = ((by_hand(x) - y) ** 2).mean()
        loss.backward()
        with md.no_grad():
            for p in by_hand.parameters():
                p -= 0.05 * p.grad
                p.grad = None
        losses.append(loss.item())
        opt.zero_grad()
        ((with_opt(x) - y) ** 2).mean().backward()
        opt.step()
        for p, q in zip(by_hand.parameters(), with_opt.parameters(), strict=True):
            np.testing.assert_array_equal(p.numpy(), q.numpy())
    assert losses[-1] < 0.5 * losses[0]


def test_rebinding_the_loop_variable_updates_nothing():
    """``p = p - lr * p.grad`` makes a new tensor and drops it: the model is unchanged."""
    model, x, y = _model_and_data()
    before = [p.numpy().copy() for p in model.parameters()]
    ((model(x) - y) ** 2).mean().backward()
    with md.no_grad():
        for p in model.parameters():
            p = p - 0.05 * p.grad
    for p, b in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p.numpy(), b)
