"""Measures the bundled models: full-image baseline vs sliced inference, AP50.

Generates held-out scenes (seeds the training never used), runs each model
once on the whole image shrunk to ``--baseline-imgsz`` (the baseline) and once
sliced into ``--slice``-px tiles at native resolution, and prints box AP50
overall and on COCO "small" objects (box area < 32^2 px), as Markdown and JSON.

Sliced inference uses the project's engine (``sliced_inference.slicer``) when it
imports; ``--by-hand`` (or an engine that is missing) slices here instead:
overlapping tiles, per-tile ``YOLO.predict``, shifted boxes, class-wise NMS.

AP50 follows ``pycocotools`` at IoU 0.5: per class, detections of all images by
score, greedy matching, monotone precision sampled at 101 recall points, mean
over classes with ground truth. Ground truth outside the area range is ignored,
as are detections matched to it and unmatched detections outside the range.
Areas are box areas. No per-image detection limit below ``--max-det``.

Usage::

    .venv/bin/python models/measure.py                      # both models, 6 scenes
    .venv/bin/python models/measure.py --models det --num-images 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("YOLO_OFFLINE", "1")

import numpy as np  # noqa: E402

MODELS_DIR = Path(__file__).resolve().parents[1]  # the weights live in models/
REPO_ROOT = MODELS_DIR.parent
MODEL_FILES = {"det": "small-objects-det.pt", "seg": "small-objects-seg.pt"}
#: Seeds of held-out scenes (training uses 100 and 200, see train.py).
HELD_OUT_SEED = 300
SMALL_AREA = 32.0**2


@dataclass
class Boxes:
    """Boxes of one image: ``xyxy`` pixels, class ids and (for detections) scores."""

    boxes: np.ndarray
    class_ids: np.ndarray
    scores: np.ndarray | None = None

    @property
    def areas(self) -> np.ndarray:
        """Box areas in square pixels."""
        wh = np.clip(self.boxes[:, 2:] - self.boxes[:, :2], 0, None)
        return wh[:, 0] * wh[:, 1]


def _package(name: str) -> Any:
    """A subpackage of ``sliced_inference``, from an install or from this checkout."""
    import importlib

    try:
        return importlib.import_module(f"sliced_inference.{name}")
    except ImportError:
        if str(REPO_ROOT.parent) not in sys.path:
            sys.path.insert(0, str(REPO_ROOT.parent))
        return importlib.import_module(f"{REPO_ROOT.name}.{name}")


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of ``(N, 4)`` and ``(M, 4)`` ``xyxy`` boxes.

    Example::

        >>> box_iou(np.array([[0, 0, 2, 2]]), np.array([[1, 0, 3, 2]])).round(3)
        array([[0.333]])
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def ap50(
    truths: Sequence[Boxes],
    detections: Sequence[Boxes],
    area_range: tuple[float, float] = (0.0, float("inf")),
) -> float:
    """COCO-style box AP at IoU 0.5, averaged over classes with ground truth.

    Args:
        truths: ground truth per image.
        detections: scored detections per image, same order.
        area_range: ``[lo, hi)`` box areas that count.

    Returns:
        AP50 in ``[0, 1]``; ``nan`` when no ground truth is in the range.

    Example::

        >>> gt = Boxes(np.array([[0, 0, 10, 10]]), np.array([0]))
        >>> det = Boxes(np.array([[0, 0, 10, 9]]), np.array([0]), np.array([0.9]))
        >>> ap50([gt], [det])
        1.0
    """
    lo, hi = area_range
    classes = np.unique(np.concatenate([t.class_ids for t in truths] + [[]]))
    per_class = []
    for c in classes.astype(int):
        scores, hits, ignored, n_gt = [], [], [], 0
        for gt, det in zip(truths, detections, strict=True):
            g = gt.class_ids == c
            gboxes, gareas = gt.boxes[g], gt.areas[g]
            g_ignore = (gareas < lo) | (gareas >= hi)
            order = np.argsort(g_ignore, kind="stable")  # counted ground truth first
            gboxes, g_ignore = gboxes[order], g_ignore[order]
            n_gt += int((~g_ignore).sum())
            d = det.class_ids == c
            dboxes, dscores, dareas = det.boxes[d], det.scores[d], det.areas[d]
            dorder = np.argsort(-dscores, kind="stable")
            dboxes, dscores, dareas = dboxes[dorder], dscores[dorder], dareas[dorder]
            ious = box_iou(dboxes, gboxes)
            taken = np.zeros(len(gboxes), dtype=bool)
            for k in range(len(dboxes)):
                match, best = -1, 0.5 - 1e-10
                for j in range(len(gboxes)):
                    if taken[j]:
                        continue
                    # Once matched to counted truth, ignored truth cannot take over.
                    if match > -1 and not g_ignore[match] and g_ignore[j]:
                        break
                    if ious[k, j] >= best:
                        match, best = j, ious[k, j]
                if match > -1:
                    taken[match] = True
                    hits.append(True)
                    ignored.append(bool(g_ignore[match]))
                else:
                    hits.append(False)
                    ignored.append(bool(dareas[k] < lo or dareas[k] >= hi))
                scores.append(dscores[k])
        if n_gt == 0:
            continue
        order = np.argsort(-np.asarray(scores), kind="mergesort")
        keep = ~np.asarray(ignored, dtype=bool)[order]
        tp = np.asarray(hits, dtype=bool)[order][keep]
        if not len(tp):
            per_class.append(0.0)
            continue
        tp_sum, fp_sum = np.cumsum(tp), np.cumsum(~tp)
        recall = tp_sum / n_gt
        precision = tp_sum / np.maximum(tp_sum + fp_sum, 1e-12)
        precision = np.maximum.accumulate(precision[::-1])[::-1]
        points = np.linspace(0.0, 1.0, 101)
        idx = np.searchsorted(recall, points, side="left")
        sampled = np.where(idx < len(tp), precision[np.minimum(idx, len(tp) - 1)], 0.0)
        per_class.append(float(sampled.mean()))
    return float(np.mean(per_class)) if per_class else float("nan")


def tile_origins(length: int, tile: int, stride: int) -> list[int]:
    """Tile starts covering ``[0, length)``; the last tile is flush with the end.

    Example::

        >>> tile_origins(1500, 640, 512)
        [0, 512, 860]
    """
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def predict_by_hand(
    image_rgb: np.ndarray,
    yolo: Any,
    tile: int = 640,
    overlap: float = 0.2,
    conf: float = 0.05,
    max_det: int = 1000,
) -> Boxes:
    """Sliced prediction without the engine: tiles, ``YOLO.predict``, shift, NMS.

    Example::

        preds = predict_by_hand(scene.image, YOLO("models/small-objects-det.pt"))
    """
    import torch
    from torchvision.ops import batched_nms

    height, width = image_rgb.shape[:2]
    stride = max(1, int(round(tile * (1 - overlap))))
    boxes, scores, classes = [], [], []
    for y0 in tile_origins(height, tile, stride):
        for x0 in tile_origins(width, tile, stride):
            crop = np.ascontiguousarray(image_rgb[y0 : y0 + tile, x0 : x0 + tile, ::-1])
            res = yolo.predict(
                crop, imgsz=tile, conf=conf, max_det=max_det, verbose=False
            )[0]
            boxes.append(res.boxes.xyxy.numpy() + [x0, y0, x0, y0])
            scores.append(res.boxes.conf.numpy())
            classes.append(res.boxes.cls.numpy().astype(np.int64))
    b = torch.from_numpy(np.concatenate(boxes)).float()
    s = torch.from_numpy(np.concatenate(scores)).float()
    c = torch.from_numpy(np.concatenate(classes))
    keep = batched_nms(b, s, c, 0.5)[:max_det].numpy()
    return Boxes(b.numpy()[keep], c.numpy()[keep], s.numpy()[keep])


def predict_full(
    image_rgb: np.ndarray, yolo: Any, imgsz: int, conf: float, max_det: int
) -> Boxes:
    """The baseline: the whole image shrunk to ``imgsz``.

    Example::

        preds = predict_full(scene.image, YOLO("models/small-objects-det.pt"), 640, 0.05, 1000)
    """
    res = yolo.predict(
        np.ascontiguousarray(image_rgb[..., ::-1]),
        imgsz=imgsz,
        conf=conf,
        max_det=max_det,
        verbose=False,
    )[0]
    return Boxes(
        res.boxes.xyxy.numpy(),
        res.boxes.cls.numpy().astype(np.int64),
        res.boxes.conf.numpy(),
    )


def _engine() -> Any | None:
    try:
        return _package("slicer")
    except Exception:  # not written yet, or broken: measure by hand
        return None


def measure(model_path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Baseline and sliced AP50 (all objects and small ones) of one model."""
    from ultralytics import YOLO

    synthetic = _package("synthetic")
    engine = None if args.by_hand else _engine()
    yolo = YOLO(str(model_path))
    engine_model = engine.load_model(str(model_path), device="cpu") if engine else None
    truths, base, sliced = [], [], []
    times = {"baseline_s": 0.0, "sliced_s": 0.0}
    sizes = []
    for i in range(args.num_images):
        seed = synthetic.image_seed(args.seed, i)
        width, height = synthetic.scene_size(
            np.random.default_rng(seed), args.min_width, args.max_width
        )
        scene = synthetic.generate_scene(seed, width, height)
        sizes.append(f"{width}x{height}")
        truths.append(Boxes(scene.boxes.astype(np.float64), scene.class_ids))
        start = time.perf_counter()
        base.append(
            predict_full(
                scene.image, yolo, args.baseline_imgsz, args.conf, args.max_det
            )
        )
        times["baseline_s"] += time.perf_counter() - start
        start = time.perf_counter()
        if engine_model is not None:
            p = engine.predict_sliced(
                scene.image,
                engine_model,
                slice_wh=args.slice,
                overlap=args.overlap,
                confidence=args.conf,
                max_detections=args.max_det,
            )
            sliced.append(Boxes(p.boxes, p.class_ids, p.scores))
        else:
            sliced.append(
                predict_by_hand(
                    scene.image, yolo, args.slice, args.overlap, args.conf, args.max_det
                )
            )
        times["sliced_s"] += time.perf_counter() - start
    small = (0.0, SMALL_AREA)
    n_small = int(sum((t.areas < SMALL_AREA).sum() for t in truths))
    return {
        "model": model_path.name,
        "images": sizes,
        "objects": int(sum(len(t.boxes) for t in truths)),
        "small_objects": n_small,
        "sliced_by": "engine" if engine_model is not None else "hand",
        "ap50": {
            "baseline_all": round(ap50(truths, base), 4),
            "sliced_all": round(ap50(truths, sliced), 4),
            "baseline_small": round(ap50(truths, base, small), 4),
            "sliced_small": round(ap50(truths, sliced, small), 4),
        },
        "seconds": {k: round(v, 1) for k, v in times.items()},
    }


def build_parser() -> argparse.ArgumentParser:
    """The command line of this script."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--models",
        nargs="+",
        default=["det", "seg"],
        help="'det', 'seg' (the bundled models) or paths to other .pt files",
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
    p.add_argument(
        "--by-hand", action="store_true", help="slice here, not with the engine"
    )
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
    print(
        "| model | sliced by | AP50 small, 640 px | AP50 small, sliced | AP50 all, 640 px | AP50 all, sliced |"
    )
    print("|---|---|---|---|---|---|")
    for r in results:
        a = r["ap50"]
        print(
            f"| {r['model']} | {r['sliced_by']} | {a['baseline_small']:.3f} | {a['sliced_small']:.3f} "
            f"| {a['baseline_all']:.3f} | {a['sliced_all']:.3f} |"
        )
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
