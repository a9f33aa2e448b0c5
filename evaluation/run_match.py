"""One prediction field matched once against the ground truth, and everything derived from it.

``RunMatch.compute`` computes the IoUs of a run once (``ious``) and matches
it with FiftyOne's COCO rule (``matching``) at the comparison IoU (every
prediction: TP / FP / FN, precision, recall, the per-object results) and at
the ten mAP thresholds (the ``max_preds`` most confident predictions per image
and class: mAP, AP50, the PR curves FiftyOne stores). ``metrics(gt_subset,
pred_subset)`` matches a subset again from the same IoUs: the object sizes of a
comparison, or any other grouping of objects (a region of the image, objects
cut by a tile edge), without reading or computing anything twice.

The per-object arrays are public, for other breakdowns to reuse: ``gt_match``
(the match at the comparison IoU), ``gt_found``, ``pred_found``, ``gt.areas``,
``preds.confidence``...
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .ious import PolygonCache, compute_candidates, same_label_pairs
from .matching import NOT_EVALUATED, UNMATCHED, Candidates, Match, greedy_match
from .objects import Objects
from .pr_curves import PRCurves, pr_curves
from .results import Metrics

#: COCO's mAP thresholds, as FiftyOne lists them.
COCO_IOU_THRESHOLDS = [x / 100 for x in range(50, 100, 5)]


@dataclass
class RunMatch:
    """A run's predictions matched against the ground truth.

    Build it with ``RunMatch.compute``.

    Attributes:
        gt: the ground-truth objects.
        preds: the predicted objects.
        candidates: overlapping pairs with their IoU (computed once).
        iou: the comparison's IoU threshold.
        max_preds: most predictions per image and class used for mAP.
        same_label: per candidate pair, whether both have the same class
            (``None`` with class-wise matching, where all do).
        order: predictions in matching order (image, class, confidence).
        groups: per prediction, its image-and-class group (``max_preds``).
        gt_match: the match at ``iou`` of every prediction (FiftyOne's
            TP / FP / FN and per-object results).
        sweep: the matches at ``COCO_IOU_THRESHOLDS`` (mAP, PR curves).
        curves: the PR curves of ``sweep``.
    """

    gt: Objects
    preds: Objects
    candidates: Candidates
    iou: float
    max_preds: int
    same_label: np.ndarray | None
    order: np.ndarray
    groups: np.ndarray
    gt_match: Match = field(init=False)
    sweep: list[Match] = field(init=False)
    curves: PRCurves = field(init=False)

    def __post_init__(self) -> None:
        self.gt_match = self._match(min(self.iou, 1 - 1e-10), self.order)
        self.sweep, self.curves = self._sweep(self.order)

    @classmethod
    def compute(
        cls,
        gt: Objects,
        preds: Objects,
        *,
        iou: float = 0.5,
        max_preds: int = 1000,
        classwise: bool = True,
        use_masks: bool = False,
        tolerance: float | None = 1.0,
        cache: PolygonCache | None = None,
    ) -> RunMatch:
        """Computes the IoUs of ``preds`` and ``gt`` once (``ious``) and matches them.

        ``iou``, ``max_preds`` and ``classwise`` as in ``from_candidates``;
        ``use_masks``, ``tolerance`` and ``cache`` as in
        ``ious.iter_image_candidates``.

        Example::

            >>> match = RunMatch.compute(gt, preds, iou=0.5)  # doctest: +SKIP
            >>> match.metrics().recall  # doctest: +SKIP
        """
        candidates = compute_candidates(
            gt,
            preds,
            classwise=classwise,
            use_masks=use_masks,
            tolerance=tolerance,
            cache=cache,
        )
        return cls.from_candidates(
            gt, preds, candidates, iou=iou, max_preds=max_preds, classwise=classwise
        )

    @classmethod
    def from_candidates(
        cls,
        gt: Objects,
        preds: Objects,
        candidates: Candidates,
        *,
        iou: float,
        max_preds: int,
        classwise: bool,
    ) -> RunMatch:
        """Matches ``preds`` and ``gt`` from IoUs already computed (``ious``).

        Args:
            gt: the ground truth (``Objects.load``).
            preds: the predictions, read over the same images.
            candidates: their overlapping pairs (``ious.compute_candidates``).
            iou: IoU threshold of TP / FP / FN.
            max_preds: most predictions per image and class used for mAP
                (FiftyOne's ``max_preds``).
            classwise: only match objects of the same class (as the
                candidates were computed).
        """
        order, groups = _matching_order(preds, classwise)
        return cls(
            gt=gt,
            preds=preds,
            candidates=candidates,
            iou=iou,
            max_preds=max_preds,
            same_label=None if classwise else same_label_pairs(gt, preds, candidates),
            order=order,
            groups=groups,
        )

    @property
    def gt_found(self) -> np.ndarray:
        """Per ground-truth object: matched at ``iou`` by a prediction of its class."""
        matched = self.gt_match.gt_pred >= 0
        found = np.zeros(len(self.gt), dtype=bool)
        pred = self.gt_match.gt_pred[matched]
        found[matched] = self.preds.labels[pred] == self.gt.labels[matched]
        return found

    @property
    def pred_found(self) -> np.ndarray:
        """Per prediction: matched at ``iou`` to ground truth of its class."""
        matched = self.gt_match.pred_gt >= 0
        found = np.zeros(len(self.preds), dtype=bool)
        gt = self.gt_match.pred_gt[matched]
        found[matched] = self.gt.labels[gt] == self.preds.labels[matched]
        return found

    def metrics(
        self,
        gt_subset: np.ndarray | None = None,
        pred_subset: np.ndarray | None = None,
    ) -> Metrics:
        """The metrics of all objects, or of a subset matched on its own.

        A subset is evaluated as FiftyOne evaluates a view holding only those
        objects: ground truth and predictions outside it do not exist for it,
        so a subset's prediction may match only a subset's object.

        Args:
            gt_subset: boolean mask over ``gt`` (``None``: all).
            pred_subset: boolean mask over ``preds`` (``None``: all).

        Example::

            >>> small = match.gt.areas < 32**2  # doctest: +SKIP
            >>> match.metrics(small, match.preds.areas < 32**2).AP50  # doctest: +SKIP
        """
        if gt_subset is None and pred_subset is None:
            return self._metrics(self.gt_match, self.curves)
        gt_in = np.ones(len(self.gt), bool) if gt_subset is None else gt_subset
        pred_in = np.ones(len(self.preds), bool) if pred_subset is None else pred_subset
        order = self.order[pred_in[self.order]]
        at_iou = self._match(min(self.iou, 1 - 1e-10), order, gt_in)
        _, curves = self._sweep(order, gt_in)
        return self._metrics(at_iou, curves)

    def _match(
        self, threshold: float, order: np.ndarray, gt_allowed: np.ndarray | None = None
    ) -> Match:
        return greedy_match(
            order,
            self.candidates,
            threshold,
            num_gt=len(self.gt),
            gt_crowd=self.gt.crowd,
            same_label=self.same_label,
            gt_allowed=gt_allowed,
        )

    def _sweep(
        self, order: np.ndarray, gt_allowed: np.ndarray | None = None
    ) -> tuple[list[Match], PRCurves]:
        top = order[_ranks(self.groups[order]) < self.max_preds]
        sweep = [self._match(t, top, gt_allowed) for t in COCO_IOU_THRESHOLDS]
        curves = pr_curves(
            sweep,
            gt_labels=self.gt.labels,
            gt_crowd=self.gt.crowd,
            pred_labels=self.preds.labels,
            pred_confidence=self.preds.confidence,
        )
        return sweep, curves

    def _metrics(self, at_iou: Match, curves: PRCurves) -> Metrics:
        evaluated = at_iou.pred_gt != NOT_EVALUATED
        matched = at_iou.pred_gt >= 0
        same = np.zeros(len(self.preds), dtype=bool)
        same[matched] = (
            self.gt.labels[at_iou.pred_gt[matched]] == self.preds.labels[matched]
        )
        tp = int(same.sum())
        fp = int((evaluated & (at_iou.pred_gt == UNMATCHED)).sum())
        fn = int((at_iou.gt_pred == UNMATCHED).sum())
        has_gt = tp + fn > 0
        return Metrics(
            mAP=curves.mean_ap() if has_gt else None,
            AP50=curves.mean_ap(COCO_IOU_THRESHOLDS.index(0.5)) if has_gt else None,
            precision=tp / (tp + fp) if tp + fp else None,
            recall=tp / (tp + fn) if tp + fn else None,
            tp=tp,
            fp=fp,
            fn=fn,
        )


def _matching_order(preds: Objects, classwise: bool) -> tuple[np.ndarray, np.ndarray]:
    """Predictions by image, class and descending confidence; and each one's group.

    FiftyOne sorts by ``confidence or -1`` (a missing or zero confidence ranks
    as -1), stably; a group is one image and class (``max_preds`` applies per
    group).
    """
    confidence = np.where(
        np.isnan(preds.confidence) | (preds.confidence == 0), -1.0, preds.confidence
    )
    if classwise:
        _, classes = np.unique(preds.labels.astype(str), return_inverse=True)
    else:
        classes = np.zeros(len(preds), dtype=np.int64)
    order = np.lexsort((np.arange(len(preds)), -confidence, classes, preds.sample))
    groups = preds.sample * (int(classes.max(initial=0)) + 1) + classes
    return order, groups


def _ranks(groups: np.ndarray) -> np.ndarray:
    """Position of each element within its run of equal consecutive group ids."""
    if not len(groups):
        return np.zeros(0, dtype=np.int64)
    starts = np.r_[True, groups[1:] != groups[:-1]]
    first = np.maximum.accumulate(np.where(starts, np.arange(len(groups)), 0))
    return np.arange(len(groups)) - first
