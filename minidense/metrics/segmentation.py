"""Semantic-segmentation metrics from a confusion matrix (FCN paper, Long et al. 2015, sec. 5).

Everything is derived from one ``(K, K)`` confusion matrix ``cm`` whose rows are the true class
and columns the predicted class, so metrics accumulate exactly over a whole data set (sum the
matrices, then divide once) rather than averaging per-batch ratios. With ``n_ij`` = pixels of
class i predicted as j and ``t_i = Σ_j n_ij``:

- pixel accuracy   Σ_i n_ii / Σ_i t_i
- class accuracy   n_ii / t_i                           (per class; mean accuracy averages it)
- IoU              n_ii / (t_i + Σ_j n_ji − n_ii)      (per class)
- mean IoU         mean of IoU over classes present in the truth *or* the prediction
- frequency-weighted IoU   Σ_i t_i · IoU_i / Σ_i t_i
"""

from __future__ import annotations

import numbers

import numpy as np

from .host import host_array


def _check_labels(a: np.ndarray, name: str, num_classes: int) -> None:
    if not (np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
        hint = (
            " (take argmax over the class axis of the scores first)" if a.dtype.kind == "f" else ""
        )
        raise TypeError(f"{name} must hold integer class labels, got dtype {a.dtype}{hint}")
    if a.size == 0:
        return
    lo, hi = a.min(), a.max()
    if lo < 0 or hi >= num_classes:
        bad = lo if lo < 0 else hi
        raise ValueError(
            f"{name} contains label {int(bad)}, outside [0, {num_classes - 1}] for "
            f"num_classes={num_classes} (pixels to skip need ignore_index)"
        )


def _check_num_classes(num_classes) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
        raise TypeError(f"num_classes must be an int, got {type(num_classes).__name__}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return int(num_classes)


def _check_ignore_index(ignore_index):
    if ignore_index is not None and (
        isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral)
    ):
        raise TypeError(f"ignore_index must be an int or None, got {ignore_index!r}")


def confusion_matrix(pred, target, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """Confusion matrix int64 (K, K): ``cm[t, p]`` counts pixels of true class t predicted as p.

    ``pred`` and ``target`` are integer label arrays of the same shape, e.g. (N, H, W); pixels
    whose *target* equals ``ignore_index`` (e.g. 255, a "void" border) are left out. One
    ``bincount`` over ``t·K + p`` does the counting.

    Example: target [0, 1, 1], pred [0, 1, 0], K = 2 -> [[1, 0], [1, 1]].
    """
    num_classes = _check_num_classes(num_classes)
    _check_ignore_index(ignore_index)
    pred, target = host_array(pred, "pred"), host_array(target, "target")
    if pred.shape != target.shape:
        hint = ""
        if pred.ndim == target.ndim + 1 and pred.dtype.kind == "f":
            hint = (
                "; pred looks like class scores (N, K, ...): take pred.argmax(axis=1) first, "
                "or use SegmentationMeter.update, which does"
            )
        raise ValueError(
            f"pred and target must have the same shape, got {pred.shape} and {target.shape}{hint}"
        )
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    _check_labels(target, "target", num_classes)
    _check_labels(pred, "pred", num_classes)
    flat = target.astype(np.int64).ravel() * num_classes + pred.astype(np.int64).ravel()
    counts = np.bincount(flat, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def _cm_from(cm_or_pred, target, num_classes, ignore_index) -> np.ndarray:
    """Accept either a confusion matrix alone or ``pred, target, num_classes``."""
    if target is None:
        cm = host_array(cm_or_pred, "cm")
        if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
            raise ValueError(
                f"cm (cm_or_pred) must be a square confusion matrix (K, K), got shape "
                f"{cm.shape}; or pass pred, target and num_classes"
            )
        if cm.dtype.kind not in "biuf":
            raise TypeError(f"cm (cm_or_pred) must hold counts, got dtype {cm.dtype}")
        bad = cm[~(np.isfinite(cm) & (cm >= 0))]
        if bad.size:  # a negative or NaN "count" would give a plausible-looking score
            raise ValueError(f"cm (cm_or_pred) must hold counts (finite, >= 0), got {bad[0]}")
        return cm
    if num_classes is None:
        raise ValueError("num_classes is required when passing pred and target")
    return confusion_matrix(cm_or_pred, target, num_classes, ignore_index)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with NaN where den == 0 (no warnings)."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _nanmean(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else float("nan")


def iou_per_class(cm) -> np.ndarray:
    """IoU float64 (K,) per class; NaN for a class absent from both truth and prediction."""
    cm = _cm_from(cm, None, None, None)
    tp = np.diag(cm)
    return _ratio(tp, cm.sum(axis=0) + cm.sum(axis=1) - tp)


def class_accuracy(cm) -> np.ndarray:
    """Per-class accuracy (recall) float64 (K,); NaN for classes absent from the truth."""
    cm = _cm_from(cm, None, None, None)
    return _ratio(np.diag(cm), cm.sum(axis=1))


def mean_iou(cm_or_pred, target=None, num_classes=None, ignore_index=None) -> float:
    """Mean IoU over classes present in the truth or the prediction (NaN if there are none).

    Call as ``mean_iou(cm)`` or ``mean_iou(pred, target, num_classes, ignore_index=None)``.
    """
    return _nanmean(iou_per_class(_cm_from(cm_or_pred, target, num_classes, ignore_index)))


def mean_accuracy(cm_or_pred, target=None, num_classes=None, ignore_index=None) -> float:
    """Mean of :func:`class_accuracy` over classes present in the truth."""
    return _nanmean(class_accuracy(_cm_from(cm_or_pred, target, num_classes, ignore_index)))


def pixel_accuracy(cm_or_pred, target=None, num_classes=None, ignore_index=None) -> float:
    """Fraction of (non-ignored) pixels labelled correctly; NaN when there are none."""
    cm = _cm_from(cm_or_pred, target, num_classes, ignore_index)
    return float(_ratio(np.trace(cm), cm.sum()))


def frequency_weighted_iou(cm_or_pred, target=None, num_classes=None, ignore_index=None) -> float:
    """IoU per class weighted by the class's share of true pixels."""
    cm = _cm_from(cm_or_pred, target, num_classes, ignore_index)
    freq = cm.sum(axis=1)
    iou = np.nan_to_num(iou_per_class(cm))  # NaN only where freq == 0, so the weight is 0 too
    return float(_ratio((freq * iou).sum(), freq.sum()))


class SegmentationMeter:
    """Accumulate a confusion matrix over batches and report the metrics at the end.

    ``update(pred, target)`` takes integer predictions shaped like ``target`` (N, H, W), or
    float scores (N, K, H, W) from which it takes the argmax over K.

    >>> meter = SegmentationMeter(num_classes=4)
    >>> for images, labels in loader:                       # doctest: +SKIP
    ...     meter.update(model(images), labels)
    >>> meter.compute()["mean_iou"]                          # doctest: +SKIP
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None, class_names=None):
        self.num_classes = _check_num_classes(num_classes)
        _check_ignore_index(ignore_index)
        if class_names is not None and (
            isinstance(class_names, str) or not isinstance(class_names, list | tuple)
            or not all(isinstance(c, str) for c in class_names)
        ):  # fmt: skip
            raise TypeError(f"class_names must be a list of strings or None, got {class_names!r}")
        if class_names is not None and len(class_names) != self.num_classes:
            raise ValueError(
                f"class_names has {len(class_names)} entries but num_classes={num_classes}"
            )
        self.ignore_index = ignore_index
        self.class_names = None if class_names is None else list(class_names)
        self.reset()

    def reset(self) -> None:
        self.confusion = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, pred, target) -> np.ndarray:
        """Add a batch; returns that batch's own confusion matrix."""
        pred, target = host_array(pred, "pred"), host_array(target, "target")
        if pred.ndim == target.ndim + 1 and pred.dtype.kind == "f":
            if pred.shape[1] != self.num_classes:
                raise ValueError(
                    f"scores have {pred.shape[1]} channels on axis 1, expected "
                    f"num_classes={self.num_classes}"
                )
            pred = pred.argmax(axis=1)
        cm = confusion_matrix(pred, target, self.num_classes, self.ignore_index)
        self.confusion += cm
        return cm

    def compute(self) -> dict:
        """Metrics of everything seen since the last reset (floats, and (K,) arrays)."""
        cm = self.confusion
        return {
            "pixel_accuracy": pixel_accuracy(cm),
            "mean_accuracy": mean_accuracy(cm),
            "mean_iou": mean_iou(cm),
            "frequency_weighted_iou": frequency_weighted_iou(cm),
            "iou_per_class": iou_per_class(cm),
            "class_accuracy": class_accuracy(cm),
        }

    def summary(self) -> str:
        """A short human-readable table of the accumulated metrics."""
        m = self.compute()
        names = self.class_names or [str(k) for k in range(self.num_classes)]
        lines = [
            f"pixel acc {m['pixel_accuracy']:.4f}  mean acc {m['mean_accuracy']:.4f}  "
            f"mIoU {m['mean_iou']:.4f}  fwIoU {m['frequency_weighted_iou']:.4f}"
        ]
        lines += [
            f"  {n:>12s}  IoU {v:.4f}" for n, v in zip(names, m["iou_per_class"], strict=True)
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"SegmentationMeter(num_classes={self.num_classes}, ignore_index={self.ignore_index}, "
            f"pixels={int(self.confusion.sum())})"
        )
