"""Train and evaluate the segmentation models: ``train-unet`` and the ``demo``."""

import os
import time

import numpy as np
from tqdm.auto import tqdm

from .. import models, no_grad, optim, tensor
from ..data import Cached, CellMembranes, DataLoader, ShapesSemantic, ShapesStuff
from ..metrics import SegmentationMeter
from ..ops.loss import cross_entropy
from ..tensor import manual_seed
from ..viz.segmentation import plot_curves, plot_predictions
from .records import load_record
from .training import (
    as_saved,
    check_choice,
    check_evaluation,
    check_finite,
    check_flags,
    check_run_dir,
    fast_mode,
    load_run,
    prepare_out_dir,
    save_run,
    size_or_default,
)

MODELS = ("unet", "segnet", "fcn")
DATASETS = ("shapes", "cells", "stuff")  # stuff: the panoptic scenes' stuff, things as one


def build_model(name, in_channels, num_classes, base=16, depth=3, upsampling="bilinear"):
    if name == "unet":
        return models.UNet(in_channels, num_classes, depth=depth, base=base, upsampling=upsampling)
    if name == "segnet":
        return models.SegNet(in_channels, num_classes, depth=depth, base=base)
    if name == "fcn":
        return models.FCN(in_channels, num_classes, base=base)
    raise ValueError(f"model must be one of {MODELS}, got {name!r}")


def build_data(dataset, n_train, n_test, image_size, seed, **options):
    if dataset == "shapes":
        make = ShapesSemantic
    elif dataset == "cells":
        make = CellMembranes
    elif dataset == "stuff":
        make = ShapesStuff
    else:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    # Disjoint seeds: the held-out images are never seen in training.
    # Cached: every epoch trains on, and evaluates, the same images; render them once.
    train = Cached(make(n_train, image_size=image_size, seed=seed, **options))
    return train, Cached(make(n_test, image_size=image_size, seed=seed + 10_000, **options))


def evaluate(model, dataset, batch_size=8):
    """(mIoU, pixel accuracy, per-class IoU, a few (image, label, prediction) samples)."""
    check_evaluation(model, dataset, batch_size, "evaluate")
    model.eval()
    meter = SegmentationMeter(dataset.num_classes)
    samples = []
    with no_grad():
        for images, labels in DataLoader(dataset, batch_size):
            pred = model(tensor(images)).numpy().argmax(axis=1)
            meter.update(pred, labels)
            if len(samples) < 4:
                samples.extend(zip(images, labels, pred, strict=True))
    model.train()
    m = meter.compute()
    return m["mean_iou"], m["pixel_accuracy"], m["iou_per_class"], samples[:4]


def train_segmentation(model="unet", dataset="shapes", epochs=None, out=None, resume=False,
                       seed=0, image_size=None, n_train=None, n_test=None, batch_size=8, lr=1e-2,
                       base=16, depth=3, upsampling="bilinear", progress=True, plots=True,
                       data_options=None):  # fmt: skip
    """Train a segmentation model; returns a dict of the final metrics and the history.

    ``data_options`` go to the dataset (e.g. ``{"size_range": (0.15, 0.3)}`` for ShapesSemantic).
    Each epoch ends with an evaluation on held-out images and an atomic checkpoint in ``out``
    (when given); ``resume=True`` continues from it with the same results as an uninterrupted run.
    """
    # Names are checked before the output folder is made, so a typo leaves nothing behind.
    check_choice("train_segmentation", "model", model, MODELS)
    check_choice("train_segmentation", "dataset", dataset, DATASETS)
    check_choice(
        "train_segmentation", "upsampling", upsampling, ("bilinear", "transposed", "nearest")
    )
    check_flags("train_segmentation", resume=resume, progress=progress, plots=plots)
    if data_options is not None and not isinstance(data_options, dict):
        raise TypeError(
            f"train_segmentation: data_options must be a dict of dataset options or None, got "
            f"{type(data_options).__name__}"
        )
    fast = fast_mode()
    given_size = image_size
    image_size = size_or_default("image_size", image_size, 32 if fast else 48)
    if model == "fcn":  # five stride-2 stages: the image must halve five times evenly
        if given_size is None:
            image_size = 32
        elif image_size % 32:
            near = sorted({max(32, image_size // 32 * 32), image_size // 32 * 32 + 32})
            raise ValueError(
                f"image_size must be a multiple of 32 for model 'fcn' (its coarsest map is 1/32 "
                f"of the image), got {image_size}: use {' or '.join(map(str, near))}"
            )
    n_train = size_or_default("n_train", n_train, 32 if fast else 320)
    n_test = size_or_default("n_test", n_test, 16 if fast else 100)
    epochs = epochs if epochs is not None else (2 if fast else 24)
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
    if data_options is None and dataset == "shapes":
        # Shapes a little larger than the dataset's default, so that a small U-Net learns to tell
        # squares, circles and triangles apart within the demo's budget (measured: held-out mIoU
        # 0.917 after 24 epochs, 123 s on 2 cores (seeds 1, 2: 0.904, 0.896); 20 epochs gave 0.896).
        data_options = {"size_range": (0.15, 0.3)}
    config = dict(model=model, dataset=dataset, seed=seed, image_size=image_size, n_train=n_train,
                  batch_size=batch_size, base=base, depth=depth, upsampling=upsampling,
                  data_options=as_saved(data_options or {}), lr=lr)  # fmt: skip
    # Checked before the folder is made and before training: a refused run leaves nothing.
    check_run_dir(out, resume)
    if out is not None:
        prepare_out_dir(out)

    manual_seed(seed)
    train_set, test_set = build_data(
        dataset, n_train, n_test, image_size, seed, **(data_options or {})
    )
    in_channels = train_set[0][0].shape[0]
    net = build_model(model, in_channels, train_set.num_classes, base, depth, upsampling)
    loader = DataLoader(train_set, batch_size, shuffle=True, seed=seed, hflip=True, vflip=True)
    opt = optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    total = max(epochs * len(loader), 1)  # the warm-up fits in the run (e.g. --epochs 0)
    sched = optim.WarmupCosine(opt, total_steps=total, warmup_steps=min(len(loader), 20, total),
                               min_lr=lr * 0.02)  # fmt: skip

    start, history = 0, []
    if resume:
        start, history = load_run(out, net, opt, config, sched)
    loader.set_epoch(start)

    bar = tqdm(total=epochs * len(loader), initial=start * len(loader), disable=not progress,
               desc=f"train {model}", unit="step")  # fmt: skip
    t0 = time.perf_counter()
    for epoch in range(start, epochs):
        losses = []
        for step, (images, labels) in enumerate(loader):
            loss = cross_entropy(net(tensor(images)), labels)
            check_finite({"loss": loss}, step, epoch)
            opt.zero_grad()
            loss.backward()
            optim.clip_grad_norm_(list(net.parameters()), 5.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        miou, acc, _, _ = evaluate(net, test_set)
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "mIoU": miou,
                        "pixel_acc": acc})  # fmt: skip
        if progress:  # progress=False (tests, notebooks' loops) trains silently
            bar.write(f"epoch {epoch + 1}/{epochs}  loss {history[-1]['loss']:.4f}  "
                      f"mIoU {miou:.3f}  pixel acc {acc:.3f}")  # fmt: skip
        if out is not None:
            save_run(out, net, opt, epoch + 1, history, config, sched)
    bar.close()

    miou, acc, per_class, samples = evaluate(net, test_set)
    result = {"mIoU": miou, "pixel_acc": acc, "iou_per_class": per_class.tolist(),
              "history": history, "seconds": time.perf_counter() - t0, "model": net}  # fmt: skip
    if out is not None and plots:
        if history:
            plot_curves(history, ["loss", "mIoU"], path=os.path.join(out, "curves.png"))
        images, labels, preds = zip(*samples, strict=True)
        plot_predictions(images, labels, preds, path=os.path.join(out, "predictions.png"))
    return result


def summarise_decoders(runs):
    """Per decoder, over seeds: ``{decoder: {"mean", "std", "seeds": {seed: mIoU},
    "parameters"}}``, and each pair's verdict ``[(a, b, mean a − mean b, separated)]``, where
    ``separated`` means every seed of one beat every seed of the other: a difference of means
    that the seed-to-seed spread can explain is not evidence for a decoder."""
    by = {}
    for r in runs:
        by.setdefault(r["decoder"], {})[r["seed"]] = r["mIoU"]
    rows = {}
    for name, seeds in by.items():
        v = np.array(list(seeds.values()))
        params = {r.get("parameters") for r in runs if r["decoder"] == name} - {None}
        rows[name] = {"mean": float(v.mean()), "std": float(v.std()), "seeds": seeds,
                      "parameters": params.pop() if len(params) == 1 else None}  # fmt: skip
    pairs = []
    names = list(rows)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            va, vb = rows[a]["seeds"].values(), rows[b]["seeds"].values()
            separated = min(va) > max(vb) or min(vb) > max(va)
            pairs.append((a, b, rows[a]["mean"] - rows[b]["mean"], separated))
    return rows, pairs


def measured_decoders():
    """The shipped U-Net decoder comparison (``records/unet_decoders.json``): ``{"about", "runs"}``,
    each run ``{"decoder", "seed", "mIoU", ...}`` trained with the demo's settings."""
    return load_record("unet_decoders")
