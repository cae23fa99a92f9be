"""A small run of the library's own ops on CUDA tensors, for recording kernel launches.

Every op family, forward and backward, in float32 (what training uses) and float64 (what the
gradient checks use), with the index dtypes the ops really take (int64 labels and pooling indices,
int32 RoIPool argmaxes, bool masks). The shapes are tiny, because this runs under Numba's CUDA
simulator: only the launches' argument types matter here, not the values (the tests compare the
values with the CPU's).

``python -m minidense.cudacheck.workload LAUNCHES.json`` runs it under the simulator and writes
the distinct launches (record.py); ``check-cuda`` does so in a subprocess.
"""

import os
import sys

import numpy as np

import minidense as md
import minidense.functional as F
from minidense.backend import cuda as C

from . import record

__all__ = ["run"]


def _leaf(rng, shape, dtype):
    """A random device tensor that requires grad."""
    return md.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True).to("cuda")


def _backward(rng, *outs):
    """One backward from all of ``outs``, each with a random upstream gradient (not all ones)."""
    total = 0
    for out in outs:
        w = md.tensor(rng.standard_normal(out.shape).astype(out.dtype)).to("cuda")
        total = total + (out * w).sum()
    total.backward()


def _conv(rng, dtype):
    x = _leaf(rng, (2, 4, 7, 6), dtype)
    w = _leaf(rng, (6, 2, 3, 3), dtype)
    b = _leaf(rng, (6,), dtype)
    y = F.conv2d(x, w, b, stride=2, padding=1, dilation=1, groups=2)
    y = y + F.conv2d(x, _leaf(rng, (6, 4, 1, 1), dtype), None, stride=2)  # 1x1: no im2col
    wt = _leaf(rng, (6, 3, 3, 3), dtype)
    z = F.conv_transpose2d(y, wt, _leaf(rng, (3,), dtype), stride=2, padding=1, output_padding=1)
    # A permuted (non-contiguous) device input is copied to contiguous first.
    p = _leaf(rng, (2, 5, 5, 3), dtype).permute(0, 3, 1, 2)
    _backward(rng, z, F.conv2d(p, _leaf(rng, (2, 3, 3, 3), dtype), padding=1))


def _pool(rng, dtype):
    x = _leaf(rng, (2, 3, 6, 7), dtype)
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    u = F.max_unpool2d(y, idx, 2, output_size=(6, 7))
    a = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
    _backward(rng, u, a, F.avg_pool2d(x, 2, ceil_mode=True))


def _upsample(rng, dtype):
    x = _leaf(rng, (1, 2, 3, 4), dtype)
    outs = [
        F.interpolate(x, scale_factor=2, mode="nearest"),
        F.interpolate(x, size=(5, 7), mode="bilinear", align_corners=False),
        F.interpolate(x, size=(6, 8), mode="bilinear", align_corners=True),
        F.bed_of_nails(x, 2),
    ]
    _backward(rng, *outs)


def _roi(rng, dtype):
    x = _leaf(rng, (2, 2, 6, 7), dtype)
    boxes = md.tensor(np.array([[0, 1.0, 1.5, 9.0, 8.0], [1, -2.0, 0.5, 5.0, 13.0]], dtype))
    boxes = boxes.to("cuda")
    outs = [F.roi_pool(x, boxes, 2, 0.5)]
    for aligned, sr in ((False, -1), (True, 2)):
        outs.append(F.roi_align(x, boxes, 2, 0.5, sr, aligned))
        outs.append(F.roi_warp(x, boxes, (2, 3), 0.5, sr, aligned))
    per_image = [md.tensor(np.array([[1.0, 1.0, 6.0, 7.0]], dtype)).to("cuda")] * 2
    _backward(rng, F.roi_align(x, per_image, 2, 0.5, 2, True), *outs)


def _norm_and_losses(rng, dtype):
    x = _leaf(rng, (2, 4, 3, 3), dtype)
    rm = md.tensor(np.zeros(4, dtype)).to("cuda")
    rv = md.tensor(np.ones(4, dtype)).to("cuda")
    y = F.batch_norm(x, rm, rv, _leaf(rng, (4,), dtype), _leaf(rng, (4,), dtype), training=True)
    y = F.group_norm(y, 2, _leaf(rng, (4,), dtype), _leaf(rng, (4,), dtype))
    labels = rng.integers(0, 4, (2, 3, 3))  # int64
    labels[0, 0, 0] = -100  # ignored
    labels = md.tensor(labels).to("cuda")
    loss = F.cross_entropy(y, labels) + F.cross_entropy(y, labels, reduction="sum")
    t = md.tensor((rng.random((2, 4, 3, 3)) > 0.5).astype(dtype)).to("cuda")
    loss = loss + F.binary_cross_entropy_with_logits(y, t)
    loss = loss + F.smooth_l1_loss(y, t, beta=1 / 9) + F.mse_loss(F.sigmoid(y), t)
    loss.backward()


def _elementwise(rng, dtype):
    a, b = _leaf(rng, (2, 3), dtype), _leaf(rng, (3,), dtype)
    p = md.tensor(rng.uniform(0.5, 2.0, (2, 3)).astype(dtype), requires_grad=True).to("cuda")
    y = (a + b) * (a - 1.5) / p + p**b + p**2.0 + 2.0**a - (-a).exp() + p.log() + p.sqrt()
    y = y + (a - 1).abs() + F.tanh(a) + F.relu(a) + F.leaky_relu(a, 0.1) + F.softmax(a, 1)
    y = y + F.log_softmax(a, 0) + a.clamp(-0.5, 0.5) + F.where((a > b).data, a, p)
    y = y + F.maximum(a, p) * F.minimum(a, b) + a.mean(axis=1, keepdims=True) + a.max(axis=0)
    y = y + a.min(axis=1, keepdims=True) + (a @ _leaf(rng, (3, 3), dtype)) + a.T.sum(1)
    y = y + F.concat([a, p], 1)[:, 1:4] + F.stack([a, b * a], 0).sum(0) + F.pad(a, (1, 0))[:, 1:]
    y = (
        y
        + a[np.array([1, 0])]
        + a[:, [2, 2, 0]]
        + (_leaf(rng, (2, 2, 3), dtype) @ _leaf(rng, (3, 3), dtype)).sum(0)
    )
    _backward(rng, y)


def _arrays(rng, dtype):
    """CudaArray primitives that ops reach only in some cases (masks, argmax, indexing along an
    axis, scatter-add, casts), and raw Numba device arrays wrapped as CudaArrays (a
    non-contiguous one is copied)."""
    a = C.asarray(rng.standard_normal((3, 4)).astype(dtype))
    row = C.asarray(rng.standard_normal(4).astype(dtype))
    mask = (a > row) & ~(a >= row) | (a < row) ^ (a <= row) & (a == row) | (a != row)
    mask = mask & (a > 0) & (a >= 0) & (a < 0) & (a <= 0) & (a == 0) & (a != 0)
    a[mask] = 0.0
    best = C.take_along_axis(a, C.argmax(a, axis=1).reshape(3, 1), axis=1)
    C.put_along_axis(a, C.asarray(np.array([[1], [0], [2]])), best, axis=1)
    C.add_at(a, (np.array([0, 0, 2]),), C.asarray(np.ones((3, 4), dtype)))
    lo = C.minimum(a, row) + C.maximum(a, row) + C.minimum(a, 0.5)
    _ = C.clip(a, -1.0, 1.0), C.log1p(C.absolute(lo)), C.sign(lo), C.arange(0, 12, dtype=np.int64)
    _ = a.astype(np.int64), a.astype(bool), C.where(C.logical_not(mask), a, 1.0)
    _ = C.logical_or(mask, mask).sum(), mask.any()
    _ = C.CudaArray.from_device(a.dev.T)
    for shape in ((4,), (4, 1, 3), (4, 1, 1, 2)):
        _ = C.CudaArray.from_device(C.zeros(shape, dtype).dev[::2])


def _optimizers(rng, dtype):
    """A step of Adam (decay added to the gradient) and AdamW (decay on the weights): the fused
    update kernel, both of its decay branches."""
    for make in (md.optim.Adam, md.optim.AdamW):
        w = _leaf(rng, (3, 5), dtype)
        w.grad = md.tensor(rng.standard_normal((3, 5)).astype(dtype)).to("cuda")
        make([w], lr=1e-3, weight_decay=1e-2).step()


def run(seed=0):
    """Run the workload on "cuda" (a GPU, or the simulator when NUMBA_ENABLE_CUDASIM=1)."""
    rng = np.random.default_rng(seed)
    for dtype in (np.float32, np.float64):
        for part in (
            _conv,
            _pool,
            _upsample,
            _roi,
            _norm_and_losses,
            _elementwise,
            _arrays,
            _optimizers,
        ):
            part(rng, dtype)


def main(path):
    with record.recording() as launches:
        run()
    record.save(launches, path)
    return 0


if __name__ == "__main__":
    if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        sys.exit("run this under the CUDA simulator: NUMBA_ENABLE_CUDASIM=1")
    sys.exit(main(sys.argv[1]))
