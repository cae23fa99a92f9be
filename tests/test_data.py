"""Procedural datasets and the DataLoader: determinism, label/box/mask consistency, flips."""

import numpy as np
import pytest

from minidense.data import (
    CellMembranes,
    DataLoader,
    Shape,
    ShapesInstances,
    ShapesSemantic,
    Subset,
    default_collate,
    hflip,
    masks_to_boxes,
    random_split,
    render,
    shape_mask,
    vflip,
)
from minidense.data.shapes import draw_sample


def reference_box(mask):
    """Slow tight box of one (H, W) mask: (min col, min row, max col + 1, max row + 1)."""
    rows, cols = np.nonzero(mask)
    return [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]


class IndexDataset:
    """Sample i is (image filled with i, label filled with i): makes the loader's order visible."""

    num_classes = 7

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full((1, 2, 3), i, np.float32), np.full((2, 3), i, np.int64)


# --------------------------------------------------------------------------- shapes: semantic


def test_semantic_sample_format():
    ds = ShapesSemantic(6, image_size=32, seed=3)
    assert len(ds) == 6 and ds.num_classes == 4 and len(ds.class_names) == 4
    seen = set()
    for i in range(len(ds)):
        image, label = ds[i]
        assert image.shape == (3, 32, 32) and image.dtype == np.float32
        assert label.shape == (32, 32) and label.dtype == np.int64
        assert image.min() >= 0 and image.max() <= 1
        assert label.min() >= 0 and label.max() <= 3
        seen |= set(np.unique(label).tolist())
        assert (label > 0).any(), "min_shapes=1: every image shows a shape"
    assert seen == {0, 1, 2, 3}


def test_semantic_deterministic_by_seed_and_random_access():
    a, b = ShapesSemantic(10, seed=5), ShapesSemantic(10, seed=5)
    later_first = b[7]  # drawn before anything else: order must not matter
    for i in range(3):
        b[i]
    np.testing.assert_array_equal(a[7][0], later_first[0])
    np.testing.assert_array_equal(a[7][1], later_first[1])
    np.testing.assert_array_equal(a[-1][0], a[9][0])
    other = ShapesSemantic(10, seed=6)
    assert not np.array_equal(a[7][0], other[7][0])
    assert not np.array_equal(a[7][0], a[8][0])


def test_semantic_and_instances_draw_the_same_scenes():
    # One drawing core: the same seed/size/count range gives identical images, and every visible
    # instance pixel carries its class in the semantic map.
    sem = ShapesSemantic(8, image_size=48, seed=2)
    ins = ShapesInstances(8, image_size=48, seed=2)
    for i in range(8):
        image_s, label = sem[i]
        image_i, target = ins[i]
        np.testing.assert_array_equal(image_s, image_i)
        painted = np.zeros_like(label)
        for m, c in zip(target["masks"], target["labels"], strict=True):
            painted[m.astype(bool)] = c
        covered = painted > 0
        np.testing.assert_array_equal(label[covered], painted[covered])
        assert (label[~covered] == 0).mean() > 0.9  # the rest is background or dropped specks


# --------------------------------------------------------------------------- shapes: core


def test_render_later_shapes_occlude_earlier():
    red = Shape("square", 10, 10, 6, color=(1.0, 0.0, 0.0))
    blue = Shape("circle", 16, 16, 6, color=(0.0, 0.0, 1.0))
    image, owner = render([red, blue], 32)
    full_red, full_blue = shape_mask(red, 32, 32), shape_mask(blue, 32, 32)
    overlap = full_red & full_blue
    assert overlap.sum() > 5
    assert (owner[overlap] == 1).all()
    assert (owner[full_red & ~full_blue] == 0).all()
    assert (owner[~(full_red | full_blue)] == -1).all()
    assert (image[:, overlap] == np.array([[0.0], [0.0], [1.0]], np.float32)).all()  # blue on top


def test_shape_mask_geometry():
    sq = shape_mask(Shape("square", 20, 20, 5), 40, 40)
    assert sq.sum() == 100
    assert reference_box(sq) == [15, 15, 25, 25]
    circ = shape_mask(Shape("circle", 20, 20, 8), 40, 40)
    assert abs(circ.sum() - np.pi * 64) < 0.05 * np.pi * 64
    tri = shape_mask(Shape("triangle", 20, 20, 10, angle=0.3), 40, 40)
    assert abs(tri.sum() - 3 * np.sqrt(3) / 4 * 100) < 0.08 * 130
    with pytest.raises(ValueError, match="kind"):
        shape_mask(Shape("hexagon", 5, 5, 2), 10, 10)
    # A shape that would draw nothing, or in a colour outside [0, 1], was accepted silently.
    for kwargs in (dict(radius=-1), dict(radius=0), dict(color=(2.0, 0.0, 0.0))):
        with pytest.raises(ValueError, match=r"Shape: radius must be > 0 and color 3 numbers"):
            Shape(**{"kind": "circle", "cx": 5, "cy": 5, "radius": 2, **kwargs})


def test_masks_to_boxes_exclusive_corners():
    masks = np.zeros((3, 8, 10), np.uint8)
    masks[0, 5, 3] = 1
    masks[1, 2:4, 7:10] = 1
    boxes = masks_to_boxes(masks)
    assert boxes.dtype == np.float32
    np.testing.assert_array_equal(boxes, [[3, 5, 4, 6], [7, 2, 10, 4], [0, 0, 0, 0]])
    assert masks_to_boxes(np.zeros((0, 4, 4))).shape == (0, 4)


# --------------------------------------------------------------------------- shapes: instances


def test_instances_targets_consistent():
    ds = ShapesInstances(24, image_size=64, seed=1)
    assert ds.num_classes == 4
    for i in range(len(ds)):
        image, t = ds[i]
        k = len(t["labels"])
        assert image.shape == (3, 64, 64) and image.dtype == np.float32
        assert t["boxes"].shape == (k, 4) and t["boxes"].dtype == np.float32
        assert t["labels"].dtype == np.int64 and t["masks"].dtype == np.uint8
        assert t["masks"].shape == (k, 64, 64)
        assert 1 <= k <= 4
        assert set(t["labels"].tolist()) <= {1, 2, 3}
        assert t["masks"].sum(axis=0).max() <= 1, "visible masks must be disjoint"
        assert (t["masks"].sum(axis=(1, 2)) >= ds.min_visible_area).all()
        for box, mask in zip(t["boxes"], t["masks"], strict=True):
            assert box.tolist() == reference_box(mask)


def test_instances_drop_hidden_shapes():
    # With a large minimum area, partly hidden shapes fall out; K must equal the shapes whose
    # visible area (from the shared drawing core) reaches the threshold, in drawing order.
    ds = ShapesInstances(40, image_size=48, seed=4, min_shapes=3, max_shapes=4,
                         min_visible_area=150)  # fmt: skip
    dropped = 0
    for i in range(len(ds)):
        _, t = ds[i]
        _, shapes, owner = draw_sample(4, i, 48, 3, 4, ds.size_range, ds.noise)
        areas = np.array([(owner == k).sum() for k in range(len(shapes))])
        kept = areas >= 150
        dropped += int((~kept).sum())
        assert t["labels"].tolist() == [s.label for s, ok in zip(shapes, kept, strict=True) if ok]
        for m, k in zip(t["masks"], np.flatnonzero(kept), strict=True):
            np.testing.assert_array_equal(m, owner == k)
    assert dropped > 0, "the test needs at least one dropped shape"


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(n=-1), ValueError, "n must be >= 0"),
        (dict(n=2.5), TypeError, "n must be an int"),
        (dict(n=True), TypeError, "n must be an int"),
        (dict(n=3, image_size=8), ValueError, "image_size must be >= 16"),
        (dict(n=3, seed=-2), ValueError, "seed"),
        (dict(n=3, min_shapes=3, max_shapes=2), ValueError, "min_shapes must be <= max_shapes"),
        (dict(n=3, size_range=(0.3, 0.1)), ValueError, "size_range"),
        (dict(n=3, size_range=5), TypeError, "size_range"),
        (dict(n=3, noise=-1), ValueError, "noise"),
        (dict(n=3, min_visible_area=0), ValueError, "min_visible_area"),
    ],
)
def test_shapes_bad_arguments(kwargs, err, match):
    with pytest.raises(err, match=match):
        ShapesInstances(**kwargs)


def test_shapes_bad_index():
    ds = ShapesSemantic(3, image_size=16)
    with pytest.raises(IndexError, match="out of range"):
        ds[3]
    with pytest.raises(IndexError, match="out of range"):
        ds[-4]
    with pytest.raises(TypeError, match="index must be an int"):
        ds[1.0]
    assert len(ShapesSemantic(0)) == 0


# --------------------------------------------------------------------------- cells


def test_cells_format_and_content():
    ds = CellMembranes(4, image_size=48, seed=0)
    assert ds.num_classes == 2
    for i in range(len(ds)):
        image, label = ds[i]
        assert image.shape == (1, 48, 48) and image.dtype == np.float32
        assert label.shape == (48, 48) and label.dtype == np.int64
        assert set(np.unique(label).tolist()) == {0, 1}
        assert 0.05 < label.mean() < 0.4
        assert image[0][label == 1].mean() < image[0][label == 0].mean() - 0.1


def test_cells_membranes_are_thin_lines():
    # A 3x3 erosion of a <= 2 px line is empty except where lines meet; thick blobs would survive.
    _, label = CellMembranes(1, image_size=64, seed=1)[0]
    m = np.pad(label.astype(bool), 1)
    eroded = np.ones_like(label, dtype=bool)
    for dy in range(3):
        for dx in range(3):
            eroded &= m[dy : dy + 64, dx : dx + 64]
    assert eroded.sum() < 0.1 * label.sum()


def test_cells_deterministic():
    a, b = CellMembranes(3, image_size=32, seed=7), CellMembranes(3, image_size=32, seed=7)
    np.testing.assert_array_equal(a[2][0], b[2][0])
    np.testing.assert_array_equal(a[2][1], b[2][1])
    assert not np.array_equal(a[2][1], CellMembranes(3, image_size=32, seed=8)[2][1])
    assert not np.array_equal(a[1][1], a[2][1])


def test_cells_bad_arguments():
    with pytest.raises(ValueError, match="image_size"):
        CellMembranes(2, image_size=4)
    with pytest.raises(ValueError, match="membrane_width"):
        CellMembranes(2, membrane_width=5)
    with pytest.raises(ValueError, match="cell_size"):
        CellMembranes(2, image_size=32, cell_size=100)
    with pytest.raises(IndexError):
        CellMembranes(2)[2]


# --------------------------------------------------------------------------- loader


def test_loader_batches_in_order():
    ds = IndexDataset(10)
    loader = DataLoader(ds, batch_size=4)
    assert len(loader) == 3
    batches = list(loader)
    assert [b[0].shape for b in batches] == [(4, 1, 2, 3), (4, 1, 2, 3), (2, 1, 2, 3)]
    assert batches[0][1].shape == (4, 2, 3) and batches[0][1].dtype == np.int64
    order = np.concatenate([b[1][:, 0, 0] for b in batches])
    np.testing.assert_array_equal(order, np.arange(10))
    dropping = DataLoader(ds, batch_size=4, drop_last=True)
    assert len(dropping) == 2 and len(list(dropping)) == 2


def test_loader_shuffle_is_deterministic_per_epoch():
    def epoch_order(loader):
        return np.concatenate([b[1][:, 0, 0] for b in loader])

    loader = DataLoader(IndexDataset(12), batch_size=5, shuffle=True, seed=3)
    e0, e1 = epoch_order(loader), epoch_order(loader)
    assert sorted(e0) == list(range(12)) and sorted(e1) == list(range(12))
    assert not np.array_equal(e0, e1), "each epoch reshuffles"
    assert not np.array_equal(e0, np.arange(12))
    assert loader.epoch == 2
    # A "resumed" run: a fresh loader set to epoch 1 reproduces that epoch exactly.
    resumed = DataLoader(IndexDataset(12), batch_size=5, shuffle=True, seed=3)
    resumed.set_epoch(1)
    np.testing.assert_array_equal(epoch_order(resumed), e1)
    other_seed = DataLoader(IndexDataset(12), batch_size=5, shuffle=True, seed=4)
    assert not np.array_equal(epoch_order(other_seed), e0)


def test_loader_semantic_flips_consistent():
    ds = ShapesSemantic(8, image_size=24, seed=0)
    loader = DataLoader(ds, batch_size=8, hflip=True, vflip=True, seed=1)
    images, labels = next(iter(loader))
    kinds = set()
    for i in range(8):
        img0, lab0 = ds[i]
        # The four possible versions of sample i; the batch must hold one, image and label alike.
        variants = {
            (fh, fv): (img0[..., :: -1 if fv else 1, :: -1 if fh else 1],
                       lab0[:: -1 if fv else 1, :: -1 if fh else 1])
            for fh in (False, True)
            for fv in (False, True)
        }  # fmt: skip
        matches = [k for k, (img, _) in variants.items() if np.array_equal(images[i], img)]
        assert len(matches) == 1, f"sample {i} is no flip of the original"
        np.testing.assert_array_equal(labels[i], variants[matches[0]][1])
        kinds.add(matches[0])
    assert len(kinds) >= 2, "flips should be random, not all the same"


def test_loader_instance_flips_keep_boxes_on_masks():
    ds = ShapesInstances(6, image_size=32, seed=2)
    loader = DataLoader(ds, batch_size=3, hflip=True, vflip=True, seed=0)
    n_changed = 0
    for images, targets in loader:
        assert images.shape == (3, 3, 32, 32)
        assert isinstance(targets, list) and len(targets) == 3
        for t in targets:
            np.testing.assert_array_equal(t["boxes"], masks_to_boxes(t["masks"]))
    for b, (_, targets) in enumerate(loader):
        for j, t in enumerate(targets):
            _, t0 = ds[3 * b + j]
            np.testing.assert_array_equal(t["labels"], t0["labels"])
            n_changed += not np.array_equal(t["masks"], t0["masks"])
    assert n_changed > 0


def test_flip_functions_on_boxes():
    image = np.zeros((1, 4, 8), np.float32)
    masks = np.zeros((1, 4, 8), np.uint8)
    masks[0, 0, 0] = 1
    target = {"boxes": np.array([[0, 0, 1, 1]], np.float32), "masks": masks, "labels": [2]}
    _, h = hflip(image, target)
    np.testing.assert_array_equal(h["boxes"], [[7, 0, 8, 1]])
    np.testing.assert_array_equal(h["boxes"], masks_to_boxes(h["masks"]))
    _, v = vflip(image, target)
    np.testing.assert_array_equal(v["boxes"], [[0, 3, 1, 4]])
    np.testing.assert_array_equal(v["boxes"], masks_to_boxes(v["masks"]))
    assert target["boxes"][0, 0] == 0, "flips must not modify the input"


def test_loader_custom_collate_and_errors():
    loader = DataLoader(IndexDataset(5), batch_size=2, collate=lambda s: len(s))
    assert list(loader) == [2, 2, 1]
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(IndexDataset(5), batch_size=0)
    with pytest.raises(TypeError, match="dataset"):
        DataLoader(42)
    with pytest.raises(TypeError, match="collate"):
        DataLoader(IndexDataset(5), collate=3)
    # Samples of different shapes: named (NumPy's "all input arrays must have the same shape"
    # named neither), with the collate that keeps them as lists, as Mask R-CNN takes them.
    samples = [(np.zeros((3, 8, 8)), {"k": 1}), (np.zeros((3, 6, 8)), {"k": 2})]
    with pytest.raises(ValueError, match=r"\(3, 8, 8\) \(sample 0\) and \(3, 6, 8\) \(sample 1\)"):
        default_collate(samples)
    images, targets = map(list, zip(*samples, strict=True))
    assert [i.shape for i in images] == [(3, 8, 8), (3, 6, 8)] and len(targets) == 2


def test_random_split_and_subset():
    ds = IndexDataset(10)
    a, b = random_split(ds, [7, 3], seed=1)
    assert len(a) == 7 and len(b) == 3
    ids = sorted(int(a[i][1][0, 0]) for i in range(7)) + sorted(
        int(b[i][1][0, 0]) for i in range(3)
    )
    assert sorted(ids) == list(range(10))
    assert a.num_classes == 7  # attributes read through
    again, _ = random_split(ds, [7, 3], seed=1)
    np.testing.assert_array_equal(again.indices, a.indices)
    other, _ = random_split(ds, [7, 3], seed=2)
    assert not np.array_equal(other.indices, a.indices)
    parts = random_split(ds, [0.5, 0.3, 0.2])
    assert [len(p) for p in parts] == [5, 3, 2]
    assert [len(p) for p in random_split(IndexDataset(7), [0.5, 0.5])] == [4, 3]
    with pytest.raises(ValueError, match="sum to len"):
        random_split(ds, [5, 4])
    with pytest.raises(ValueError, match="sum to 1"):
        random_split(ds, [0.5, 0.2])
    with pytest.raises(IndexError, match="out of range"):
        Subset(ds, [0, 10])
    assert len(DataLoader(Subset(ds, [1, 2, 3]), batch_size=2)) == 2


def test_cached_renders_once_and_returns_the_same_samples():
    calls = []

    class Counting:
        num_classes = 3

        def __len__(self):
            return 4

        def __getitem__(self, i):
            calls.append(i)
            return np.full((1, 2, 2), i, np.float32), {"boxes": np.zeros((1, 4), np.float32)}

    from minidense.data import Cached

    ds = Cached(Counting())
    first = [ds[i] for i in range(4)]
    again = [ds[i] for i in range(4)]
    assert calls == [0, 1, 2, 3]  # the second pass rendered nothing
    assert all(a[0] is b[0] for a, b in zip(first, again, strict=True))
    assert ds[-1][0][0, 0, 0] == 3 and ds.num_classes == 3 and len(ds) == 4
    with pytest.raises(ValueError, match="read-only"):
        ds[0][0][...] = 7  # kept samples cannot be corrupted in place
    with pytest.raises(IndexError, match="out of range"):
        ds[4]
    # Batches through the loader (flips included) equal those of the uncached dataset.
    real = ShapesInstances(6, image_size=32, seed=3)
    for (xa, ta), (xb, tb) in zip(
        DataLoader(Cached(real), 3, shuffle=True, seed=1, hflip=True),
        DataLoader(real, 3, shuffle=True, seed=1, hflip=True),
        strict=True,
    ):
        np.testing.assert_array_equal(xa, xb)
        for a, b in zip(ta, tb, strict=True):
            np.testing.assert_array_equal(a["masks"], b["masks"])
            np.testing.assert_array_equal(a["boxes"], b["boxes"])


def test_cached_returns_fresh_containers_around_read_only_arrays():
    from minidense.data import Cached

    ds = Cached(ShapesInstances(3, image_size=32, seed=2))
    sample = ds[0]
    target = sample[1]
    boxes = target["boxes"]
    target["boxes"] = None  # replacing an entry changes only this copy...
    target["extra"] = 1
    again = ds[0]
    assert again[1]["boxes"] is boxes and "extra" not in again[1]  # ...not the cache
    assert again is not sample and again[1] is not target
    assert again[0] is sample[0]  # the arrays themselves are shared, and read-only
    assert not again[1]["masks"].flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        again[1]["boxes"][0, 0] = 5

    class Lists:
        def __len__(self):
            return 1

        def __getitem__(self, i):
            return [np.zeros(2), {"parts": [np.ones(1)]}]

    cached = Cached(Lists())
    cached[0][1]["parts"].append(7)
    cached[0].append(8)
    assert len(cached[0]) == 2 and len(cached[0][1]["parts"]) == 1


def test_flips_keep_empty_boxes_empty():
    image = np.zeros((3, 8, 8), np.float32)
    masks = np.zeros((2, 8, 8), np.uint8)
    masks[1, 2, 5] = 1  # the second instance is one pixel; the first is empty
    target = {"boxes": masks_to_boxes(masks), "masks": masks}
    np.testing.assert_array_equal(target["boxes"][0], [0, 0, 0, 0])
    for flip in (hflip, vflip):
        _, out = flip(image, target)
        np.testing.assert_array_equal(out["boxes"], masks_to_boxes(out["masks"]))
        np.testing.assert_array_equal(out["boxes"][0], [0, 0, 0, 0])
    np.testing.assert_array_equal(hflip(image, target)[1]["boxes"][1], [2, 2, 3, 3])


def test_instances_may_be_empty_with_a_large_min_visible_area():
    # The docstring's promise of at least one instance holds for the default threshold only.
    big = ShapesInstances(4, image_size=16, min_visible_area=400)
    assert all(big[i][1]["boxes"].shape == (0, 4) for i in range(4))
    default = ShapesInstances(20, image_size=16, size_range=(0.05, 0.1), max_shapes=6)
    assert all(len(default[i][1]["labels"]) >= 1 for i in range(20))
