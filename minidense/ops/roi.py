"""RoI pooling ops: ``roi_pool``, ``roi_warp``, ``roi_align`` (torchvision names and semantics).

Each cuts a fixed ``(PH, PW)`` grid of features out of a feature map for every box. A box is given
in input-image pixels and ``spatial_scale`` maps it onto the feature map: a 224 x 224 image under
a stride-16 backbone gives a 14 x 14 map, so ``spatial_scale = 14 / 224 = 1/16`` and the box
``(32, 48, 96, 112)`` covers cells ``(2, 3)`` to ``(6, 7)``.

Gradients flow to the features only; the boxes are treated as constants (as in torchvision).
The kernels are in ``minidense.kernels.roi_align`` and ``roi_pool``.
"""

import numpy as np

from .. import checks
from ..autograd import Function
from ..backend import array_module, as_array, is_device_array
from ..kernels import roi_align as KA
from ..kernels import roi_pool as KP
from ..tensor import Tensor

__all__ = ["roi_pool", "roi_align", "roi_warp", "RoIPoolFn", "RoIAlignFn"]


class RoIAlignFn(Function):
    """RoIAlign (``quantize=False``) or RoIWarp (``quantize=True``) on raw arrays.

    out[k, c, ph, pw] = mean over the bin's samples s of Σ_i w_i(s) · x[n_k, c, y_i(s), x_i(s)],
    so grad_x[n_k, c, y_i, x_i] += w_i(s) · grad_out[k, c, ph, pw] / count.
    """

    @staticmethod
    def forward(ctx, x, rois, output_size, spatial_scale, sampling_ratio, aligned, quantize):
        ctx.save_for_backward(rois)
        ctx.args = (x.shape, spatial_scale, sampling_ratio, aligned, quantize)
        forward = KA.roi_warp_forward if quantize else KA.roi_align_forward
        return forward(x, rois, output_size, spatial_scale, sampling_ratio, aligned)

    @staticmethod
    def backward(ctx, grad_out):
        (rois,) = ctx.saved_tensors
        shape, scale, sampling_ratio, aligned, quantize = ctx.args
        gx = None
        if ctx.needs_input_grad[0]:
            backward = KA.roi_warp_backward if quantize else KA.roi_align_backward
            gx = backward(grad_out, rois, shape, scale, sampling_ratio, aligned)
        return gx, None, None, None, None, None, None


class RoIPoolFn(Function):
    """RoIPool on raw arrays: out = max over the bin; grad_x[argmax] += grad_out."""

    @staticmethod
    def forward(ctx, x, rois, output_size, spatial_scale):
        out, argmax = KP.roi_pool_forward(x, rois, output_size, spatial_scale)
        ctx.save_for_backward(argmax, rois)
        ctx.in_shape = x.shape
        return out

    @staticmethod
    def backward(ctx, grad_out):
        argmax, rois = ctx.saved_tensors
        gx = None
        if ctx.needs_input_grad[0]:
            gx = KP.roi_pool_backward(grad_out, argmax, rois, ctx.in_shape)
        return gx, None, None, None


# ---------------------------------------------------------------------------------------------
# Argument checks and box conversion
# ---------------------------------------------------------------------------------------------


def _raw(a):
    return a.data if isinstance(a, Tensor) else a


def _check_input(input, fn):
    checks.tensor(input, fn)
    if input.ndim != 4:
        raise ValueError(f"{fn}: input must have shape (N, C, H, W), got shape {input.shape}")
    if input.dtype not in (np.float32, np.float64):
        raise TypeError(f"{fn}: input must be float32 or float64, got {input.dtype}")
    if min(input.shape[2:]) < 1:  # no cell to sample: the kernels would read outside the map
        raise ValueError(f"{fn}: input's spatial size (H, W) must be > 0, got shape {input.shape}")


def _check_args(fn, output_size, spatial_scale, sampling_ratio=-1, aligned=False):
    """The RoI ops' arguments besides input and boxes, normalised: ((PH, PW), scale, sr, aligned)."""
    return (
        checks.pair(output_size, fn, "output_size", minimum=1),
        checks.spatial_scale(spatial_scale, fn),
        checks.sampling_ratio(sampling_ratio, fn),
        checks.flag(aligned, fn, "aligned"),
    )


def _boxes_to_rois(boxes, dtype, fn):
    """``(K, 5)`` rows ``(batch_index, x1, y1, x2, y2)`` from either accepted box format.

    A list/tuple of per-image ``(K_i, 4)`` boxes becomes rows with batch index i (torchvision's
    ``convert_boxes_to_roi_format``). Device boxes stay on the device.
    """
    if isinstance(boxes, (list, tuple)):
        parts = [_raw(b) for b in boxes]
        for i, b in enumerate(parts):
            if not hasattr(b, "shape") or len(b.shape) != 2 or b.shape[1] != 4:
                shape = tuple(b.shape) if hasattr(b, "shape") else type(b).__name__
                raise ValueError(f"{fn}: boxes[{i}] must have shape (K_i, 4), got {shape}")
        on_device = [is_device_array(b) for b in parts]
        if any(on_device) and not all(on_device):
            raise ValueError(f"{fn}: the boxes in the list must all be on one device")
        xp = array_module(*parts)  # device boxes stay on the device
        rows = [
            xp.concatenate(
                [xp.full((len(b), 1), i, dtype=dtype), as_array(b).astype(dtype, copy=False)], 1
            )
            for i, b in enumerate(parts)
        ]
        return xp.concatenate(rows, 0) if rows else xp.zeros((0, 5), dtype=dtype)
    rois = _raw(boxes)
    if not hasattr(rois, "shape"):
        raise TypeError(
            f"{fn}: boxes must be a Tensor/array of shape (K, 5) or a list of (K_i, 4), "
            f"got {type(boxes).__name__}"
        )
    if len(rois.shape) != 2 or rois.shape[1] != 5:
        raise ValueError(
            f"{fn}: boxes must have shape (K, 5) as (batch_index, x1, y1, x2, y2), "
            f"or be a list of (K_i, 4) per image; got shape {tuple(rois.shape)}"
        )
    if is_device_array(rois):
        rois = as_array(rois)  # the kernels compute in the features' dtype: convert on the device
        return rois if rois.dtype == dtype else rois.astype(dtype)
    rois = np.asarray(rois)
    if rois.dtype.kind not in "biuf":
        raise TypeError(f"{fn}: boxes must be numeric, got dtype {rois.dtype}")
    return rois.astype(dtype, copy=False)


def _check_rois(rois, N, fn):
    """Value checks on host RoIs (device RoIs are not copied back just to be checked)."""
    if is_device_array(rois) or len(rois) == 0:
        return
    bad = ~np.isfinite(rois).all(axis=1)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{fn}: boxes row {k} has a NaN or infinite value: {rois[k].tolist()}")
    batch = rois[:, 0]
    bad = (batch != np.floor(batch)) | (batch < 0) | (batch >= N)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{fn}: boxes row {k} has batch index {batch[k]}, expected an integer in [0, {N})"
        )
    checks.box_corners(rois, fn, columns="(batch, x1, y1, x2, y2) = ")


def _prepare(input, boxes, fn):
    _check_input(input, fn)
    x = input.data
    rois = _boxes_to_rois(boxes, np.dtype(x.dtype), fn)
    if is_device_array(x) != is_device_array(rois):
        where = lambda a: "cuda" if is_device_array(a) else "cpu"  # noqa: E731
        raise ValueError(
            f"{fn}: input is on {where(x)!r} but boxes are on {where(rois)!r}; move one with .to()"
        )
    _check_rois(rois, x.shape[0], fn)
    return rois


# ---------------------------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------------------------


def roi_align(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """RoIAlign (Mask R-CNN): average of bilinear samples in each bin, no quantisation.

    Args:
        input (Tensor[N, C, H, W]): float32 or float64 features.
        boxes (Tensor[K, 5] or list of Tensor[L, 4]): ``(batch_index, x1, y1, x2, y2)`` rows, or
            one ``(x1, y1, x2, y2)`` array per image; in input-image pixels. Converted to the
            input's dtype; no gradient flows to them.
        output_size (int or (int, int)): ``(PH, PW)``.
        spatial_scale (float): feature cells per image pixel, e.g. 1/16 for a stride-16 map.
        sampling_ratio (int): samples per bin and axis; ``<= 0`` takes ``ceil(roi_size / PH)``.
        aligned (bool): shift the box by -0.5 cell so samples sit on pixel centres (Detectron2).
    Returns:
        Tensor[K, C, PH, PW]
    """
    fn = "roi_align"
    size, scale, sr, aligned = _check_args(fn, output_size, spatial_scale, sampling_ratio, aligned)
    rois = _prepare(input, boxes, fn)
    return RoIAlignFn.apply(input, rois, size, scale, sr, aligned, False)


def roi_warp(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """RoIWarp: round the box to the feature grid (``round(x * spatial_scale)``), then sample it
    exactly as :func:`roi_align` does. The middle row of the Mask R-CNN RoI ablation: bilinear
    sampling, but the quantisation of RoIPool. Same arguments and output as :func:`roi_align`.
    """
    fn = "roi_warp"
    size, scale, sr, aligned = _check_args(fn, output_size, spatial_scale, sampling_ratio, aligned)
    rois = _prepare(input, boxes, fn)
    return RoIAlignFn.apply(input, rois, size, scale, sr, aligned, True)


def roi_pool(input, boxes, output_size, spatial_scale=1.0):
    """RoIPool (Fast R-CNN): round the box to whole cells, split it into bins, take each bin's max.

    Args:
        input (Tensor[N, C, H, W]), boxes (Tensor[K, 5] or list of Tensor[L, 4]), output_size,
        spatial_scale: as in :func:`roi_align`.
    Returns:
        Tensor[K, C, PH, PW]; an empty bin (box outside the map) gives 0 and no gradient.
    """
    fn = "roi_pool"
    size, scale, _, _ = _check_args(fn, output_size, spatial_scale)
    rois = _prepare(input, boxes, fn)
    return RoIPoolFn.apply(input, rois, size, scale)
