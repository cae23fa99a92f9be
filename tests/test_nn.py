"""Layers (``minidense.nn``): float64 gradchecks at tiny sizes, the Module machinery
(registration, modes, state_dict), containers, repr and the initialisers."""

import numpy as np
import pytest

import minidense as md
from minidense import nn
from minidense.tensor import Tensor


def rand(*shape, seed=0, requires_grad=True):
    """float64 tensor of distinct values (max-type ops need no ties for gradcheck)."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    data = (rng.permutation(n) + rng.uniform(0.1, 0.9, n)).reshape(shape) / n - 0.5
    return md.tensor(data, requires_grad=requires_grad)


def check_layer(layer, x, params=("weight", "bias")):
    """Gradcheck ``layer(x)`` w.r.t. the input and the named parameters (float64)."""
    layer.double()
    ps = [getattr(layer, p) for p in params if getattr(layer, p, None) is not None]
    assert md.gradcheck(lambda x, *_: layer(x), [x, *ps])


# ------------------------------------------------------------------------------- gradchecks


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=3, padding=1),
        dict(kernel_size=3, stride=2, padding=1),
        dict(kernel_size=2, dilation=2),
        dict(kernel_size=(1, 3), groups=2, bias=False),
    ],
)
def test_conv2d_gradcheck(kwargs):
    md.manual_seed(0)
    layer = nn.Conv2d(2, 4, **kwargs)
    check_layer(layer, rand(1, 2, 5, 5))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=3, stride=2, padding=1, output_padding=1),
        dict(kernel_size=2, groups=2),
        dict(kernel_size=2, dilation=2, bias=False),
    ],
)
def test_conv_transpose2d_gradcheck(kwargs):
    md.manual_seed(1)
    layer = nn.ConvTranspose2d(2, 2, **kwargs)
    x = rand(1, 2, 3, 3)
    check_layer(layer, x)
    k, d = layer.kernel_size[0], layer.dilation[0]
    s, p = layer.stride[0], layer.padding[0]
    assert layer(x).shape[2] == (3 - 1) * s - 2 * p + d * (k - 1) + 1 + layer.output_padding[0]


@pytest.mark.parametrize(
    "layer",
    [nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 3, stride=2),
     nn.ConvTranspose2d(3, 4, 2, stride=2)],
    ids=["conv-stride1", "conv-stride2", "transposed"],
)  # fmt: skip
def test_conv_layers_on_an_empty_batch_give_zero_parameter_gradients(layer):
    y = layer(md.tensor(np.zeros((0, 3, 5, 5), np.float32)))
    assert y.shape[:2] == (0, 4)
    y.sum().backward()
    np.testing.assert_array_equal(layer.weight.grad.numpy(), np.zeros(layer.weight.shape))
    np.testing.assert_array_equal(layer.bias.grad.numpy(), np.zeros(4))


def test_linear_gradcheck_and_forward():
    md.manual_seed(2)
    layer = nn.Linear(3, 2)
    x = rand(4, 3)
    check_layer(layer, x)
    expected = x.numpy() @ layer.weight.numpy().T + layer.bias.numpy()
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-12)
    with pytest.raises(ValueError, match=r"Linear expects \(\.\.\., 3\), got shape \(4, 2\)"):
        layer(rand(4, 2))


def test_batchnorm_train_gradcheck():
    layer = nn.BatchNorm2d(2)
    layer.double()
    layer.weight.data[:] = [1.5, -0.5]
    layer.bias.data[:] = [0.1, 0.2]
    check_layer(layer, rand(2, 2, 2, 2, seed=3))


def test_batchnorm_eval_gradcheck_and_formula():
    layer = nn.BatchNorm2d(3).double()
    layer.running_mean[:] = [0.1, -0.2, 0.3]
    layer.running_var[:] = [0.5, 2.0, 1.0]
    layer.weight.data[:] = [1.0, 2.0, -1.0]
    layer.eval()
    x = rand(2, 3, 2, 2, seed=4)
    check_layer(layer, x)
    rm, rv = layer.running_mean.reshape(1, 3, 1, 1), layer.running_var.reshape(1, 3, 1, 1)
    w, b = layer.weight.numpy().reshape(1, 3, 1, 1), layer.bias.numpy().reshape(1, 3, 1, 1)
    expected = (x.numpy() - rm) / np.sqrt(rv + layer.eps) * w + b
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-12)
    # Evaluation leaves the running statistics alone.
    np.testing.assert_array_equal(layer.running_mean, [0.1, -0.2, 0.3])


def test_batchnorm_running_statistics_follow_pytorch():
    layer = nn.BatchNorm2d(2, momentum=0.25).double()
    xs = [rand(3, 2, 2, 3, seed=s, requires_grad=False) for s in (5, 6)]
    rm, rv = np.zeros(2), np.ones(2)
    for x in xs:
        y = layer(x).numpy()
        a = x.numpy()
        n = a.size // 2
        mean = a.mean(axis=(0, 2, 3))
        var_biased = a.var(axis=(0, 2, 3))
        rm = 0.75 * rm + 0.25 * mean
        rv = 0.75 * rv + 0.25 * var_biased * n / (n - 1)  # unbiased in the running estimate
        # Normalised with the biased batch variance.
        xhat = (a - mean.reshape(1, 2, 1, 1)) / np.sqrt(var_biased.reshape(1, 2, 1, 1) + 1e-5)
        np.testing.assert_allclose(y, xhat, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.running_mean, rm, rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, rv, rtol=1e-12)
    with pytest.raises(ValueError, match="more than one value per channel"):
        layer(rand(1, 2, 1, 1))
    with pytest.raises(ValueError, match=r"\(N, 2, H, W\)"):
        layer(rand(1, 3, 2, 2))


def test_groupnorm_gradcheck_and_formula():
    layer = nn.GroupNorm(2, 4).double()
    layer.weight.data[:] = [1.0, 2.0, 0.5, -1.0]
    layer.bias.data[:] = [0.0, 0.1, 0.2, 0.3]
    x = rand(2, 4, 2, 2, seed=7)
    check_layer(layer, x)
    g = x.numpy().reshape(2, 2, -1)
    xhat = ((g - g.mean(2, keepdims=True)) / np.sqrt(g.var(2, keepdims=True) + 1e-5)).reshape(
        x.shape
    )
    expected = xhat * layer.weight.numpy().reshape(1, 4, 1, 1) + layer.bias.numpy().reshape(
        1, 4, 1, 1
    )
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-10)
    with pytest.raises(ValueError, match="must divide"):
        nn.GroupNorm(3, 4)


@pytest.mark.parametrize(
    "layer, fn",
    [
        (nn.ReLU(), lambda a: np.maximum(a, 0)),
        (nn.LeakyReLU(0.2), lambda a: np.where(a > 0, a, 0.2 * a)),
        (nn.Sigmoid(), lambda a: 1 / (1 + np.exp(-a))),
        (nn.Tanh(), np.tanh),
        (nn.Identity(), lambda a: a),
    ],
)
def test_activations(layer, fn):
    x = rand(2, 3, 2, seed=8)  # values away from 0 by construction: no kink hit
    np.testing.assert_allclose(layer(x).numpy(), fn(x.numpy()), rtol=1e-12)
    assert md.gradcheck(layer, [x])


def test_dropout_train_eval_and_p():
    drop = nn.Dropout(0.25)
    x = md.tensor(np.ones((50, 40)))
    y = drop(x).numpy()
    assert set(np.unique(y)) <= {0.0, 1 / 0.75}
    assert 0.2 < (y == 0).mean() < 0.3
    drop.eval()
    assert drop(x) is x
    drop.train()
    # Fixed mask per call (reseeded) → the gradient is the mask, checkable.
    xs = rand(3, 4, seed=9)

    def f(t):
        md.manual_seed(11)
        return drop(t)

    assert md.gradcheck(f, [xs])
    assert nn.Dropout(0.0)(xs) is xs
    for p in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="dropout probability"):
            nn.Dropout(p)


def test_maxpool_return_indices_and_unpool():
    pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
    x = rand(1, 2, 4, 5, seed=10)
    y, idx = pool(x)
    assert y.shape == (1, 2, 2, 2) and idx.dtype.kind == "i"
    a = x.numpy()
    for c in range(2):
        for i in range(2):
            for j in range(2):
                win = a[0, c, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2]
                assert y.numpy()[0, c, i, j] == win.max()
                r, q = np.unravel_index(win.argmax(), (2, 2))
                assert idx.numpy()[0, c, i, j] == (2 * i + r) * 5 + 2 * j + q
    z = unpool(y, idx, output_size=(4, 5))
    assert z.shape == (1, 2, 4, 5)
    back = z.numpy()
    assert np.count_nonzero(back) == 8 and np.all((back == 0) | (back == a))
    assert md.gradcheck(lambda t: pool(t)[0], [x])
    assert md.gradcheck(lambda t: unpool(t, idx, output_size=(4, 5)), [rand(1, 2, 2, 2)])


def test_avgpool_and_upsample():
    x = rand(1, 1, 4, 4, seed=12)
    y = nn.AvgPool2d(2)(x)
    np.testing.assert_allclose(y.numpy()[0, 0], x.numpy()[0, 0].reshape(2, 2, 2, 2).mean((1, 3)))
    assert md.gradcheck(nn.AvgPool2d(3, stride=1, padding=1), [x])
    up = nn.Upsample(scale_factor=2, mode="nearest")
    np.testing.assert_array_equal(up(x).numpy()[0, 0], x.numpy()[0, 0].repeat(2, 0).repeat(2, 1))
    bil = nn.Upsample(size=(5, 3), mode="bilinear", align_corners=False)
    assert bil(x).shape == (1, 1, 5, 3)
    assert md.gradcheck(bil, [x])
    assert md.gradcheck(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), [x])


@pytest.mark.parametrize(
    "layer",
    [
        nn.RoIAlign(2, spatial_scale=0.5, sampling_ratio=2, aligned=True),
        nn.RoIAlign(2, spatial_scale=0.5, sampling_ratio=-1),
        nn.RoIWarp(2, spatial_scale=0.5, sampling_ratio=2),
        nn.RoIPool(2, spatial_scale=0.5),
    ],
    ids=["align-aligned", "align", "warp", "pool"],
)
def test_roi_modules_gradcheck(layer):
    x = rand(2, 2, 4, 4, seed=13)
    boxes = np.array([[0, 0.6, 1.1, 6.3, 5.2], [1, 2.2, 0.4, 7.7, 7.1]])
    y = layer(x, boxes)
    assert y.shape == (2, 2, 2, 2)
    assert md.gradcheck(lambda t: layer(t, boxes), [x])
    # The list-of-boxes form is the same RoIs.
    y2 = layer(x, [boxes[:1, 1:], boxes[1:, 1:]])
    np.testing.assert_array_equal(y2.numpy(), y.numpy())
    assert "output_size=2" in repr(layer) and "spatial_scale=0.5" in repr(layer)


# ------------------------------------------------------------------------------- Module


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.bn = nn.BatchNorm2d(2)
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(2, 1, 1))
        self.scale = 3.0  # a plain attribute, not registered

    def forward(self, x):
        return self.head(self.bn(self.conv(x)))


def test_parameters_children_and_shared_parameter():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == [
        "conv.weight", "conv.bias", "bn.weight", "bn.bias", "head.1.weight", "head.1.bias"
    ]  # fmt: skip
    assert [type(m).__name__ for m in net.children()] == ["Conv2d", "BatchNorm2d", "Sequential"]
    assert net.num_parameters() == 2 * 9 + 2 + 2 + 2 + 2 + 1
    assert [n for n, _ in net.named_buffers()] == ["bn.running_mean", "bn.running_var"]
    # One parameter in two places is listed (and so updated) once.
    shared = nn.Sequential(net.conv, net.conv)
    assert len(list(shared.parameters())) == 2
    assert [n for n, _ in shared.named_modules()] == ["", "0"]  # the shared module once
    lin = nn.Linear(2, 2)
    tied = nn.Module()
    tied.a, tied.b = lin, nn.Linear(2, 2)
    tied.b.weight = lin.weight
    assert [n for n, _ in tied.named_parameters()] == ["a.weight", "a.bias", "b.bias"]
    # Reassigning an attribute replaces the registration; deleting removes it.
    net.conv = nn.Identity()
    assert "conv.weight" not in dict(net.named_parameters())
    del net.bn
    assert "bn" not in dict(net.named_children())
    assert net.scale == 3.0
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = net.nothing


def test_module_needs_super_init():
    class Bad(nn.Module):
        def __init__(self):
            self.conv = nn.Conv2d(1, 1, 1)

    with pytest.raises(RuntimeError, match="super"):
        Bad()


def test_train_eval_propagate():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.head.train()
    assert net.head[1].training and not net.bn.training
    net.train()
    assert all(m.training for m in net.modules())


def test_state_dict_round_trip_with_buffers():
    md.manual_seed(0)
    a = Net()
    a(rand(2, 1, 3, 3, requires_grad=False).float())  # moves the running statistics
    sd = a.state_dict()
    assert set(sd) == {n for n, _ in a.named_parameters()} | {"bn.running_mean", "bn.running_var"}
    assert not np.allclose(sd["bn.running_mean"], 0)
    sd["conv.weight"][...] = 0  # a copy: editing it leaves the module alone
    assert np.abs(a.conv.weight.numpy()).sum() > 0
    md.manual_seed(1)
    b = Net()
    assert b.load_state_dict(a.state_dict()) == ([], [])
    for (n, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        np.testing.assert_array_equal(x, y, err_msg=n)
    x = rand(1, 1, 4, 4, requires_grad=False).float()
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())


def test_load_state_dict_errors_leave_module_unchanged():
    md.manual_seed(0)
    net = Net()
    before = net.state_dict()
    other = Net().state_dict()

    sd = dict(other)
    del sd["bn.running_var"]
    sd["extra.weight"] = np.zeros(1)
    with pytest.raises(KeyError) as err:
        net.load_state_dict(sd)
    assert "bn.running_var" in str(err.value) and "extra.weight" in str(err.value)

    sd = dict(other)
    sd["head.1.weight"] = np.zeros((1, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="head.1.weight"):
        net.load_state_dict(sd)

    for (n, x), (_, y) in zip(before.items(), net.state_dict().items(), strict=True):
        np.testing.assert_array_equal(x, y, err_msg=f"{n} changed by a failed load")
    # Non-strict: loads what matches, reports the rest.
    sd = dict(other)
    del sd["conv.bias"]
    missing, unexpected = net.load_state_dict(sd, strict=False)
    assert missing == ["conv.bias"] and unexpected == []
    np.testing.assert_array_equal(net.conv.weight.numpy(), other["conv.weight"])


def test_sequential_and_modulelist():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)).double()
    assert len(seq) == 3 and isinstance(seq[1], nn.ReLU) and isinstance(seq[-1], nn.Linear)
    x = rand(4, 2)
    manual = seq[2](seq[1](seq[0](x)))
    np.testing.assert_array_equal(seq(x).numpy(), manual.numpy())
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    with pytest.raises(TypeError, match="argument 1 must be a Module"):
        nn.Sequential(nn.ReLU(), lambda t: t)
    ml = nn.ModuleList([nn.Linear(2, 2)])
    ml.append(nn.Linear(2, 3))
    assert len(ml) == 2 and ml[1].out_features == 3
    assert [n for n, _ in ml.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    with pytest.raises(TypeError, match="holds Modules"):
        ml.append(3)


def test_repr_is_readable():
    text = repr(Net())
    assert "(conv): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))" in text
    assert "(bn): BatchNorm2d(2, eps=1e-05, momentum=0.1)" in text
    assert "(head): Sequential(\n    (0): ReLU()\n    (1): Conv2d" in text
    assert repr(nn.Dropout(0.3)) == "Dropout(p=0.3)"
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.AvgPool2d(3, 2)) == "AvgPool2d(kernel_size=3, stride=2)"
    assert repr(nn.MaxUnpool2d(2)) == "MaxUnpool2d(kernel_size=2, stride=2)"
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2)"
    assert repr(nn.Upsample(scale_factor=2)) == "Upsample(scale_factor=2, mode='nearest')"
    assert repr(nn.GroupNorm(2, 4)) == "GroupNorm(2, 4)"
    assert repr(nn.Linear(3, 2)) == "Linear(in_features=3, out_features=2)"
    assert repr(nn.Parameter(np.zeros(2))).startswith("Parameter(")


def test_layer_argument_errors():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="in_channels must be a positive integer"):
        nn.Conv2d(0, 4, 3)
    with pytest.raises(TypeError, match="kernel_size must be an int or a pair"):
        nn.Conv2d(1, 1, (1, 2, 3))
    with pytest.raises(TypeError, match="floating point"):
        nn.Parameter(np.zeros(3, np.int64))


# ------------------------------------------------------------------------------- init


def test_bilinear_init_upsamples_like_interpolation_in_the_interior():
    from minidense.ops.upsample import interpolate

    up = nn.ConvTranspose2d(2, 2, 4, stride=2, padding=1, bias=False)
    nn.init.bilinear_(up.weight)
    x = md.tensor(np.random.default_rng(0).normal(size=(1, 2, 5, 6)).astype(np.float32))
    y = up(x).numpy()
    ref = interpolate(x, scale_factor=2, mode="bilinear", align_corners=False).numpy()
    assert y.shape == ref.shape == (1, 2, 10, 12)
    np.testing.assert_allclose(y[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], rtol=1e-5, atol=1e-6)
    # ...but not at the border, where the transposed conv sees implicit zeros.
    assert not np.allclose(y[..., 0, :], ref[..., 0, :])
    # Channels do not mix, and the depthwise form (groups = C) is the same filter.
    assert np.all(up.weight.numpy()[0, 1] == 0)
    dw = nn.ConvTranspose2d(2, 2, 4, stride=2, padding=1, groups=2, bias=False)
    nn.init.bilinear_(dw.weight)
    np.testing.assert_allclose(dw(x).numpy(), y, rtol=1e-6)
    with pytest.raises(ValueError, match="square"):
        nn.init.bilinear_(nn.ConvTranspose2d(2, 2, (2, 4)).weight)


def test_kaiming_statistics():
    md.manual_seed(0)
    conv = nn.Conv2d(64, 128, 3)  # fan_in 576 → std √(2/576)
    w = conv.weight.numpy()
    assert abs(w.std() / np.sqrt(2 / 576) - 1) < 0.1 and abs(w.mean()) < 0.01
    # A transposed conv's weight is (C_in, C_out, k, k); each output sums C_in·k² inputs, which
    # calculate_fan calls fan_out, so the layer initialises in fan_out mode.
    deconv = nn.ConvTranspose2d(64, 32, 4)
    fan_in, fan_out = nn.init.calculate_fan(deconv.weight.shape)
    assert (fan_in, fan_out) == (32 * 16, 64 * 16)
    assert abs(deconv.weight.numpy().std() / np.sqrt(2 / fan_out) - 1) < 0.1
    p = nn.Parameter(np.zeros((200, 300), np.float32))
    nn.init.kaiming_uniform_(p, nonlinearity="relu")
    bound = np.sqrt(2) * np.sqrt(3 / 300)
    assert np.abs(p.numpy()).max() <= bound + 1e-6
    assert abs(p.numpy().std() / np.sqrt(2 / 300) - 1) < 0.1
    nn.init.xavier_uniform_(p)
    assert abs(p.numpy().std() / np.sqrt(2 / 500) - 1) < 0.1
    with pytest.raises(
        ValueError, match=r"nonlinearity must be one of \(.relu., .*\), got .swish."
    ):
        nn.init.kaiming_normal_(p, nonlinearity="swish")
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nn.init.kaiming_normal_(nn.Parameter(np.zeros(3)))


def test_double_casts_parameters_and_buffers():
    net = Net().double()
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert all(b.dtype == np.float64 for _, b in net.named_buffers())
    assert isinstance(net.conv.weight, Tensor) and net.conv.weight.requires_grad
    net.float()
    assert all(p.dtype == np.float32 for p in net.parameters())


def test_assigning_a_parameter_or_module_replaces_a_plain_attribute():
    lin = nn.Linear(2, 2, bias=False)  # sets the plain attribute self.bias = None
    bias = nn.Parameter(np.full(2, 100.0, np.float32))
    lin.bias = bias
    assert lin.bias is bias and "bias" not in lin.__dict__
    assert [n for n, _ in lin.named_parameters()] == ["weight", "bias"]
    expected = np.ones((1, 2), np.float32) @ lin.weight.numpy().T + 100.0
    np.testing.assert_allclose(lin(md.ones(1, 2)).numpy(), expected, rtol=1e-6)

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = None
            self.head = nn.ReLU()
            self.stat = None
            self.register_buffer("stat", np.ones(2, np.float32))

    h = Holder()
    assert isinstance(h.head, nn.ReLU) and list(h._modules) == ["head"]
    np.testing.assert_array_equal(h.stat, [1.0, 1.0])
    assert list(h.state_dict()) == ["stat"]
    h.stat = nn.Parameter(np.zeros(2, np.float32))  # a Parameter takes the buffer's name over
    assert list(h._buffers) == [] and [n for n, _ in h.named_parameters()] == ["stat"]


def test_assigning_to_a_buffer_updates_it():
    bn = nn.BatchNorm2d(2).eval()
    bn.running_mean = np.full(2, 5.0, np.float32)
    assert "running_mean" not in bn.__dict__
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var"]
    assert isinstance(bn._buffers["running_mean"], np.ndarray)
    np.testing.assert_array_equal(bn.state_dict()["running_mean"], [5.0, 5.0])
    x = md.ones(1, 2, 1, 1)
    np.testing.assert_allclose(bn(x).numpy().ravel(), (1 - 5) / np.sqrt(1 + 1e-5), rtol=1e-5)
    bn.running_var = md.tensor(np.full(2, 4.0, np.float32))  # a Tensor: its array is stored
    assert isinstance(bn._buffers["running_var"], np.ndarray)
    np.testing.assert_allclose(bn(x).numpy().ravel(), (1 - 5) / np.sqrt(4 + 1e-5), rtol=1e-5)
    bn.running_mean = None  # as PyTorch: still a buffer, but not state
    assert bn.running_mean is None and "running_mean" in bn._buffers
    assert "running_mean" not in bn.state_dict()
    bn.double()  # casting and moving skip it
    assert bn.running_var.dtype == np.float64
    with pytest.raises(TypeError, match="buffer 'running_var'"):
        bn.running_var = "zeros"


def test_double_casts_existing_gradients():
    lin = nn.Linear(2, 2)
    lin(md.ones(3, 2)).sum().backward()
    lin.double()
    assert lin.weight.grad.dtype == np.float64 and lin.bias.grad.dtype == np.float64
    lin(md.ones(3, 2, dtype=np.float64)).sum().backward()
    np.testing.assert_allclose(lin.bias.grad.numpy(), [6.0, 6.0])
