"""Command line: generate a synthetic dataset (and optionally load it into FiftyOne).

Example::

    python -m sliced_inference.synthetic /tmp/synth --num-images 8 --seed 0
    sliced-inference-generate /tmp/synth -n 4 --min-width 1600 --max-width 2400 --fiftyone synth
    sliced-inference-generate /tmp/obb -n 4 --oriented --fiftyone obb   # rotated objects
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from .export import write_dataset, write_oriented_dataset


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``main``.

    Example::

        >>> build_parser().parse_args(["out"]).num_images
        8
    """
    parser = argparse.ArgumentParser(
        prog="python -m sliced_inference.synthetic",
        description="Generate large images with many small objects and a COCO JSON.",
    )
    parser.add_argument("out_dir", help="output folder (images in data/, coco.json)")
    parser.add_argument("-n", "--num-images", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-width", type=int, default=1600)
    parser.add_argument("--max-width", type=int, default=4000)
    parser.add_argument(
        "--density",
        type=float,
        default=None,
        help="small objects per megapixel (default 40; 60 with --oriented)",
    )
    parser.add_argument(
        "--oriented",
        action="store_true",
        help="rotated containers and ships with oriented ground truth "
        "(oriented.json; FiftyOne Polylines) instead of the four box classes",
    )
    parser.add_argument("--format", choices=("jpg", "png"), default="jpg")
    parser.add_argument(
        "--fiftyone",
        metavar="NAME",
        help="also load the folder as a (persistent) FiftyOne dataset of this name",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status.

    Example::

        main(["/tmp/synth", "--num-images", "2", "--seed", "3"])
    """
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    write = write_oriented_dataset if args.oriented else write_dataset
    density = {"density": args.density} if args.density is not None else {}
    if not args.oriented and args.density is None:
        density = {"density": 40.0}  # recorded in coco.json, as it always was
    path = write(
        args.out_dir,
        args.num_images,
        args.seed,
        min_width=args.min_width,
        max_width=args.max_width,
        image_format=args.format,
        **density,
    )
    print(
        f"wrote {args.num_images} images and {path} in {time.perf_counter() - start:.1f} s"
    )
    if args.fiftyone:
        from .fiftyone_dataset import load_fiftyone_dataset, load_oriented_dataset

        load = load_oriented_dataset if args.oriented else load_fiftyone_dataset
        dataset = load(
            args.out_dir, name=args.fiftyone, overwrite=True, persistent=True
        )
        print(f"FiftyOne dataset {dataset.name!r}: {len(dataset)} samples")
    return 0
