"""Matching anchors/proposals to ground truth, and sampling a balanced training batch."""

import numpy as np

BELOW_LOW = -1  # background
BETWEEN = -2  # ignored: neither clearly object nor clearly background


def match(iou, high, low, allow_low_quality=False):
    """For each column (anchor/proposal) the index of its best ground truth, or BELOW_LOW / BETWEEN.

    iou: ``(G, M)`` IoU of G ground-truth boxes with M candidates. Candidates with best IoU ≥ high are
    matched, < low are background, in between ignored. ``allow_low_quality`` also matches, for each
    ground truth, the candidates that reach its highest IoU (ties included) — so that every object
    gets at least one anchor even when none reaches ``high`` (the RPN's rule).
    """
    G, M = iou.shape
    if G == 0 or M == 0:  # nothing to match (and the reductions below need both axes)
        return np.full(M, BELOW_LOW, dtype=np.int64)
    best = iou.argmax(axis=0)
    best_iou = iou.max(axis=0)
    matches = best.astype(np.int64)
    matches[best_iou < low] = BELOW_LOW
    matches[(best_iou >= low) & (best_iou < high)] = BETWEEN
    if allow_low_quality:
        best_for_gt = iou.max(axis=1, keepdims=True)
        gt_idx, cand_idx = np.nonzero((iou == best_for_gt) & (best_for_gt > 0))
        matches[cand_idx] = best[cand_idx]
    return matches


def sample_balanced(labels, batch_size, positive_fraction, rng):
    """Pick at most ``batch_size`` indices: up to ``positive_fraction`` of them positive
    (labels ≥ 1), the rest negative (labels == 0); labels < 0 are never picked.

    Returns (positive indices, negative indices).
    """
    pos = np.flatnonzero(labels >= 1)
    neg = np.flatnonzero(labels == 0)
    n_pos = min(len(pos), int(batch_size * positive_fraction))
    n_neg = min(len(neg), batch_size - n_pos)
    pos = rng.permutation(pos)[:n_pos]
    neg = rng.permutation(neg)[:n_neg]
    return np.sort(pos), np.sort(neg)
