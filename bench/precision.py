"""Precisions on the CPU: PyTorch, OpenVINO FP32, bfloat16 and INT8, on generated scenes.

For each: AP50, how closely it agrees with PyTorch object by object (the
thresholds ``tests/test_openvino.py`` holds FP32 to), and the time of the
sliced predictions. bfloat16 is OpenVINO's own default on CPUs that have it
(and what Ultralytics' OpenVINO runtime uses there); our runs pin float32
unless ``precision="bf16"`` asks for it (float32 where the CPU lacks it: the
report's ``ran`` says what ran). The INT8 model is
calibrated as a run calibrates it: on the first tiles of the images it is
then run on (``sliced_inference.slicer.calibrate``).

Usage::

    .venv/bin/python -m bench.precision --task det --images 6 --size 2400 1800
    .venv/bin/python -m bench.precision --task seg --images 4 --size 1600 1200 --density 100
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

from sliced_inference.slicer import SliceOptions, calibrate, load_model, predict_sliced

from .evaluate import SMALL_AREA, Instances, agreement, ap50
from .run import DET_MODEL, SEG_MODEL
from .scenes import generate


def main(argv: list[str] | None = None) -> None:
    """Prints one JSON object: per precision, AP50, agreement with PyTorch and seconds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["det", "seg"], default="det")
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--size", nargs=2, type=int, default=[2400, 1800])
    parser.add_argument("--density", type=float, help="small objects per megapixel")
    parser.add_argument("--calibration-tiles", type=int, default=32)
    parser.add_argument("--seed", type=int, default=5000)
    args = parser.parse_args(argv)

    os.environ.setdefault("YOLO_OFFLINE", "1")
    path = DET_MODEL if args.task == "det" else SEG_MODEL
    models = {
        "torch": load_model(path, device="cpu", backend="torch"),
        "fp32": load_model(path, device="cpu", backend="openvino"),
        "bf16": load_model(path, device="cpu", backend="openvino", precision="bf16"),
        "int8": load_model(
            path,
            device="cpu",
            backend="openvino",
            precision="int8",
            calibration_tiles=args.calibration_tiles,
        ),
    }
    extra = {} if args.density is None else {"density": args.density}
    scenes = [
        generate(args.seed + i, *args.size, models["torch"].class_names, **extra)
        for i in range(args.images)
    ]
    options = SliceOptions(slice_wh=640, overlap=0.2)
    start = time.perf_counter()
    calibrate(models["int8"], (s.image for s in scenes), options)
    report: dict = {
        "task": args.task,
        "images": args.images,
        "size": args.size,
        "calibration_tiles": args.calibration_tiles,
        "calibration_seconds": round(time.perf_counter() - start, 1),
    }
    truths = [s.truth for s in scenes]
    outputs = {}
    for name, model in models.items():
        predict_sliced(scenes[0].image, model, options)  # compiles the tile shape
        start = time.perf_counter()
        found = [predict_sliced(s.image, model, options) for s in scenes]
        seconds = time.perf_counter() - start
        outputs[name] = [
            Instances(p.boxes, p.class_ids, p.scores, p.masks, p.mask_boxes)
            for p in found
        ]
        scores = {
            "box_ap50": ap50(truths, outputs[name]),
            "box_ap50_small": ap50(truths, outputs[name], area_range=(0.0, SMALL_AREA)),
        }
        if args.task == "seg":
            scores["mask_ap50"] = ap50(truths, outputs[name], use_masks=True)
        close = agreement(outputs["torch"], outputs[name])
        report[name] = {
            "ran": model.precision,
            **{k: round(v, 4) for k, v in scores.items()},
            "detections": sum(len(p) for p in found),
            "seconds": round(seconds, 2),
            "vs_torch": {k: round(v, 4) for k, v in dataclasses.asdict(close).items()},
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
