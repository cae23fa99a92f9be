"""One training step of train-maskrcnn's default Mask R-CNN, stage by stage: where the wall time
goes and how many cores each stage keeps busy.

    python benchmarks/bench_maskrcnn.py [--threads 2] [--steps 60] [--blocks 3]

The step is the training loop's (batch 4 of 128 px shapes, RoIAlign, stride 16, sigmoid masks,
AdamW with gradient clipping), cut into data, backbone, RPN (forward and losses), RoI heads
(box and mask heads with their losses), backward and optimizer. Per stage: the median wall
milliseconds over the steps, and cores used = the process's CPU time / wall time (2.0 = both
cores busy on two). Steps run in blocks with a pause between them, after a warm-up that compiles.
The same model built from torch/torchvision parts is not part of this script yet.
"""

import argparse
import statistics
import sys
import time

import _common as bench

THREADS = bench.early_threads()  # before NumPy and Numba are imported

# minidense before NumPy and numba: it sets numba's threading layer and OpenBLAS's thread timeout,
# which OpenBLAS reads when NumPy loads it (else idle BLAS threads spin, and count as cores used).
import minidense as md  # noqa: E402, I001
import numpy as np  # noqa: E402
from minidense import optim  # noqa: E402
from minidense.data import Cached, DataLoader, ShapesInstances  # noqa: E402
from minidense.experiments.maskrcnn import preset  # noqa: E402
from minidense.models.maskrcnn import MaskRCNN, MaskRCNNConfig  # noqa: E402
from minidense.models.maskrcnn.transform import check_targets  # noqa: E402

STAGES = ("data", "backbone", "rpn", "roi heads", "backward", "optimizer")
WARMUP = 3
PAUSE_S = 0.5


def parse():
    p = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    bench.add_threads_argument(p, THREADS)
    p.add_argument("--steps", type=bench.positive_int, default=60, help="timed steps in all")
    p.add_argument("--blocks", type=bench.positive_int, default=3)
    bench.add_json_argument(p)
    return p.parse_args()


def staged_losses(model, images, targets, rng, mark):
    """``model(images, targets, rng=rng)`` (a training forward without a keypoint head), run in
    stages: ``mark(stage)`` after the backbone, the RPN and the RoI heads. Returns the losses
    (tests/test_benchmarks_cli.py holds them equal to the model's own forward)."""
    features, sizes, _ = model._features(images)
    mark("backbone")
    targets = check_targets(targets, sizes, model.cfg.num_classes)
    proposals, losses = model.rpn(features, sizes, targets, rng)
    mark("rpn")
    losses.update(model.roi_heads.losses(features, proposals, targets, rng))
    mark("roi heads")
    return losses


def make_step(n_train=64):
    """A closure running one training step and returning ``{stage: (wall s, cpu s)}``."""
    p = preset("default")
    md.manual_seed(0)
    # Rendered once, as train_maskrcnn does: "data" is then batching and flipping.
    data = Cached(ShapesInstances(n_train, image_size=p["image_size"], seed=0))
    for k in range(len(data)):  # render them all now, whatever the number of steps timed
        data[k]
    loader = DataLoader(data, p["batch_size"], shuffle=True, seed=0, hflip=True)
    model = MaskRCNN(MaskRCNNConfig())
    opt = optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    rng = np.random.default_rng(0)
    batches = iter(())

    def step():
        nonlocal batches
        times = {}
        last = [time.perf_counter(), time.process_time()]

        def mark(stage):  # the wall and CPU time since the previous mark
            wall, cpu = time.perf_counter(), time.process_time()
            times[stage] = (wall - last[0], cpu - last[1])
            last[:] = wall, cpu

        try:
            images, targets = next(batches)
        except StopIteration:
            batches = iter(loader)
            images, targets = next(batches)
        mark("data")
        total = sum(staged_losses(model, images, targets, rng, mark).values())
        opt.zero_grad()
        total.backward()
        mark("backward")
        optim.clip_grad_norm_(list(model.parameters()), 10.0)
        opt.step()
        mark("optimizer")
        return times

    return step


def main():
    args = parse()
    bench.start_numba_threads(args.threads)
    step = make_step()
    for _ in range(WARMUP):
        step()
    rows = []
    per_block = -(-args.steps // args.blocks)
    for _ in range(args.blocks):
        time.sleep(PAUSE_S)  # BLAS's and numba's idle threads go to sleep between blocks
        rows += [step() for _ in range(per_block)]
    rows = rows[: args.steps]
    walls = [sum(w for w, _ in r.values()) for r in rows]
    cpus = [sum(c for _, c in r.values()) for r in rows]
    step_ms = 1e3 * statistics.median(walls)
    print(f"Mask R-CNN training step (train-maskrcnn's default, batch 4 of 128 px), "
          f"{bench.threads_in_effect()}, median of {len(rows)} steps in {args.blocks} blocks")  # fmt: skip
    print(f"{'stage':<12}{'median ms':>10}{'share':>8}{'cores used':>12}")
    ops = {}
    medians = {s: 1e3 * statistics.median(r[s][0] for r in rows) for s in STAGES}
    for stage, ms in medians.items():
        wall = sum(r[stage][0] for r in rows)
        cpu = sum(r[stage][1] for r in rows)
        share = ms / sum(medians.values())
        print(f"{stage:<12}{ms:>10.1f}{share:>8.0%}{cpu / max(wall, 1e-9):>12.2f}")
        ops[f"Mask R-CNN step: {stage}"] = {"minidense": ms}
    print(f"{'step':<12}{step_ms:>10.1f}{'':>8}{sum(cpus) / sum(walls):>12.2f}")
    print("share = of the stages' summed medians; cores used = CPU time / wall time of the process "
          "over the stage (2.00: two cores busy)")  # fmt: skip
    ops["Mask R-CNN training step"] = {"minidense": step_ms}
    bench.write_json(args.json, "maskrcnn", ops, bench.threads_in_effect())


if __name__ == "__main__":
    sys.exit(main())
