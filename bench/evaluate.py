"""The benchmarks' AP50 evaluator, and how closely two runs agree object by object.

The evaluator is the package's in-memory COCO AP at IoU 0.5; it lives in
``sliced_inference.evaluation.ap`` (the settings sweep scores with it too) and
the benchmarks import it from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

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
    "Agreement",
    "IOU_THRESHOLD",
    "SMALL_AREA",
    "Instances",
    "Scores50",
    "Within",
    "agreement",
    "ap50",
    "box_iou",
    "evaluate50",
    "matched_pairs",
    "mask_iou",
    "seam_parts",
]


def matched_pairs(
    a: Instances, b: Instances, min_iou: float = 0.5
) -> list[tuple[int, int]]:
    """Greedy one-to-one matches of the same class, best box IoU first.

    Example::

        >>> one = Instances(np.array([[0, 0, 10, 10.0]]), np.array([0]), np.array([0.9]))
        >>> matched_pairs(one, one)
        [(0, 0)]
    """
    iou = box_iou(a.boxes, b.boxes)
    iou[a.class_ids[:, None] != b.class_ids[None, :]] = 0.0
    pairs, used_a, used_b = [], set(), set()
    for flat in np.argsort(-iou, axis=None):
        i, j = np.unravel_index(flat, iou.shape)
        if iou[i, j] < min_iou:
            break
        if i not in used_a and j not in used_b:
            pairs.append((int(i), int(j)))
            used_a.add(i)
            used_b.add(j)
    return pairs


@dataclass(frozen=True)
class Agreement:
    """How far one run's objects are from a reference run's, image by image (worst case).

    Attributes:
        count_change: largest ``|len(other) - len(reference)| / len(reference)``.
        unpaired: largest share of the smaller side left without a pair.
        box_iou: smallest box IoU of a pair.
        score_diff: largest score difference of a pair.
        mask_iou: smallest mask IoU of a pair (1.0 without masks).
    """

    count_change: float
    unpaired: float
    box_iou: float
    score_diff: float
    mask_iou: float


def agreement(reference: Sequence[Instances], other: Sequence[Instances]) -> Agreement:
    """The worst per-image agreement of ``other`` with ``reference`` (same images, in order)."""
    count, unpaired, box, score, mask = 0.0, 0.0, 1.0, 0.0, 1.0
    for a, b in zip(reference, other, strict=True):
        count = max(count, abs(len(b) - len(a)) / max(len(a), 1))
        pairs = matched_pairs(a, b)
        unpaired = max(unpaired, 1 - len(pairs) / max(min(len(a), len(b)), 1))
        if not pairs:
            continue
        i, j = (np.array(k) for k in zip(*pairs, strict=True))
        box = min(box, float(box_iou(a.boxes[i], b.boxes[j]).diagonal().min()))
        score = max(score, float(np.abs(a.scores[i] - b.scores[j]).max()))
        if a.masks is not None and b.masks is not None:
            mask = min(mask, float(mask_iou(a.select(i), b.select(j)).diagonal().min()))
    return Agreement(count, unpaired, box, score, mask)
