"""The CUDA backend: every primitive against NumPy, every foundation op (forward and backward)
against the CPU, device moves, optimizers and checkpoints of device models.

Runs under the Numba CUDA simulator by default (conftest.py), so shapes stay tiny; with
MINIDENSE_TEST_GPU=1 the same tests run on a real GPU, plus the ``gpu``-marked larger ones.
"""

import os

import numpy as np
import pytest
from numba import cuda

import minidense as md
import minidense.functional as F
from minidense import backend
from minidense.backend import cuda as C
from minidense.backend.cuda import reduce as CR
from minidense.checkpoint import load_checkpoint, save_checkpoint
from minidense.gpu import device as gpu_device
from minidense.kernels import relu as relu_kernels
from minidense.ops import shape as S

FLOATS = [np.float32, np.float64]
ON_GPU = os.environ.get("MINIDENSE_TEST_GPU") == "1"
gpu = pytest.mark.skipif(
    not (ON_GPU and not C.SIMULATOR and cuda.is_available()),
    reason="needs a real CUDA GPU: run with MINIDENSE_TEST_GPU=1 on a machine with one",
)


def tol(dtype):
    return (
        dict(rtol=3e-5, atol=3e-6)
        if np.dtype(dtype) == np.float32
        else dict(rtol=1e-11, atol=1e-12)
    )


def dev(a):
    """A host value on the GPU (scalars stay scalars)."""
    return a if np.ndim(a) == 0 and not isinstance(a, np.ndarray) else C.asarray(np.asarray(a))


def host(a):
    assert isinstance(a, C.CudaArray), f"expected a CudaArray, got {type(a).__name__}"
    return a.copy_to_host()


def same(got, expected, dtype=None):
    """``got`` (a CudaArray) equals NumPy's ``expected`` in shape, dtype and values."""
    expected = np.asarray(expected)
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
    np.testing.assert_allclose(host(got), expected, **tol(dtype or expected.dtype))


# ------------------------------------------------------------------------------- module


def test_every_primitive_is_implemented():
    missing = [name for name in backend.PRIMITIVES if not callable(getattr(C, name, None))]
    assert not missing
    assert backend.get("cuda") is C
    a = C.zeros(3, np.float32)
    assert backend.array_module(a) is C and backend.device_of(a) == "cuda"
    assert backend.array_module(np.zeros(3)) is backend.cpu


def test_no_silent_host_conversion():
    a = C.ones(3, np.float32)
    with pytest.raises(TypeError, match="copy_to_host"):
        np.asarray(a)
    with pytest.raises(TypeError, match="move host data to the GPU"):
        a + np.ones(3, np.float32)
    with pytest.raises(TypeError, match="move host data to the GPU"):
        np.ones(3, np.float32) * a
    with pytest.raises(TypeError):
        np.exp(a)


def test_kernels_accept_cuda_arrays_and_raw_device_arrays_wrap():
    @cuda.jit
    def double(x, out):
        i = cuda.grid(1)
        if i < x.shape[0]:
            out[i] = 2 * x[i]

    x = dev(np.arange(5.0))
    out = C.empty(5, np.float64)
    double[1, 8](x, out)  # a CudaArray goes straight into a cuda.jit kernel
    np.testing.assert_array_equal(host(out), 2 * np.arange(5.0))

    raw = cuda.to_device(np.arange(12.0).reshape(3, 4))
    wrapped = backend.as_array(raw)
    assert isinstance(wrapped, C.CudaArray)
    np.testing.assert_array_equal(host(wrapped), np.arange(12.0).reshape(3, 4))
    strided = backend.as_array(raw[:, 1:3])  # a non-contiguous view is made contiguous
    np.testing.assert_array_equal(host(strided), np.arange(12.0).reshape(3, 4)[:, 1:3])
    assert backend.as_array(x) is x


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(7,), (3, 4), (3, 2, 4), (3, 2, 2, 3)])
def test_non_contiguous_raw_device_arrays_of_every_rank_wrap(shape, dtype):
    a = np.arange(np.prod(shape), dtype=dtype).reshape(shape)
    view = cuda.to_device(a)[::2]  # every other entry along the first axis: not contiguous
    assert not view.is_c_contiguous()
    wrapped = backend.as_array(view)
    assert isinstance(wrapped, C.CudaArray) and wrapped.dtype == dtype
    np.testing.assert_array_equal(host(wrapped), a[::2])


# ------------------------------------------------------------------------------- elementwise

BINARY = [
    "add", "subtract", "multiply", "divide", "power", "maximum", "minimum",
    "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
]  # fmt: skip


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("dtype", FLOATS)
def test_binary_with_broadcasting_and_scalars(name, dtype):
    rng = np.random.default_rng(1)
    a = rng.uniform(0.5, 2, (2, 1, 3)).astype(dtype)
    b = rng.uniform(0.5, 2, (4, 1)).astype(dtype)
    b[1, 0] = a[0, 0, 1]  # a tie, for the comparisons and maximum/minimum
    fn = getattr(C, name)
    for x, y in [(a, b), (b, a), (a, 1.5), (2, a), (a, np.float64(0.75)), (a[0, 0], a[1, 0])]:
        with np.errstate(all="ignore"):
            expected = getattr(np, name)(x, y)
        same(fn(dev(x), dev(y)), expected, dtype)


def test_dtype_rules_follow_numpy():
    i = np.array([1, -2, 3])
    f = np.array([0.5, 1.5, -2.5], np.float32)
    t = np.array([True, False, True])
    cases = [
        (lambda x, y: x / y, i, np.array([2, 4, 5])),  # integer true division → float64
        (lambda x, y: x * y, i, 0.5),  # int64 * Python float → float64
        (lambda x, y: x * y, f, 2),  # float32 * Python int stays float32
        (lambda x, y: x + y, t, t),  # bool + bool → bool
        (lambda x, y: x * y, t, 3),  # bool * int → int64
        (lambda x, y: x + y, f, i),  # float32 + int64 → float64
        (lambda x, y: x < y, i, 1.5),
        (lambda x, y: x & y, t, np.array([True, True, False])),
        (lambda x, y: x | y, t, np.array([False, False, False])),
        (lambda x, y: x ^ y, t, np.array([True, False, False])),
    ]
    for fn, x, y in cases:
        same(fn(dev(x), dev(y)), fn(x, y))
    same(~dev(t), ~t)
    same(C.logical_and(dev(t), dev(~t)), np.logical_and(t, ~t))
    same(C.logical_not(dev(t)), np.logical_not(t))
    same(dev(i).sum(), i.sum())
    same(dev(t).sum(axis=0), t.sum(axis=0))
    same(dev(f).astype(np.int64), f.astype(np.int64))
    same(dev(f).astype(np.bool_), f.astype(np.bool_))
    same(dev(f.astype(np.float64)).astype(np.bool_), f.astype(np.bool_))


@pytest.mark.parametrize("dtype", FLOATS)
def test_in_place_operators_write_into_the_array(dtype):
    a = np.arange(6, dtype=dtype).reshape(2, 3)
    x = dev(a)
    view = x.reshape(3, 2)
    x += dev(np.array([1, 2, 3], dtype))
    x *= 2
    x -= 0.5
    x /= dev(np.array(4, dtype))
    expected = ((a + [1, 2, 3]) * 2 - 0.5) / 4
    same(x, expected.astype(dtype))
    same(view, expected.astype(dtype).reshape(3, 2))  # reshape is a view, as in NumPy
    with pytest.raises(ValueError, match="non-broadcastable"):
        y = dev(np.zeros(3, dtype))
        y += dev(np.zeros((2, 3), dtype))


UNARY = ["exp", "log", "log1p", "sqrt", "abs", "sign", "tanh", "negative"]


@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("dtype", FLOATS)
def test_unary_including_edge_values(name, dtype):
    a = np.array([[-2.5, -1.0, 0.0], [0.3, 1.7, 800.0]], dtype)
    with np.errstate(all="ignore"):  # log(0), exp(800): the edges are the point
        expected = getattr(np, name)(a)
        expected_int = getattr(np, name)(np.arange(3))
    same(getattr(C, name)(dev(a)), expected, dtype)
    same(getattr(C, name)(dev(np.arange(3))), expected_int)  # int input


@pytest.mark.parametrize("dtype", FLOATS)
def test_where_and_clip(dtype):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((2, 3)).astype(dtype)
    b = rng.standard_normal((3,)).astype(dtype)
    cond = a > 0
    same(C.where(dev(cond), dev(a), dev(b)), np.where(cond, a, b), dtype)
    same(C.where(dev(cond), dev(a), 0), np.where(cond, a, 0), dtype)
    same(C.where(dev(cond[0]), 1.5, dev(a)), np.where(cond[0], 1.5, a), dtype)
    same(C.clip(dev(a), -0.5, 0.5), np.clip(a, -0.5, 0.5), dtype)
    same(C.clip(dev(a), None, 0.1), np.clip(a, None, 0.1), dtype)
    same(C.clip(dev(a), -0.1, None), np.clip(a, -0.1, None), dtype)


# ------------------------------------------------------------------------------- reductions


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2), (1, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_over_axes(axis, keepdims):
    rng = np.random.default_rng(3)
    a = rng.integers(-3, 4, (2, 3, 4)).astype(np.float64)  # small integers: plenty of ties
    for name in ("sum", "max", "min", "mean"):
        same(
            getattr(dev(a), name)(axis=axis, keepdims=keepdims),
            getattr(a, name)(axis, keepdims=keepdims),
        )
        same(
            getattr(C, name)(dev(a), axis=axis, keepdims=keepdims),
            getattr(np, name)(a, axis, keepdims=keepdims),
        )
    if not isinstance(axis, tuple):
        same(C.argmax(dev(a), axis=axis, keepdims=keepdims), np.argmax(a, axis, keepdims=keepdims))


def test_long_rows_reduce_in_several_passes(monkeypatch):
    monkeypatch.setattr(CR, "REDUCE_CHUNK", 3)
    a = np.random.default_rng(4).standard_normal((2, 11)).astype(np.float32)
    same(dev(a).sum(axis=1), a.sum(axis=1))
    same(dev(a).max(), a.max())
    same(dev(a).min(axis=1, keepdims=True), a.min(axis=1, keepdims=True))


def test_reduction_edge_cases():
    same(C.sum(C.zeros((2, 0), np.float32), axis=1), np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="zero-size"):
        C.max(C.zeros((2, 0), np.float32), axis=1)
    a = np.array([1.0, np.nan, 3.0])
    same(dev(a).max(), np.max(a))
    same(C.argmax(dev(a)), np.argmax(a))
    x = dev(np.array([[0.0, 2.0]]))
    assert x.any() and not x.all() and float(x.sum()) == 2.0


# ------------------------------------------------------------------------------- matmul


@pytest.mark.parametrize(
    "shapes",
    [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (3, 4, 2)), ((5, 6), (2, 6, 3)),
     ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 0), (0, 2))],
)  # fmt: skip
@pytest.mark.parametrize("dtype", FLOATS)
def test_matmul_batched_and_broadcast(shapes, dtype):
    rng = np.random.default_rng(5)
    a, b = (rng.standard_normal(s).astype(dtype) for s in shapes)
    same(C.matmul(dev(a), dev(b)), np.matmul(a, b), dtype)
    same(dev(a) @ dev(b), a @ b, dtype)


def test_matmul_errors():
    with pytest.raises(ValueError, match="core dimension"):
        C.matmul(C.ones((2, 3), np.float32), C.ones((4, 2), np.float32))
    with pytest.raises(TypeError, match="float32 and float64"):
        C.matmul(C.ones((2, 2), np.int64), C.ones((2, 2), np.int64))


# ------------------------------------------------------------------------------- layout


def test_layout_primitives():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x = dev(a)
    same(x.reshape(4, -1), a.reshape(4, -1))
    same(x.transpose(2, 0, 1), a.transpose(2, 0, 1))
    same(x.transpose(np.array([1, 2, 0])), a.transpose(1, 2, 0))
    same(x.T, a.T)
    same(x.swapaxes(-1, 0), a.swapaxes(-1, 0))
    same(C.transpose(x, (0, 2, 1)), np.transpose(a, (0, 2, 1)))
    same(C.broadcast_to(dev(a[:, :1]), (2, 3, 4)), np.broadcast_to(a[:, :1], (2, 3, 4)))
    same(C.concatenate([x, x[:, :2]], axis=1), np.concatenate([a, a[:, :2]], axis=1))
    same(
        C.concatenate([x, dev(a.astype(np.float64))], axis=-1),
        np.concatenate([a, a.astype(np.float64)], -1),
    )
    same(C.stack([x, x], axis=1), np.stack([a, a], axis=1))
    widths = ((0, 1), (2, 0), (1, 1))
    same(C.pad(x, widths, constant_values=-1.5), np.pad(a, widths, constant_values=-1.5))
    same(C.pad(x, 1), np.pad(a, 1))
    with pytest.raises(ValueError, match="cannot reshape"):
        x.reshape(5, -1)


def test_creation():
    same(C.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32))
    same(C.ones(4), np.ones(4))
    same(C.full((2,), 7, np.int64), np.full((2,), 7, np.int64))
    same(C.full((), 2.5), np.full((), 2.5))
    same(C.zeros_like(dev(np.ones((2, 2), np.float32))), np.zeros((2, 2), np.float32))
    same(C.ones_like(dev(np.ones(3, np.int64))), np.ones(3, np.int64))
    same(C.arange(5), np.arange(5))
    same(C.arange(1, 2, 0.25), np.arange(1, 2, 0.25))
    same(C.arange(0), np.arange(0))
    same(C.asarray([1.0, 2.0]), np.asarray([1.0, 2.0]))
    same(C.asarray(dev(np.ones(2)), dtype=np.float32), np.ones(2, np.float32))
    z = dev(np.arange(3.0))
    assert z.copy()._owner is not z._owner


INDEXES = [
    (1,), (-1, 2), (slice(None), slice(1, 4, 2)), (slice(None, None, -1),), (None, Ellipsis, 0),
    (Ellipsis, slice(1, None)), (1, 2, 3), (),
    (np.array([0, 2, 0]),), (slice(None), np.array([3, 3, 1])), (np.array([True, False, True]),),
    (np.array([0, 1]), slice(None), np.array([1, 2])), (1, np.array([0, 2]), slice(0, 2)),
    (np.array([[0, 1], [1, 1]]),),
]  # fmt: skip


@pytest.mark.parametrize("index", INDEXES, ids=repr)
def test_getitem_and_setitem_like_numpy(index):
    a = np.arange(60, dtype=np.float64).reshape(3, 4, 5)
    got = dev(a)[index]
    same(got, a[index])
    for value in (-1.0, np.random.default_rng(6).standard_normal(a[index].shape)):
        x, b = dev(a), a.copy()
        x[index] = dev(value)
        b[index] = value
        same(x, b)


def test_index_arrays_may_live_on_the_device():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    rows = np.array([2, 0, 2])
    mask = a > 5
    same(dev(a)[dev(rows)], a[rows])
    same(dev(a)[dev(mask)], a[mask])
    same(dev(a)[dev(rows), dev(np.array([0, 1, 3]))], a[rows, [0, 1, 3]])


def test_slices_of_contiguous_rows_are_views():
    x = dev(np.zeros((3, 4)))
    row = x[1]
    row += 1  # a view: writes through to x, as in NumPy
    assert host(x).sum() == 4 and host(x)[1].sum() == 4


def test_setitem_with_overlapping_source():
    a = np.arange(5.0)
    x = dev(a)
    x[1:] = x[:-1]
    a[1:] = a[:-1].copy()
    same(x, a)


@pytest.mark.parametrize("dtype", FLOATS)
def test_take_put_along_axis_and_add_at(dtype):
    rng = np.random.default_rng(7)
    a = rng.standard_normal((3, 4)).astype(dtype)
    idx = np.array([[1], [3], [-1]])
    same(C.take_along_axis(dev(a), dev(idx), axis=1), np.take_along_axis(a, idx, axis=1), dtype)
    idx0 = np.array([[2, 0, 1, 1]])
    same(C.take_along_axis(dev(a), dev(idx0), axis=0), np.take_along_axis(a, idx0, axis=0), dtype)
    x, b = dev(a), a.copy()
    C.put_along_axis(x, dev(idx), dev(np.array([[5.0], [6.0], [7.0]], dtype)), axis=1)
    np.put_along_axis(b, idx, np.array([[5.0], [6.0], [7.0]], dtype), axis=1)
    same(x, b, dtype)
    for index, values in [
        ((np.array([0, 2, 0, 0]),), rng.standard_normal((4, 4)).astype(dtype)),
        ((np.array([1, 1]), np.array([2, 2])), np.array([0.5, 0.25], dtype)),
        ((slice(None), np.array([0, 0, 3])), 1.0),
    ]:
        x, b = dev(a), a.copy()
        C.add_at(x, index, dev(values))
        np.add.at(b, index, values)
        same(x, b, dtype)


# ------------------------------------------------------------------------------- ops


def _both(fn, inputs, dtype, seed=0):
    """``fn`` on tensors made from ``inputs`` (float ones require grad), on the CPU and on CUDA.

    The leaves live on the CPU; the CUDA run moves them with ``.to("cuda")``, so its gradients
    also cross the move. Backward is seeded with random weights. Returns per device
    ``(output, [input gradients])`` as host arrays.
    """
    runs = []
    for device in ("cpu", "cuda"):
        leaves = [
            md.tensor(a.astype(dtype), requires_grad=True) if a.dtype.kind == "f" else md.tensor(a)
            for a in inputs
        ]
        out = fn(*[t.to(device) for t in leaves])
        assert out.device == device
        w = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)
        if out.requires_grad:
            (out * md.tensor(w).to(device)).sum().backward()
        grads = [None if t.grad is None else t.grad.numpy() for t in leaves]
        runs.append((out.numpy(), grads))
    return runs


def check_same_on_both(fn, inputs, dtype):
    (out_cpu, g_cpu), (out_cuda, g_cuda) = _both(fn, inputs, dtype)
    assert out_cuda.dtype == out_cpu.dtype and out_cuda.shape == out_cpu.shape
    np.testing.assert_allclose(out_cuda, out_cpu, **tol(dtype))
    for gc, gg in zip(g_cpu, g_cuda, strict=True):
        assert (gc is None) == (gg is None)
        if gc is not None:
            np.testing.assert_allclose(gg, gc, **tol(dtype))
    return out_cpu, g_cpu


_r = np.random.default_rng(8)
P = _r.uniform(0.5, 2.0, (2, 3))  # positive
X = _r.standard_normal((2, 3))
Y = _r.standard_normal((3,))
T = np.array([[1.0, -2.0, 1.0], [0.5, 1.0, 1.0]])  # ties for max/min
IMG = _r.standard_normal((2, 3, 2, 2))


def _cast_round_trip(a):
    other = np.float64 if a.dtype == np.float32 else np.float32
    return (a.astype(other) * 3).astype(a.dtype)


MATMUL_BATCHED = [_r.standard_normal((2, 3, 4)), _r.standard_normal((4, 5))]
MATMUL_BROADCAST = [_r.standard_normal((2, 1, 3, 4)), _r.standard_normal((3, 4, 2))]
MATMUL_VECTORS = [_r.standard_normal(4), _r.standard_normal((4, 4))]

OPS = {
    "add_broadcast": (lambda a, b: a + b, [X, Y]),
    "sub_scalars": (lambda a: (a - 1.5) * (2 - a), [X]),
    "mul_broadcast": (lambda a, b: a * b, [X.reshape(2, 1, 3), Y.reshape(3, 1)]),
    "div": (lambda a, b: a / b, [X, P]),
    "pow_scalar": (lambda a: a**3 + a**0.5 + 2.0**a, [P]),
    "pow_tensor": (lambda a, b: a**b, [P, X]),
    "neg_exp_log_sqrt_abs": (lambda a: (-a).exp() + a.log() + a.sqrt() + (a - 1).abs(), [P]),
    "clamp": (lambda a: a.clamp(-0.5, 0.5) + a.clamp(min=0.1), [X]),
    "where": (lambda a, b: F.where((a > 0).data, a, b), [X, Y]),
    "maximum_minimum": (lambda a, b: F.maximum(a, b) + F.minimum(a, b), [T, T[::-1].copy()]),
    "sum_axes": (lambda a: a.sum(axis=(0, 2)).sum(0, keepdims=True) + a.sum(-1).sum(0), [IMG]),
    "mean_keepdims": (lambda a: a.mean(axis=1, keepdims=True), [IMG]),
    "max_min_ties": (lambda a: a.max(axis=1) + a.min(axis=0).sum() + a.max(), [T]),
    "matmul_batched": (lambda a, b: a @ b, MATMUL_BATCHED),
    "matmul_broadcast": (lambda a, b: a @ b, MATMUL_BROADCAST),
    "matmul_vectors": (lambda a, b: (a @ b) @ a, MATMUL_VECTORS),
    "linear": (
        lambda x, w, b: F.linear(x, w, b) + F.linear(x[0], w).sum(),
        [MATMUL_BATCHED[0], MATMUL_BATCHED[1].T.copy(), Y[:1].repeat(5)],
    ),
    "reshape_permute": (lambda a: a.reshape(3, 2, 2, 2).permute(2, 0, 3, 1).flatten(1), [IMG]),
    "transpose_unsqueeze": (lambda a: a.transpose(0, 1).unsqueeze(1).squeeze(1).T, [X]),
    "concat_stack": (
        lambda a, b: S.concat([a, b, a], axis=1) * S.stack([a, b], 0).sum(0).sum(),
        [X, X * 2],
    ),
    "pad": (lambda a: S.pad(a, (1, 2, 0, 1), value=0.5), [IMG]),
    "getitem_basic": (lambda a: a[:, 1:3, ::-1][..., None, 0], [IMG]),
    "getitem_repeated": (lambda a: a[np.array([0, 1, 0, 0])] + a[:, [2, 2, 0]].sum(), [X]),
    "getitem_mask": (lambda a: a[(a > 0).numpy()], [X]),
    "cast": (_cast_round_trip, [X]),
    "relu_family": (lambda a: F.relu(a) + F.leaky_relu(a, 0.1) + F.sigmoid(a) + F.tanh(a), [X]),
    "softmax": (lambda a: F.softmax(a, 1) * F.log_softmax(a, -1), [IMG]),
    "smooth_l1_mse": (
        lambda a, b: F.smooth_l1_loss(a, b, beta=1 / 9) + F.mse_loss(a, b, "sum"),
        [X, X[::-1].copy()],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("dtype", FLOATS)
def test_op_forward_and_backward_match_cpu(name, dtype):
    fn, inputs = OPS[name]
    check_same_on_both(fn, inputs, dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_cpu(dtype, reduction):
    rng = np.random.default_rng(9)
    logits = rng.standard_normal((2, 3, 2, 2))
    target = rng.integers(0, 3, (2, 2, 2))
    target[0, 0, 1] = -100  # ignored
    weight = np.array([0.5, 2.0, 1.0])

    def loss(x, t):
        return F.cross_entropy(x, t, weight=md.tensor(weight.astype(x.dtype)), reduction=reduction)

    check_same_on_both(loss, [logits, target], dtype)
    check_same_on_both(
        lambda x, t: F.cross_entropy(x, t), [logits[:, :, 0, 0], target[:, 0, 0]], dtype
    )


@pytest.mark.parametrize("dtype", FLOATS)
def test_bce_with_logits_matches_cpu(dtype):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 5)) * 4
    y = (rng.random((2, 5)) > 0.5).astype(np.float64)
    w = rng.random((2, 5))
    check_same_on_both(
        lambda a, b: F.binary_cross_entropy_with_logits(a, b, weight=w.astype(a.dtype)),
        [x, y],
        dtype,
    )
    check_same_on_both(
        lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction="none"), [x, y], dtype
    )


@pytest.mark.parametrize("dtype", FLOATS)
def test_norm_layers_match_cpu(dtype):
    x = IMG.astype(dtype)
    results = {}
    for device in ("cpu", "cuda"):
        bn = md.nn.BatchNorm2d(3)._cast(dtype).to(device)
        gn = md.nn.GroupNorm(1, 3)._cast(dtype).to(device)
        xt = md.tensor(x, requires_grad=True)
        y = bn(xt.to(device))
        y = y + gn(xt.to(device))
        (y * y).sum().backward()
        bn.eval()
        z = bn(md.tensor(x[:1]).to(device))
        results[device] = [y.numpy(), xt.grad.numpy(), bn.weight.grad.numpy(), z.numpy(),
                           backend.move(bn.running_var, "cpu")]  # fmt: skip
        assert backend.device_of(bn.running_mean) == device
    for got, expected in zip(results["cuda"], results["cpu"], strict=True):
        np.testing.assert_allclose(got, expected, **tol(dtype))


@pytest.mark.parametrize("dtype", FLOATS)
def test_relu_matches_the_cpu_kernels(dtype, monkeypatch):
    """The CPU's parallel ReLU kernels (large arrays; the threshold lowered so a small array
    takes them) against the device's array ops, forward and backward, ties and NaN included."""
    monkeypatch.setattr(relu_kernels, "MIN_SIZE", 4)
    x = IMG.copy()
    x.flat[:3] = [0.0, -0.0, np.nan]
    out, grads = check_same_on_both(lambda a: F.relu(a) * 2, [x], dtype)
    assert np.isnan(out.flat[2]) and (out == 0).any()


MASKED = {  # ops whose gradient is 0 where a mask is off: (op, where it is off for x below)
    "relu kernels": (F.relu, [1, 2, 3]),
    "relu NumPy": (F.relu, [1, 2, 3]),
    "clamp": (lambda a: F.clamp(a, -0.5, 2.5), [1, 2, 4]),
}


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the forward's 0·inf
@pytest.mark.parametrize("name", MASKED)
def test_a_nan_or_inf_gradient_stops_at_the_mask_on_both(name, monkeypatch):
    """Where the mask is off the gradient is 0 even when the incoming one is NaN or inf (g·mask
    would give NaN), on the CPU and on the device, as in PyTorch."""
    monkeypatch.setattr(relu_kernels, "MIN_SIZE", 4 if name == "relu kernels" else 10**9)
    op, off = MASKED[name]
    x = np.array([[2.0, -1.0, -1.0, 0.0, 3.0]])
    scale = np.ones_like(x)
    scale[0, off] = [np.nan, np.inf, np.nan]
    _, grads = check_same_on_both(lambda a, s: op(a) * s, [x, scale], np.float64)
    assert np.isfinite(grads[0]).all() and (grads[0][0, off] == 0).all()


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_batch_norm_relu_gradient_stops_nan_at_the_mask_on_both():
    """The fused op: the CPU's kernel and the device's array ops both zero a NaN gradient
    wherever the ReLU was off."""
    x = IMG.copy()
    y = F.batch_norm_relu(md.tensor(x), None, None, training=True).numpy()
    scale = np.where(y > 0, 1.0, np.nan)
    fn = lambda a, s: F.batch_norm_relu(a, None, None, training=True) * s  # noqa: E731
    _, grads = check_same_on_both(fn, [x, scale], np.float64)
    assert (y == 0).any() and np.isfinite(grads[0]).all()


@pytest.mark.parametrize("dtype", FLOATS)
def test_batch_norm_with_fused_relu_matches_cpu(dtype):
    """conv → BN → ReLU in a Sequential (BN and ReLU run as one op): the device's array path
    against the CPU's fused kernels, forward, backward and evaluation."""
    x = IMG.astype(dtype)
    results = {}
    for device in ("cpu", "cuda"):
        md.manual_seed(0)
        block = md.nn.Sequential(md.nn.Conv2d(3, 4, 3, padding=1), md.nn.BatchNorm2d(4),
                                 md.nn.ReLU())._cast(dtype).to(device)  # fmt: skip
        xt = md.tensor(x, requires_grad=True)
        y = block(xt.to(device))
        (y * y).sum().backward()
        block.eval()
        z = block(md.tensor(x[:1]).to(device))
        results[device] = [y.numpy(), xt.grad.numpy(), block[1].weight.grad.numpy(),
                           block[1].bias.grad.numpy(), z.numpy()]  # fmt: skip
    assert (results["cpu"][0] == 0).any() and (results["cpu"][0] > 0).any()  # the ReLU acted
    for got, expected in zip(results["cuda"], results["cpu"], strict=True):
        np.testing.assert_allclose(got, expected, **tol(dtype))


def test_batch_norm_checks_devices_before_touching_running_stats():
    x = md.tensor(IMG.astype(np.float32)).to("cuda")
    host = np.ones(3, np.float32)
    on_device = {k: C.asarray(host) for k in ("running_mean", "running_var")}
    match = r"batch_norm: all tensors must be on one device.*running_mean on 'cpu'"
    for training in (True, False):
        rm, rv = host.copy(), host.copy()
        with pytest.raises(ValueError, match=match):
            F.batch_norm(x, rm, rv, training=training)
        np.testing.assert_array_equal(rm, host)  # not yet scaled by 1 - momentum
        np.testing.assert_array_equal(rv, host)
    with pytest.raises(ValueError, match="weight on 'cpu'"):
        F.batch_norm(x, **on_device, weight=md.ones(3), training=True)
    with pytest.raises(ValueError, match="bias on 'cpu'"):
        F.batch_norm(x, **on_device, bias=np.zeros(3, np.float32))
    np.testing.assert_array_equal(backend.move(on_device["running_mean"], "cpu"), host)
    with pytest.raises(ValueError, match="x on 'cpu', running_mean on 'cuda'"):
        F.batch_norm(md.tensor(IMG.astype(np.float32)), **on_device, training=True)


# The sample x = -1 lies exactly on the edge of the map (CPU: float64 box arithmetic); the simulator
# used to keep float32 boxes in float32 there and could drop the sample (up to 0.58 off). The
# roi_warp/roi_pool box (45 * 0.7 = 31.499999999999996 in float64, 31.5 in float32) used to round
# to a different cell.
EDGE_X = np.random.default_rng(2).standard_normal((2, 3, 6, 7))
EDGE_BOXES = np.array([[1, -3.0, -2.0, 4.0, 3.5]], np.float32)
HALF_X = np.random.default_rng(3).standard_normal((1, 2, 36, 36))
HALF_BOXES = np.array([[0, 45.0, 45.0, 50.0, 50.0]], np.float32)


@pytest.mark.parametrize(
    "op, x, boxes, args",
    [("roi_align", EDGE_X, EDGE_BOXES, ((2, 3), 0.8, 2, False)),
     ("roi_warp", EDGE_X, EDGE_BOXES, ((2, 3), 0.8, 2, False)),
     ("roi_align", HALF_X, HALF_BOXES, ((2, 2), 0.7, 2, False)),
     ("roi_warp", HALF_X, HALF_BOXES, ((2, 2), 0.7, 2, False)),
     ("roi_pool", HALF_X, HALF_BOXES, ((2, 2), 0.7))],
    ids=["align-edge", "warp-edge", "align-half", "warp-half", "pool-half"],
)  # fmt: skip
def test_roi_ops_with_float32_boxes_match_cpu(op, x, boxes, args):
    fn = getattr(F, op)
    check_same_on_both(lambda t: fn(t, md.tensor(boxes).to(t.device), *args), [x], np.float32)


def test_argmax_and_comparisons_stay_on_device():
    x = md.tensor([[1.0, 3.0, 2.0], [0.0, -1.0, 5.0]]).to("cuda")
    am = x.argmax(axis=1)
    assert am.device == "cuda" and am.numpy().tolist() == [1, 2]
    assert x.argmax().numpy() == 5
    gt = x > 1.5
    assert gt.device == "cuda" and gt.dtype == np.bool_
    assert gt.numpy().tolist() == [[False, True, True], [False, False, True]]
    assert (x == x).numpy().all() and not (x != x).numpy().any()


# ------------------------------------------------------------------------------- devices


def test_to_round_trips_and_numpy_copies():
    for a in (
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.arange(4.0),
        np.array([1, 2]),
        np.array(True),
    ):
        t = md.tensor(a)
        c = t.to("cuda")
        assert c.device == "cuda" and c.dtype == t.dtype and c.shape == t.shape
        assert isinstance(c.data, C.CudaArray)
        back = c.cpu()
        assert back.device == "cpu" and isinstance(back.data, np.ndarray)
        np.testing.assert_array_equal(back.numpy(), a)
        assert c.cuda() is c and t.cpu() is t
    c = md.tensor([1.0, 2.0]).to("cuda")
    h = c.numpy()
    h[0] = 9
    assert c.numpy()[0] == 1  # numpy() of a device tensor is a host copy
    assert "device='cuda'" in repr(c)
    assert md.tensor(c).device == "cuda"
    assert md.Tensor(c.data, dtype=np.float64).dtype == np.float64


def test_gradients_flow_across_to():
    x = md.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x.to("cuda") * md.tensor([2.0, 3.0, 4.0]).to("cuda")).to("cpu")
    (y * y).sum().backward()
    assert x.grad.device == "cpu"
    np.testing.assert_allclose(
        x.grad.numpy(), 2 * np.array([2.0, 6.0, 12.0]) * np.array([2.0, 3.0, 4.0])
    )
    # A leaf on the device gets its gradient on the device.
    z = md.tensor([1.0, -2.0], requires_grad=True).to("cuda").detach().requires_grad_()
    (z * z).sum().backward()
    assert z.grad.device == "cuda"
    np.testing.assert_allclose(z.grad.numpy(), [2.0, -4.0])
    # backward(grad=...) with a host gradient for a device tensor.
    w = md.tensor([1.0, 2.0], requires_grad=True)
    w.to("cuda").exp().backward(grad=np.array([1.0, 0.5], np.float32))
    np.testing.assert_allclose(w.grad.numpy(), np.exp([1.0, 2.0]) * [1.0, 0.5], rtol=1e-6)


def test_numbers_and_arrays_join_the_tensor_device():
    x = md.tensor([1.0, 2.0]).to("cuda")
    for y in (x + 1, 2.0 * x, x - np.array([1.0, 1.0], np.float32), x / 2, 1 - x, x**2):
        assert y.device == "cuda"
    np.testing.assert_allclose((1 - x).numpy(), [0.0, -1.0])


def test_mixing_devices_raises():
    a = md.tensor([1.0, 2.0])
    b = a.to("cuda")
    with pytest.raises(ValueError, match="all tensors must be on one device"):
        a + b
    with pytest.raises(ValueError, match="all tensors must be on one device"):
        S.concat([a, b])


def test_to_cuda_without_a_gpu_says_so(monkeypatch):
    monkeypatch.setattr(gpu_device, "_AVAILABLE", False)
    with pytest.raises(RuntimeError, match="no CUDA GPU found"):
        md.ones(2).to("cuda")
    with pytest.raises(RuntimeError, match="no CUDA GPU found"):
        backend.get("cuda")
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda'"):
        md.ones(2).to("gpu")


def _linear_pair(dtype=np.float32):
    md.manual_seed(11)
    cpu_model = md.nn.Sequential(md.nn.Linear(3, 4), md.nn.ReLU(), md.nn.Linear(4, 2))._cast(dtype)
    cuda_model = md.nn.Sequential(md.nn.Linear(3, 4), md.nn.ReLU(), md.nn.Linear(4, 2))._cast(dtype)
    cuda_model.load_state_dict(cpu_model.state_dict())
    return cpu_model, cuda_model.to("cuda")


@pytest.mark.parametrize(
    "make",
    [lambda p: md.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True),
     lambda p: md.optim.Adam(p, lr=0.01, weight_decay=0.01),
     lambda p: md.optim.AdamW(p, lr=0.01)],
    ids=["sgd", "adam", "adamw"],
)  # fmt: skip
def test_optimizer_steps_on_device_equal_cpu(make):
    cpu_model, cuda_model = _linear_pair(np.float64)
    x = np.random.default_rng(12).standard_normal((5, 3))
    opts = {}
    for device, model in (("cpu", cpu_model), ("cuda", cuda_model)):
        opt = opts[device] = make(list(model.parameters()))
        for _ in range(2):
            opt.zero_grad()
            (model(md.tensor(x).to(device)) ** 2).mean().backward()
            opt.step()
        assert all(p.device == device for p in model.parameters())
    for (name, a), b in zip(
        cpu_model.state_dict().items(), cuda_model.state_dict().values(), strict=True
    ):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12, err_msg=name)
    state = opts["cuda"].state_dict()
    for entries in state["state"].values():
        assert all(isinstance(v, np.ndarray) for v in entries.values())
    # Loading host state into an optimizer of a device model puts it on the device.
    fresh = make(list(cuda_model.parameters()))
    fresh.load_state_dict(state)
    for entries in fresh.state.values():
        for name, v in entries.items():
            assert backend.device_of(v) == ("cpu" if name == "step" else "cuda")


def test_module_to_moves_grads_with_parameters():
    cpu_model, _ = _linear_pair()
    x = md.tensor(np.random.default_rng(15).standard_normal((5, 3)).astype(np.float32))
    opt = md.optim.SGD(cpu_model.parameters(), lr=0.1)
    (cpu_model(x) ** 2).mean().backward()
    grads = [p.grad.numpy() for p in cpu_model.parameters()]
    expected = [p.numpy() - 0.1 * g for p, g in zip(cpu_model.parameters(), grads, strict=True)]
    cpu_model.to("cuda")
    for p, g in zip(cpu_model.parameters(), grads, strict=True):
        assert p.grad.device == "cuda" and not p.grad.requires_grad
        np.testing.assert_array_equal(p.grad.numpy(), g)
    opt.step()  # used to fail: "cannot combine a CUDA array with ndarray"
    for p, e in zip(cpu_model.parameters(), expected, strict=True):
        np.testing.assert_allclose(p.numpy(), e, **tol(np.float32))
    cpu_model.to("cpu")
    assert all(p.grad.device == "cpu" for p in cpu_model.parameters())


@pytest.mark.parametrize(
    "make",
    [lambda p: md.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
     lambda p: md.optim.Adam(p, lr=0.01),
     lambda p: md.optim.AdamW(p, lr=0.01)],
    ids=["sgd", "adam", "adamw"],
)  # fmt: skip
def test_optimizer_state_follows_model_to_device(make):
    """CPU steps, then model.to("cuda"), then more steps: the same as staying on the CPU."""
    stay, move = _linear_pair(np.float64)
    move.to("cpu")
    x = np.random.default_rng(16).standard_normal((5, 3))
    opts = {id(m): make(list(m.parameters())) for m in (stay, move)}
    for t in range(3):
        if t == 1:
            move.to("cuda")
        for model in (stay, move):
            device = model[0].weight.device
            opts[id(model)].zero_grad()
            (model(md.tensor(x).to(device)) ** 2).mean().backward()
            opts[id(model)].step()
    for entries in opts[id(move)].state.values():
        for name, v in entries.items():
            assert backend.device_of(v) == ("cpu" if name == "step" else "cuda")
    for (name, a), b in zip(stay.state_dict().items(), move.state_dict().values(), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12, err_msg=name)
    # Back on the CPU, the state follows again.
    move.to("cpu")
    opts[id(move)].step()
    assert all(backend.device_of(v) == "cpu" for s in opts[id(move)].state.values()
               for v in s.values())  # fmt: skip


@pytest.mark.parametrize(
    "make",
    [lambda p: md.optim.SGD(p, lr=0.1, momentum=0.9),
     lambda p: md.optim.Adam(p, lr=0.01)],
    ids=["sgd", "adam"],
)  # fmt: skip
def test_failed_optimizer_step_changes_nothing(make):
    _, model = _linear_pair(np.float64)
    params = list(model.parameters())
    opt = make(params)
    for _ in range(2):
        opt.zero_grad()
        (model(md.ones(2, 3).double().to("cuda")) ** 2).sum().backward()
        opt.step()
    before = opt.state_dict()
    weights = [p.numpy().copy() for p in params]
    # The last one's storage leaves its grad behind (``.grad =`` would refuse a grad on another
    # device); the others come first.
    params[-1].data = params[-1].data.copy_to_host()
    weights[-1] = params[-1].numpy().copy()
    with pytest.raises(ValueError, match=r"params\[3\] is on 'cpu' but its grad is on 'cuda'"):
        opt.step()
    after = opt.state_dict()
    assert after["step"] == before["step"]
    for i, entries in before["state"].items():
        for name, v in entries.items():
            np.testing.assert_array_equal(after["state"][i][name], v, err_msg=name)
    for p, w in zip(params, weights, strict=True):
        np.testing.assert_array_equal(p.numpy(), w)


def test_device_model_checkpoint_holds_host_arrays(tmp_path):
    cpu_model, cuda_model = _linear_pair()
    state = cuda_model.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    cpu_model.load_state_dict(state)
    save_checkpoint(tmp_path / "m.npz", cuda_model.state_dict())
    loaded = load_checkpoint(tmp_path / "m.npz")
    for name, v in state.items():
        np.testing.assert_array_equal(loaded["model"][name], v)
    # Loading into a device model keeps it on the device.
    cuda_model.load_state_dict({k: v * 0 for k, v in state.items()})
    assert all(p.device == "cuda" and not p.numpy().any() for p in cuda_model.parameters())
    clip = md.optim.clip_grad_norm_
    (cuda_model(md.ones(2, 3).to("cuda")) ** 2).sum().backward()
    assert clip(list(cuda_model.parameters()), 1e-3) >= 0


# ------------------------------------------------------------------------------- real GPU


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", FLOATS)
def test_gpu_larger_shapes_match_numpy(dtype):
    rng = np.random.default_rng(13)
    a = rng.standard_normal((64, 300, 17)).astype(dtype)
    b = rng.standard_normal((17, 130)).astype(dtype)
    x = dev(a)
    same(x.sum(axis=1), a.sum(axis=1), dtype)
    same(x.max(axis=(0, 2)), a.max(axis=(0, 2)), dtype)
    same(x.sum(), a.sum(), dtype)
    same(C.matmul(x, dev(b)), a @ b, dtype)
    same(C.exp(x) * 2 - dev(a[0]), np.exp(a) * 2 - a[0], dtype)
    same(x.transpose(2, 0, 1)[::2, 5:70], a.transpose(2, 0, 1)[::2, 5:70], dtype)
    idx = rng.integers(0, 64, 500)
    g = C.zeros_like(x)
    C.add_at(g, (idx,), dev(np.ones((500, 300, 17), dtype)))
    expected = np.zeros_like(a)
    np.add.at(expected, (idx,), 1)
    same(g, expected, dtype)


@gpu
@pytest.mark.gpu
def test_gpu_ops_match_cpu_at_scale():
    rng = np.random.default_rng(14)
    logits = rng.standard_normal((4, 5, 32, 32))
    target = rng.integers(0, 5, (4, 32, 32))
    check_same_on_both(lambda x, t: F.cross_entropy(x, t), [logits, target], np.float64)
    check_same_on_both(
        lambda a, b: (a @ b).softmax(-1),
        [rng.standard_normal((8, 64, 96)), rng.standard_normal((96, 48))],
        np.float64,
    )
