"""The benchmarks' AP50 evaluator: the package's in-memory COCO AP at IoU 0.5.

It lives in ``sliced_inference.evaluation.ap`` (the settings sweep scores with
it too); the benchmarks import it from here.
"""

from __future__ import annotations

from sliced_inference.evaluation.ap import (
    IOU_THRESHOLD,
    SMALL_AREA,
    Instances,
    Scores50,
    Within,
    ap50,
    box_iou,
    evaluate50,
    mask_iou,
    seam_parts,
)

__all__ = [
    "IOU_THRESHOLD",
    "SMALL_AREA",
    "Instances",
    "Scores50",
    "Within",
    "ap50",
    "box_iou",
    "evaluate50",
    "mask_iou",
    "seam_parts",
]
