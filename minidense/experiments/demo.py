"""``python -m minidense demo``: train a small segmentation model end to end with autograd."""

import os

import numpy as np


def _fast():
    return os.environ.get("MINIDENSE_FAST", "0") == "1"


def _disc_images(n, size, rng):
    """Noisy images (n, 1, size, size) with one bright disc each, and the disc's mask as labels."""
    yy, xx = np.mgrid[:size, :size]
    images = np.empty((n, 1, size, size), np.float32)
    labels = np.empty((n, size, size), np.int64)
    for i in range(n):
        cy, cx = rng.uniform(size * 0.3, size * 0.7, 2)
        r = rng.uniform(size * 0.15, size * 0.3)
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        images[i, 0] = 0.3 + 0.4 * mask + rng.normal(0, 0.15, (size, size))
        labels[i] = mask
    return images, labels


def _features(images):
    """Per-pixel features: the value and its 3x3 neighbourhood, shape (n·H·W, 9)."""
    n, _, H, W = images.shape
    p = np.pad(images[:, 0], ((0, 0), (1, 1), (1, 1)), mode="edge")
    cols = [p[:, dy : dy + H, dx : dx + W] for dy in range(3) for dx in range(3)]
    return np.stack(cols, axis=-1).reshape(-1, 9)


def run_demo(epochs=None, seed=0):
    """Train a per-pixel MLP (9 → 16 → 2) on noisy discs with Adam-free SGD; print pixel accuracy."""
    import minidense as md

    rng = np.random.default_rng(seed)
    md.manual_seed(seed)
    size = 24 if _fast() else 32
    x_train, y_train = _disc_images(16, size, rng)
    x_test, y_test = _disc_images(8, size, rng)
    X, Y = md.tensor(_features(x_train)), y_train.reshape(-1)
    w1 = md.tensor(md.randn(9, 16).numpy() * 0.5, requires_grad=True)
    b1 = md.zeros(16, requires_grad=True)
    w2 = md.tensor(md.randn(16, 2).numpy() * 0.5, requires_grad=True)
    b2 = md.zeros(2, requires_grad=True)
    params = [w1, b1, w2, b2]

    def logits(x):
        return ((x @ w1 + b1).relu()) @ w2 + b2

    epochs = epochs or (30 if _fast() else 200)
    for epoch in range(epochs):
        loss = md.F.cross_entropy(logits(X), Y)
        for p in params:
            p.grad = None
        loss.backward()
        with md.no_grad():
            for p in params:
                p.data -= 1.0 * p.grad.data
        if epoch % max(1, epochs // 5) == 0 or epoch == epochs - 1:
            print(f"epoch {epoch + 1:4d}/{epochs}  loss {loss.item():.4f}")
    with md.no_grad():
        pred = logits(md.tensor(_features(x_test))).numpy().argmax(1)
    acc = float((pred == y_test.reshape(-1)).mean())
    print(f"held-out pixel accuracy: {acc:.3f}")
    return acc
