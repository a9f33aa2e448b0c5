"""INT8 against FP32 on OpenVINO: AP50 and time on generated scenes.

The INT8 model is calibrated as a run calibrates it: on the first N tiles of
the images it is then run on (``sliced_inference.slicer.calibrate``).

Usage::

    .venv/bin/python -m bench.int8 --task det --images 6 --size 2400 1800
    .venv/bin/python -m bench.int8 --task seg --images 4 --size 1600 1200 --density 100
"""

from __future__ import annotations

import argparse
import json
import os
import time

from sliced_inference.slicer import SliceOptions, calibrate, load_model, predict_sliced

from .evaluate import SMALL_AREA, Instances, ap50
from .run import DET_MODEL, SEG_MODEL
from .scenes import generate


def main(argv: list[str] | None = None) -> None:
    """Prints one JSON line: AP50 (box, small boxes, masks) and seconds of each precision."""
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
    fp32 = load_model(path, device="cpu", backend="openvino")
    extra = {} if args.density is None else {"density": args.density}
    scenes = [
        generate(args.seed + i, *args.size, fp32.class_names, **extra)
        for i in range(args.images)
    ]
    options = SliceOptions(slice_wh=640, overlap=0.2)
    int8 = load_model(
        path,
        device="cpu",
        backend="openvino",
        precision="int8",
        calibration_tiles=args.calibration_tiles,
    )
    start = time.perf_counter()
    calibrate(int8, (s.image for s in scenes), options)
    report = {
        "task": args.task,
        "images": args.images,
        "size": args.size,
        "calibration_tiles": args.calibration_tiles,
        "calibration_seconds": round(time.perf_counter() - start, 1),
    }
    truths = [s.truth for s in scenes]
    for name, model in (("fp32", fp32), ("int8", int8)):
        start = time.perf_counter()
        found = [predict_sliced(s.image, model, options) for s in scenes]
        seconds = time.perf_counter() - start
        outputs = [
            Instances(p.boxes, p.class_ids, p.scores, p.masks, p.mask_boxes)
            for p in found
        ]
        scores = {
            "box_ap50": ap50(truths, outputs),
            "box_ap50_small": ap50(truths, outputs, area_range=(0.0, SMALL_AREA)),
        }
        if args.task == "seg":
            scores["mask_ap50"] = ap50(truths, outputs, use_masks=True)
        report[name] = {
            **{k: round(v, 4) for k, v in scores.items()},
            "detections": sum(len(p) for p in found),
            "seconds": round(seconds, 2),
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
