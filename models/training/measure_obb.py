"""Measures the bundled OBB model: whole-image baseline vs sliced inference, rotated AP50.

Generates held-out scenes of rotated objects (seeds training never used),
loads them into a temporary FiftyOne dataset (ground truth as filled
``Polylines``), runs the model once on each whole image shrunk to 640 px
(the baseline, as for the other bundled models) and once sliced at native resolution, and compares both
with ``sliced_inference.compare_runs``: FiftyOne's COCO evaluation with
polygon IoU, AP50 overall and on small objects (polygon area < 32^2 px).
Prints a Markdown table and stores the figures under ``"evaluation"`` in
``models/training-obb.json``.

Usage (about a minute on 2 CPU cores)::

    .venv/bin/python models/training/measure_obb.py
    .venv/bin/python models/training/measure_obb.py --num-images 2 --no-record
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("YOLO_OFFLINE", "1")

TRAINING_DIR = Path(__file__).resolve().parent
MODELS_DIR = TRAINING_DIR.parent
if str(TRAINING_DIR) not in sys.path:
    sys.path.insert(0, str(TRAINING_DIR))

import train_obb  # noqa: E402

from sliced_inference import evaluation, sdk, synthetic  # noqa: E402

#: Held-out scenes: train_obb.py uses seeds 110 and 210.
HELD_OUT_SEED = 310


def measure_obb(
    model_path: Path,
    work: Path,
    num_images: int = 6,
    seed: int = HELD_OUT_SEED,
    width_range: tuple[int, int] = (2400, 4000),
    slice_wh: int = 640,
    confidence: float = 0.05,
    baseline_imgsz: int = 640,
) -> dict[str, Any]:
    """Baseline and sliced runs of ``model_path`` on held-out scenes, compared.

    Returns:
        Scene and object counts, AP50 (all, small) and seconds of both runs.
    """
    synthetic.write_oriented_dataset(
        work, num_images, seed, min_width=width_range[0], max_width=width_range[1]
    )
    dataset = synthetic.load_oriented_dataset(work)
    model = str(model_path)
    sdk.apply_baseline_model(
        dataset,
        model,
        "whole_image",
        imgsz=baseline_imgsz,
        confidence=confidence,
        max_detections=1000,
    )
    sdk.apply_sliced_model(
        dataset,
        model,
        "sliced",
        slice_wh=slice_wh,
        overlap=0.2,
        confidence=confidence,
        max_detections=1000,
    )
    comparison = evaluation.compare_runs(
        dataset, "ground_truth", ["whole_image", "sliced"]
    )
    print(comparison)
    result: dict[str, Any] = {
        "scenes": {
            "seed": seed,
            "num_images": num_images,
            "sizes": [
                [w, h]
                for w, h in zip(
                    dataset.values("metadata.width"),
                    dataset.values("metadata.height"),
                    strict=True,
                )
            ],
            "objects": comparison.baseline.overall.num_gt,
            "small_objects": comparison.size_counts()["small"],
        },
        "settings": {
            "slice_wh": slice_wh,
            "overlap": 0.2,
            "confidence": confidence,
            "baseline_imgsz": baseline_imgsz,
        },
    }
    for run in comparison.runs:
        result[run.field] = {
            "AP50": run.overall.AP50,
            "AP50_small": run.by_size["small"].AP50,
            "recall": run.overall.recall,
            "seconds": (run.run_info or {}).get("seconds"),
        }
    dataset.delete()
    return result


def build_parser() -> argparse.ArgumentParser:
    """The command line of this script."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=MODELS_DIR / train_obb.OUTPUT)
    p.add_argument("--num-images", type=int, default=6)
    p.add_argument("--seed", type=int, default=HELD_OUT_SEED)
    p.add_argument("--slice", type=int, default=640)
    p.add_argument("--no-record", action="store_true", help="do not update the record")
    return p


def main(argv: list[str] | None = None) -> int:
    """Measures and prints; stores the figures in the training record."""
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="si-obb-measure-") as work:
        result = measure_obb(
            args.model, Path(work), args.num_images, args.seed, slice_wh=args.slice
        )
    result["wall_time_s"] = round(time.perf_counter() - start, 1)
    print(json.dumps(result, indent=2))
    record_path = MODELS_DIR / train_obb.RECORD
    if not args.no_record and record_path.exists():
        record = json.loads(record_path.read_text())
        record["evaluation"] = result
        record_path.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
