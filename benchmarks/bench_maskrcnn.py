"""One training step of train-maskrcnn's default Mask R-CNN, stage by stage: where the wall time
goes and how many cores each stage keeps busy, in minidense and, where torch and torchvision are
importable, in the same model built from their parts.

    python benchmarks/bench_maskrcnn.py [--threads 2] [--steps 60] [--blocks 3] [--json FILE]

The step is the training loop's (batch 4 of 128 px shapes, RoIAlign, stride 16, sigmoid masks,
AdamW with gradient clipping), cut into data, backbone, RPN (forward and losses), RoI heads
(box and mask heads with their losses), backward and optimizer. Per stage: the median wall
milliseconds over the steps, and cores used = the process's CPU time / wall time (2.0 = both
cores busy on two). Steps run in blocks with a pause between them, after a warm-up that compiles.

PyTorch runs after ours, in the same process, with the same thread count: the torch twin of
benchmarks/_torch_maskrcnn.py, ours layer for layer, starts from our model's starting weights
(copied over) and trains on the same batches with the same losses, AdamW (lr 3e-3, weight decay
1e-4) and clipping, in two builds: torchvision's stock ops, and RoIAlign as an exact matrix
product, whose backward is a parallel matmul (torchvision's CPU roi_align backward is a serial
loop). The last line gives our step time over the faster build's; --json writes that build as
"pytorch" and each build as "pytorch (build)". tests/test_torch_twin.py holds the twin equal to
our model. torch runs with its own OpenMP settings, not minidense's (_common.import_torch).
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

# The same model in PyTorch, timed after ours where torch and torchvision are importable.
torch = bench.import_torch(THREADS, "torchvision")
if torch is not None:
    import _torch_maskrcnn as twin

STAGES = ("data", "backbone", "rpn", "roi heads", "backward", "optimizer")
WARMUP = 3
PAUSE_S = 0.5
# The torch twin's builds by the RoIAlign they use; the record names them "pytorch (build)".
TORCH_BUILDS = {"stock torchvision": "torchvision", "matmul RoIAlign": "matmul"}


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


def forever(loader, convert=None):
    """The loader's batches, epoch after epoch (``convert``ed: the torch twin's tensors)."""
    while True:
        for images, targets in loader:
            yield (images, targets) if convert is None else convert(images, targets)


def make_step(batches, losses_of, params, opt, clip):
    """A closure running one training step and returning ``{stage: (wall s, cpu s)}``; minidense
    and torch alike (``losses_of(batch, mark)``: the loss dict; ``clip(params, max_norm)``)."""

    def step():
        times = {}
        last = [time.perf_counter(), time.process_time()]

        def mark(stage):  # the wall and CPU time since the previous mark
            wall, cpu = time.perf_counter(), time.process_time()
            times[stage] = (wall - last[0], cpu - last[1])
            last[:] = wall, cpu

        batch = next(batches)
        mark("data")
        total = sum(losses_of(batch, mark).values())
        opt.zero_grad()
        total.backward()
        mark("backward")
        clip(params, 10.0)
        opt.step()
        mark("optimizer")
        return times

    return step


def new_model():
    """train-maskrcnn's model, its starting weights the same at every call."""
    md.manual_seed(0)
    return MaskRCNN(MaskRCNNConfig())


def minidense_step(data):
    model = new_model()
    params = list(model.parameters())
    rng = np.random.default_rng(0)
    opt = optim.AdamW(params, lr=3e-3, weight_decay=1e-4)

    def losses_of(batch, mark):
        return staged_losses(model, *batch, rng, mark)

    return make_step(forever(loader(data)), losses_of, params, opt, optim.clip_grad_norm_)


def torch_step(data, roi_align):
    """The same step of the torch twin (``roi_align``: "torchvision" or "matmul"), from the same
    starting weights, on the same batches; AdamW as a PyTorch user on a CPU would pick it."""
    torch.manual_seed(0)
    net = twin.copy_weights(new_model(), twin.MaskRCNNTwin(MaskRCNNConfig(), roi_align))
    params = list(net.parameters())
    # fused: one kernel updates all parameters (PyTorch's default on the CPU is a loop per tensor)
    opt = torch.optim.AdamW(params, lr=3e-3, weight_decay=1e-4, fused=True)
    batches = forever(loader(data), twin.batch)
    return make_step(batches, lambda b, mark: net(*b, mark), params, opt, clip_torch)


def clip_torch(params, max_norm):
    torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True)


def loader(data):
    return DataLoader(data, preset("default")["batch_size"], shuffle=True, seed=0, hflip=True)


def render(n_train=64):
    """train-maskrcnn's data, rendered once as it does: "data" is then batching and flipping."""
    data = Cached(ShapesInstances(n_train, image_size=preset("default")["image_size"], seed=0))
    for k in range(len(data)):  # render them all now, whatever the number of steps timed
        data[k]
    return data


def time_steps(step, args):
    """Per step ``{stage: (wall s, cpu s)}``: ``args.steps`` steps in ``args.blocks`` blocks,
    after a warm-up (compilation, first allocations)."""
    for _ in range(WARMUP):
        step()
    rows = []
    per_block = -(-args.steps // args.blocks)
    for _ in range(args.blocks):
        time.sleep(PAUSE_S)  # BLAS's, numba's and OpenMP's idle threads go to sleep between blocks
        rows += [step() for _ in range(per_block)]
    return rows[: args.steps]


def report(name, rows, blocks):
    """Print the per-stage table; returns ``{stage or "step": (median ms, cores used)}``."""
    what = name if torch is None or name == "minidense" else f"{name}, torch {torch.__version__}"
    print(f"\n{what}: Mask R-CNN training step (train-maskrcnn's default, batch 4 of 128 px), "
          f"median of {len(rows)} steps in {blocks} blocks")  # fmt: skip
    print(f"{'stage':<12}{'median ms':>10}{'share':>8}{'cores used':>12}")
    medians = {s: 1e3 * statistics.median(r[s][0] for r in rows) for s in STAGES}
    out = {}
    for stage, ms in medians.items():
        cores = sum(r[stage][1] for r in rows) / max(sum(r[stage][0] for r in rows), 1e-9)
        print(f"{stage:<12}{ms:>10.1f}{ms / sum(medians.values()):>8.0%}{cores:>12.2f}")
        out[stage] = ms, cores
    walls = [sum(w for w, _ in r.values()) for r in rows]
    cpus = [sum(c for _, c in r.values()) for r in rows]
    out["step"] = 1e3 * statistics.median(walls), sum(cpus) / sum(walls)
    print(f"{'step':<12}{out['step'][0]:>10.1f}{'':>8}{out['step'][1]:>12.2f}")
    return out


def main():
    args = parse()
    bench.start_numba_threads(args.threads)
    data = render()
    runs = {"minidense": time_steps(minidense_step(data), args)}
    if torch is None:
        print("(torch or torchvision is not installed: only minidense is timed)", file=sys.stderr)
    else:  # after ours: torch's OpenMP threads start only once ours are done
        for build, roi_align in TORCH_BUILDS.items():
            runs[f"pytorch ({build})"] = time_steps(torch_step(data, roi_align), args)
    results = {name: report(name, rows, args.blocks) for name, rows in runs.items()}
    threads = bench.threads_in_effect(torch)
    print(f"\n{threads}\nshare = of the stages' summed medians; cores used = CPU time / wall "
          "time of the process over the stage (2.00: two cores busy)")  # fmt: skip
    if torch is not None:  # "pytorch": the faster build, the one the record's ratio is to
        best = min(list(results)[1:], key=lambda name: results[name]["step"][0])
        ours, our_cores = results["minidense"]["step"]
        theirs, their_cores = results[best]["step"]
        print(f"minidense / the best PyTorch build, {best}: {ours / theirs:.2f}x its step time "
              f"({ours:.1f} vs {theirs:.1f} ms), cores used {our_cores:.2f} vs {their_cores:.2f}")  # fmt: skip
        results = {"minidense": results["minidense"], "pytorch": results[best], **results}
    ops = {}
    for name, stages in results.items():
        for stage, (ms, _) in stages.items():
            op = "Mask R-CNN training step" if stage == "step" else f"Mask R-CNN step: {stage}"
            ops.setdefault(op, {})[name] = ms
    bench.write_json(args.json, "maskrcnn", ops, threads)


if __name__ == "__main__":
    sys.exit(main())
