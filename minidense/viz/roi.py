"""Picture of how RoIPool, RoIWarp and RoIAlign read one box off a feature map.

Three panels side by side over the same feature map: the box as given, the box each op actually
uses (RoIPool and RoIWarp round it to whole cells), the bins, the points each op reads (RoIPool:
the arg-max cell of each bin; RoIWarp and RoIAlign: the bilinear sample points) and the pooled
value of each bin. Cell ``(i, j)`` is drawn centred on ``(x=j, y=i)``, the coordinate at which the
bilinear sampler reads exactly ``f[i, j]``. The geometry comes from the kernels' own helpers,
so the picture shows what the kernels compute.
"""

import numpy as np

from .. import checks
from ..kernels import roi as K
from ..kernels import roi_align, roi_pool

__all__ = ["plot_roi_sampling"]


def plot_roi_sampling(
    feature_map,
    box,
    output_size=(2, 2),
    spatial_scale=1.0,
    sampling_ratio=2,
    aligned=False,
    ax=None,
):
    """Draw the three RoI ops for one box; returns the matplotlib Figure.

    Args:
        feature_map (array[H, W] or [C, H, W]): values to show (channels are averaged).
        box: ``(x1, y1, x2, y2)`` in input-image pixels.
        output_size (int or (int, int)), spatial_scale, sampling_ratio, aligned: as for the ops.
        ax: optional sequence of three Axes to draw into (otherwise a new Figure is made).
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    f = np.asarray(feature_map, dtype=np.float64)
    if f.ndim == 3:
        f = f.mean(axis=0)
    if f.ndim != 2:
        raise ValueError(f"feature_map must be (H, W) or (C, H, W), got shape {f.shape}")
    if len(box) != 4:
        raise ValueError(f"box must be (x1, y1, x2, y2), got {box!r}")
    PH, PW = checks.pair(output_size, "plot_roi_sampling", "output_size", minimum=1)
    H, W = f.shape
    rois = np.array([[0.0, *map(float, box)]])
    x = f[None, None]
    if ax is None:
        fig = Figure(figsize=(13, 4.6), layout="constrained")
        axes = fig.subplots(1, 3)
    else:
        axes = list(ax)
        if len(axes) != 3:
            raise ValueError(f"ax must be three Axes, got {len(axes)}")
        fig = axes[0].figure

    def frame(a, title, offset):
        # The box as given (dashed), in this op's frame: RoIPool ignores ``aligned``.
        bx1, by1, bx2, by2 = (v * spatial_scale - offset for v in box)
        a.imshow(f, cmap="viridis", extent=(-0.5, W - 0.5, H - 0.5, -0.5), interpolation="nearest")
        a.set_xticks(np.arange(-0.5, W, 1), minor=True)
        a.set_yticks(np.arange(-0.5, H, 1), minor=True)
        a.grid(which="minor", color="white", linewidth=0.4, alpha=0.5)
        a.add_patch(
            Rectangle((bx1, by1), bx2 - bx1, by2 - by1, fill=False, ec="white", ls="--", lw=1.5)
        )
        a.set_title(title, fontsize=11)
        a.set_xlim(-0.5 - 1, W - 0.5 + 1)
        a.set_ylim(H - 0.5 + 1, -0.5 - 1)

    # RoIPool: whole cells, floor/ceil bins, the max of each bin.
    out, argmax = roi_pool.roi_pool_forward(x, rois, (PH, PW), spatial_scale)
    a = axes[0]
    frame(a, "RoIPool: quantised box and bins, max cell", 0.0)
    sy, sx, bh, bw = K.roi_pool_geometry(rois, 0, spatial_scale, PH, PW)
    for ph in range(PH):
        for pw in range(PW):
            h0, h1, w0, w1 = K.roi_pool_bin_bounds(ph, pw, sy, sx, bh, bw, H, W)
            if h1 > h0 and w1 > w0:
                a.add_patch(
                    Rectangle((w0 - 0.5, h0 - 0.5), w1 - w0, h1 - h0, fill=False, ec="red", lw=1.5)
                )
                a.text((w0 + w1 - 1) / 2, (h0 + h1 - 1) / 2, f"{out[0, 0, ph, pw]:.2g}",
                       color="white", ha="center", va="center", fontsize=8)  # fmt: skip
    idx = argmax[0, 0].ravel()
    idx = idx[idx >= 0]
    a.scatter(idx % W, idx // W, s=40, marker="s", facecolor="none", edgecolor="orange", lw=2)

    # RoIWarp and RoIAlign: bilinear samples on a (quantised or exact) box.
    for a, quantize, title in (
        (axes[1], True, "RoIWarp: quantised box, bilinear samples"),
        (axes[2], False, "RoIAlign: exact box, bilinear samples"),
    ):
        frame(a, title, 0.5 if aligned else 0.0)
        fwd = roi_align.roi_warp_forward if quantize else roi_align.roi_align_forward
        out = fwd(x, rois, (PH, PW), spatial_scale, sampling_ratio, aligned)
        sy, sx, bh, bw, gh, gw, _ = K.roi_align_geometry(
            rois, 0, spatial_scale, PH, PW, sampling_ratio, aligned, quantize
        )
        ys, xs = [], []
        for ph in range(PH):
            for pw in range(PW):
                a.add_patch(
                    Rectangle((sx + pw * bw, sy + ph * bh), bw, bh, fill=False, ec="red", lw=1.5)
                )
                a.text(sx + (pw + 0.5) * bw, sy + (ph + 0.5) * bh, f"{out[0, 0, ph, pw]:.2g}",
                       color="white", ha="left", va="bottom", fontsize=8)  # fmt: skip
                for iy in range(gh):
                    for ix in range(gw):
                        ys.append(K.sample_coord(sy, ph, bh, iy, gh))
                        xs.append(K.sample_coord(sx, pw, bw, ix, gw))
        a.scatter(xs, ys, s=18, color="orange", zorder=3)
    return fig
