"""Optimizers against hand-computed steps (the update formulas written out in NumPy below),
state round trips, learning-rate schedules and gradient clipping."""

import math

import numpy as np
import pytest

import minidense as md
from minidense import nn, optim

P0 = np.array([[0.5, -1.0, 2.0], [0.0, 0.25, -0.75]])
# The gradient of each step (fixed sequences: the optimizer only sees p.grad).
GRADS = [
    np.array([[0.1, -0.2, 0.3], [0.0, 1.0, -0.5]]),
    np.array([[-0.3, 0.1, 0.2], [0.4, -0.6, 0.05]]),
    np.array([[0.2, 0.2, -0.1], [-0.1, 0.3, 0.7]]),
]


def run(opt_cls, steps=3, **kwargs):
    """Apply ``steps`` updates with GRADS to a float64 copy of P0; returns the parameter values
    after each step."""
    p = nn.Parameter(P0.copy())
    opt = opt_cls([p], **kwargs)
    out = []
    for g in GRADS[:steps]:
        opt.zero_grad()
        p.grad = md.tensor(g)
        opt.step()
        out.append(p.numpy().copy())
    return out, opt, p


def sgd_reference(lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    """PyTorch's SGD: g += λp; v = g (first step) or μv + g; step = g + μv (nesterov) or v."""
    p, v, out = P0.copy(), None, []
    for g in GRADS:
        g = g + weight_decay * p
        if momentum:
            v = g.copy() if v is None else momentum * v + g
            g = g + momentum * v if nesterov else v
        p = p - lr * g
        out.append(p)
    return out


def adam_reference(lr, b1, b2, eps, weight_decay=0.0, decoupled=False):
    """m = β₁m + (1−β₁)g; v = β₂v + (1−β₂)g²; p −= lr·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε);
    Adam adds λp to g, AdamW multiplies p by (1 − lr·λ) first."""
    p, m, v, out = P0.copy(), 0.0, 0.0, []
    for t, g in enumerate(GRADS, start=1):
        if weight_decay and not decoupled:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        if decoupled:
            p = p * (1 - lr * weight_decay)
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        out.append(p)
    return out


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(lr=0.1),
        dict(lr=0.1, momentum=0.9),
        dict(lr=0.05, momentum=0.8, nesterov=True),
        dict(lr=0.1, momentum=0.9, weight_decay=0.01),
        dict(lr=0.1, weight_decay=0.5),
    ],
)
def test_sgd_matches_formula(kwargs):
    got, _, _ = run(optim.SGD, **kwargs)
    for step, (a, b) in enumerate(zip(got, sgd_reference(**kwargs), strict=True)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15, err_msg=f"step {step + 1}")


def test_sgd_first_steps_by_hand():
    # Plain SGD, first element: 0.5 − 0.1·0.1 = 0.49, then 0.49 − 0.1·(−0.3) = 0.52.
    got, _, _ = run(optim.SGD, steps=2, lr=0.1)
    assert got[0][0, 0] == pytest.approx(0.49) and got[1][0, 0] == pytest.approx(0.52)
    # Momentum 0.9: v1 = g1 = 0.1, v2 = 0.9·0.1 − 0.3 = −0.21 → 0.49 + 0.021 = 0.511.
    got, _, _ = run(optim.SGD, steps=2, lr=0.1, momentum=0.9)
    assert got[1][0, 0] == pytest.approx(0.511)


@pytest.mark.parametrize(
    "cls, kwargs, decoupled",
    [
        (optim.Adam, dict(lr=0.01), False),
        (optim.Adam, dict(lr=0.02, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1), False),
        (optim.AdamW, dict(lr=0.01, weight_decay=0.1), True),
        (optim.AdamW, dict(lr=0.03, betas=(0.5, 0.7)), True),  # default weight_decay 1e-2
    ],
)
def test_adam_adamw_match_formula(cls, kwargs, decoupled):
    got, _, _ = run(cls, **kwargs)
    full = dict(dict(betas=(0.9, 0.999), eps=1e-8), **kwargs)
    b1, b2 = full.pop("betas")
    if decoupled:
        full.setdefault("weight_decay", 1e-2)
    ref = adam_reference(b1=b1, b2=b2, decoupled=decoupled, **full)
    for step, (a, b) in enumerate(zip(got, ref, strict=True)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15, err_msg=f"step {step + 1}")


def test_adam_first_step_is_lr_times_sign():
    # With bias correction, step 1 is lr·g/(|g| + ε): every entry with g ≠ 0 moves by ≈ lr.
    got, _, _ = run(optim.Adam, steps=1, lr=0.01)
    moved = P0 - got[0]
    expected = 0.01 * np.sign(GRADS[0])
    np.testing.assert_allclose(moved, expected, atol=1e-7)


def test_adam_and_adamw_differ_with_weight_decay():
    a, _, _ = run(optim.Adam, lr=0.01, weight_decay=0.1)
    w, _, _ = run(optim.AdamW, lr=0.01, weight_decay=0.1)
    assert not np.allclose(a[-1], w[-1])


def test_parameters_without_grad_are_skipped_and_float32_stays_float32():
    p = nn.Parameter(np.ones(3, np.float32))
    q = nn.Parameter(np.ones(2, np.float32))
    opt = optim.Adam([p, q], lr=0.1)
    p.grad = md.tensor(np.array([1.0, -1.0, 0.0], np.float32))
    opt.step()
    np.testing.assert_array_equal(q.numpy(), [1, 1])
    assert p.dtype == np.float32 and 1 not in opt.state
    np.testing.assert_allclose(p.numpy(), [0.9, 1.1, 1.0], rtol=1e-6)


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
        (optim.Adam, dict(lr=0.01, weight_decay=0.1)),
        (optim.AdamW, dict(lr=0.01)),
    ],
)
def test_state_dict_round_trip_continues_identically(cls, kwargs):
    _, opt, p = run(cls, steps=2, **kwargs)
    sd = opt.state_dict()
    assert sd["step"] == 2 and sd["hyper"]["lr"] == kwargs["lr"]
    for s in sd["state"].values():
        assert all(isinstance(v, np.ndarray) for v in s.values())
    # Continue the original for one step...
    p.grad = md.tensor(GRADS[2])
    saved = p.numpy().copy()
    opt.step()
    expected = p.numpy().copy()
    # ...and a fresh optimizer restored from the state dict on a restored parameter.
    q = nn.Parameter(saved)
    fresh = cls([q], **dict(kwargs, lr=123.0))  # lr comes back from the state dict
    fresh.load_state_dict(sd)
    assert fresh.lr == kwargs["lr"] and fresh.step_count == 2
    q.grad = md.tensor(GRADS[2])
    fresh.step()
    np.testing.assert_array_equal(q.numpy(), expected)
    # The saved state is a copy: the steps above did not change it.
    assert opt.state_dict()["step"] == 3 and sd["step"] == 2


def test_load_state_dict_rejects_a_different_model():
    _, opt, _ = run(optim.Adam, steps=1, lr=0.01)
    sd = opt.state_dict()
    other = optim.Adam([nn.Parameter(np.zeros(4))], lr=0.01)
    with pytest.raises(ValueError, match="shape"):
        other.load_state_dict(sd)
    sd["state"]["5"] = sd["state"]["0"]
    with pytest.raises(ValueError, match="names parameter 5"):
        opt.load_state_dict(sd)


def test_bad_arguments():
    p = nn.Parameter(np.zeros(2))
    with pytest.raises(ValueError, match="lr must be"):
        optim.SGD([p], lr=-0.1)
    with pytest.raises(ValueError, match="lr must be"):
        optim.Adam([p], lr=float("nan"))
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam(iter([]))
    with pytest.raises(TypeError, match="floating point"):
        optim.SGD([md.tensor(np.zeros(2, np.int64))], lr=0.1)
    with pytest.raises(TypeError, match=r"params\[1\] must be a Tensor"):
        optim.SGD([p, np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"SGD: momentum must be a finite number >= 0, got -0.5"):
        optim.SGD([p], lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(0.9, 1.0))


# ------------------------------------------------------------------------------- schedules


def make_opt(lr=1.0):
    return optim.SGD([nn.Parameter(np.zeros(1))], lr=lr)


def lrs(sched, n):
    """lr at steps 0..n (the value in force for each optimizer step)."""
    out = [sched.optimizer.lr]
    for _ in range(n):
        out.append(sched.step())
    return out


def test_step_lr():
    s = optim.StepLR(make_opt(0.5), step_size=3, gamma=0.1)
    np.testing.assert_allclose(lrs(s, 7), [0.5] * 3 + [0.05] * 3 + [0.005] * 2, rtol=1e-12)
    with pytest.raises(ValueError, match="step_size"):
        optim.StepLR(make_opt(), 0)


def test_warmup_cosine_values():
    opt = make_opt(1.0)
    s = optim.WarmupCosine(opt, total_steps=10, warmup_steps=4, warmup_factor=0.2, min_lr=0.1)
    got = lrs(s, 12)
    # Warm-up: 0.2 → 1 linearly over 4 steps.
    np.testing.assert_allclose(got[:4], [0.2, 0.4, 0.6, 0.8], rtol=1e-12)
    # Cosine from 1 at step 4 to 0.1 at step 10 over 6 steps, then held.
    for t in range(4, 13):
        progress = min((t - 4) / 6, 1.0)
        assert got[t] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
    assert got[4] == pytest.approx(1.0) and got[7] == pytest.approx(0.55)
    assert got[10] == got[11] == got[12] == pytest.approx(0.1)
    assert opt.lr == got[-1]
    with pytest.raises(ValueError, match="warmup_steps"):
        optim.WarmupCosine(make_opt(), total_steps=5, warmup_steps=6)


def test_cosine_lr_and_scheduler_state():
    opt = make_opt(2.0)
    s = optim.CosineLR(opt, total_steps=4)
    np.testing.assert_allclose(
        lrs(s, 5), [2.0, 1 + 2**-0.5, 1.0, 1 - 2**-0.5, 0.0, 0.0], atol=1e-12
    )
    # Resuming a schedule restores the lr in force.
    opt2 = make_opt(2.0)
    s2 = optim.CosineLR(opt2, total_steps=4)
    assert opt2.lr == 2.0
    s2.load_state_dict({"last_step": 2, "base_lr": 2.0})
    assert opt2.lr == pytest.approx(1.0)
    assert s2.step() == pytest.approx(1 - 2**-0.5)
    with pytest.raises(TypeError, match="must be an Optimizer"):
        optim.StepLR(object(), 2)


# ------------------------------------------------------------------------------- clipping


def params_with_grads(*grads):
    ps = []
    for g in grads:
        p = nn.Parameter(np.zeros_like(g))
        p.grad = md.tensor(np.array(g, dtype=np.float64))
        ps.append(p)
    return ps


def test_clip_grad_norm_scales_to_max_norm():
    ps = params_with_grads(np.array([3.0, 0.0]), np.array([[4.0]]))
    norm = optim.clip_grad_norm_(ps, 1.0)
    assert norm == pytest.approx(5.0)  # the norm before clipping
    after = math.sqrt(sum(float((p.grad.numpy() ** 2).sum()) for p in ps))
    assert after == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(ps[0].grad.numpy(), [0.6, 0.0], rtol=1e-5)
    # Below the limit nothing changes.
    ps = params_with_grads(np.array([0.3, 0.4]))
    assert optim.clip_grad_norm_(ps, 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(ps[0].grad.numpy(), [0.3, 0.4])
    # Parameters without a gradient are ignored.
    q = nn.Parameter(np.zeros(2))
    assert optim.clip_grad_norm_([q], 1.0) == 0.0
    # Anything else is named, not skipped (its gradient would go unclipped).
    with pytest.raises(TypeError, match=r"clip_grad_norm_: params\[1\] must be a Tensor, got int"):
        optim.clip_grad_norm_([q, 3], 1.0)


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_clip_grad_norm_leaves_nonfinite_alone(bad):
    ps = params_with_grads(np.array([bad, 1.0]), np.array([2.0]))
    norm = optim.clip_grad_norm_(ps, 1.0)
    assert not math.isfinite(norm)
    np.testing.assert_array_equal(ps[1].grad.numpy(), [2.0])
    assert ps[0].grad.numpy()[1] == 1.0


@pytest.mark.parametrize("cls, kwargs", [(optim.SGD, dict(momentum=0.9)), (optim.Adam, {})])
def test_state_follows_a_parameter_cast_after_steps(cls, kwargs):
    """model.double() after some steps: the state is cast up, not rounded back to float32."""
    p = nn.Parameter(P0.astype(np.float32))
    opt = cls([p], lr=0.1, **kwargs)
    p.grad = md.tensor(GRADS[0].astype(np.float32))
    opt.step()
    old = {k: v.copy() for k, v in opt.state[0].items()}
    p.data = p.data.astype(np.float64)  # what Module.double() does
    g = np.full(P0.shape, 1 / 3)  # not representable in float32
    p.grad = md.tensor(g)
    opt.step()
    assert p.dtype == np.float64
    s = opt.state[0]
    if cls is optim.SGD:
        assert s["velocity"].dtype == np.float64
        np.testing.assert_array_equal(s["velocity"], 0.9 * old["velocity"].astype(np.float64) + g)
    else:
        assert s["exp_avg"].dtype == s["exp_avg_sq"].dtype == np.float64
        m = 0.9 * old["exp_avg"].astype(np.float64) + (1 - 0.9) * g
        np.testing.assert_array_equal(s["exp_avg"], m)
        assert s["step"].dtype == np.int64 and int(s["step"]) == 2


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam])
def test_a_grad_of_another_dtype_is_used_in_the_parameters_dtype(cls):
    p = nn.Parameter(P0.astype(np.float32))
    opt = cls([p], lr=0.1, **({"momentum": 0.9} if cls is optim.SGD else {}))
    p.grad = md.tensor(GRADS[0].astype(np.float32))
    p.data = P0.copy()  # float64 now; the grad is left in float32 (``.grad =`` refuses that)
    opt.step()
    assert p.dtype == np.float64
    assert all(v.dtype == np.float64 for k, v in opt.state[0].items() if k != "step")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_norm_sum_of_squares_kernel_matches_float64_formula(dtype):
    from minidense.ops.update import sum_of_squares

    a = np.random.default_rng(0).standard_normal((70, 301)).astype(dtype) * 1e3
    assert sum_of_squares(a) == pytest.approx(float((a.astype(np.float64) ** 2).sum()), rel=1e-12)
    assert sum_of_squares(a[:, ::3]) == pytest.approx(
        float((a[:, ::3].astype(np.float64) ** 2).sum()), rel=1e-12
    )  # strided views too
    assert sum_of_squares(np.zeros((0, 3), dtype)) == 0.0
    assert math.isinf(sum_of_squares(np.array([1.0, np.inf], dtype)))
    assert math.isnan(sum_of_squares(np.array([np.nan, 1.0], dtype)))
