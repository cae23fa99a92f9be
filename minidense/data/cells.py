"""Cell membranes: a small stand-in for U-Net's ISBI 2012 electron-microscopy task.

Each image is a Voronoi tessellation of random seed points, slightly warped so membranes wave
like real ones. Pixels within ``membrane_width / 2`` of a cell boundary are membrane (label 1);
the rest is cell interior (label 0). The picture is grey: textured cells of varying brightness,
dark membranes of varying contrast, a few dark "organelles" inside cells (dark but *not*
membrane, the distractors that make the ISBI task hard), then a blur and noise.
"""

from __future__ import annotations

import numbers

import numpy as np

from .shapes import _check_int, smooth_noise


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of an (H, W) image with edge replication."""
    radius = max(1, int(np.ceil(2.5 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius, radius)
        padded = np.pad(image, pad, mode="edge")
        n = image.shape[axis]
        image = sum(w * padded.take(np.arange(t, t + n), axis=axis) for t, w in enumerate(taps))
    return image


def voronoi_membranes(
    points: np.ndarray, height: int, width: int, half_width: float, warp=None
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest seed (H, W) int64 and membrane mask (H, W) bool of a Voronoi diagram.

    ``points`` (P, 2) are (y, x) seeds in pixels. The distance from a pixel p to the boundary
    between its nearest seed a and the second nearest b is (|p-b|² - |p-a|²) / (2|a-b|), exact for
    the bisector line, so the membranes are of even thickness ~ 2·half_width. ``warp`` (2, H, W),
    if given, is added to the pixel coordinates first (wavy boundaries). Rows are processed in
    blocks to keep the (rows, W, P) distance array small.
    """
    ys = np.arange(height, dtype=np.float64)[:, None] + 0.5
    xs = np.arange(width, dtype=np.float64)[None, :] + 0.5
    py = np.broadcast_to(ys, (height, width)).copy()
    px = np.broadcast_to(xs, (height, width)).copy()
    if warp is not None:
        py += warp[0]
        px += warp[1]
    nearest = np.empty((height, width), dtype=np.int64)
    membrane = np.empty((height, width), dtype=bool)
    block = max(1, 2_000_000 // max(1, width * len(points)))
    for r0 in range(0, height, block):
        r1 = min(height, r0 + block)
        d2 = (py[r0:r1, :, None] - points[:, 0]) ** 2 + (px[r0:r1, :, None] - points[:, 1]) ** 2
        two = np.argpartition(d2, 1, axis=-1)[..., :2]  # the two nearest seeds, unordered
        dtwo = np.take_along_axis(d2, two, axis=-1)
        order = np.argsort(dtwo, axis=-1)
        a = np.take_along_axis(two, order[..., :1], axis=-1)[..., 0]
        b = np.take_along_axis(two, order[..., 1:], axis=-1)[..., 0]
        da, db = dtwo.min(axis=-1), dtwo.max(axis=-1)
        sep = np.linalg.norm(points[a] - points[b], axis=-1)
        nearest[r0:r1] = a
        membrane[r0:r1] = (db - da) / (2.0 * np.maximum(sep, 1e-9)) < half_width
    return nearest, membrane


class CellMembranes:
    """Membrane segmentation of synthetic EM-like cell images (binary, U-Net style).

    ``ds[i]`` -> ``(image, label)``: image float32 (1, H, W) in [0, 1]; label int64 (H, W) with
    1 = membrane, 0 = cell interior. ``cell_size`` is the typical cell diameter in pixels and
    ``membrane_width`` the membrane thickness (1 to 3 px). Deterministic by ``(seed, i)``.
    """

    num_classes = 2
    class_names = ("cell", "membrane")

    def __init__(
        self,
        n: int,
        image_size: int = 64,
        seed: int = 0,
        cell_size: float = 14.0,
        membrane_width: float = 1.6,
        noise: float = 0.05,
    ):
        self.n = _check_int("n", n, 0)
        self.image_size = _check_int("image_size", image_size, 16)
        self.seed = _check_int("seed", seed, 0)
        if not isinstance(cell_size, numbers.Real) or not 4 <= cell_size <= image_size:
            raise ValueError(f"cell_size must be in [4, image_size], got {cell_size!r}")
        if not isinstance(membrane_width, numbers.Real) or not 1 <= membrane_width <= 3:
            raise ValueError(f"membrane_width must be in [1, 3] pixels, got {membrane_width!r}")
        if not isinstance(noise, numbers.Real) or not 0 <= noise <= 0.5:
            raise ValueError(f"noise must be a number in [0, 0.5], got {noise!r}")
        self.cell_size = float(cell_size)
        self.membrane_width = float(membrane_width)
        self.noise = float(noise)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        i = int(index) + self.n if index < 0 else int(index)
        if not 0 <= i < self.n:
            raise IndexError(f"index {index} out of range for a dataset of length {self.n}")
        rng = np.random.default_rng([self.seed, i])
        s = self.image_size
        n_cells = max(3, int(round(s * s / self.cell_size**2 * rng.uniform(0.8, 1.2))))
        # Seeds may lie a little outside so border cells are cut, as in a crop of a larger slice.
        points = rng.uniform(-0.1 * s, 1.1 * s, size=(n_cells, 2))
        amp = 0.12 * self.cell_size
        warp = np.stack([amp * smooth_noise(rng, s, s, self.cell_size) for _ in range(2)])
        nearest, membrane = voronoi_membranes(points, s, s, self.membrane_width / 2, warp)

        brightness = rng.uniform(0.5, 0.85, size=n_cells)
        image = brightness[nearest] + 0.08 * smooth_noise(rng, s, s, cell=3.0)
        # Organelles: small dark blobs inside cells, roughly one per two cells.
        yy, xx = np.mgrid[0:s, 0:s] + 0.5
        for _ in range(int(rng.poisson(n_cells / 2))):
            cy, cx = rng.uniform(0, s, size=2)
            r = rng.uniform(1.0, 0.18 * self.cell_size)
            blob = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r) & ~membrane
            image[blob] -= rng.uniform(0.2, 0.35)
        # Membranes: dark, with a contrast that drifts along them (faint stretches exist in EM).
        darkness = 0.25 + 0.12 * smooth_noise(rng, s, s, cell=self.cell_size)
        image[membrane] = darkness[membrane]
        image = _blur(image, sigma=0.7)
        image += rng.normal(0.0, self.noise, size=image.shape)
        image = np.clip(image, 0.0, 1.0).astype(np.float32)[None]
        return image, membrane.astype(np.int64)

    def __repr__(self) -> str:
        return (
            f"CellMembranes(n={self.n}, image_size={self.image_size}, seed={self.seed}, "
            f"cell_size={self.cell_size}, membrane_width={self.membrane_width})"
        )
