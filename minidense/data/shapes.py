"""Procedural shapes: one drawing core, two views (semantic class maps and instances).

Every image is drawn from its own random stream ``np.random.default_rng([seed, i])``, so ``ds[i]``
is the same whichever samples were drawn before it (random access, several workers, resumed runs)
and nothing is ever downloaded or cached.

The core is split in two so that tests (and curious users) can draw exact scenes:

- :func:`random_scene` picks a background and a list of :class:`Shape` from a random generator;
- :func:`render` paints them in order — later shapes occlude earlier ones — and returns the image
  plus an ``owner`` map (index of the shape that is visible at each pixel, -1 for background).

Both datasets call :func:`draw_sample`, so with the same ``seed``, ``image_size`` and shape-count
range, ``ShapesSemantic`` and ``ShapesInstances`` show the very same images.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

CLASS_NAMES = ("background", "square", "circle", "triangle")
KINDS = ("square", "circle", "triangle")  # kind k has class label k + 1


@dataclass(frozen=True)
class Shape:
    """One filled shape. ``kind`` is 'square' | 'circle' | 'triangle'.

    ``cx, cy`` is the centre in pixels (x to the right, y down) and ``radius`` its size: half the
    side of the (axis-aligned) square, the circle's radius, the triangle's circumradius.
    ``angle`` (radians) rotates the triangle only. ``color`` is RGB in [0, 1].
    """

    kind: str
    cx: float
    cy: float
    radius: float
    angle: float = 0.0
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __post_init__(self):
        if not isinstance(self.kind, str) or self.kind not in KINDS:
            raise ValueError(f"Shape: kind must be one of {KINDS}, got {self.kind!r}")
        for name in ("cx", "cy", "radius", "angle"):
            _check_real(f"Shape: {name}", getattr(self, name))
        color = self.color
        if not isinstance(color, tuple | list) or len(color) != 3:
            raise TypeError(f"Shape: color must be 3 numbers (R, G, B) in [0, 1], got {color!r}")
        for c in color:
            _check_real("Shape: color", c)
        if self.radius <= 0 or not all(0 <= c <= 1 for c in color):  # it would draw nothing, or
            raise ValueError(  # a colour outside the image's range
                f"Shape: radius must be > 0 and color 3 numbers in [0, 1], got radius="
                f"{self.radius}, color={tuple(color)}"
            )

    @property
    def label(self) -> int:
        return KINDS.index(self.kind) + 1


def shape_mask(shape: Shape, height: int, width: int) -> np.ndarray:
    """Full (unoccluded) mask of ``shape``: bool (H, W), tested at pixel centres (x+0.5, y+0.5)."""
    if not isinstance(shape, Shape):
        raise TypeError(f"shape must be a Shape, got {type(shape).__name__}")
    _check_int("height", height, 0)
    _check_int("width", width, 0)
    y = np.arange(height, dtype=np.float64)[:, None] + 0.5 - shape.cy
    x = np.arange(width, dtype=np.float64)[None, :] + 0.5 - shape.cx
    r = shape.radius
    if shape.kind == "square":
        return (np.abs(x) <= r) & (np.abs(y) <= r)
    if shape.kind == "circle":
        return x * x + y * y <= r * r
    if shape.kind == "triangle":
        # Inside a counter-clockwise triangle <=> left of all three edges (cross products >= 0).
        t = shape.angle + np.array([0.0, 2.0, 4.0]) * np.pi / 3.0
        vx, vy = r * np.cos(t), r * np.sin(t)
        inside = np.ones((height, width), dtype=bool)
        for a in range(3):
            b = (a + 1) % 3
            inside &= (vx[b] - vx[a]) * (y - vy[a]) - (vy[b] - vy[a]) * (x - vx[a]) >= 0
        return inside
    raise ValueError(f"shape kind must be one of {KINDS}, got {shape.kind!r}")


def smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: a coarse random grid (one value every ``cell``
    pixels) upsampled bilinearly to (H, W). Used for background and cell textures."""
    gh = int(np.ceil(height / cell)) + 2
    gw = int(np.ceil(width / cell)) + 2
    grid = rng.uniform(-1.0, 1.0, size=(gh, gw))
    ys = np.arange(height) / cell
    xs = np.arange(width) / cell
    y0, x0 = np.floor(ys).astype(np.intp), np.floor(xs).astype(np.intp)
    ly, lx = (ys - y0)[:, None], (xs - x0)[None, :]
    y0, x0 = y0[:, None], x0[None, :]
    top = grid[y0, x0] * (1 - lx) + grid[y0, x0 + 1] * lx
    bottom = grid[y0 + 1, x0] * (1 - lx) + grid[y0 + 1, x0 + 1] * lx
    return top * (1 - ly) + bottom * ly


def random_scene(
    rng: np.random.Generator,
    image_size: int,
    min_shapes: int,
    max_shapes: int,
    size_range: tuple[float, float],
) -> tuple[np.ndarray, list[Shape]]:
    """Draw a background colour (3,) and ``min_shapes..max_shapes`` random shapes. Radii are
    ``size_range`` fractions of ``image_size`` (at least 4 px), then x1.2 for triangles and x0.85
    for squares. Shapes lie inside the image, except triangles whose radius exceeds
    ``image_size / 2`` (``size_range[1]`` above 0.5 / 1.2 ~ 0.42): those are centred and clipped."""
    background = rng.uniform(0.0, 1.0, size=3)
    count = int(rng.integers(min_shapes, max_shapes + 1))
    shapes = []
    for _ in range(count):
        kind = KINDS[int(rng.integers(len(KINDS)))]
        lo = max(4.0, size_range[0] * image_size)
        hi = max(lo, size_range[1] * image_size)
        radius = float(rng.uniform(lo, hi))
        if kind == "triangle":
            radius *= 1.2  # a triangle covers less of its circumcircle; keep areas comparable
        if kind == "square":
            radius *= 0.85
        # radius bounds every kind (square half-side, circle radius, triangle circumradius),
        # so centres in [e, size - e] keep the whole shape inside the image while radius <=
        # size / 2. Only a triangle can be larger (x1.2 with size_range[1] > 0.5 / 1.2 ~ 0.42):
        # e is capped, so it is centred and its corners are clipped by the image border.
        e = min(radius, image_size / 2)
        cx, cy = rng.uniform(e, image_size - e, size=2)
        # Keep the shape visible against the background: redraw colours that are too close.
        color = rng.uniform(0.0, 1.0, size=3)
        for _ in range(8):
            if np.linalg.norm(color - background) >= 0.35:
                break
            color = rng.uniform(0.0, 1.0, size=3)
        angle = float(rng.uniform(0.0, 2.0 * np.pi))
        shapes.append(Shape(kind, float(cx), float(cy), radius, angle, tuple(color.tolist())))
    return background, shapes


def render(
    shapes: list[Shape],
    image_size: int,
    background=(0.0, 0.0, 0.0),
    rng: np.random.Generator | None = None,
    noise: float = 0.03,
    texture: float = 0.08,
) -> tuple[np.ndarray, np.ndarray]:
    """Paint ``shapes`` in order over a background; later shapes occlude earlier ones.

    Returns ``image`` float32 (3, H, W) in [0, 1] and ``owner`` int64 (H, W): the index into
    ``shapes`` of the shape seen at each pixel, -1 for background. Without ``rng`` the picture is
    clean (flat colours); with it the background gets a smooth texture of amplitude ``texture``,
    shapes a gentle shading, and every pixel Gaussian noise of std ``noise``.
    """
    if isinstance(shapes, str) or not isinstance(shapes, list | tuple):
        raise TypeError(f"render: shapes must be a list of Shape, got {type(shapes).__name__}")
    for i, s in enumerate(shapes):
        if not isinstance(s, Shape):
            raise TypeError(f"render: shapes[{i}] must be a Shape, got {type(s).__name__}")
    h = w = _check_int("image_size", image_size, 1)
    noise, texture = _check_real("noise", noise, 0), _check_real("texture", texture, 0)
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"render: rng must be a numpy.random.Generator or None, got {rng!r}")
    try:
        bg = np.asarray(background, dtype=np.float64).reshape(3, 1, 1)
    except (TypeError, ValueError):
        raise TypeError(
            f"render: background must be 3 numbers (R, G, B), got {background!r}"
        ) from None
    image = np.broadcast_to(bg, (3, h, w)).copy()
    if rng is not None and texture > 0:
        # Per-channel low-frequency blotches so that "background" is not a single colour.
        for c in range(3):
            image[c] += texture * smooth_noise(rng, h, w, cell=max(4.0, image_size / 6))
    owner = np.full((h, w), -1, dtype=np.int64)
    for k, shape in enumerate(shapes):
        m = shape_mask(shape, h, w)
        owner[m] = k
        fill = np.asarray(shape.color, dtype=np.float64)[:, None]
        if rng is not None and texture > 0:
            shade = 0.5 * texture * smooth_noise(rng, h, w, cell=max(3.0, shape.radius))[m]
            image[:, m] = fill + shade[None, :]
        else:
            image[:, m] = fill
    if rng is not None and noise > 0:
        image += rng.normal(0.0, noise, size=image.shape)
    return np.clip(image, 0.0, 1.0).astype(np.float32), owner


def draw_sample(
    seed: int,
    index: int,
    image_size: int,
    min_shapes: int,
    max_shapes: int,
    size_range: tuple[float, float],
    noise: float,
) -> tuple[np.ndarray, list[Shape], np.ndarray]:
    """The one drawing routine both datasets share: sample ``index`` of the stream ``seed``.

    Returns ``(image (3, H, W) float32, shapes, owner (H, W) int64)``.
    """
    rng = np.random.default_rng([seed, index])
    background, shapes = random_scene(rng, image_size, min_shapes, max_shapes, size_range)
    image, owner = render(shapes, image_size, background, rng=rng, noise=noise)
    return image, shapes, owner


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_real(name: str, value, minimum=None) -> float:
    """A finite real number (at least ``minimum`` if given)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r})")
    if not np.isfinite(value) or (minimum is not None and value < minimum):
        need = "finite" if minimum is None else f"finite and >= {minimum}"
        raise ValueError(f"{name} must be {need}, got {value!r}")
    return float(value)


class _ShapesBase:
    """Argument checking, length and index handling shared by the two shape datasets."""

    num_classes = len(CLASS_NAMES)
    class_names = CLASS_NAMES

    def __init__(self, n, image_size, seed, min_shapes, max_shapes, size_range, noise):
        self.n = _check_int("n", n, 0)
        self.image_size = _check_int("image_size", image_size, 16)
        self.seed = _check_int("seed", seed, 0)
        self.min_shapes = _check_int("min_shapes", min_shapes, 0)
        self.max_shapes = _check_int("max_shapes", max_shapes, 1)
        if self.min_shapes > self.max_shapes:
            raise ValueError(
                f"min_shapes must be <= max_shapes, got min_shapes={min_shapes}, "
                f"max_shapes={max_shapes}"
            )
        try:
            lo, hi = (float(v) for v in size_range)
        except (TypeError, ValueError):
            raise TypeError(
                f"size_range must be two numbers (lo, hi), got {size_range!r}"
            ) from None
        if not 0 < lo <= hi <= 0.5:
            raise ValueError(
                f"size_range must satisfy 0 < lo <= hi <= 0.5 (fractions of image_size), "
                f"got {size_range!r}"
            )
        self.size_range = (lo, hi)
        if not isinstance(noise, numbers.Real) or not 0 <= noise <= 0.5:
            raise ValueError(f"noise must be a number in [0, 0.5], got {noise!r}")
        self.noise = float(noise)

    def __len__(self) -> int:
        return self.n

    def _index(self, index) -> int:
        """``index`` checked, negative ones counted from the end."""
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        i = int(index) + self.n if index < 0 else int(index)
        if not 0 <= i < self.n:
            raise IndexError(f"index {index} out of range for a dataset of length {self.n}")
        return i

    def _draw(self, index) -> tuple[np.ndarray, list[Shape], np.ndarray]:
        return draw_sample(
            self.seed,
            self._index(index),
            self.image_size,
            self.min_shapes,
            self.max_shapes,
            self.size_range,
            self.noise,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n={self.n}, image_size={self.image_size}, seed={self.seed}, "
            f"shapes={self.min_shapes}..{self.max_shapes})"
        )


class ShapesSemantic(_ShapesBase):
    """Semantic segmentation of procedural shapes.

    ``ds[i]`` -> ``(image, label)``: image float32 (3, H, W) in [0, 1], label int64 (H, W) with
    0 = background, 1 = square, 2 = circle, 3 = triangle (``class_names``).
    """

    def __init__(
        self,
        n: int,
        image_size: int = 64,
        seed: int = 0,
        min_shapes: int = 1,
        max_shapes: int = 4,
        size_range: tuple[float, float] = (0.1, 0.25),
        noise: float = 0.03,
    ):
        super().__init__(n, image_size, seed, min_shapes, max_shapes, size_range, noise)

    def __getitem__(self, index) -> tuple[np.ndarray, np.ndarray]:
        image, shapes, owner = self._draw(index)
        # owner + 1 indexes this table: slot 0 is the background (owner -1).
        classes = np.array([0] + [s.label for s in shapes], dtype=np.int64)
        return image, classes[owner + 1]


class ShapesInstances(_ShapesBase):
    """Instance segmentation / detection of procedural shapes.

    ``ds[i]`` -> ``(image, target)``: image float32 (3, H, W); target a dict with

    - ``boxes`` float32 (K, 4) ``(x1, y1, x2, y2)`` in pixels, tight around the *visible* mask
      (x2 = last column + 1, y2 = last row + 1);
    - ``labels`` int64 (K,) in 1..3 (square, circle, triangle);
    - ``masks`` uint8 (K, H, W): visible masks, pairwise disjoint.

    Shapes whose visible area is below ``min_visible_area`` pixels (hidden by later ones) are
    dropped. The last shape is never occluded, and the smallest shape a scene can hold covers
    about 25 pixels, so with the default ``min_visible_area=20`` every image with
    ``min_shapes >= 1`` has at least one instance; a larger ``min_visible_area`` can leave an
    image with none (K = 0, boxes (0, 4)). ``num_classes`` counts the background.
    """

    def __init__(
        self,
        n: int,
        image_size: int = 128,
        seed: int = 0,
        min_shapes: int = 1,
        max_shapes: int = 4,
        size_range: tuple[float, float] = (0.1, 0.25),
        noise: float = 0.03,
        min_visible_area: int = 20,
    ):
        super().__init__(n, image_size, seed, min_shapes, max_shapes, size_range, noise)
        self.min_visible_area = _check_int("min_visible_area", min_visible_area, 1)

    def __getitem__(self, index) -> tuple[np.ndarray, dict]:
        image, shapes, owner = self._draw(index)
        n = len(shapes)
        # One-hot of the owner map: (K, H, W) visible masks, disjoint by construction.
        masks = owner[None, :, :] == np.arange(n)[:, None, None]
        keep = masks.sum(axis=(1, 2)) >= self.min_visible_area
        masks = masks[keep]
        labels = np.array([s.label for s in shapes], dtype=np.int64)[keep]
        return image, {
            "boxes": masks_to_boxes(masks),
            "labels": labels,
            "masks": masks.astype(np.uint8),
        }


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight boxes float32 (K, 4) ``(x1, y1, x2, y2)`` around (K, H, W) masks, exclusive x2/y2
    (a single pixel at column 3, row 5 gives (3, 5, 4, 6)). Empty masks give (0, 0, 0, 0)."""
    masks = np.asarray(masks).astype(bool)
    if masks.ndim != 3:
        raise ValueError(
            f"masks must be (K, H, W), got shape {masks.shape}; add the instance axis with "
            "mask[None] for a single mask"
        )
    k = masks.shape[0]
    boxes = np.zeros((k, 4), dtype=np.float32)
    if k == 0:
        return boxes
    cols = masks.any(axis=1)  # (K, W)
    rows = masks.any(axis=2)  # (K, H)
    nonempty = cols.any(axis=1)
    w, h = cols.shape[1], rows.shape[1]
    boxes[:, 0] = cols.argmax(axis=1)
    boxes[:, 1] = rows.argmax(axis=1)
    boxes[:, 2] = w - cols[:, ::-1].argmax(axis=1)
    boxes[:, 3] = h - rows[:, ::-1].argmax(axis=1)
    boxes[~nonempty] = 0
    return boxes
