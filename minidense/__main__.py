"""Command line: ``python -m minidense COMMAND [options]``; ``--help`` lists the commands."""

import argparse
import sys


def _positive(value):
    v = int(value)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return v


def _non_negative(value):
    v = int(value)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return v


def _cmd_demo(args):
    from .experiments.segmentation import train_segmentation

    print("minidense demo: training a small U-Net on procedural shapes (held-out mIoU at the end)")
    r = train_segmentation("unet", "shapes", epochs=args.epochs, out=args.out, seed=args.seed)
    print(f"U-Net held-out mIoU {r['mIoU']:.3f}, pixel accuracy {r['pixel_acc']:.3f} "
          f"({r['seconds']:.0f} s)")  # fmt: skip
    if args.out:
        print(f"curves, predictions and checkpoint written to {args.out}/")


def _cmd_train_unet(args):
    from .experiments.segmentation import train_segmentation

    r = train_segmentation(args.model, args.dataset, epochs=args.epochs, out=args.out,
                           resume=args.resume, seed=args.seed, image_size=args.image_size,
                           batch_size=args.batch_size, lr=args.lr, upsampling=args.upsampling)  # fmt: skip
    print(f"{args.model} on {args.dataset}: held-out mIoU {r['mIoU']:.3f}, pixel accuracy "
          f"{r['pixel_acc']:.3f}; per-class IoU {[round(v, 3) for v in r['iou_per_class']]}")  # fmt: skip
    print(f"checkpoint, curves.png and predictions.png are in {args.out}/")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m minidense",
        description="minidense: dense prediction (segmentation) from scratch, on NumPy and Numba.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser("demo", help="train a small U-Net on procedural shapes and print its mIoU")
    demo.add_argument("--epochs", type=_non_negative, default=None, help="epochs (default: preset)")
    demo.add_argument("--seed", type=int, default=0, help="random seed")
    demo.add_argument("--out", default=None, help="optional folder for curves/predictions/checkpoint")
    demo.set_defaults(func=_cmd_demo)

    tu = sub.add_parser("train-unet", help="train U-Net, SegNet or FCN on a procedural dataset")
    tu.add_argument("--model", choices=("unet", "segnet", "fcn"), default="unet")
    tu.add_argument("--dataset", choices=("shapes", "cells"), default="shapes")
    tu.add_argument("--upsampling", choices=("bilinear", "transposed", "nearest"), default="bilinear",
                    help="U-Net decoder upsampling")  # fmt: skip
    tu.add_argument("--epochs", type=_non_negative, default=None)
    tu.add_argument("--batch-size", type=_positive, default=8)
    tu.add_argument("--image-size", type=_positive, default=None)
    tu.add_argument("--lr", type=float, default=3e-3)
    tu.add_argument("--seed", type=int, default=0)
    tu.add_argument("--out", default="runs/unet", help="folder for checkpoint, curves and pictures")
    tu.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    tu.set_defaults(func=_cmd_train_unet)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("\ninterrupted: the last complete checkpoint (if any) is intact; rerun with --resume",
              file=sys.stderr)  # fmt: skip
        return 130
    except (ValueError, TypeError, FileNotFoundError, FloatingPointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
