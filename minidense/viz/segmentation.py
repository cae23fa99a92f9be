"""Pictures of segmentation: label overlays, prediction grids, training curves."""

from contextlib import contextmanager

import numpy as np

# Background transparent, then distinct colours per class.
PALETTE = np.array(
    [[0, 0, 0], [230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180],
     [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 190]], dtype=np.float32,
) / 255  # fmt: skip


def _figure(nrows, ncols, scale=2.2):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(scale * ncols, scale * nrows), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    return fig, axes


@contextmanager
def _closed_on_error(fig):
    """Close ``fig`` if drawing into it fails: pyplot keeps every figure it made open (and in
    memory) until it is closed, so a figure nobody gets back would leak."""
    try:
        yield fig
    except BaseException:
        import matplotlib.pyplot as plt

        plt.close(fig)
        raise


def _check_images(n):
    if n == 0:
        raise ValueError("nothing to plot: give at least one image")


def _check_same_length(n, **named):
    """Every sequence in ``named`` must hold one item per image (``n``)."""
    for name, seq in named.items():
        if len(seq) != n:
            raise ValueError(f"{name} has {len(seq)} items but there are {n} images; give one each")


def _int_labels(labels, name="labels"):
    """``labels`` as an int64 array; float labels are accepted when they are whole numbers."""
    labels = np.asarray(labels)
    if labels.dtype.kind in "iub":
        return labels.astype(np.int64, copy=False)
    if labels.dtype.kind == "f" and np.all(np.isfinite(labels) & (labels == np.round(labels))):
        return labels.astype(np.int64)
    raise ValueError(
        f"{name} must be whole-number class indices, got dtype {labels.dtype}"
        + (f" with values like {labels.ravel()[:3].tolist()}" if labels.size else "")
    )


def to_rgb(image):
    """(C, H, W) float image → (H, W, 3) for display (grey images are repeated)."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3:
        raise ValueError(f"image must be (C, H, W), got shape {image.shape}")
    rgb = np.repeat(image, 3, axis=0) if image.shape[0] == 1 else image[:3]
    return np.clip(rgb.transpose(1, 2, 0), 0, 1)


def overlay_labels(image, label, alpha=0.5):
    """Blend a class map (H, W) over an image (C, H, W); class 0 stays see-through."""
    rgb = to_rgb(image)
    label = _int_labels(label, "label")
    colours = PALETTE[label % len(PALETTE)]
    a = alpha * (label > 0)[..., None]
    return rgb * (1 - a) + colours * a


def plot_predictions(images, labels, preds, titles=("image", "truth", "prediction"), path=None):
    """One row per sample: image, ground truth overlay, prediction overlay.

    ``titles`` names the three columns.
    """
    n = len(images)
    _check_images(n)
    _check_same_length(n, labels=labels, preds=preds)
    titles = tuple(titles)
    if len(titles) != 3:
        raise ValueError(
            f"titles must name the 3 columns (image, truth, prediction), got {len(titles)}: "
            f"{titles!r}"
        )
    fig, axes = _figure(n, 3)
    with _closed_on_error(fig):
        for i in range(n):
            axes[i, 0].imshow(to_rgb(images[i]))
            axes[i, 1].imshow(overlay_labels(images[i], labels[i]))
            axes[i, 2].imshow(overlay_labels(images[i], preds[i]))
        for ax, t in zip(axes[0], titles, strict=True):
            ax.set_title(t)
        fig.tight_layout()
        return _save(fig, path)


def plot_curves(history, keys=None, path=None):
    """Training curves from a list of per-epoch dicts, one panel per key.

    Without ``keys``, every key any epoch logged (but ``epoch``), in order of first appearance; an
    epoch that did not log a key (or logged None) is skipped in that panel.
    """
    import matplotlib.pyplot as plt

    if not keys:
        keys = list(dict.fromkeys(k for h in history for k in h if k != "epoch"))
    fig, axes = plt.subplots(
        1, max(len(keys), 1), figsize=(4 * max(len(keys), 1), 3), squeeze=False
    )
    with _closed_on_error(fig):
        epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
        for ax, k in zip(axes[0], keys, strict=False):
            points = [
                (e, h[k]) for e, h in zip(epochs, history, strict=True) if h.get(k) is not None
            ]
            ax.plot([e for e, _ in points], [v for _, v in points], marker="o")
            ax.set_xlabel("epoch")
            ax.set_title(k)
            ax.grid(alpha=0.3)
        fig.tight_layout()
        return _save(fig, path)


def _save(fig, path):
    if path is not None:
        import matplotlib.pyplot as plt

        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig
