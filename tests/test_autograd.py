"""The backward engine: ordering, accumulation, un-broadcasting, graph freeing, grad modes."""

import numpy as np
import pytest

import minidense as md
from minidense import Function


def f64(a, requires_grad=True):
    return md.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


# ----------------------------------------------------------------------------- accumulation


def test_gradient_accumulates_when_a_tensor_is_used_twice():
    x = f64([1.0, -2.0, 3.0])
    y = x * x + x  # x feeds Mul twice and Add once: dy/dx = 2x + 1
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy() + 1)


def test_diamond_graph():
    # x → a, b → c: a non-leaf used twice must collect both gradients before passing them on.
    x = f64([0.5, 2.0])
    h = x * 3  # shared intermediate node
    a = h.exp()
    b = h * h
    c = (a + b).sum()
    c.backward()
    hx = 3 * x.numpy()
    np.testing.assert_allclose(x.grad.numpy(), 3 * (np.exp(hx) + 2 * hx))


def test_deep_diamond_chain_counts_paths_once():
    # Each level doubles: y_{k+1} = y_k + y_k, so dy/dx = 2**depth; a wrong order loses terms.
    x = f64([1.0])
    y = x
    for _ in range(20):
        y = y + y
    y.sum().backward()
    assert x.grad.item() == 2.0**20


def test_deep_chain_of_5000_ops_does_not_overflow_the_stack():
    x = f64([1.0, 2.0])
    y = x
    for _ in range(5000):
        y = y * 1.0001  # a recursive topological sort would exceed Python's recursion limit
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001**5000] * 2, rtol=1e-10)


def test_gradients_accumulate_across_backward_calls_and_zero_grad_resets():
    x = f64([1.0, 2.0])
    (x * 3).sum().backward()
    (x * 4).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [7.0, 7.0])
    x.zero_grad()
    assert x.grad is None
    (x * 5).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 5.0])


def test_topological_order_with_shared_subexpressions():
    # z = (x*y) * (x*y + y): both paths through x*y must arrive before x*y's backward runs.
    x, y = f64(2.0), f64(3.0)
    p = x * y
    z = p * (p + y)
    z.backward()
    px, py = 2.0 * 3.0, 3.0
    # dz/dp = 2p + y; dz/dx = (2p + y)·y; dz/dy = (2p + y)·x + p
    assert x.grad.item() == pytest.approx((2 * px + py) * 3.0)
    assert y.grad.item() == pytest.approx((2 * px + py) * 2.0 + px)


# ----------------------------------------------------------------------------- backward() arguments


def test_backward_on_a_scalar_seeds_with_one():
    x = f64([2.0])
    y = (x * x).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0])


def test_backward_of_a_non_scalar_needs_grad():
    x = f64([1.0, 2.0])
    y = x * 2
    with pytest.raises(ValueError, match=r"non-scalar.*\(2,\)"):
        y.backward()
    y.backward(np.array([1.0, 10.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 20.0])


def test_backward_grad_of_wrong_shape():
    x = f64([1.0, 2.0])
    with pytest.raises(ValueError, match="shape"):
        (x * 2).backward(np.ones(3))


def test_backward_accepts_a_tensor_grad_and_one_element_roots():
    x = f64([[1.0]])
    (x * 3).backward(md.tensor(np.array([[2.0]])))
    np.testing.assert_allclose(x.grad.numpy(), [[6.0]])
    x.zero_grad()
    (x * 3).backward()  # one element, any shape: no grad needed
    np.testing.assert_allclose(x.grad.numpy(), [[3.0]])


def test_backward_on_a_leaf():
    x = f64([1.0, 2.0])
    x.backward(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])


def test_backward_without_requires_grad_is_an_error():
    x = md.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="requires_grad"):
        (x * 2).sum().backward()


def test_grad_is_a_tensor_of_the_leaf_shape_and_dtype():
    x = md.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    (x * 2).sum().backward()
    assert isinstance(x.grad, md.Tensor)
    assert x.grad.shape == (2, 3) and x.grad.dtype == np.float32
    assert not x.grad.requires_grad


def test_constants_get_no_grad():
    x, c = f64([1.0]), f64([2.0], requires_grad=False)
    (x * c).sum().backward()
    assert c.grad is None and x.grad is not None


# ----------------------------------------------------------------------------- graph freeing


def test_second_backward_through_a_freed_graph_raises():
    x = f64([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = f64([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


# ----------------------------------------------------------------------------- grad modes


def test_no_grad_context_records_nothing():
    x = f64([1.0])
    with md.no_grad():
        assert not md.is_grad_enabled()
        y = x * 2
        with md.enable_grad():
            z = x * 2
    assert md.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    assert z.requires_grad


def test_no_grad_as_bare_decorator():
    @md.no_grad  # without parentheses, as torch.no_grad allows
    def step(t):
        assert not md.is_grad_enabled()
        return t * 2

    x = f64([1.0])
    assert not step(x).requires_grad
    assert md.is_grad_enabled()
    with md.no_grad():
        assert not md.is_grad_enabled()
    assert md.is_grad_enabled()


def test_no_grad_as_decorator():
    @md.no_grad()
    def step(t):
        assert not md.is_grad_enabled()
        return t * 2

    x = f64([1.0])
    y = step(x)
    assert not y.requires_grad
    assert md.is_grad_enabled()  # restored after the call
    assert (x * 2).requires_grad


def test_no_grad_restores_state_after_an_exception():
    with pytest.raises(KeyError):
        with md.no_grad():
            raise KeyError
    assert md.is_grad_enabled()


# ----------------------------------------------------------------------------- broadcasting


@pytest.mark.parametrize(
    "sa, sb",
    [((3, 1), (1, 4)), ((4,), (2, 3, 4)), ((), (2, 3)), ((2, 3), ()), ((2, 1, 3), (4, 1))],
)
def test_broadcast_gradients_are_reduced_to_input_shapes(sa, sb):
    rng = np.random.default_rng(0)
    a_np, b_np = rng.standard_normal(sa), rng.uniform(1, 2, sb)
    a, b = f64(a_np), f64(b_np)
    out = a * b + a / b
    assert out.shape == np.broadcast_shapes(sa, sb)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    assert a.grad.shape == sa and b.grad.shape == sb
    ga = g * (b_np + 1 / b_np)
    gb = g * (a_np - a_np / b_np**2)
    np.testing.assert_allclose(a.grad.numpy(), np.sum(ga, axis=_extra(ga.shape, sa)).reshape(sa))
    np.testing.assert_allclose(b.grad.numpy(), np.sum(gb, axis=_extra(gb.shape, sb)).reshape(sb))


def _extra(out_shape, shape):
    """Axes of ``out_shape`` that broadcasting added or stretched for ``shape``."""
    lead = len(out_shape) - len(shape)
    return tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and out_shape[lead + i] != 1
    )


def test_unbroadcast_helper():
    from minidense.autograd import unbroadcast

    g = np.ones((2, 3, 4))
    np.testing.assert_array_equal(unbroadcast(g, (3, 1)), np.full((3, 1), 8.0))
    np.testing.assert_array_equal(unbroadcast(g, ()), np.array(24.0))
    assert unbroadcast(g, (2, 3, 4)) is g


# ----------------------------------------------------------------------------- custom Functions


class _TwoOutputs(Function):
    """(x², 3x), plus an integer output that never gets a gradient."""

    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x)
        ctx.k = k
        return x * x, 3 * x, np.arange(x.size)

    @staticmethod
    def backward(ctx, g_sq, g_three, g_idx):
        assert g_idx is None  # integer outputs get no gradient
        (x,) = ctx.saved_tensors
        return 2 * x * g_sq + 3 * g_three, None


def test_multi_output_function_and_unused_outputs():
    x = f64([1.0, 2.0])
    sq, three, idx = _TwoOutputs.apply(x, 7)
    assert sq.requires_grad and three.requires_grad
    assert idx.dtype == np.int64 and not idx.requires_grad
    sq.sum().backward()  # `three` unused: the engine fills zeros for it
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    x.zero_grad()
    sq, three, _ = _TwoOutputs.apply(x, 7)
    (sq + three).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 7.0])


def test_needs_input_grad_and_non_tensor_arguments():
    seen = {}

    class Probe(Function):
        @staticmethod
        def forward(ctx, a, b, scale):
            seen["types"] = (type(a), type(b), scale)
            return a * b * scale

        @staticmethod
        def backward(ctx, g):
            seen["needs"] = ctx.needs_input_grad
            return g, g, None

    a, b = f64([1.0]), f64([2.0], requires_grad=False)
    Probe.apply(a, b, 2.5).sum().backward()
    assert seen["types"] == (np.ndarray, np.ndarray, 2.5)  # forward sees raw arrays
    assert seen["needs"] == (True, False, False)


def test_backward_returning_the_wrong_number_of_gradients():
    class Bad(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(RuntimeError, match="returned 1 gradients.*2 arguments"):
        Bad.apply(f64([1.0]), f64([1.0])).sum().backward()


def test_function_without_grad_inputs_records_no_graph():
    y = md.ops.elementwise.Exp.apply(md.tensor([0.0]))
    assert not y.requires_grad and y.is_leaf


def test_engine_casts_gradients_to_the_input_dtype():
    class Widen(Function):
        @staticmethod
        def forward(ctx, a):
            return a.copy()

        @staticmethod
        def backward(ctx, g):
            return g.astype(np.float64)  # a careless backward returning float64

    x = md.tensor([1.0, 2.0], requires_grad=True)
    Widen.apply(x).sum().backward()
    assert x.grad.dtype == np.float32


def test_a_tensor_grad_of_another_dtype_is_cast_like_an_array_grad():
    x = md.tensor(np.ones(3, np.float32), requires_grad=True)
    x.backward(md.tensor(np.ones(3), dtype=np.float64))  # a leaf root
    assert x.grad.dtype == np.float32
    x.zero_grad()
    (x * 2).backward(md.tensor(np.full(3, 1 / 3), dtype=np.float64))
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 2 / 3), rtol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        (x * 2).backward(md.tensor(np.ones(4), dtype=np.float64))


def test_a_grad_left_in_another_dtype_accumulates_in_the_tensors_dtype():
    x = md.tensor(np.ones(2, np.float32), requires_grad=True)
    x.grad = md.tensor(np.ones(2, np.float32))
    x.data = x.data.astype(np.float64)  # the grad is left in float32 (.grad = refuses that)
    (x * md.tensor(np.full(2, 3.0))).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 4.0])
