"""COCO's greedy matching on flat arrays: one IoU computation, many matches.

FiftyOne's COCO evaluation (``fiftyone/utils/eval/coco.py``) matches, in each
image and class, the predictions in descending confidence, each to the
still-unmatched ground-truth object of highest IoU at or above the threshold;
crowd objects come last and may take several predictions. It does so on label
objects, recomputing the IoUs for every threshold set and every view. Here the
same rule runs on index arrays over candidate pairs computed once
(``ious.py``), so a run is matched at the comparison IoU, at the ten mAP
thresholds and on any subset of objects (an object size, a region of the
image) without touching the IoUs or the database again.

Ties between equal IoUs go to the later candidate, as in FiftyOne; candidates
are ordered by ground-truth index (crowds last), where FiftyOne follows its
R-tree's order: the two differ only on exactly equal IoUs, which change no
count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: ``Match.pred_gt`` of a prediction left out of the match (beyond ``max_preds``
#: in its image and class, or outside the subset).
NOT_EVALUATED = -2
#: ``Match.pred_gt`` / ``Match.gt_pred`` of an object without a match.
UNMATCHED = -1


@dataclass(frozen=True)
class Candidates:
    """Overlapping (prediction, ground truth) pairs with their IoU, by prediction.

    Compressed rows: the candidates of prediction ``p`` are
    ``gt[start[p]:start[p + 1]]`` with IoUs ``iou[start[p]:start[p + 1]]``, in
    matching order (crowds last).
    """

    start: np.ndarray
    gt: np.ndarray
    iou: np.ndarray

    @classmethod
    def from_pairs(
        cls,
        num_preds: int,
        pred: np.ndarray,
        gt: np.ndarray,
        iou: np.ndarray,
        gt_crowd: np.ndarray,
    ) -> Candidates:
        """Groups ``(pred[i], gt[i], iou[i])`` pairs by prediction, crowds last."""
        pred = np.asarray(pred, dtype=np.int64)
        gt = np.asarray(gt, dtype=np.int64)
        order = np.lexsort((gt, gt_crowd[gt] if gt.size else gt, pred))
        counts = np.bincount(pred, minlength=num_preds)
        start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(start, gt[order], np.asarray(iou, dtype=float)[order])


def stack_candidates(
    parts: list[tuple[Candidates, int, int]], num_preds: int
) -> Candidates:
    """One ``Candidates`` from per-image parts ``(candidates, pred_offset, gt_offset)``.

    Images hold consecutive blocks of predictions and ground truth; each
    part's indices are local to its image.
    """
    counts = np.zeros(num_preds, dtype=np.int64)
    gts, ious = [], []
    for part, pred_offset, gt_offset in parts:
        n = len(part.start) - 1
        counts[pred_offset : pred_offset + n] = np.diff(part.start)
        gts.append(part.gt + gt_offset)
        ious.append(part.iou)
    start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    gt = np.concatenate(gts) if gts else np.zeros(0, dtype=np.int64)
    iou = np.concatenate(ious) if ious else np.zeros(0)
    return Candidates(start, gt, iou)


@dataclass(frozen=True)
class Match:
    """A greedy match at one IoU threshold.

    Attributes:
        pred_gt: per prediction, the matched ground-truth index,
            ``UNMATCHED`` or ``NOT_EVALUATED``.
        pred_iou: per prediction, the IoU of its match (NaN without one).
        gt_pred: per ground-truth object, its first (highest-confidence)
            matched prediction, or ``UNMATCHED``; ``NOT_EVALUATED`` outside
            the subset.
        gt_iou: per ground-truth object, the IoU of that match (NaN without).
    """

    pred_gt: np.ndarray
    pred_iou: np.ndarray
    gt_pred: np.ndarray
    gt_iou: np.ndarray


def greedy_match(
    order: np.ndarray,
    candidates: Candidates,
    threshold: float,
    *,
    num_gt: int,
    gt_crowd: np.ndarray,
    same_label: np.ndarray | None,
    gt_allowed: np.ndarray | None = None,
) -> Match:
    """Matches predictions, in ``order``, to ground truth as FiftyOne's COCO evaluation does.

    Args:
        order: indices of the predictions to match, highest confidence first
            within each image and class (others stay ``NOT_EVALUATED``).
        candidates: every prediction's overlapping ground truth.
        threshold: least IoU of a match.
        num_gt: number of ground-truth objects.
        gt_crowd: per ground-truth object, whether it is a crowd.
        same_label: per candidate pair, whether both have the same class
            (a crowd only matches its own class); ``None`` when every
            candidate pair has the same class (class-wise matching).
        gt_allowed: ground truth that may be matched (a subset); ``None`` for all.

    Returns:
        the ``Match``.

    Example::

        >>> c = Candidates.from_pairs(2, np.array([0, 1]), np.array([0, 0]),
        ...                           np.array([0.9, 0.8]), np.array([False]))
        >>> m = greedy_match(np.array([0, 1]), c, 0.5, num_gt=1,
        ...                  gt_crowd=np.array([False]), same_label=None)
        >>> m.pred_gt.tolist(), m.gt_pred.tolist()
        ([0, -1], [0])
    """
    num_preds = len(candidates.start) - 1
    pred_gt = np.full(num_preds, NOT_EVALUATED, dtype=np.int64)
    pred_iou = np.full(num_preds, np.nan)
    gt_pred = np.full(num_gt, UNMATCHED, dtype=np.int64)
    gt_iou = np.full(num_gt, np.nan)
    if gt_allowed is not None:
        gt_pred[~gt_allowed] = NOT_EVALUATED
    # Plain lists: indexing them in the loop is several times faster than numpy.
    start = candidates.start.tolist()
    cand_gt = candidates.gt.tolist()
    cand_iou = candidates.iou.tolist()
    crowd = gt_crowd.tolist()
    same = same_label.tolist() if same_label is not None else None
    taken = gt_pred.tolist()  # UNMATCHED = free, else taken or not allowed
    out_gt = [UNMATCHED] * num_preds
    out_iou = [np.nan] * num_preds
    for p in order.tolist():
        best, best_iou = UNMATCHED, threshold
        for k in range(start[p], start[p + 1]):
            g = cand_gt[k]
            g_crowd = crowd[g]
            if taken[g] != UNMATCHED and not (g_crowd and taken[g] >= 0):
                continue  # matched already (only crowds match again), or not allowed
            if g_crowd and same is not None and not same[k]:
                continue
            if g_crowd and best != UNMATCHED and not crowd[best]:
                break  # crowds are last: a regular match is better
            iou = cand_iou[k]
            if iou < best_iou:
                continue
            best, best_iou = g, iou
        if best != UNMATCHED:
            if taken[best] == UNMATCHED:
                taken[best] = p
                gt_iou[best] = best_iou
            out_gt[p] = best
            out_iou[p] = best_iou
    evaluated = order if isinstance(order, np.ndarray) else np.asarray(order)
    pred_gt[evaluated] = np.asarray(out_gt, dtype=np.int64)[evaluated]
    pred_iou[evaluated] = np.asarray(out_iou, dtype=float)[evaluated]
    gt_pred[:] = taken
    return Match(pred_gt, pred_iou, gt_pred, gt_iou)
