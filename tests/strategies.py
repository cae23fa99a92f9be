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
