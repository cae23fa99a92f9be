"""Command line: ``python -m minidense {demo, ...} [options]``; ``--help`` lists the commands."""

import argparse
import sys


def _cmd_demo(args):
    from .experiments.demo import run_demo

    run_demo(epochs=args.epochs, seed=args.seed)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m minidense",
        description="minidense: dense prediction (segmentation) from scratch, on NumPy and Numba.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser("demo", help="train a small segmentation model end to end and report it")
    demo.add_argument("--epochs", type=int, default=None, help="training epochs (default: preset)")
    demo.add_argument("--seed", type=int, default=0, help="random seed")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
