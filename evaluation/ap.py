"""COCO-style AP50 of detections held in memory: boxes and cropped instance masks.

What the benchmarks (``bench``), the seam measurement and the settings sweep
(``find_slice_settings``) score predictions with, without writing label fields.
Needs numpy only (no FiftyOne).

Follows the COCO protocol at a single IoU threshold (0.5): per class, detections
of all images sorted by score, each matched greedily to the unmatched ground
truth it overlaps most (IoU >= 0.5), precision made monotone and sampled at 101
recall points, AP averaged over the classes that have ground truth. An area
range (e.g. small objects, area <= 32^2 as ``pycocotools`` counts them) ignores
ground truth outside it, and detections outside it that match nothing, exactly
as ``pycocotools`` does. A subset of objects (``within``, e.g. the objects on a
tile seam) follows the same rule: ground truth outside it is ignored, and so are
the detections matched to it and the unmatched detections outside it. Areas are
box areas for box AP and mask pixel counts for mask AP. There is no limit on
detections per image (these images hold hundreds of objects).

Masks stay cropped (a bool array covering an int ``xyxy`` box), so a mask IoU
costs the two boxes' overlap, never the image.

Example::

    >>> gt = Instances(np.array([[0, 0, 10, 10]], float), np.array([0]))
    >>> det = Instances(np.array([[0, 0, 10, 9]], float), np.array([0]), np.array([0.9]))
    >>> round(ap50([gt], [det]), 3)
    1.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from ..slicer.tiles import crosses_seam

#: COCO's "small" objects: area below 32 x 32 pixels.
SMALL_AREA = 32.0**2
IOU_THRESHOLD = 0.5
_RECALL_POINTS = np.linspace(0.0, 1.0, 101)


@dataclass
class Instances:
    """Boxes (and optionally cropped masks) of one image, ground truth or detections.

    Attributes:
        boxes: ``(N, 4)`` float ``xyxy`` pixels.
        class_ids: ``(N,)`` int class ids (the same id space for truth and detections).
        scores: ``(N,)`` confidences; ``None`` for ground truth.
        masks: one bool array per instance covering ``mask_boxes[i]``, or ``None``.
        mask_boxes: ``(N, 4)`` int ``xyxy`` boxes the masks cover (exclusive ends).
    """

    boxes: np.ndarray
    class_ids: np.ndarray
    scores: np.ndarray | None = None
    masks: list[np.ndarray] | None = None
    mask_boxes: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        self.class_ids = np.asarray(self.class_ids, dtype=np.int64).reshape(-1)
        if self.scores is not None:
            self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        if self.mask_boxes is not None:
            self.mask_boxes = np.asarray(self.mask_boxes, dtype=np.int64).reshape(-1, 4)

    def __len__(self) -> int:
        return len(self.boxes)

    def areas(self, use_masks: bool) -> np.ndarray:
        """Mask pixel counts (``use_masks``) or box areas."""
        if use_masks:
            return np.array([m.sum() for m in self.masks], dtype=np.float64)
        wh = np.clip(self.boxes[:, 2:] - self.boxes[:, :2], 0, None)
        return wh[:, 0] * wh[:, 1]

    def select(self, index: np.ndarray) -> Instances:
        """The instances at integer ``index``."""
        return Instances(
            self.boxes[index],
            self.class_ids[index],
            None if self.scores is None else self.scores[index],
            None if self.masks is None else [self.masks[i] for i in index],
            None if self.mask_boxes is None else self.mask_boxes[index],
        )


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of ``(N, 4)`` and ``(M, 4)`` ``xyxy`` boxes."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def mask_iou(dets: Instances, gts: Instances) -> np.ndarray:
    """IoU matrix of cropped masks; only pairs whose mask boxes overlap are computed."""
    out = np.zeros((len(dets), len(gts)))
    if not len(dets) or not len(gts):
        return out
    det_area = dets.areas(use_masks=True)
    gt_area = gts.areas(use_masks=True)
    db, gb = dets.mask_boxes, gts.mask_boxes
    x0 = np.maximum(db[:, None, 0], gb[None, :, 0])
    y0 = np.maximum(db[:, None, 1], gb[None, :, 1])
    x1 = np.minimum(db[:, None, 2], gb[None, :, 2])
    y1 = np.minimum(db[:, None, 3], gb[None, :, 3])
    for i, j in zip(*np.nonzero((x1 > x0) & (y1 > y0)), strict=True):
        xa, ya, xb, yb = x0[i, j], y0[i, j], x1[i, j], y1[i, j]
        dm = dets.masks[i][ya - db[i, 1] : yb - db[i, 1], xa - db[i, 0] : xb - db[i, 0]]
        gm = gts.masks[j][ya - gb[j, 1] : yb - gb[j, 1], xa - gb[j, 0] : xb - gb[j, 0]]
        inter = float(np.count_nonzero(dm & gm))
        union = det_area[i] + gt_area[j] - inter
        out[i, j] = inter / union if union > 0 else 0.0
    return out


#: Which boxes of one image belong to a subset: ``(N, 4)`` xyxy -> ``(N,)`` bool.
Within = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Scores50:
    """AP and counts at IoU 0.5 on the objects that count.

    Attributes:
        ap50: COCO AP at IoU 0.5, averaged over classes with ground truth;
            ``nan`` when no ground truth counts.
        recall: found / counted ground truth, pooled over classes (``nan``
            without ground truth).
        tp: counted ground-truth objects found.
        fp: detections that count and match nothing.
        num_truth: ground-truth objects that count.
    """

    ap50: float
    recall: float
    tp: int
    fp: int
    num_truth: int

    @property
    def fn(self) -> int:
        """Counted ground-truth objects missed."""
        return self.num_truth - self.tp


def ap50(
    truths: Sequence[Instances],
    detections: Sequence[Instances],
    *,
    use_masks: bool = False,
    area_range: tuple[float, float] = (0.0, float("inf")),
    within: Sequence[Within] | None = None,
    within_detections: Sequence[Within] | None = None,
) -> float:
    """COCO AP at IoU 0.5 over images, averaged over classes with ground truth.

    Args:
        truths: ground truth per image.
        detections: detections per image (same order), with scores.
        use_masks: mask IoU and mask areas instead of boxes.
        area_range: ``[lo, hi]`` object areas that count (e.g. ``(0, SMALL_AREA)``),
            both ends included as in ``pycocotools``.
        within: per image, which boxes belong to the subset that counts (e.g.
            objects on a tile seam); ``None`` counts all.
        within_detections: the same test for unmatched detections, where it
            differs (e.g. a detection cut at a seam only touches it);
            ``None`` uses ``within``.

    Returns:
        AP50 in ``[0, 1]``, or ``nan`` when no ground truth is in the range.
    """
    return evaluate50(
        truths,
        detections,
        use_masks=use_masks,
        area_range=area_range,
        within=within,
        within_detections=within_detections,
    ).ap50


def evaluate50(
    truths: Sequence[Instances],
    detections: Sequence[Instances],
    *,
    use_masks: bool = False,
    area_range: tuple[float, float] = (0.0, float("inf")),
    within: Sequence[Within] | None = None,
    within_detections: Sequence[Within] | None = None,
) -> Scores50:
    """AP50, recall and counts at IoU 0.5 (see ``ap50`` for the arguments).

    Example::

        >>> gt = Instances(np.array([[0, 0, 10, 10], [50, 0, 60, 10]], float), [0, 0])
        >>> det = Instances(np.array([[0, 0, 10, 10]], float), [0], [0.9])
        >>> left = [lambda boxes: boxes[:, 0] < 30]
        >>> evaluate50([gt], [det], within=left).recall
        1.0
    """
    if len(truths) != len(detections):
        raise ValueError(f"{len(truths)} truths for {len(detections)} detection sets")
    within_detections = within_detections or within
    for subsets in (within, within_detections):
        if subsets is not None and len(subsets) != len(truths):
            raise ValueError(f"{len(subsets)} subsets for {len(truths)} images")
    t_out = [_outside(t, within, i) for i, t in enumerate(truths)]
    d_out = [_outside(d, within_detections, i) for i, d in enumerate(detections)]
    classes = np.unique(np.concatenate([t.class_ids for t in truths] or [[]]))
    per_class, tp, fp, total = [], 0, 0, 0
    for cls in classes.astype(np.int64):
        scores, matched, ignored, n_truth = [], [], [], 0
        for i, (truth, det) in enumerate(zip(truths, detections, strict=True)):
            ti = np.nonzero(truth.class_ids == cls)[0]
            di = np.nonzero(det.class_ids == cls)[0]
            s, m, ig, n = _match_image(
                truth.select(ti),
                det.select(di),
                use_masks,
                area_range,
                t_out[i][ti],
                d_out[i][di],
            )
            scores.append(s)
            matched.append(m)
            ignored.append(ig)
            n_truth += n
        if n_truth == 0:
            continue
        matched_all, ignored_all = np.concatenate(matched), np.concatenate(ignored)
        tp += int((matched_all & ~ignored_all).sum())
        fp += int((~matched_all & ~ignored_all).sum())
        total += n_truth
        per_class.append(
            average_precision(np.concatenate(scores), matched_all, ignored_all, n_truth)
        )
    return Scores50(
        ap50=float(np.mean(per_class)) if per_class else float("nan"),
        recall=tp / total if total else float("nan"),
        tp=tp,
        fp=fp,
        num_truth=total,
    )


def seam_parts(
    grids: Sequence[tuple[np.ndarray, tuple[int, int]]], margin: float
) -> dict[str, tuple[list[Within], list[Within]]]:
    """The ``within`` and ``within_detections`` tests of seam and interior objects.

    Ground truth is on a seam when its box crosses an interior tile edge; a
    detection when it reaches within ``margin`` pixels of one (a detection of
    a cut object ends at the edge). See ``slicer.tiles.crosses_seam``.

    Args:
        grids: per image, its tile boxes and ``(width, height)``.
        margin: the detections' margin in pixels (the engine's ``EDGE_MARGIN``).

    Returns:
        ``{"seam": (within, within_detections), "interior": (...)}`` for
        ``evaluate50``.
    """
    truth = [partial(crosses_seam, tiles=t, image_wh=wh) for t, wh in grids]
    near = [
        partial(crosses_seam, tiles=t, image_wh=wh, margin=margin) for t, wh in grids
    ]
    return {
        "seam": (truth, near),
        "interior": ([_negated(f) for f in truth], [_negated(f) for f in near]),
    }


def _negated(within: Within) -> Within:
    return lambda boxes: ~within(boxes)


def _outside(
    instances: Instances, within: Sequence[Within] | None, image: int
) -> np.ndarray:
    """Per instance: whether it lies outside the image's subset."""
    if within is None:
        return np.zeros(len(instances), dtype=bool)
    inside = np.asarray(within[image](instances.boxes), dtype=bool).reshape(-1)
    return ~inside


def _match_image(
    truth: Instances,
    det: Instances,
    use_masks: bool,
    area_range: tuple[float, float],
    truth_outside: np.ndarray,
    det_outside: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """COCO matching of one image and class: (scores, matched, ignored, #truth counted).

    Detections come back in score order; ``truth_outside`` / ``det_outside``
    mark instances outside the subset (ignored like out-of-range areas).
    """
    lo, hi = area_range
    t_area = truth.areas(use_masks) if len(truth) else np.zeros(0)
    t_ignore = (t_area < lo) | (t_area > hi) | truth_outside
    order = np.argsort(-det.scores, kind="stable")
    det = det.select(order)
    det_outside = det_outside[order]
    if use_masks:
        ious = mask_iou(det, truth)
    else:
        ious = box_iou(det.boxes, truth.boxes)
    taken = np.zeros(len(truth), dtype=bool)
    matched = np.zeros(len(det), dtype=bool)
    ignored = np.zeros(len(det), dtype=bool)
    for i in range(len(det)):
        # COCO prefers the best counted truth; an ignored one only if none is left.
        candidates = np.nonzero(~taken & (ious[i] >= IOU_THRESHOLD))[0]
        if not len(candidates):
            continue
        counted = candidates[~t_ignore[candidates]]
        pool = counted if len(counted) else candidates
        best = pool[np.argmax(ious[i, pool])]
        taken[best] = True
        matched[i] = True
        ignored[i] = t_ignore[best]
    d_area = det.areas(use_masks) if len(det) else np.zeros(0)
    ignored |= ~matched & ((d_area < lo) | (d_area > hi) | det_outside)
    return det.scores, matched, ignored, int((~t_ignore).sum())


def average_precision(
    scores: np.ndarray, matched: np.ndarray, ignored: np.ndarray, n_truth: int
) -> float:
    """101-point interpolated AP of pooled detections (COCO's accumulate).

    Args:
        scores: ``(N,)`` confidences of one class's detections, all images.
        matched: ``(N,)`` whether each matched a ground-truth object.
        ignored: ``(N,)`` detections that count neither way.
        n_truth: ground-truth objects of the class that count.

    Example::

        >>> average_precision(np.array([0.9, 0.8]), np.array([True, False]),
        ...                   np.zeros(2, bool), 1)
        1.0
    """
    order = np.argsort(-scores, kind="mergesort")
    keep = ~ignored[order]
    tp = np.cumsum(matched[order][keep])
    fp = np.cumsum(~matched[order][keep])
    if not len(tp):
        return 0.0
    recall = tp / n_truth
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.searchsorted(recall, _RECALL_POINTS, side="left")
    sampled = np.where(
        idx < len(precision), precision[np.minimum(idx, len(precision) - 1)], 0.0
    )
    return float(sampled.mean())
