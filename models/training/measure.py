"""Measures the bundled models: full-image baseline vs sliced inference, box AP50.

Generates held-out scenes (seeds the training never used) and runs each model
through the project's engine twice: on the whole image shrunk to
``--baseline-imgsz`` (``predict_full_image``, the baseline) and sliced into
``--slice``-px tiles at native resolution (``predict_sliced`` with its default
merge). Prints box AP50 overall and on COCO "small" objects (box area up to
32^2 px) as Markdown, then JSON.

AP50 is the benchmarks' evaluator (``bench/evaluate.py``): COCO's matching and
101-point interpolation at IoU 0.5, mean over the classes with ground truth;
ground truth outside the area range, and unmatched detections outside it, are
ignored as in ``pycocotools``. Box areas. At most ``--max-det`` detections per
image.

Usage::

    .venv/bin/python models/training/measure.py            # both models, 6 scenes
    .venv/bin/python models/training/measure.py --models det --num-images 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("YOLO_OFFLINE", "1")

from sliced_inference.bench.evaluate import SMALL_AREA, Instances, ap50  # noqa: E402
from sliced_inference.slicer import (  # noqa: E402
    load_model,
    predict_full_image,
    predict_sliced,
)
from sliced_inference.synthetic import Scene, dataset_scenes  # noqa: E402

MODELS_DIR = Path(__file__).resolve().parents[1]  # the weights live in models/
MODEL_FILES = {"det": "small-objects-det.pt", "seg": "small-objects-seg.pt"}
#: Seeds of held-out scenes (training uses 100 and 200, see train.py).
HELD_OUT_SEED = 300


def ground_truth(scenes: Sequence[Scene]) -> list[Instances]:
    """The evaluator's ground truth of generated scenes (boxes and class ids)."""
    return [Instances(scene.boxes, scene.class_ids) for scene in scenes]


def ap50_scores(
    truths: Sequence[Instances], detections: Sequence[Instances]
) -> dict[str, float]:
    """Box AP50 over all objects and over COCO's small ones, to 4 decimals.

    Example::

        >>> truth = Instances([[0, 0, 10, 10]], [0])
        >>> found = Instances(truth.boxes, truth.class_ids, [0.9])
        >>> ap50_scores([truth], [found])
        {'all': 1.0, 'small': 1.0}
    """
    return {
        "all": round(ap50(truths, detections), 4),
        "small": round(ap50(truths, detections, area_range=(0.0, SMALL_AREA)), 4),
    }


def measure(model_path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Baseline and sliced AP50 (all objects and small ones) of one model.

    Example::

        args = build_parser().parse_args(["--num-images", "1"])
        print(measure(MODELS_DIR / "small-objects-det.pt", args)["ap50"])
    """
    model = load_model(str(model_path), device="cpu")
    common = {"confidence": args.conf, "max_detections": args.max_det}
    predict = {
        "baseline": lambda image: predict_full_image(
            image, model, imgsz=args.baseline_imgsz, **common
        ),
        "sliced": lambda image: predict_sliced(
            image, model, slice_wh=args.slice, overlap=args.overlap, **common
        ),
    }
    scenes = list(
        dataset_scenes(args.seed, args.num_images, args.min_width, args.max_width)
    )
    truths = ground_truth(scenes)
    result: dict[str, Any] = {
        "model": model_path.name,
        "images": [f"{s.width}x{s.height}" for s in scenes],
        "objects": int(sum(len(t) for t in truths)),
        "small_objects": int(sum((t.areas(False) <= SMALL_AREA).sum() for t in truths)),
        "ap50": {},
        "seconds": {},
    }
    for run, call in predict.items():
        start = time.perf_counter()
        preds = [call(scene.image) for scene in scenes]
        result["seconds"][f"{run}_s"] = round(time.perf_counter() - start, 1)
        dets = [Instances(p.boxes, p.class_ids, p.scores) for p in preds]
        for subset, value in ap50_scores(truths, dets).items():
            result["ap50"][f"{run}_{subset}"] = value
    return result


def build_parser() -> argparse.ArgumentParser:
    """The command line of this script."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--models",
        nargs="+",
        default=["det", "seg"],
        help="'det', 'seg' (the bundled models) or paths to other models the "
        "engine loads (.pt files, Transformers directories)",
    )
    p.add_argument("--num-images", type=int, default=6)
    p.add_argument("--seed", type=int, default=HELD_OUT_SEED)
    p.add_argument("--min-width", type=int, default=2400)
    p.add_argument("--max-width", type=int, default=4000)
    p.add_argument("--slice", type=int, default=640)
    p.add_argument("--overlap", type=float, default=0.2)
    p.add_argument("--baseline-imgsz", type=int, default=640)
    p.add_argument("--conf", type=float, default=0.05)
    p.add_argument("--max-det", type=int, default=1000)
    p.add_argument("--json", type=Path, help="also write the results to this file")
    return p


def main(argv: list[str] | None = None) -> int:
    """Measures the requested models and prints a Markdown table."""
    args = build_parser().parse_args(argv)
    paths = [
        MODELS_DIR / MODEL_FILES[m] if m in MODEL_FILES else Path(m)
        for m in args.models
    ]
    results = [measure(path, args) for path in paths]
    full = f"full image at {args.baseline_imgsz} px"
    print(
        f"| model | AP50 small, {full} | AP50 small, sliced "
        f"| AP50 all, {full} | AP50 all, sliced |"
    )
    print("|---|---|---|---|---|")
    for r in results:
        a = r["ap50"]
        print(
            f"| {r['model']} | {a['baseline_small']:.3f} | {a['sliced_small']:.3f} "
            f"| {a['baseline_all']:.3f} | {a['sliced_all']:.3f} |"
        )
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
