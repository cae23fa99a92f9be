"""Pictures of segmentation: label overlays, prediction grids, training curves."""

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
    label = np.asarray(label)
    colours = PALETTE[label % len(PALETTE)]
    a = alpha * (label > 0)[..., None]
    return rgb * (1 - a) + colours * a


def plot_predictions(images, labels, preds, titles=("image", "truth", "prediction"), path=None):
    """One row per sample: image, ground truth overlay, prediction overlay."""
    n = len(images)
    fig, axes = _figure(n, 3)
    for i in range(n):
        axes[i, 0].imshow(to_rgb(images[i]))
        axes[i, 1].imshow(overlay_labels(images[i], labels[i]))
        axes[i, 2].imshow(overlay_labels(images[i], preds[i]))
    for ax, t in zip(axes[0], titles, strict=True):
        ax.set_title(t)
    fig.tight_layout()
    return _save(fig, path)


def plot_curves(history, keys=None, path=None):
    """Training curves from a list of per-epoch dicts, one panel per key."""
    import matplotlib.pyplot as plt

    keys = keys or [k for k in history[0] if k != "epoch"] if history else []
    fig, axes = plt.subplots(
        1, max(len(keys), 1), figsize=(4 * max(len(keys), 1), 3), squeeze=False
    )
    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    for ax, k in zip(axes[0], keys, strict=False):
        ax.plot(epochs, [h.get(k, np.nan) for h in history], marker="o")
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
