"""IoUs of overlapping prediction / ground-truth pairs, computed once per run.

Box IoUs are FiftyOne's formula (``fiftyone.utils.iou.compute_bbox_iou``: the
same floating-point operations, so the same values) evaluated on numpy arrays,
one image at a time. Mask IoUs are FiftyOne's polygon IoUs: each mask becomes
polygons simplified to ``tolerance`` pixels with FiftyOne's own conversion,
and the polygon intersections are computed by shapely on arrays of pairs; with
``tolerance=None``, FiftyOne's exact pixel IoU, pair by pair. ``Polylines``
(rotated boxes) get FiftyOne's polygon IoU of the filled polylines, converted
by its own function in relative coordinates, as it does (it passes no frame
size: scaling by the image's width and height multiplies every area by the
same factor, so the IoU is that of the pixel polygons). Only pairs whose boxes (a polyline's envelope) overlap are
computed, as FiftyOne's R-tree does. A crowd's "union" is the prediction's
area, as in COCO.

Ground-truth polygons are cached by label id (``PolygonCache``), so the
ground truth of several mask or polyline runs is converted once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import fiftyone.utils.iou as foui
import numpy as np
import shapely

from .matching import Candidates, stack_candidates
from .objects import Objects

logger = logging.getLogger(__name__)

#: Most (prediction, ground truth) box pairs compared in one numpy block.
_BLOCK_PAIRS = 1 << 21
#: FiftyOne's default: log geometry errors and count the pair as not overlapping.
_ERROR_LEVEL = 1


class PolygonCache:
    """Shapely polygons (and their areas) of masks or polylines, by label id.

    Masks are simplified at one ``tolerance``; polylines need none.
    """

    def __init__(self, tolerance: float | None) -> None:
        self.tolerance = tolerance
        self._polygons: dict[object, tuple[object, float]] = {}

    def polygons(
        self, objects: Objects, indices: np.ndarray
    ) -> tuple[list, np.ndarray]:
        """The polygons and areas of ``objects[indices]``, converting what is missing.

        The conversion is FiftyOne's own (``fiftyone.utils.iou``: the mask's
        contours simplified to ``tolerance`` pixels, or the filled polyline,
        then cleaned up by shapely), so the IoUs are the ones its evaluation
        computes. Only objects that overlap another's box are ever converted.
        """
        missing = [i for i in indices.tolist() if objects.ids[i] not in self._polygons]
        if missing:
            lines = self._polylines(objects, missing)
            shapes = foui._polylines_to_shapely(lines, _ERROR_LEVEL)
            for i, shape in zip(missing, shapes, strict=True):
                self._polygons[objects.ids[i]] = (shape, shape.area)
        found = [self._polygons[objects.ids[i]] for i in indices.tolist()]
        return [p for p, _ in found], np.array([a for _, a in found], dtype=float)

    def _polylines(self, objects: Objects, indices: list[int]) -> list:
        """``fo.Polyline`` labels of the objects: their own, or their masks' contours."""
        if objects.is_polylines:
            return objects.polylines(indices)
        detections = [objects.detections[i] for i in indices]
        return foui._masks_to_polylines(detections, self.tolerance, _ERROR_LEVEL)


def compute_candidates(gt: Objects, preds: Objects, **options: Any) -> Candidates:
    """Every overlapping (prediction, ground truth) pair of the same image, with its IoU.

    Takes the options of ``iter_image_candidates``; returns the pairs as
    ``Candidates`` (crowds last in each prediction's list).

    Example::

        >>> c = compute_candidates(gt, preds, classwise=True, use_masks=False, tolerance=None)  # doctest: +SKIP
    """
    parts = iter_image_candidates(gt, preds, **options)
    return stack_candidates(list(parts), len(preds))


def iter_image_candidates(
    gt: Objects,
    preds: Objects,
    *,
    classwise: bool,
    use_masks: bool,
    tolerance: float | None,
    cache: PolygonCache | None = None,
) -> Iterator[tuple[Candidates, int, int]]:
    """The candidate pairs one image at a time (for progress).

    Args:
        gt: the ground truth.
        preds: the predictions (read over the same ``Images``).
        classwise: only pair objects of the same class.
        use_masks: mask IoU (``preds`` and ``gt`` must hold ``detections``);
            box IoU otherwise. Polylines always get polygon IoU.
        tolerance: polygon simplification in pixels for mask IoU; ``None``
            for FiftyOne's exact pixel IoU.
        cache: ground-truth polygons shared between runs (masks at
            ``tolerance``, or polylines).

    Yields:
        ``(part, pred_offset, gt_offset)`` per image, indices local to the
        image; ``stack_candidates(list(parts), len(preds))`` assembles them.
    """
    polygons = gt.is_polylines or (use_masks and tolerance is not None)
    if polygons and cache is None:
        cache = PolygonCache(tolerance)
    codes = _label_codes(gt.labels, preds.labels)
    gt_codes, pred_codes = codes[: len(gt)], codes[len(gt) :]
    for image in range(len(gt.bounds) - 1):
        g0, g1 = int(gt.bounds[image]), int(gt.bounds[image + 1])
        p0, p1 = int(preds.bounds[image]), int(preds.bounds[image + 1])
        pred_idx, gt_idx = _no_index(), _no_index()
        pairs = list(_overlapping_boxes(preds.boxes[p0:p1], gt.boxes[g0:g1]))
        if pairs:
            pred_idx = np.concatenate([p for p, _ in pairs])
            gt_idx = np.concatenate([g for _, g in pairs])
        if classwise:
            keep = pred_codes[p0 + pred_idx] == gt_codes[g0 + gt_idx]
            pred_idx, gt_idx = pred_idx[keep], gt_idx[keep]
        crowd = gt.crowd[g0:g1]
        if polygons:
            iou, ok = _polygon_ious(
                gt, preds, g0 + gt_idx, p0 + pred_idx, crowd[gt_idx], cache
            )
        elif use_masks:
            iou, ok = _dense_ious(gt, preds, g0 + gt_idx, p0 + pred_idx)
        else:
            iou = _box_ious(
                preds.boxes[p0 + pred_idx], gt.boxes[g0 + gt_idx], crowd[gt_idx]
            )
            ok = np.ones(len(iou), dtype=bool)
        local = Candidates.from_pairs(p1 - p0, pred_idx[ok], gt_idx[ok], iou[ok], crowd)
        yield local, p0, g0


def same_label_pairs(gt: Objects, preds: Objects, candidates: Candidates) -> np.ndarray:
    """Per candidate pair, whether both objects have the same class."""
    pred_of_pair = np.repeat(np.arange(len(preds)), np.diff(candidates.start))
    return preds.labels[pred_of_pair] == gt.labels[candidates.gt]


def _overlapping_boxes(
    preds: np.ndarray, gts: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(pred indices, gt indices)`` of box pairs with a positive intersection, in blocks."""
    if not len(preds) or not len(gts):
        return
    block = max(1, _BLOCK_PAIRS // len(gts))
    gx0, gy0 = gts[:, 0], gts[:, 1]
    gx1, gy1 = gx0 + gts[:, 2], gy0 + gts[:, 3]
    for start in range(0, len(preds), block):
        p = preds[start : start + block]
        px0, py0 = p[:, 0:1], p[:, 1:2]
        px1, py1 = px0 + p[:, 2:3], py0 + p[:, 3:4]
        w = np.minimum(px1, gx1) - np.maximum(px0, gx0)
        h = np.minimum(py1, gy1) - np.maximum(py0, gy0)
        pred, gt = np.nonzero((w > 0) & (h > 0))
        yield pred + start, gt


def _box_ious(preds: np.ndarray, gts: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """``compute_bbox_iou`` of FiftyOne, operation for operation, on arrays of pairs."""
    gx, gy, gw, gh = gts.T
    px, py, pw, ph = preds.T
    gt_area = gh * gw
    pred_area = ph * pw
    w = np.minimum(px + pw, gx + gw) - np.maximum(px, gx)
    h = np.minimum(py + ph, gy + gh) - np.maximum(py, gy)
    inter = h * w
    union = np.where(crowd, pred_area, pred_area + gt_area - inter)
    return _safe_ratio(inter, union)


def _polygon_ious(
    gt: Objects,
    preds: Objects,
    gt_idx: np.ndarray,
    pred_idx: np.ndarray,
    crowd: np.ndarray,
    cache: PolygonCache,
) -> tuple[np.ndarray, np.ndarray]:
    """FiftyOne's polygon IoU of each pair; ``ok`` is False where geometry failed."""
    if not len(gt_idx):
        return np.zeros(0), np.zeros(0, dtype=bool)
    gt_unique, gt_pos = np.unique(gt_idx, return_inverse=True)
    pred_unique, pred_pos = np.unique(pred_idx, return_inverse=True)
    gt_polys, gt_areas = cache.polygons(gt, gt_unique)
    pred_polys, pred_areas = PolygonCache(cache.tolerance).polygons(preds, pred_unique)
    a = np.array(gt_polys, dtype=object)[gt_pos]
    b = np.array(pred_polys, dtype=object)[pred_pos]
    ok = np.ones(len(a), dtype=bool)
    try:
        inter = shapely.area(shapely.intersection(a, b))
    except shapely.errors.GEOSException:
        inter, ok = _pairwise_intersections(a, b)
    gt_area, pred_area = gt_areas[gt_pos], pred_areas[pred_pos]
    union = np.where(crowd, pred_area, pred_area + gt_area - inter)
    return _safe_ratio(inter, union), ok


def _pairwise_intersections(
    a: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Intersection areas one pair at a time, skipping (and logging) the failing pairs."""
    inter = np.zeros(len(a))
    ok = np.ones(len(a), dtype=bool)
    for k, (pa, pb) in enumerate(zip(a, b, strict=True)):
        try:
            inter[k] = pa.intersection(pb).area
        except shapely.errors.GEOSException as error:
            logger.warning("polygon IoU skipped for one pair: %s", error)
            ok[k] = False
    return inter, ok


def _dense_ious(
    gt: Objects, preds: Objects, gt_idx: np.ndarray, pred_idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """FiftyOne's exact pixel IoU (its dense path ignores crowds), pair by pair."""
    iou = np.array(
        [
            foui._dense_iou(gt.detections[g], preds.detections[p])
            for g, p in zip(gt_idx.tolist(), pred_idx.tolist(), strict=True)
        ],
        dtype=float,
    )
    return iou, np.ones(len(iou), dtype=bool)


def _safe_ratio(inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    """``min(inter / union, 1)``, 0 where ``union`` is 0 (``eta``'s ``safe_divide``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(union != 0, inter / np.where(union != 0, union, 1), 0.0)
    return np.minimum(ratio, 1.0)


def _label_codes(*labels: np.ndarray) -> np.ndarray:
    vocabulary: dict[object, int] = {}
    return np.array(
        [
            vocabulary.setdefault(label, len(vocabulary))
            for part in labels
            for label in part
        ],
        dtype=np.int64,
    )


def _no_index() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)
