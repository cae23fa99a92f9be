"""Command line: ``python -m minidense COMMAND [options]``; ``--help`` lists the commands."""

import argparse
import errno
import os
import sys

# What each run may leave in its --out folder, in the order the messages name them.
_RUN_FILES = ("checkpoint.npz", "curves.png", "predictions.png")


def _int(value):
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {value!r}") from None


def _positive(value):
    v = _int(value)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return v


def _non_negative(value):
    v = _int(value)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return v


def _positive_float(value):
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {value!r}") from None
    if not (v > 0 and v != float("inf")):  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {value}")
    return v


def _written(out):
    """'checkpoint.npz, curves.png and predictions.png are in OUT/', naming only the files there
    (a run of 0 epochs saves no checkpoint and no curves)."""
    names = [n for n in _RUN_FILES if os.path.exists(os.path.join(out, n))]
    if not names:
        return f"nothing was written to {out}/"
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{listed} {'is' if len(names) == 1 else 'are'} in {out}/"


def _cmd_demo(args):
    from .experiments.segmentation import train_segmentation
    from .experiments.training import check_run_dir

    # The demo cannot resume, so it names only the way that keeps the earlier run.
    check_run_dir(args.out, False, hint="choose another --out (demo does not resume runs)")
    print("minidense demo: training a small U-Net on procedural shapes (held-out mIoU at the end)")
    r = train_segmentation("unet", "shapes", epochs=args.epochs, out=args.out, seed=args.seed)
    print(f"U-Net held-out mIoU {r['mIoU']:.3f}, pixel accuracy {r['pixel_acc']:.3f} "
          f"({r['seconds']:.0f} s)")  # fmt: skip
    if args.out:
        print(_written(args.out))


def _cmd_train_unet(args):
    from .experiments.segmentation import train_segmentation

    r = train_segmentation(args.model, args.dataset, epochs=args.epochs, out=args.out,
                           resume=args.resume, seed=args.seed, image_size=args.image_size,
                           batch_size=args.batch_size, lr=args.lr, upsampling=args.upsampling)  # fmt: skip
    print(f"{args.model} on {args.dataset}: held-out mIoU {r['mIoU']:.3f}, pixel accuracy "
          f"{r['pixel_acc']:.3f}; per-class IoU {[round(v, 3) for v in r['iou_per_class']]}")  # fmt: skip
    print(_written(args.out))


def _cmd_train_maskrcnn(args):
    from .experiments.maskrcnn import print_results, train_maskrcnn

    r = train_maskrcnn(args.pooler, args.stride, args.mask_loss, epochs=args.epochs, out=args.out,
                       resume=args.resume, seed=args.seed, preset_name=args.preset, lr=args.lr,
                       keypoints=args.keypoints, dataset=args.dataset)  # fmt: skip
    heads = f"{args.mask_loss} masks" + (", keypoints" if args.keypoints else "")
    print_results(r, f"Mask R-CNN ({args.pooler}, stride {args.stride}, {heads})")
    print(f"trained in {r['seconds']:.0f} s; {_written(args.out)}")


def _cmd_ablate(args):
    from .experiments.ablation import run_ablation

    report = run_ablation(args.preset, args.seeds, tuple(args.strides), args.out, jobs=args.jobs,
                          executor=args.executor, scheduler=args.scheduler)  # fmt: skip
    print(report.text)
    print(f"\nresults.json, results.csv, report.txt and ablation.png are in {args.out}/")


def _cmd_notebooks(args):
    from .course import write_instructor_edition, write_student_edition

    if args.student is not None:  # --student "" is a mistake to name, not --instructor
        written = write_student_edition(args.student, args.source, args.force)
        print(f"the student edition of {len(written)} notebooks (answers removed, checks kept) "
              f"is in {args.student}/")  # fmt: skip
    else:
        written = write_instructor_edition(args.instructor, args.source, args.force)
        print(f"an nbgrader course folder with {len(written)} notebooks (solutions included) is in "
              f"{args.instructor}/: run `nbgrader generate_assignment NAME` there")  # fmt: skip


def _cmd_check_cuda(args):
    from .cudacheck.check import run_check

    return run_check(args.launches, workload=not args.no_workload, json_path=args.json,
                     use_cache=not args.no_cache)  # fmt: skip


def _resume_hint(args):
    """What a train-* command says on Ctrl-C: resume if an epoch completed, else start again."""
    if os.path.exists(os.path.join(args.out, _RUN_FILES[0])):
        return ": the checkpoint of the last complete epoch is intact; rerun with --resume"
    return ": no epoch had completed, so there is no checkpoint yet; rerun the same command"


def _run_arguments(command, out, what, func):
    """--seed, --out and --resume: a training command's run folder, and how to go on after ^C."""
    command.add_argument("--seed", type=_non_negative, default=0)
    command.add_argument("--out", default=out, help=f"folder for {what}")
    command.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint in --out"
    )
    command.set_defaults(func=func, on_interrupt=_resume_hint)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m minidense",
        description="minidense: dense prediction (segmentation) from scratch, on NumPy and Numba.",
        allow_abbrev=False,  # a typo such as --epoch must fail, not silently mean --epochs
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser(
        "demo",
        allow_abbrev=False,
        help="train a small U-Net on procedural shapes and print its mIoU",
    )
    demo.add_argument("--epochs", type=_non_negative, default=None, help="epochs (default: preset)")
    demo.add_argument("--seed", type=_non_negative, default=0, help="random seed")
    demo.add_argument(
        "--out", default=None, help="optional folder for curves/predictions/checkpoint"
    )
    demo.set_defaults(func=_cmd_demo, on_interrupt="")

    tu = sub.add_parser(
        "train-unet", allow_abbrev=False, help="train U-Net, SegNet or FCN on a procedural dataset"
    )
    tu.add_argument("--model", choices=("unet", "segnet", "fcn"), default="unet")
    tu.add_argument("--dataset", choices=("shapes", "cells", "stuff"), default="shapes",
                    help="stuff: the panoptic scenes' stuff classes, with every thing as one class")  # fmt: skip
    tu.add_argument("--upsampling", choices=("bilinear", "transposed", "nearest"), default="bilinear",
                    help="U-Net decoder upsampling")  # fmt: skip
    tu.add_argument("--epochs", type=_non_negative, default=None,
                    help="epochs (default: 24; 2 with MINIDENSE_FAST=1)")  # fmt: skip
    tu.add_argument("--batch-size", type=_positive, default=8, help="(default: %(default)s)")
    tu.add_argument("--image-size", type=_positive, default=None,
                    help="image side in pixels (default: 48, or 32 for fcn and with "
                         "MINIDENSE_FAST=1; fcn needs a multiple of 32)")  # fmt: skip
    tu.add_argument("--lr", type=_positive_float, default=1e-2,
                    help="AdamW's peak learning rate (default: %(default)s)")  # fmt: skip
    _run_arguments(tu, "runs/unet", "checkpoint, curves and pictures", _cmd_train_unet)

    tm = sub.add_parser(
        "train-maskrcnn", allow_abbrev=False, help="train the small Mask R-CNN on procedural shapes"
    )
    tm.add_argument("--pooler", choices=("roipool", "roiwarp", "roialign"), default="roialign")
    tm.add_argument("--stride", type=int, choices=(16, 32), default=16)
    tm.add_argument("--mask-loss", choices=("sigmoid", "softmax"), default="sigmoid")
    tm.add_argument("--keypoints", action="store_true",
                    help="add a keypoint head and train it on the shapes' keypoints (keypoint AP)")  # fmt: skip
    tm.add_argument("--dataset", choices=("shapes", "panoptic"), default="shapes",
                    help="the shapes on a plain background, or on stuff (default: %(default)s)")  # fmt: skip
    tm.add_argument(
        "--preset",
        choices=("fast", "quick", "default", "ablation", "ablation-c4", "ablation-quick"),
        default=None,
        help="data and schedule size (default: 'default', or 'fast' with MINIDENSE_FAST=1); "
        "'ablation', 'ablation-c4' and 'ablation-quick' train one variant of the full, full-c4 "
        "or quick ablation",
    )
    tm.add_argument("--epochs", type=_non_negative, default=None)
    tm.add_argument("--lr", type=_positive_float, default=None,
                    help="AdamW's peak learning rate (default: the preset's: 3e-3; 1e-3 for 'ablation')")  # fmt: skip
    _run_arguments(tm, "runs/maskrcnn", "checkpoint and pictures", _cmd_train_maskrcnn)

    ab = sub.add_parser(
        "ablate",
        allow_abbrev=False,
        help="RoIPool vs RoIWarp vs RoIAlign, softmax vs sigmoid masks",
    )
    ab.add_argument(
        "--preset",
        choices=("tiny", "quick", "full", "full-c4"),
        default="quick",
        help="tiny: a smoke test of the pipeline (the 'fast' training preset, one seed); "
        "quick: minutes, one seed; full: longer training, three seeds; full-c4: full with the "
        "paper's C4 head at stride 16 (its stride-16 variants cost about 4x)",
    )
    ab.add_argument("--seeds", type=_positive, default=None, help="seeds per variant")
    ab.add_argument("--strides", type=int, nargs="+", choices=(16, 32), default=[16, 32])
    ab.add_argument("--out", default="runs/ablation",
                    help="results folder (also the resume point); with --executor dask, a folder "
                    "every Dask worker reaches at the same path")  # fmt: skip
    ab.add_argument("--jobs", type=_positive, default=1,
                    help="variants trained at once, each in its own process on this machine, the "
                    "cores shared out among them (default: %(default)s, one after another)")  # fmt: skip
    ab.add_argument("--executor", choices=("local", "dask"), default="local",
                    help="local: this machine (--jobs); dask: a running Dask cluster (--scheduler; "
                    'the dask extra: pip install "minidense[dask]")')  # fmt: skip
    ab.add_argument("--scheduler", metavar="ADDRESS", default=None,
                    help="the Dask scheduler's address, e.g. tcp://HOST:8786 (--executor dask)")  # fmt: skip
    ab.set_defaults(
        func=_cmd_ablate, on_interrupt=": rerun the same command: finished variants are kept"
    )

    nb = sub.add_parser(
        "notebooks",
        allow_abbrev=False,
        help="write the course notebooks for students (answers removed) or instructors (nbgrader)",
    )
    edition = nb.add_mutually_exclusive_group(required=True)
    edition.add_argument("--student", metavar="DIR",
                         help="write the student edition: answers removed, checks kept, no outputs")  # fmt: skip
    edition.add_argument("--instructor", metavar="DIR",
                         help="write an nbgrader course folder (source/NAME/NAME.ipynb, with solutions)")  # fmt: skip
    nb.add_argument("--source", metavar="DIR", default=None,
                    help="the notebooks to read (default: the repository's notebooks/)")  # fmt: skip
    nb.add_argument("--force", action="store_true",
                    help="overwrite notebooks already in DIR (answers saved there are lost)")  # fmt: skip
    nb.set_defaults(func=_cmd_notebooks, on_interrupt="")

    ck = sub.add_parser(
        "check-cuda",
        allow_abbrev=False,
        help="compile every CUDA kernel for real GPUs (sm_70/80/90) without one: registers, "
        "spills, shared memory, occupancy, float64 instructions",
        description="Records the launches of a small workload under the CUDA simulator, then "
        "compiles each kernel with those argument types with NVVM and assembles it with ptxas for "
        "sm_70, sm_80 and sm_90. Needs the CUDA 12 compiler pieces: "
        'pip install -e ".[cuda]" (no GPU). Exit 1 on a failure, 2 without the compilers.',
    )
    ck.add_argument("--launches", action="append", default=[], metavar="FILE",
                    help="also compile the launches recorded in FILE (JSON; repeatable)")  # fmt: skip
    ck.add_argument("--no-workload", action="store_true",
                    help="compile only the --launches files, without running the workload")  # fmt: skip
    ck.add_argument("--json", metavar="FILE", default=None, help="also write the results to FILE")
    ck.add_argument("--no-cache", action="store_true",
                    help="recompile everything, even when neither the package nor the compilers "
                    "changed since the last run")  # fmt: skip
    ck.set_defaults(func=_cmd_check_cuda, on_interrupt="")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        status = args.func(args)
    except KeyboardInterrupt:
        # Each command says how to go on: train-* resume, ablate keeps finished variants.
        hint = args.on_interrupt(args) if callable(args.on_interrupt) else args.on_interrupt
        print(f"\ninterrupted{hint}", file=sys.stderr)
        return 130
    except _DOCUMENTED as e:
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 2
    return status or 0


# The errors docs/errors.md documents (CheckpointError is a ValueError, NonFiniteLossError a
# FloatingPointError), and every OSError: a path that is a directory, a permission, a full disk.
_DOCUMENTED = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    RuntimeError,
    FloatingPointError,
    OSError,
)

_OS_HINTS = {
    errno.ENOSPC: "free some disk space, or choose another --out",
    errno.EDQUOT: "free some disk space, or choose another --out",
    errno.EACCES: "choose a folder you can write to (--out)",
    errno.EPERM: "choose a folder you can write to (--out)",
    errno.EROFS: "choose a folder you can write to (--out)",
}


def _one_line(e):
    """The exception's message on one line (an OSError from the system as 'what: path; hint')."""
    if isinstance(e, OSError) and e.strerror:
        text = e.strerror + (f": '{e.filename}'" if e.filename else "")
        if e.errno in _OS_HINTS:
            text += f"; {_OS_HINTS[e.errno]}"
    elif isinstance(e, KeyError) and e.args:
        text = str(e.args[0])  # str(KeyError) would quote the message
    else:
        text = str(e) or type(e).__name__
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
