"""gradcheck itself: it must pass correct ops and catch wrong ones, with a useful message."""

import re

import numpy as np
import pytest

import minidense as md
from minidense import Function, GradcheckError, gradcheck


def f64(a, requires_grad=True):
    return md.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


class WrongSquare(Function):
    """x² with a wrong derivative: 3x instead of 2x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x * g


class WrongSecondInput(Function):
    """a·b whose gradient for b forgets a."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return g * b, g


class SplitWrong(Function):
    """(2x, x²): the second output's gradient is wrong (x instead of 2x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return 2 * x, x * x

    @staticmethod
    def backward(ctx, g_double, g_square):
        (x,) = ctx.saved_tensors
        return 2 * g_double + x * g_square


def test_passes_on_correct_ops():
    x, y = f64([[0.5, -1.0], [2.0, 0.3]]), f64([1.5, 0.7])
    assert gradcheck(lambda a, b: (a * b).exp().sum(0) / (b + 3.0), [x, y]) is True
    assert gradcheck(lambda a: a @ a.T, [x]) is True


def test_fails_on_a_wrong_backward_with_a_message_naming_everything():
    x = f64([1.0, 2.0, 3.0])
    with pytest.raises(GradcheckError) as info:
        gradcheck(WrongSquare.apply, [x])
    msg = str(info.value)
    assert "input 0" in msg
    assert "element (0,)" in msg
    # The first mismatch is dx0: analytic 3·1 = 3 vs numerical 2·1 = 2.
    assert re.search(r"analytic 3(\.0*)? vs numerical 2(\.0*)?\b", msg)
    assert "3 of 9" in msg  # the diagonal of the 3×3 Jacobian differs
    assert isinstance(info.value, AssertionError)  # so plain `assert gradcheck(...)` users see it


def test_message_names_the_wrong_input_and_element():
    a = f64([[2.0, 3.0], [4.0, 5.0]])
    b = f64([[0.5, 0.5], [0.5, 0.5]])
    # db00 = a00·g = 2, the wrong backward gives g = 1.
    match = r"input 1 \(shape \(2, 2\)\) at element \(0, 0\).*analytic 1 vs numerical 2"
    with pytest.raises(GradcheckError, match=match):
        gradcheck(WrongSecondInput.apply, [a, b])
    # Only b is checked: a does not require grad, so the wrong b gradient is still caught.
    a.requires_grad = False
    with pytest.raises(GradcheckError, match="input 1"):
        gradcheck(WrongSecondInput.apply, [a, b])
    # And if b does not require grad, a's (correct) gradient passes.
    a.requires_grad, b.requires_grad = True, False
    assert gradcheck(WrongSecondInput.apply, [a, b])


def test_raise_exception_false_returns_false():
    assert gradcheck(WrongSquare.apply, [f64([1.0, 2.0])], raise_exception=False) is False
    assert gradcheck(lambda t: t * t, [f64([1.0, 2.0])], raise_exception=False) is True


def test_refuses_float32_inputs():
    with pytest.raises(TypeError, match="input 0 is float32.*float64"):
        gradcheck(lambda t: t * t, [md.tensor([1.0, 2.0], requires_grad=True)])
    with pytest.raises(TypeError, match="input 1 is float32"):
        gradcheck(lambda a, b: a * b.double(), [f64([1.0]), md.tensor([1.0], requires_grad=True)])


def test_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="nothing to check"):
        gradcheck(lambda t: t * t, [f64([1.0], requires_grad=False)])


def test_needs_a_float_output():
    with pytest.raises(ValueError, match="no floating tensor"):
        gradcheck(lambda t: t > 0, [f64([1.0])])


def test_works_with_non_contiguous_inputs():
    base = np.arange(12.0).reshape(3, 4) / 5 - 1
    t = md.Tensor(base.T, requires_grad=True)  # (4, 3), permuted strides
    assert not t.data.flags.c_contiguous
    assert gradcheck(lambda a: (a * a).sum(1) * a[:, 0], [t])
    s = md.Tensor(base[:, ::2], requires_grad=True)  # gaps between elements
    assert gradcheck(lambda a: a.exp() @ a.T, [s])
    # A wrong backward is caught on a non-contiguous input too, at the right (logical) element:
    # only logical (0, 1) is non-zero, which is the third element in memory.
    wrong = md.Tensor(np.array([[0.0, 0.0], [1.0, 0.0]]).T, requires_grad=True)
    with pytest.raises(GradcheckError, match=r"element \(0, 1\)"):
        gradcheck(WrongSquare.apply, [wrong])
    np.testing.assert_array_equal(t.numpy(), base.T)  # nudged elements were restored


def test_multiple_outputs():
    x = f64([0.5, -1.5])
    assert gradcheck(lambda a: (a.exp(), a * a, a.sum()), [x])
    assert gradcheck(lambda a: [a.tanh(), a * 3], [x])  # a list works too
    # A wrong gradient in the second output is caught; rows after the first output's count.
    with pytest.raises(GradcheckError, match="output element 2"):
        gradcheck(SplitWrong.apply, [x])


def test_non_tensor_arguments_and_integer_outputs_pass_through():
    x = f64([1.0, 2.0, 3.0])

    def fn(t, scale, idx):
        return t[idx] * scale, md.tensor(idx)

    assert gradcheck(fn, [x, 2.5, np.array([2, 0, 2])])


def test_output_independent_of_an_input():
    x, y = f64([1.0, 2.0]), f64([3.0])
    assert gradcheck(lambda a, b: a * 2, [x, y])  # b's Jacobian is all zeros, both ways
    assert gradcheck(lambda a, b: md.tensor(np.ones(2)), [x, y])  # a constant output


def test_leaves_no_gradients_behind():
    x = f64([1.0, 2.0])
    gradcheck(lambda t: t * t, [x])
    assert x.grad is None


def test_tolerances_are_used():
    # A gradient that is 1e-4 off relative passes a loose check and fails a tight one.
    class SlightlyOff(Function):
        @staticmethod
        def forward(ctx, x):
            return 2 * x

        @staticmethod
        def backward(ctx, g):
            return g * 2 * (1 + 1e-4)

    x = f64([1.0])
    assert gradcheck(SlightlyOff.apply, [x], rtol=1e-3, atol=0)
    assert not gradcheck(SlightlyOff.apply, [x], rtol=1e-6, atol=0, raise_exception=False)


class NanBackward(Function):
    """x² whose backward returns NaN."""

    @staticmethod
    def forward(ctx, x):
        return x * x

    @staticmethod
    def backward(ctx, g):
        return g * np.nan


def test_nan_gradients_are_mismatches():
    x = f64([1.0, 2.0])
    # A NaN analytic gradient, even under an enormous tolerance.
    assert not gradcheck(NanBackward.apply, [x], raise_exception=False)
    assert not gradcheck(NanBackward.apply, [x], atol=1e9, raise_exception=False)
    with pytest.raises(GradcheckError, match="NaN or infinite"):
        gradcheck(NanBackward.apply, [x])
    # A NaN forward makes the numerical side NaN (and the analytic one too): not a pass.
    assert not gradcheck(lambda t: t * np.nan, [f64([1.0])], raise_exception=False)
    # An infinite gradient on both sides is not "close" either.
    assert not gradcheck(lambda t: t * np.inf, [f64([1.0])], raise_exception=False)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(eps=0), "eps"),
        (dict(eps=-1e-6), "eps"),
        (dict(eps=float("nan")), "eps"),
        (dict(eps=float("inf")), "eps"),
        (dict(atol=-1), "atol"),
        (dict(atol=float("nan")), "atol"),
        (dict(rtol=-1e-3), "rtol"),
        (dict(rtol=float("inf")), "rtol"),
    ],
)
def test_bad_tolerances_are_refused_up_front(kwargs, name):
    calls = []

    def fn(t):
        calls.append(1)
        return t * t

    with pytest.raises(ValueError, match=f"gradcheck: {name} must be finite"):
        gradcheck(fn, [f64([1.0, 2.0])], raise_exception=False, **kwargs)
    assert not calls  # refused before fn ran
    with pytest.raises(TypeError, match="eps must be a number"):
        gradcheck(fn, [f64([1.0])], eps="1e-6")
    assert gradcheck(fn, [f64([1.0])], atol=0, rtol=0.01)  # zero tolerances are fine


def test_non_leaf_inputs_are_checked_through_a_leaf_copy():
    z = f64([1.0, 2.0])
    w = z * 2  # not a leaf: backward would not keep its .grad
    assert not w.is_leaf
    assert gradcheck(lambda a: a * a, [w])
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(WrongSquare.apply, [w])
    assert z.grad is None and w.grad is None  # the graph behind w is untouched
    np.testing.assert_array_equal(w.numpy(), [2.0, 4.0])


def test_a_single_tensor_is_accepted_as_inputs():
    x = f64([[1.0, 2.0], [3.0, 4.0]])
    assert gradcheck(lambda a: a * a, x)
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(WrongSquare.apply, x)


def test_read_only_inputs_are_perturbed_on_a_copy():
    data = np.arange(3.0)
    data.flags.writeable = False  # as a sample from data.Cached
    t = md.Tensor(data, requires_grad=True)
    assert gradcheck(lambda a: a * a * a, [t])
    with pytest.raises(GradcheckError):
        gradcheck(WrongSquare.apply, [t])
    np.testing.assert_array_equal(data, [0.0, 1.0, 2.0])


def test_a_tensor_passed_twice_stays_one_tensor():
    y = f64([1.0, 2.0])
    assert gradcheck(lambda a, b: a * b, [y, y])
    w = f64([1.0, 2.0]) * 1  # twice, and not a leaf: one copy serves both places
    assert gradcheck(lambda a, b: (a * b).exp(), [w, w])


def test_message_names_the_output_and_its_element():
    x = md.tensor(np.ones((2, 2)), requires_grad=True)  # SplitWrong on a 2-D input
    match = r"output element 4 \(output 1 of 2, shape \(2, 2\), element \(0, 0\)\)"
    with pytest.raises(GradcheckError, match=match):
        gradcheck(SplitWrong.apply, [x])


def test_existing_gradients_are_left_as_they_were():
    x = f64([1.0, 2.0])
    x.grad = md.tensor(np.array([5.0, 6.0]))
    assert gradcheck(lambda t: t * t, [x])
    np.testing.assert_array_equal(x.grad.numpy(), [5.0, 6.0])
