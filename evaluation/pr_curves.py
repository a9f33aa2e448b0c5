"""COCO precision-recall curves from matches, as FiftyOne's COCO evaluation computes them.

The arithmetic of ``fiftyone.utils.eval.coco._compute_pr_curves`` (101 recall
points, monotone precision envelope, ties in confidence ranked true positives
first), on the index arrays of ``matching.Match`` instead of match tuples, so the
arrays are the ones FiftyOne would store and its ``mAP()`` reads them unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .matching import NOT_EVALUATED, Match

#: Recall points of COCO's interpolated precision.
RECALL_POINTS = np.linspace(0, 1, 101)


@dataclass(frozen=True)
class PRCurves:
    """Precision sweeps of one match set (FiftyOne's ``COCODetectionResults`` arrays).

    Attributes:
        classes: the classes seen in the ground truth and the evaluated
            predictions, sorted.
        precision: ``(thresholds, classes, 101)`` interpolated precision; -1
            for a class without ground truth.
        thresholds: same shape, the confidence at each recall point.
        recall_sweep: ``(thresholds, classes)`` final recall; -1 likewise.
    """

    classes: list[str]
    precision: np.ndarray
    thresholds: np.ndarray
    recall_sweep: np.ndarray

    def mean_ap(self, threshold_index: int | None = None) -> float | None:
        """COCO AP over all thresholds (or one), averaged over classes with ground truth.

        ``None`` when no class has ground truth (FiftyOne's ``mAP()`` gives -1).
        """
        if not self.precision.size:
            return None
        if threshold_index is None:
            per_class = self.precision.mean(axis=(0, 2))
        else:
            per_class = self.precision[threshold_index].mean(axis=-1)
        valid = per_class[per_class > -1]
        return float(valid.mean()) if valid.size else None


def pr_curves(
    sweep: Sequence[Match],
    *,
    gt_labels: np.ndarray,
    gt_crowd: np.ndarray,
    pred_labels: np.ndarray,
    pred_confidence: np.ndarray,
) -> PRCurves:
    """FiftyOne's COCO PR arrays for matches at several IoU thresholds.

    Predictions marked ``NOT_EVALUATED`` (beyond ``max_preds``, outside a
    subset) and ground truth marked so are left out; crowds are left out as
    FiftyOne leaves them out.

    Raises:
        ValueError: a counted prediction has no confidence (as FiftyOne).
    """
    gt_in = sweep[0].gt_pred != NOT_EVALUATED
    pred_in = sweep[0].pred_gt != NOT_EVALUATED
    classes = sorted(
        {label for label in gt_labels[gt_in] if label is not None}
        | {label for label in pred_labels[pred_in] if label is not None}
    )
    index = {c: i for i, c in enumerate(classes)}
    shape = (len(sweep), len(classes))
    precision = -np.ones((*shape, len(RECALL_POINTS)))
    thresholds = -np.ones((*shape, len(RECALL_POINTS)))
    recall_sweep = -np.ones(shape)
    counted_gt = gt_in & ~gt_crowd
    num_gt = _count_by_class(gt_labels[counted_gt], index)
    for t, match in enumerate(sweep):
        matched = match.pred_gt >= 0
        crowd_match = np.zeros_like(matched)
        crowd_match[matched] = gt_crowd[match.pred_gt[matched]]
        counted = pred_in & ~crowd_match
        # A prediction counts in its ground truth's class when matched.
        cls = pred_labels.copy()
        cls[matched] = gt_labels[match.pred_gt[matched]]
        tp = matched & (cls == pred_labels)
        for c, i in index.items():
            if not num_gt[i]:
                continue
            in_class = counted & (cls == c)
            curve = _class_curve(tp[in_class], pred_confidence[in_class], num_gt[i])
            precision[t, i], thresholds[t, i], recall_sweep[t, i] = curve
    return PRCurves(classes, precision, thresholds, recall_sweep)


def _class_curve(
    is_tp: np.ndarray, confidence: np.ndarray, num_gt: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Interpolated precision, confidence thresholds and final recall of one class."""
    if np.isnan(confidence).any():
        raise ValueError(
            "All predicted objects must have their `confidence` attribute "
            "populated in order to compute precision-recall curves"
        )
    # FiftyOne lists true positives before false positives, then sorts stably.
    order = np.lexsort((~is_tp, -confidence))
    tp_fp = is_tp[order].astype(float)
    confs = confidence[order]
    tp_sum = np.cumsum(tp_fp)
    pre = tp_sum / np.arange(1, len(tp_fp) + 1, dtype=float)
    rec = tp_sum / num_gt
    pre = np.maximum.accumulate(pre[::-1])[::-1]
    q = np.zeros(len(RECALL_POINTS))
    t = np.zeros(len(RECALL_POINTS))
    points = np.searchsorted(rec, RECALL_POINTS, side="left")
    inside = points < len(pre)
    q[inside] = pre[points[inside]]
    t[inside] = confs[points[inside]]
    return q, t, float(rec[-1]) if rec.size else 0.0


def _count_by_class(labels: np.ndarray, index: dict[str, int]) -> np.ndarray:
    counts = np.zeros(len(index), dtype=np.int64)
    for label in labels:
        if label in index:
            counts[index[label]] += 1
    return counts
