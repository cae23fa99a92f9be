"""The fused Adam/AdamW update (kernels/adam.py): the optimizer's NumPy formula to the bit on the
CPU, the CUDA kernel against the CPU kernel under the simulator, and the general path where the
arrays do not allow the kernel."""

import numpy as np
import pytest

import minidense as md
from minidense import optim
from minidense.kernels.adam import adam_update


def reference(p, g, m, v, lr, betas, eps, wd, t, decoupled):
    """The formula as optim.Adam wrote it before the kernel, in NumPy (new arrays)."""
    b1, b2 = betas
    p, m, v = p.copy(), m.copy(), v.copy()
    if wd and not decoupled:
        g = g + wd * p
    m *= b1
    m += (1 - b1) * g
    v *= b2
    v += (1 - b2) * g * g
    if wd and decoupled:
        p *= 1 - lr * wd
    p -= (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps) * p.dtype.type(lr)
    return p, m, v


def _arrays(dtype, n=1000, seed=0):
    rng = np.random.default_rng(seed)
    p, g = (rng.standard_normal(n).astype(dtype) for _ in range(2))
    m = (0.1 * rng.standard_normal(n)).astype(dtype)
    v = np.abs(0.01 * rng.standard_normal(n)).astype(dtype)
    g[:3] = 0  # a zero gradient on a zero average: the update is 0, not nan
    m[:3] = v[:3] = 0
    return p, g, m, v


CASES = [(0.0, False), (1e-2, False), (1e-2, True), (0.0, True)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("wd, decoupled", CASES)
@pytest.mark.parametrize("t", [1, 7])
def test_cpu_kernel_is_the_formula_to_the_bit(dtype, wd, decoupled, t):
    p, g, m, v = _arrays(dtype)
    want = reference(p, g, m, v, 3e-3, (0.9, 0.999), 1e-8, wd, t, decoupled)
    adam_update(p, g, m, v, 3e-3, (0.9, 0.999), 1e-8, wd, t, decoupled)
    for got, ref in zip((p, m, v), want, strict=True):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("wd, decoupled", CASES[1:3])
def test_cuda_kernel_matches_the_cpu_kernel(dtype, wd, decoupled):
    from minidense.gpu import CudaArray

    p, g, m, v = _arrays(dtype, n=37)  # odd: the grid-stride loop's tail
    dev = [CudaArray.from_host(a) for a in (p, g, m, v)]
    adam_update(p, g, m, v, 1e-3, (0.9, 0.99), 1e-6, wd, 3, decoupled)
    adam_update(*dev, 1e-3, (0.9, 0.99), 1e-6, wd, 3, decoupled)
    for host, device in zip((p, m, v), (dev[0], dev[2], dev[3]), strict=True):
        np.testing.assert_allclose(
            device.copy_to_host(), host, rtol=1e-6 if dtype == np.float32 else 1e-14
        )


def _model_steps(make_opt, steps=3, dtype="float32", **opt_kwargs):
    md.manual_seed(0)
    lin = md.nn.Linear(5, 3)
    if dtype == "float64":
        lin = lin.double()
    opt = make_opt(lin.parameters(), **opt_kwargs)
    x = md.tensor(np.random.default_rng(1).standard_normal((4, 5)).astype(dtype))
    for _ in range(steps):
        loss = (lin(x) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.numpy().copy() for p in lin.parameters()], opt


@pytest.mark.parametrize("make_opt, kw", [(optim.Adam, {"weight_decay": 1e-2}), (optim.AdamW, {})])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_optimizer_with_and_without_the_kernel_agree_to_the_bit(monkeypatch, make_opt, kw, dtype):
    fused, _ = _model_steps(make_opt, dtype=dtype, lr=1e-2, **kw)
    monkeypatch.setattr(optim, "fused_adam_", lambda *a: False)  # the general path only
    general, _ = _model_steps(make_opt, dtype=dtype, lr=1e-2, **kw)
    for a, b in zip(fused, general, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_step_moves_the_version_as_an_in_place_op_does():
    w = md.tensor(np.ones(3, np.float32), requires_grad=True)
    y = (w * w).sum()  # saves w for its backward
    opt = optim.Adam([w], lr=0.1)
    w.grad = md.tensor(np.ones(3, np.float32))
    before = w._version
    opt.step()
    assert w._version == before + 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


def test_arrays_the_kernel_cannot_take_go_the_general_way():
    from minidense.ops.update import fused_adam_

    p = md.tensor(np.ones((4, 4), np.float32))
    g = np.ones((4, 4), np.float32)[:, ::2].copy()  # another shape
    m = np.zeros((4, 4), np.float32)
    assert not fused_adam_(p, g, m, m.copy(), 1e-3, (0.9, 0.999), 1e-8, 0.0, 1, False)
    assert not fused_adam_(p, np.ones((4, 4), np.float64), m, m.copy(), 1e-3, (0.9, 0.999), 1e-8,
                           0.0, 1, False)  # fmt: skip
    assert not fused_adam_(p, np.asfortranarray(np.ones((4, 4), np.float32)), m, m.copy(),
                           1e-3, (0.9, 0.999), 1e-8, 0.0, 1, False)  # fmt: skip
    assert (p.numpy() == 1).all()  # nothing written
