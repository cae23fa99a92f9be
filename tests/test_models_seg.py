"""Segmentation models (U-Net, SegNet, FCN): output shapes, an end-to-end gradcheck, the
receptive-field rule and the input checks."""

import numpy as np
import pytest

import minidense as md
from minidense import nn
from minidense.models import FCN, SegNet, UNet, receptive_field, receptive_field_of
from minidense.models.blocks import check_image_batch


def images(n, c, h, w, dtype=np.float32, seed=0):
    return md.tensor(np.random.default_rng(seed).uniform(0, 1, (n, c, h, w)).astype(dtype))


@pytest.mark.parametrize("upsampling", ["bilinear", "transposed", "nearest"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_unet_output_shape_odd_sizes(depth, upsampling):
    md.manual_seed(0)
    model = UNet(2, 3, depth=depth, base=2, upsampling=upsampling, norm="group")
    y = model(images(1, 2, 17, 23))
    assert y.shape == (1, 3, 17, 23)
    assert np.isfinite(y.numpy()).all()


@pytest.mark.parametrize("upsampling", ["bilinear", "nearest"])
@pytest.mark.parametrize("size", [(16, 12), (17, 23)])
def test_unet_up_block_runs_its_1x1_conv_before_interpolating_with_the_same_result(
    upsampling, size
):
    """The decoder computes conv1x1(interpolate(x)) as interpolate(conv1x1(x)) (cheaper): the
    same values and gradients as the written order, in float64, odd sizes included."""
    md.manual_seed(0)
    model = UNet(2, 3, depth=2, base=4, upsampling=upsampling, norm="group").double()
    x = images(2, 2, *size, dtype=np.float64)

    def written_order(block, y, skip):  # the textbook order, spelled out
        align = False if upsampling == "bilinear" else None
        y = block.up(md.F.interpolate(y, size=skip.shape[2:], mode=upsampling, align_corners=align))
        return block.fuse(md.F.concat([skip, y], axis=1))

    def run(up):
        for p in model.parameters():
            p.grad = None
        skips = [model.inc(x)]
        for down in model.down:
            skips.append(down(model.pool(skips[-1])))
        y = skips.pop()
        for block in model.up:
            y = up(block, y, skips.pop())
        out = model.head(y)
        (out * out).sum().backward()
        return [out.numpy()] + [p.grad.numpy().copy() for p in model.parameters()]

    ours = run(lambda block, y, skip: block(y, skip))
    np.testing.assert_allclose(ours[0], model(x).numpy(), rtol=1e-12)  # run() is the forward
    for a, b in zip(ours, run(written_order), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


def test_unet_even_size_batch_norm_and_eval():
    model = UNet(1, 2, depth=2, base=2)
    x = images(2, 1, 16, 12)
    assert model(x).shape == (2, 2, 16, 12)
    model.eval()
    a, b = model(x).numpy(), model(x).numpy()
    np.testing.assert_array_equal(a, b)  # eval: running statistics, deterministic
    with pytest.raises(ValueError, match="upsampling must be one of"):
        UNet(upsampling="deconv")
    with pytest.raises(ValueError, match="depth must be a positive integer"):
        UNet(depth=0)
    with pytest.raises(ValueError, match="norm must be"):
        UNet(norm="layer")


@pytest.mark.parametrize("base, groups", [(2, 2), (6, 6), (12, 6), (20, 5), (16, 8)])
def test_group_norm_channel_counts(base, groups):
    # At most 8 groups, and always a divisor of the channels (12 or 20 channels used to fail).
    model = UNet(1, 2, depth=1, base=base, norm="group")
    assert model.inc[1].num_groups == groups
    assert model(images(1, 1, 4, 4)).shape == (1, 2, 4, 4)


@pytest.mark.parametrize("norm", [None, "group"])
def test_unet_end_to_end_gradcheck(norm):
    md.manual_seed(3)
    model = UNet(1, 2, depth=1, base=2, norm=norm).double()
    x = md.tensor(np.random.default_rng(1).normal(size=(1, 1, 6, 6)), requires_grad=True)
    w = model.up[0].fuse[0].weight  # a conv weight deep in the decoder
    assert w.dtype == np.float64 and w.requires_grad
    # The sum of squares is smooth; it keeps the Jacobian to one row per parameter.
    assert md.gradcheck(lambda x, w: (model(x) * model(x)).sum(), [x, w], atol=1e-6)
    assert md.gradcheck(lambda x: model(x), [x])


@pytest.mark.parametrize("depth, size", [(1, (6, 8)), (2, (9, 13)), (3, (16, 16))])
def test_segnet_output_shape(depth, size):
    md.manual_seed(0)
    model = SegNet(3, 4, depth=depth, base=2, norm="group")
    y = model(images(2, 3, *size))
    assert y.shape == (2, 4, *size)


def test_segnet_gradcheck_tiny():
    md.manual_seed(4)
    model = SegNet(1, 2, depth=1, base=2, norm=None).double()
    x = md.tensor(np.random.default_rng(2).normal(size=(1, 1, 4, 4)), requires_grad=True)
    assert md.gradcheck(lambda x: (model(x) ** 2).sum(), [x], atol=1e-6)


def test_fcn_shapes_and_bilinear_start():
    md.manual_seed(0)
    model = FCN(3, 2, base=2, norm="group")
    assert model(images(1, 3, 64, 64)).shape == (1, 2, 64, 64)
    assert model(images(1, 3, 32, 96)).shape == (1, 2, 32, 96)
    with pytest.raises(ValueError, match="divisible by 32"):
        model(images(1, 3, 48, 64))
    # The ×8 upsampler starts as a bilinear kernel: non-negative, symmetric, channels separate.
    k = model.up8.weight.numpy()
    assert k.shape == (2, 2, 16, 16) and (k >= 0).all()
    np.testing.assert_allclose(k[0, 0], k[0, 0].T)
    assert np.all(k[0, 1] == 0)


# ------------------------------------------------------------------------------- receptive field


@pytest.mark.parametrize("L", range(1, 7))
def test_receptive_field_of_stacked_3x3(L):
    assert receptive_field([(3, 1, 1)] * L) == 1 + 2 * L
    convs = nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=1) for _ in range(L)])
    assert receptive_field_of(convs) == 1 + 2 * L


def test_receptive_field_with_pool_and_dilation():
    # conv3 → pool2 → conv3: 3, then +1 (pool 2×2 at jump 1), then +2·2 = 8.
    assert receptive_field([(3,), (2, 2), (3,)]) == 8
    # Two convs before and two after a 2× pool: 5 + 1 + 2·(2·2) = 14.
    net = nn.Sequential(
        nn.Conv2d(1, 1, 3), nn.ReLU(), nn.Conv2d(1, 1, 3), nn.MaxPool2d(2),
        nn.Sequential(nn.Conv2d(1, 1, 3), nn.BatchNorm2d(1)), nn.Conv2d(1, 1, 3),
    )  # fmt: skip
    assert receptive_field_of(net) == 14
    assert receptive_field([(3, 1, 2)] * 2) == 9  # dilation 2: +4 per layer
    assert receptive_field_of(nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(1, 1, 3))) == 6
    with pytest.raises(ValueError, match=">= 1"):
        receptive_field([(0, 1)])


def test_receptive_field_matches_gradient_support():
    """The rule agrees with what the network actually sees: the input gradient of one output
    pixel is non-zero exactly on an r×r square."""
    md.manual_seed(5)
    net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3)).double()
    for conv in (net[0], net[2]):
        conv.weight.data[:] = 1.0
    x = md.tensor(np.random.default_rng(0).normal(size=(1, 1, 16, 16)), requires_grad=True)
    y = net(x)
    net_r = receptive_field_of(net)
    assert net_r == 8
    (y[0, 0, 2, 2] * 1.0).backward()
    g = x.grad.numpy()[0, 0]
    rows, cols = np.nonzero(g)
    # Max pooling routes to one pixel per window, so the support is within (not all of) r×r.
    assert rows.max() - rows.min() < net_r and cols.max() - cols.min() < net_r
    avg = nn.Sequential(nn.Conv2d(1, 1, 3), nn.AvgPool2d(2), nn.Conv2d(1, 1, 3)).double()
    for conv in (avg[0], avg[2]):
        conv.weight.data[:] = 1.0
    x.grad = None
    avg(x)[0, 0, 2, 2].backward()
    rows, cols = np.nonzero(x.grad.numpy()[0, 0])
    assert rows.max() - rows.min() + 1 == cols.max() - cols.min() + 1 == receptive_field_of(avg)


# ------------------------------------------------------------------------------- input checks


def test_check_image_batch_errors():
    model = UNet(3, 2, depth=1, base=2)
    with pytest.raises(ValueError, match=r"permute\(0, 3, 1, 2\)"):
        model(images(1, 8, 8, 3))
    with pytest.raises(TypeError, match="float images"):
        model(md.tensor(np.zeros((1, 3, 8, 8), np.uint8)))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        model(md.tensor(np.zeros((3, 8, 8), np.float32)))
    with pytest.raises(ValueError, match="expects 3 input channels") as err:
        check_image_batch(md.tensor(np.zeros((1, 1, 8, 8), np.float32)), 3, "UNet")
    assert "permute" not in str(err.value)
    for model in (SegNet(3, 2, depth=1, base=2), FCN(3, 2, base=2)):
        with pytest.raises(ValueError, match="permute"):
            model(images(1, 32, 32, 3))
