"""Batching: a small DataLoader over any ``len`` + ``__getitem__`` dataset, Subset, Cached and
random_split.

Randomness (shuffling, flips) comes from ``np.random.default_rng([seed, epoch])``, so epoch ``e``
of a run always sees the same order and the same flips: after resuming from a checkpoint, call
``loader.set_epoch(e)`` and the run continues exactly as it would have.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import numpy as np

from .keypoints import flip_keypoints
from .shapes import _check_int


def hflip(image: np.ndarray, target):
    """Mirror a sample left-right. ``image`` (C, H, W); ``target`` a label map (H, W) or an
    instance dict whose ``masks`` (K, H, W), ``boxes`` (K, 4) and ``keypoints`` (K, P, 3), if any
    (:func:`~minidense.data.keypoints.flip_keypoints`), are flipped consistently:
    a box ``(x1, y1, x2, y2)`` becomes ``(W - x2, y1, W - x1, y2)`` (exclusive x2, so a box
    around the last column 0..1 of a W = 8 image, (0, 0, 1, 1), maps to (7, 0, 8, 1)). An empty
    box ``(0, 0, 0, 0)`` (what :func:`masks_to_boxes` gives an empty mask) stays ``(0, 0, 0, 0)``."""
    return _flip(image, target, axis=-1)


def vflip(image: np.ndarray, target):
    """Mirror a sample top-bottom; as :func:`hflip` with y in place of x."""
    return _flip(image, target, axis=-2)


def _check_same_size(image, target, name):
    """A label map or masks of another size than the image would be flipped about another
    centre line than the image: refuse instead of silently misaligning them."""
    size = np.shape(target)[-2:]
    if size != np.shape(image)[-2:]:
        raise ValueError(
            f"{name} has size {size} but the image (C, H, W) has {np.shape(image)[-2:]}; "
            "they must be flipped together, so they need the same H and W"
        )


def _flip(image, target, axis):
    if not isinstance(target, dict) and np.asarray(target).dtype.kind not in "biuf":
        raise TypeError(
            f"target must be a label map (H, W) or an instance dict, got {type(target).__name__}"
        )
    if isinstance(target, dict) and "masks" in target:
        _check_same_size(image, target["masks"], "target['masks']")
    elif target is not None and not isinstance(target, dict):
        _check_same_size(image, target, "target (a label map)")
    image = np.ascontiguousarray(np.flip(image, axis=axis))
    if isinstance(target, dict):
        out = dict(target)
        if "masks" in target:
            out["masks"] = np.ascontiguousarray(np.flip(target["masks"], axis=axis))
        if "boxes" in target:
            boxes = np.array(target["boxes"], copy=True)
            size = image.shape[axis]
            lo, hi = (0, 2) if axis == -1 else (1, 3)  # x columns or y columns of (x1, y1, x2, y2)
            empty = ~boxes.any(axis=-1)  # (0, 0, 0, 0) marks an empty mask: keep it so
            boxes[:, [lo, hi]] = size - boxes[:, [hi, lo]]
            boxes[empty] = 0
            out["boxes"] = boxes
        if "keypoints" in target:  # mirrored, then put back in their clockwise order
            out["keypoints"] = flip_keypoints(target["keypoints"], image.shape[axis], axis)
        return image, out
    if target is None:
        return image, None
    target = np.asarray(target)
    return image, np.ascontiguousarray(np.flip(target, axis=axis))


def _check_dataset(dataset, who):
    if isinstance(dataset, str | bytes) or not (
        hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")
    ):
        raise TypeError(
            f"{who}: dataset must have __len__ and __getitem__, got {type(dataset).__name__}"
        )


def default_collate(samples: list):
    """Stack a list of samples into a batch.

    ``(image, label)`` samples -> ``(images (B, C, H, W), labels (B, H, W))``; instance samples
    ``(image, dict)`` -> ``(images (B, C, H, W), [dict, ...])`` since K differs per image.
    Any other tuple is collated field by field the same way; a bare array is stacked.
    """
    if not isinstance(samples, list | tuple) or not samples:
        raise TypeError(
            f"default_collate takes a non-empty list of samples, got {type(samples).__name__}"
            f"{' (empty)' if isinstance(samples, list | tuple) else ''}"
        )
    first = samples[0]
    if isinstance(first, tuple | list):
        return tuple(_collate_field([s[j] for s in samples]) for j in range(len(first)))
    return _collate_field(samples)


def _collate_field(values: list):
    if isinstance(values[0], dict):
        return list(values)
    arrays = [np.asarray(v) for v in values]
    for i, a in enumerate(arrays):
        if a.shape != arrays[0].shape:  # NumPy's own message names neither sample
            raise ValueError(
                f"default_collate: samples must have one shape to be stacked, got "
                f"{arrays[0].shape} (sample 0) and {a.shape} (sample {i}); for images of "
                "different sizes (Mask R-CNN takes a list), pass collate=lambda samples: "
                "tuple(map(list, zip(*samples)))"
            )
    return np.stack(arrays)


class DataLoader:
    """Iterate a dataset in batches of NumPy arrays.

    Args:
        dataset: anything with ``__len__`` and ``__getitem__(int)``.
        batch_size: samples per batch.
        shuffle: visit samples in a new random order every epoch.
        seed: seeds the per-epoch order and flips.
        hflip, vflip: flip each sample left-right / top-bottom with probability 1/2 (image,
            label map, masks and boxes together).
        drop_last: skip a final batch smaller than ``batch_size``.
        collate: ``list of samples -> batch``; defaults to :func:`default_collate`.

    Each ``iter(loader)`` runs one epoch and then advances ``loader.epoch``; ``set_epoch(e)``
    chooses the epoch the next iteration will run (to resume a run reproducibly).
    """

    def __init__(
        self,
        dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        seed: int = 0,
        hflip: bool = False,
        vflip: bool = False,
        drop_last: bool = False,
        collate: Callable | None = None,
    ):
        _check_dataset(dataset, "DataLoader")
        self.dataset = dataset
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.seed = _check_int("seed", seed, 0)
        if collate is not None and not callable(collate):
            raise TypeError(f"collate must be callable or None, got {type(collate).__name__}")
        for name, v in (("shuffle", shuffle), ("hflip", hflip), ("vflip", vflip),
                        ("drop_last", drop_last)):  # fmt: skip
            if not isinstance(v, bool | np.bool_):
                raise TypeError(f"DataLoader: {name} must be True or False, got {v!r}")
        self.shuffle, self.hflip, self.vflip = bool(shuffle), bool(hflip), bool(vflip)
        self.drop_last = bool(drop_last)
        self.collate = collate if collate is not None else default_collate
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration run epoch ``epoch`` (its order and flips)."""
        self.epoch = _check_int("epoch", epoch, 0)

    def __len__(self) -> int:
        n, b = len(self.dataset), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def epoch_plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """The sample order (N,) and flip decisions (N, 2) [horizontal, vertical] of ``epoch``."""
        n = len(self.dataset)
        # Independent streams, so switching shuffle on or off does not change the flips.
        order_ss, flip_ss = np.random.SeedSequence([self.seed, epoch]).spawn(2)
        order = np.random.default_rng(order_ss).permutation(n) if self.shuffle else np.arange(n)
        flips = np.random.default_rng(flip_ss).random((n, 2)) < 0.5
        flips &= np.array([self.hflip, self.vflip])
        return order, flips

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1  # advance now, so that breaking out early still moves to the next epoch
        order, flips = self.epoch_plan(epoch)
        for b in range(len(self)):
            samples = []
            for pos in range(b * self.batch_size, min(len(order), (b + 1) * self.batch_size)):
                sample = self.dataset[int(order[pos])]
                if flips[pos].any():
                    sample = self._augment(sample, flips[pos])
                samples.append(sample)
            yield self.collate(samples)

    @staticmethod
    def _augment(sample, flip):
        if not (isinstance(sample, tuple | list) and len(sample) == 2):
            raise TypeError(
                f"hflip/vflip need (image, target) samples, got {type(sample).__name__}"
            )
        image, target = sample
        if flip[0]:
            image, target = hflip(image, target)
        if flip[1]:
            image, target = vflip(image, target)
        return image, target

    def __repr__(self) -> str:
        return (
            f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"hflip={self.hflip}, vflip={self.vflip}, drop_last={self.drop_last})"
        )


class Subset:
    """The samples ``indices`` of ``dataset``, in that order. Attributes such as
    ``num_classes`` and ``class_names`` are read through from the wrapped dataset."""

    def __init__(self, dataset, indices: Sequence[int]):
        _check_dataset(dataset, "Subset")
        idx = np.asarray(indices)
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
            raise TypeError(f"indices must be a 1-D sequence of ints, got {indices!r}")
        n = len(dataset)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            bad = idx[(idx < 0) | (idx >= n)][0]
            raise IndexError(f"index {bad} out of range for a dataset of length {n}")
        self.dataset = dataset
        self.indices = idx.astype(np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        return self.dataset[int(self.indices[i])]

    def __getattr__(self, name):
        # Only called for attributes Subset lacks; guard internals to avoid recursion in copies.
        if name.startswith("__") or name in ("dataset", "indices"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __repr__(self) -> str:
        return f"Subset({self.dataset!r}, {len(self)} samples)"


class Cached:
    """``dataset`` with each sample rendered once and kept: procedural datasets draw a sample on
    every access, which a many-epoch run would repeat for nothing. The kept arrays are made
    read-only, so an augmentation that tried to change one in place fails loudly instead of
    corrupting later epochs (the DataLoader's flips copy). Each access returns fresh containers
    (tuples, lists, dicts: shallow copies around the same read-only arrays), so replacing an entry,
    ``target["boxes"] = ...``, changes only the caller's copy. Attributes read through, as Subset's.
    """

    def __init__(self, dataset):
        _check_dataset(dataset, "Cached")
        self.dataset = dataset
        self._samples = {}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i):
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a dataset of length {len(self)}")
        i %= len(self)
        if i not in self._samples:
            self._samples[i] = _frozen(self.dataset[i])
        return _fresh_containers(self._samples[i])

    def __getattr__(self, name):
        if name.startswith("__") or name in ("dataset", "_samples"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __repr__(self) -> str:
        return f"Cached({self.dataset!r})"


def _rebuilt(sample, leaf):
    """``sample`` with its tuples, lists and dicts rebuilt (namedtuples too) around ``leaf(x)``
    of everything else."""
    if isinstance(sample, dict):
        return {k: _rebuilt(v, leaf) for k, v in sample.items()}
    if isinstance(sample, tuple | list):
        items = [_rebuilt(v, leaf) for v in sample]
        return type(sample)(*items) if hasattr(sample, "_fields") else type(sample)(items)
    return leaf(sample)


def _read_only(x):
    if isinstance(x, np.ndarray):
        x.flags.writeable = False
    return x


def _frozen(sample):
    """The sample with every array in it made read-only (tuples, lists and dicts walked)."""
    return _rebuilt(sample, _read_only)


def _fresh_containers(sample):
    """A copy of the tuples, lists and dicts in ``sample``, holding the very same arrays."""
    return _rebuilt(sample, lambda x: x)


def random_split(dataset, lengths: Sequence, seed: int = 0) -> list[Subset]:
    """Split ``dataset`` into disjoint random :class:`Subset`s.

    ``lengths`` are counts summing to ``len(dataset)``, or fractions summing to 1 (e.g.
    ``[0.8, 0.2]``); fractional splits round down and hand the remainder out one by one from
    the first subset. Deterministic by ``seed``.
    """
    _check_dataset(dataset, "random_split")
    n = len(dataset)
    if isinstance(lengths, str) or not hasattr(lengths, "__iter__"):
        raise TypeError(
            f"random_split: lengths must be a list of counts or fractions, got {lengths!r}"
        )
    lengths = list(lengths)
    if not lengths:
        raise ValueError("lengths must not be empty")
    if all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in lengths):
        counts = [int(v) for v in lengths]
        if any(c < 0 for c in counts) or sum(counts) != n:
            raise ValueError(
                f"lengths must be non-negative and sum to len(dataset) = {n}, got {lengths}"
            )
    elif all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in lengths):
        fracs = np.asarray(lengths, dtype=np.float64)
        if (fracs < 0).any() or abs(fracs.sum() - 1.0) > 1e-6:
            raise ValueError(f"fractional lengths must be >= 0 and sum to 1, got {lengths}")
        counts = [int(np.floor(f * n)) for f in fracs]
        for k in range(n - sum(counts)):
            counts[k % len(counts)] += 1
    else:
        raise TypeError(f"lengths must be ints or fractions, got {lengths!r}")
    perm = np.random.default_rng(_check_int("seed", seed, 0)).permutation(n)
    bounds = np.cumsum([0] + counts)
    return [Subset(dataset, perm[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
