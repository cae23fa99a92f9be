"""Mask R-CNN on a list of images of different sizes (batched by padding, as torchvision's
GeneralizedRCNNTransform), against the single-image results; targets checked entry by entry."""

import numpy as np
import pytest

import minidense as md
from minidense.data.shapes import ShapesInstances
from minidense.models.maskrcnn import MaskRCNN

SMALL = dict(
    widths=(8, 16, 16, 16, 16), rpn_channels=16, box_fc=32, mask_channels=8, mask_convs=1,
    mask_pool=7, mask_size=14, rpn_batch_per_image=64, box_batch_per_image=32,
    rpn_pre_nms_top_n_train=100, rpn_post_nms_top_n_train=30,
    rpn_pre_nms_top_n_test=60, rpn_post_nms_top_n_test=20, detections_per_image=10,
)  # fmt: skip


@pytest.fixture(scope="module")
def samples():
    data = ShapesInstances(4, image_size=64, seed=3)
    return [data[i] for i in range(4)]


def model(stride=16):
    md.manual_seed(0)
    return MaskRCNN(**SMALL, stride=stride).eval()


def crop(sample, h, w):
    """The top-left h×w of a sample, with the targets of the objects left in it."""
    image, t = sample
    masks = t["masks"][:, :h, :w]
    keep = masks.reshape(len(masks), -1).any(axis=1)
    masks = masks[keep]
    boxes = []
    for k in range(len(masks)):
        rows, cols = np.flatnonzero(masks[k].any(axis=1)), np.flatnonzero(masks[k].any(axis=0))
        boxes.append([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1])
    target = {"boxes": np.array(boxes, np.float32).reshape(-1, 4),
              "labels": t["labels"][keep], "masks": masks}  # fmt: skip
    return np.ascontiguousarray(image[:, :h, :w]), target


def assert_same(a, b):
    """The same detections, up to float32 rounding: BLAS blocks a batch of two images' matrix
    product differently from one image's, so scores and boxes may differ in the last bit (and a
    mask pixel whose probability sits at 0.5 may flip)."""
    assert a.keys() == b.keys()
    np.testing.assert_array_equal(a["labels"], b["labels"], err_msg="labels")
    for key in ("boxes", "scores"):
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-4, err_msg=key)
    assert a["masks"].shape == b["masks"].shape
    assert np.mean(a["masks"] != b["masks"]) <= 1e-3, "masks"


def test_a_list_of_sizes_gives_each_image_its_single_image_result(samples):
    """64×64 and 50×60 both pad to 64×64 (stride 16), alone or together: the same results."""
    m = model()
    big, _ = samples[0]
    small, _ = crop(samples[1], 50, 60)
    both = m.predict([big, small])
    alone = [m.predict([big])[0], m.predict([small])[0]]
    assert sum(len(r["boxes"]) for r in both) > 0  # something to compare
    for got, want in zip(both, alone, strict=True):
        assert_same(got, want)
    assert_same(both[0], m.predict(big[None])[0])  # a list of one = a batch of one
    r = both[1]
    assert r["masks"].shape == (len(r["boxes"]), 50, 60)
    assert (r["boxes"][:, 2] <= 60).all() and (r["boxes"][:, 3] <= 50).all()


def test_each_image_keeps_its_own_coordinates_and_order_does_not_matter(samples):
    m = model(stride=32)
    big, _ = samples[0]
    small, _ = crop(samples[2], 30, 45)  # padded to 64×64 in the batch, 32×64 alone
    ab, ba = m.predict([big, small]), m.predict([small, big])
    assert_same(ab[0], ba[1])
    assert_same(ab[1], ba[0])
    r = ab[1]
    assert r["masks"].shape == (len(r["boxes"]), 30, 45)
    b = r["boxes"]
    assert (b >= 0).all() and (b[:, 2] <= 45).all() and (b[:, 3] <= 30).all()
    # Nothing is pasted outside a box (masks are painted in the image's own frame).
    for box, mask in zip(b, r["masks"], strict=True):
        ys, xs = np.nonzero(mask)
        if len(xs):
            assert xs.min() >= np.floor(box[0]) and xs.max() < np.ceil(box[2])
            assert ys.min() >= np.floor(box[1]) and ys.max() < np.ceil(box[3])


def test_training_on_a_list_of_sizes(samples):
    md.manual_seed(0)
    m = MaskRCNN(**SMALL)
    images, targets = zip(*[samples[0], crop(samples[1], 48, 40)], strict=True)
    losses = m(list(images), list(targets), rng=np.random.default_rng(0))
    assert all(np.isfinite(v.item()) for v in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in m.backbone.parameters())
    # Same sizes: a list is exactly the stacked batch.
    same = [samples[0], samples[1]]
    as_list = m([s[0] for s in same], [s[1] for s in same], rng=np.random.default_rng(1))
    as_batch = m(np.stack([s[0] for s in same]), [s[1] for s in same], rng=np.random.default_rng(1))
    for key in as_list:
        assert as_list[key].item() == as_batch[key].item(), key
    # Masks must come at the image's own size, not the padded one.
    padded = dict(targets[1], masks=np.zeros((len(targets[1]["masks"]), 64, 64), np.uint8))
    with pytest.raises(ValueError, match=r"targets\[1\]\['masks'\] must have shape \(\d+, 48, 40\) "
                                         r"\(the image's size\)"):  # fmt: skip
        m(list(images), [targets[0], padded])


@pytest.mark.parametrize(
    "change, error, message",
    [
        (dict(boxes=[["a", "b", "c", "d"]]), TypeError,
         r"targets\[0\]\['boxes'\] must be a numeric array, got dtype <U1"),
        (dict(boxes=[[1.0, 2.0, 3.0, 4.0], [1.0]]), TypeError,
         r"targets\[0\]\['boxes'\] must be a numeric array, got a ragged list"),
        (dict(labels=["square"]), TypeError, r"targets\[0\]\['labels'\] must be a numeric array"),
        (dict(masks=None), TypeError, r"targets\[0\]\['masks'\] must be a numeric array, got dtype "
                                      r"object \(NoneType\)"),
        (dict(labels=[1.5]), ValueError, r"targets\[0\]\['labels'\] must be 1 integers"),
    ],
    ids=["boxes-str", "boxes-ragged", "labels-str", "masks-none", "labels-float"],
)  # fmt: skip
def test_non_numeric_targets_name_the_entry(samples, change, error, message):
    image, t = crop(samples[0], 64, 64)
    t = dict(t, boxes=t["boxes"][:1], labels=t["labels"][:1], masks=t["masks"][:1])
    with pytest.raises(error, match=message):
        MaskRCNN(**SMALL)([image], [dict(t, **change)])


def test_bad_image_lists_are_named():
    m = model()
    with pytest.raises(ValueError, match=r"images\[1\] must be one \(C, H, W\) image, got shape "
                                         r"\(1, 3, 8, 8\)"):  # fmt: skip
        m.predict([np.zeros((3, 8, 8), np.float32), np.zeros((1, 3, 8, 8), np.float32)])
    with pytest.raises(TypeError, match=r"images\[0\] must be a numeric array or Tensor, got "
                                        r"dtype <U1"):  # fmt: skip
        m.predict([np.array([["a"]])])
    with pytest.raises(ValueError, match=r"MaskRCNN \(images\[0\]\) expects 3 input channels"):
        m.predict([np.zeros((8, 8, 3), np.float32)])
    assert m.predict([]) == []
    with pytest.raises(ValueError, match=r"no images to train on"):
        m.train()([], [])


@pytest.mark.parametrize("bad", [3, "seed", np.random.RandomState(0)])
def test_a_malformed_rng_is_named(samples, bad):
    """rng=3 once failed deep inside the samplers with an AttributeError."""
    image, t = samples[0]
    with pytest.raises(TypeError, match=r"MaskRCNN: rng must be None or a numpy.random.Generator"):
        MaskRCNN(**SMALL)([image], [t], rng=bad)
