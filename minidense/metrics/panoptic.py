"""Panoptic quality (Kirillov et al., "Panoptic Segmentation", CVPR 2019): PQ = SQ × RQ.

A panoptic segmentation gives every pixel a category and, for things, an instance: it is a set
of non-overlapping **segments**. One image's segmentation is a dict

- ``segments`` int ``(H, W)``: the segment id of each pixel; 0 is void (ground truth: not
  labelled; prediction: left unassigned);
- ``ids (S,)``, ``labels (S,)``: each segment's id (≥ 1) and category;
- ``iscrowd (S,)`` bool (ground truth only, optional): a "group" region, e.g. a crowd of people
  not split into instances.

**Matching.** A predicted and a ground-truth segment of the same category match when their IoU
is strictly above 0.5; segments do not overlap, so each has at most one such partner (the
paper's Theorem 1) and the matching is unique without any search. Pixels of the prediction that
are void in the ground truth are left out of its IoU (they count in neither intersection nor
union). Crowd regions are never matched.

**Counting**, per category: matched pairs are true positives (TP), unmatched ground-truth
segments false negatives (FN), unmatched predicted segments false positives (FP) — except a
predicted segment of which more than half the pixels are void or in a crowd region of its
category in the ground truth: it is dropped, neither TP nor FP (the paper's void and group rules;
as the authors' panopticapi, the two fractions are added; all crowd pixels of a category count as
its crowd region — panopticapi keeps only the last crowd segment of a category, which agrees
whenever an image has at most one per category, as COCO's do).

**Quality**, per category with TP + FP + FN > 0:

    PQ = Σ_TP IoU / (TP + ½FP + ½FN) = SQ × RQ,   SQ = Σ_TP IoU / TP (0 without TP),
    RQ = TP / (TP + ½FP + ½FN).

The overall, things' and stuff's PQ, SQ and RQ are means over their categories (categories that
never occur are left out; the mean SQ × mean RQ is not the mean PQ), -1.0 when none occurs.
"""

from __future__ import annotations

import numbers

import numpy as np

MATCH_IOU = 0.5


def _image(d, side, image_id, crowds):
    """Checked ``(segments (H, W) int64, {id: (category, iscrowd)})``."""
    if not isinstance(d, dict):
        raise TypeError(f"{side} of image {image_id}: expected a dict, got {type(d).__name__}")
    for key in ("segments", "ids", "labels"):
        if key not in d:
            raise ValueError(f"{side}[{key!r}] of image {image_id} is required but missing")
    seg = np.asarray(d["segments"])
    ids, labels = np.asarray(d["ids"]).reshape(-1), np.asarray(d["labels"]).reshape(-1)
    crowd = np.zeros(len(ids), bool)
    if d.get("iscrowd") is not None:
        if not crowds:
            raise ValueError(f"{side} of image {image_id}: only the ground truth has crowds")
        crowd = np.asarray(d["iscrowd"]).reshape(-1).astype(bool)
    for name, a in (("segments", seg), ("ids", ids), ("labels", labels)):
        if a.dtype.kind not in "iu" and (a.size or a.dtype.kind not in "bf"):  # [] is float
            raise ValueError(f"{side}[{name!r}] of image {image_id}: expected ints, got {a.dtype}")
    if seg.ndim != 2:
        raise ValueError(
            f"{side}['segments'] of image {image_id}: expected (H, W), got {seg.shape}"
        )
    if not len(ids) == len(labels) == len(crowd):
        raise ValueError(
            f"{side} of image {image_id}: ids, labels (and iscrowd) must have one entry per "
            f"segment, got {len(ids)}, {len(labels)}, {len(crowd)}"
        )
    if (ids < 1).any() or len(set(ids.tolist())) != len(ids):
        raise ValueError(f"{side}['ids'] of image {image_id}: expected distinct ids >= 1")
    present = set(np.unique(seg).tolist()) - {0}
    if present != set(ids.tolist()):
        raise ValueError(
            f"{side} of image {image_id}: the ids in 'segments' ({sorted(present)}) and 'ids' "
            f"({sorted(ids.tolist())}) must be the same (0 is void)"
        )
    info = {int(i): (int(c), bool(k)) for i, c, k in zip(ids, labels, crowd, strict=True)}
    return seg.astype(np.int64), info


def match_segments(pred, target, image_id=0):
    """One image: per category ``[TP, FP, FN, Σ IoU of the TP]``, as a dict, and the matched
    pairs ``[(pred id, target id, IoU)]``."""
    pseg, pinfo = _image(pred, "pred", image_id, crowds=False)
    gseg, ginfo = _image(target, "target", image_id, crowds=True)
    if pseg.shape != gseg.shape:
        raise ValueError(
            f"image {image_id}: pred and target segments differ in size: {pseg.shape} and "
            f"{gseg.shape}"
        )
    # Every (target id, pred id) pair that shares pixels, with its pixel count.
    offset = int(max(pseg.max(), 0)) + 1
    pairs, counts = np.unique(gseg.ravel() * offset + pseg.ravel(), return_counts=True)
    inter = {
        (int(p // offset), int(p % offset)): int(c) for p, c in zip(pairs, counts, strict=True)
    }
    parea = {i: sum(c for (g, p), c in inter.items() if p == i) for i in pinfo}
    garea = {i: sum(c for (g, p), c in inter.items() if g == i) for i in ginfo}

    stats, matched = {}, []
    counts_of = lambda cat: stats.setdefault(cat, [0, 0, 0, 0.0])  # noqa: E731
    for (g, p), n in inter.items():
        if g == 0 or p == 0 or ginfo[g][1] or ginfo[g][0] != pinfo[p][0]:
            continue
        union = parea[p] + garea[g] - n - inter.get((0, p), 0)
        iou = n / union
        if iou > MATCH_IOU:
            matched.append((p, g, iou))
            counts_of(pinfo[p][0])[0] += 1
            counts_of(pinfo[p][0])[3] += iou
    hit_pred, hit_gt = {p for p, _, _ in matched}, {g for _, g, _ in matched}
    for g, (cat, crowd) in ginfo.items():
        if g not in hit_gt and not crowd:
            counts_of(cat)[2] += 1
    for p, (cat, _) in pinfo.items():
        if p in hit_pred:
            continue
        ignored = inter.get((0, p), 0) + sum(
            n for (g, q), n in inter.items() if q == p and g and ginfo[g] == (cat, True)
        )
        if ignored / parea[p] > MATCH_IOU:  # mostly void or crowd: not a false positive
            continue
        counts_of(cat)[1] += 1
    return stats, matched


class PanopticQuality:
    """Accumulates images; ``summarize()`` gives PQ, SQ and RQ overall, for things and for
    stuff, and per category (see the module docstring).

    Args:
        things, stuff: the categories of each kind (ints, disjoint); a segment of any other
            category is refused.
    """

    def __init__(self, things, stuff):
        self.things = self._categories(things, "things")
        self.stuff = self._categories(stuff, "stuff")
        if set(self.things) & set(self.stuff):
            raise ValueError(
                f"things and stuff share categories: {set(self.things) & set(self.stuff)}"
            )
        self.reset()

    @staticmethod
    def _categories(cats, name):
        ok = isinstance(cats, list | tuple | range | np.ndarray) and all(
            isinstance(c, numbers.Integral) and not isinstance(c, bool) for c in cats
        )
        if not ok:
            raise TypeError(f"{name} must be a sequence of int categories, got {cats!r}")
        return tuple(int(c) for c in cats)

    def reset(self):
        self._stats = {c: [0, 0, 0, 0.0] for c in self.things + self.stuff}
        self._images = 0

    def __len__(self):
        return self._images

    def add(self, pred, target):
        """Count one image's ``pred`` and ``target`` segmentations (dicts as in the module
        docstring)."""
        stats, _ = match_segments(pred, target, self._images)
        unknown = set(stats) - set(self._stats)
        if unknown:
            raise ValueError(
                f"image {self._images}: categories {sorted(unknown)} are neither things "
                f"{self.things} nor stuff {self.stuff}"
            )
        for cat, s in stats.items():
            total = self._stats[cat]
            for k in range(4):
                total[k] += s[k]
        self._images += 1

    def per_class(self):
        """``{category: {"PQ", "SQ", "RQ", "TP", "FP", "FN"}}``; PQ/SQ/RQ -1.0 where the category
        never occurred (TP + FP + FN = 0)."""
        out = {}
        for cat, (tp, fp, fn, iou) in self._stats.items():
            denominator = tp + 0.5 * fp + 0.5 * fn
            if denominator == 0:
                q = dict(PQ=-1.0, SQ=-1.0, RQ=-1.0)
            else:
                q = dict(PQ=iou / denominator, SQ=iou / tp if tp else 0.0, RQ=tp / denominator)
            out[cat] = dict(q, TP=tp, FP=fp, FN=fn)
        return out

    def summarize(self):
        """``{"All" | "Things" | "Stuff": {"PQ", "SQ", "RQ", "n"}}`` (means over the ``n``
        categories that occurred; -1.0 if none did) and ``"per_class"``."""
        per_class = self.per_class()
        out = {}
        for name, cats in (("All", self.things + self.stuff), ("Things", self.things),
                           ("Stuff", self.stuff)):  # fmt: skip
            seen = [per_class[c] for c in cats if per_class[c]["PQ"] != -1.0]
            out[name] = {k: float(np.mean([q[k] for q in seen])) if seen else -1.0
                         for k in ("PQ", "SQ", "RQ")}  # fmt: skip
            out[name]["n"] = len(seen)
        out["per_class"] = per_class
        return out


def format_pq_table(summary, names=None):
    """PQ, SQ, RQ in percent: a row each for All, Things, Stuff, then one per category
    (``names``: category → name)."""
    if not isinstance(summary, dict) or not isinstance(summary.get("All"), dict):
        raise TypeError("format_pq_table: summary must be PanopticQuality.summarize()'s dict")
    if names is not None and not isinstance(names, dict):
        raise TypeError(f"format_pq_table: names must be a dict category → name, got {names!r:.80}")
    rows = [(k, summary[k]) for k in ("All", "Things", "Stuff")]
    rows += [((names or {}).get(c, str(c)), q) for c, q in summary.get("per_class", {}).items()]
    width = max(len(str(r[0])) for r in rows)
    lines = [f"{'':<{width}}     PQ     SQ     RQ"]
    for name, q in rows:
        cells = ["-" if q[k] == -1 else f"{100 * q[k]:.1f}" for k in ("PQ", "SQ", "RQ")]
        lines.append(f"{name:<{width}} " + " ".join(f"{c:>6}" for c in cells))
    return "\n".join(lines)
