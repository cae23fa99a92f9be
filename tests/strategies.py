"""Hypothesis strategies shared by the test suite.

- ``shapes``: small array shapes.
- ``broadcastable_shapes``: tuples of shapes that broadcast together (e.g. ``((3, 1), (1, 4))``).
- ``matmul_shapes``: shape pairs that ``a @ b`` accepts, vectors and broadcast batches included.
- ``float_arrays``: float arrays of a given shape, laid out contiguously, with permuted strides
  (a transposed view) or with gaps (a ``[..., ::2]`` view), so ops meet non-contiguous inputs.
- ``reduction_axes``: a reduction's ``axis``: None, an int (possibly negative) or a tuple.

Keep sizes tiny: tests gradcheck these arrays, which costs two forwards per element.
"""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

__all__ = [
    "LAYOUTS",
    "shapes",
    "broadcastable_shapes",
    "matmul_shapes",
    "float_arrays",
    "reduction_axes",
]

LAYOUTS = ("contiguous", "permuted", "strided")


def shapes(min_dims=0, max_dims=3, min_side=1, max_side=4):
    """Array shapes with ``min_dims..max_dims`` axes of ``min_side..max_side`` elements each."""
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=4):
    """A tuple of ``num_shapes`` shapes that broadcast together, such as ``((4,), (2, 3, 4))``."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes,
        min_dims=min_dims,
        max_dims=max_dims,
        min_side=min_side,
        max_side=max_side,
    ).map(lambda b: b.input_shapes)


def matmul_shapes(max_dims=2, max_side=3):
    """``(shape_a, shape_b)`` that matmul accepts: 1-D vectors and broadcast batch axes included."""
    return hnp.mutually_broadcastable_shapes(
        signature=np.matmul.signature, max_dims=max_dims, max_side=max_side
    ).map(lambda b: b.input_shapes)


def _layout_view(shape, layout, draw):
    """Return (shape of the array to fill, function turning it into a view of ``shape``)."""
    ndim = len(shape)
    if layout == "permuted" and ndim >= 2:
        # Fill an array whose axes are shuffled, then transpose back: same shape, permuted strides.
        perm = draw(st.permutations(range(ndim)))
        inverse = tuple(int(i) for i in np.argsort(perm))
        return tuple(shape[p] for p in perm), lambda a: a.transpose(inverse)
    if layout == "strided" and ndim >= 1:
        # Every other element of a twice-as-long last axis: a view with gaps between elements.
        return shape[:-1] + (2 * shape[-1],), lambda a: a[..., ::2]
    return shape, lambda a: a


@st.composite
def float_arrays(
    draw, shape, dtype=np.float64, min_value=-3.0, max_value=3.0, layout=None, unique=False
):
    """A float array of ``shape``; ``layout`` is one of ``LAYOUTS`` (None: drawn at random).

    ``unique=True`` draws distinct elements on a grid of 1/16, so that any two differ by far more
    than a finite-difference step (max/min and sort-like ops have kinks at ties).
    """
    dtype = np.dtype(dtype)
    shape = tuple(shape)
    if layout is None:
        layout = draw(st.sampled_from(LAYOUTS))
    fill_shape, to_view = _layout_view(shape, layout, draw)
    if unique:
        lo, hi = int(np.ceil(min_value * 16)), int(np.floor(max_value * 16))
        elements = st.integers(lo, hi).map(lambda i: i / 16)
    else:
        elements = st.floats(
            min_value=min_value,
            max_value=max_value,
            allow_nan=False,
            allow_infinity=False,
            allow_subnormal=False,
            width=dtype.itemsize * 8,
        )
    if layout == "strided" and unique:
        # Only the kept elements must differ; draw them unique and interleave junk between them.
        kept = draw(hnp.arrays(dtype, shape, elements=elements, unique=True))
        base = np.zeros(fill_shape, dtype)
        base[..., ::2] = kept
    else:
        base = draw(hnp.arrays(dtype, fill_shape, elements=elements, unique=unique))
    return to_view(base)


@st.composite
def reduction_axes(draw, ndim):
    """An ``axis`` argument for a reduction over an ``ndim``-d array: None, int or tuple of ints."""
    if ndim == 0:
        return None
    kind = draw(st.sampled_from(("none", "int", "tuple")))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    # Mix in negative spellings of the same axes.
    return tuple(draw(st.sampled_from((a, a - ndim))) for a in axes)


# --------------------------------------------------------------------------- dense-op arguments
# Added for tests/test_properties.py: valid argument combinations for each dense kernel family,
# drawn small (every side at most 7) so loop references and the CUDA simulator stay fast.

__all__ += ["conv_geometries", "pool_geometries", "upsample_arguments", "rois_inside"]


def _side_at_least(need, max_side):
    """A side length >= ``need`` (and >= 1), at most ``max_side`` unless ``need`` is larger."""
    lo = max(1, need)
    return st.integers(lo, max(lo, max_side))


@st.composite
def conv_geometries(draw, max_side=6, max_groups=2):
    """``dict(x=(N, C_in, H, W), w=(C_out, C_in/g, kH, kW), stride, padding, dilation, groups)``
    with a non-empty output (H + 2p >= dilated kernel)."""
    groups = draw(st.integers(1, max_groups))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    hw = tuple(draw(_side_at_least(d[i] * (k[i] - 1) + 1 - 2 * p[i], max_side)) for i in (0, 1))
    return dict(x=(draw(st.integers(1, 2)), c_in, *hw), w=(c_out, c_in // groups, *k),
                stride=s, padding=p, dilation=d, groups=groups)  # fmt: skip


@st.composite
def pool_geometries(draw, max_side=7, dilation=True, ceil_mode=True):
    """``dict(x=(N, C, H, W), kernel_size, stride, padding, dilation, ceil_mode)``: padding at most
    half the kernel, and an input at least as large as the padded, dilated window."""
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else (1, 1)
    hw = tuple(draw(_side_at_least(d[i] * (k[i] - 1) + 1 - 2 * p[i], max_side)) for i in (0, 1))
    return dict(x=(draw(st.integers(1, 2)), draw(st.integers(1, 2)), *hw), kernel_size=k,
                stride=s, padding=p, dilation=d,
                ceil_mode=draw(st.booleans()) if ceil_mode else False)  # fmt: skip


@st.composite
def upsample_arguments(draw, max_side=5):
    """``(shape (N, C, H, W), kwargs of interpolate)``: nearest or bilinear (align_corners both
    ways), by ``size`` (smaller or larger) or by ``scale_factor`` (integer or not)."""
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)),
             draw(st.integers(1, max_side)), draw(st.integers(1, max_side)))  # fmt: skip
    mode = draw(st.sampled_from(("nearest", "bilinear")))
    kw = dict(mode=mode)
    if mode == "bilinear":
        kw["align_corners"] = draw(st.booleans())
    if draw(st.booleans()):
        kw["size"] = (draw(st.integers(1, 8)), draw(st.integers(1, 8)))
    else:
        f = draw(st.sampled_from((1, 2, 3, 0.5, 1.5, 1.7, 2.25)))
        kw["scale_factor"] = f
        if min(int(shape[2] * f), int(shape[3] * f)) < 1:
            kw["scale_factor"] = 2  # would shrink to an empty output
    return shape, kw


@st.composite
def rois_inside(draw, N, H, W, scale, k_max=4, margin=0.0, min_size=0.0):
    """``(K, 5)`` float64 RoIs whose boxes lie inside the feature map ``[0, W - margin] x
    [0, H - margin]`` once multiplied by ``scale`` (given in image pixels, as the ops take them),
    each side at least ``min_size`` cells long (needs ``W - margin >= min_size``)."""

    def side(extent):
        lo = draw(st.floats(0, extent - min_size))
        return lo, lo + draw(st.floats(min_size, extent - lo))

    rows = []
    for _ in range(draw(st.integers(1, k_max))):
        (x1, x2), (y1, y2) = side(W - margin), side(H - margin)
        rows.append([draw(st.integers(0, N - 1)), x1 / scale, y1 / scale, x2 / scale, y2 / scale])
    return np.array(rows, dtype=np.float64)
