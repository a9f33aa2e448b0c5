"""Which boxes can be duplicates: overlapping pairs by a sort-and-sweep, and pairwise overlap metrics.

A merge only ever compares boxes that intersect, so the candidate pairs come
from sorting the boxes along one axis and sweeping, never from a dense
``N x N`` matrix: aerial images easily have thousands of detections.
"""

from __future__ import annotations

import numpy as np

#: Most candidate pairs held in memory at once while sweeping.
_CHUNK_PAIRS = 1 << 22


def overlapping_pairs(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(i, j)``, ``i < j``, of ``xyxy`` boxes whose areas intersect.

    Boxes are sorted along the axis that yields fewer candidates and swept:
    each box is paired with the boxes that start before it ends on that axis
    (``searchsorted``), then the pairs are filtered by overlap on the other
    axis. Touching edges and empty boxes do not count (positive-area
    intersections only). Pairs come back sorted by ``i``, then ``j``.

    Example::

        >>> boxes = np.array([[0, 0, 10, 10], [5, 5, 15, 15], [10, 0, 20, 10]])
        >>> [a.tolist() for a in overlapping_pairs(boxes)]
        [[0, 1], [1, 2]]
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    valid = np.flatnonzero((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]))
    sweeps = [_sweep_counts(boxes[valid], axis) for axis in (0, 1)]
    axis = int(sweeps[1][1].sum() < sweeps[0][1].sum())
    order, counts = sweeps[axis]
    other = 1 - axis
    firsts, seconds = [], []
    for start, stop in _chunks(counts):
        a, b = _expand(counts, start, stop)
        a, b = valid[order[a]], valid[order[b]]
        hit = np.minimum(boxes[a, other + 2], boxes[b, other + 2]) > np.maximum(
            boxes[a, other], boxes[b, other]
        )
        firsts.append(np.minimum(a[hit], b[hit]))
        seconds.append(np.maximum(a[hit], b[hit]))
    first = np.concatenate(firsts) if firsts else np.zeros(0, np.int64)
    second = np.concatenate(seconds) if seconds else np.zeros(0, np.int64)
    keys = np.lexsort((second, first))
    return first[keys].astype(np.int64), second[keys].astype(np.int64)


def _sweep_counts(boxes: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Sort order along ``axis`` and, per sorted box, how many later boxes start before it ends."""
    order = np.argsort(boxes[:, axis], kind="stable")
    starts = boxes[order, axis]
    ends = np.searchsorted(starts, boxes[order, axis + 2], side="left")
    counts = np.maximum(ends - np.arange(len(order)) - 1, 0)
    return order, counts


def _chunks(counts: np.ndarray) -> list[tuple[int, int]]:
    """Ranges of sorted boxes whose candidate pairs fit in one chunk."""
    if not counts.size:
        return []
    totals = np.cumsum(counts)
    cuts = np.searchsorted(totals, np.arange(_CHUNK_PAIRS, totals[-1], _CHUNK_PAIRS))
    bounds = [0, *np.unique(cuts + 1).tolist(), len(counts)]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def _expand(counts: np.ndarray, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted positions ``(p, q)`` with ``p`` in ``[start, stop)`` and ``q`` in ``p + 1 .. p + counts[p]``."""
    part = counts[start:stop]
    p = np.repeat(np.arange(start, stop), part)
    offsets = np.arange(len(p)) - np.repeat(np.cumsum(part) - part, part)
    return p, p + 1 + offsets


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """Areas of ``xyxy`` boxes; inverted (empty) boxes have area 0.

    Example::

        >>> box_areas(np.array([[0, 0, 4, 5], [3, 3, 1, 1]])).tolist()
        [20.0, 0.0]
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    wh = np.clip(boxes[:, 2:] - boxes[:, :2], 0, None)
    return wh[:, 0] * wh[:, 1]


def intersect_boxes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise intersection boxes of two aligned ``(P, 4)`` arrays (inverted where empty).

    Example::

        >>> intersect_boxes(np.array([[0, 0, 10, 10]]), np.array([[5, 2, 20, 8]])).tolist()
        [[5.0, 2.0, 10.0, 8.0]]
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return np.concatenate(
        [np.maximum(a[:, :2], b[:, :2]), np.minimum(a[:, 2:], b[:, 2:])], axis=1
    )


def intersection_areas(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise intersection areas of two aligned ``(P, 4)`` box arrays.

    Example::

        >>> intersection_areas(np.array([[0, 0, 10, 10]]), np.array([[5, 5, 20, 20]])).tolist()
        [25.0]
    """
    return box_areas(intersect_boxes(a, b))


def pair_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise intersection over union (0 where both boxes are empty).

    Example::

        >>> pair_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10]])).round(3).tolist()
        [0.333]
    """
    inter = intersection_areas(a, b)
    union = box_areas(a) + box_areas(b) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def pair_ios(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise intersection over the smaller box's area (SAHI's IOS).

    Example::

        >>> pair_ios(np.array([[0, 0, 10, 10]]), np.array([[2, 2, 4, 4]])).tolist()
        [1.0]
    """
    inter = intersection_areas(a, b)
    smaller = np.minimum(box_areas(a), box_areas(b))
    return np.divide(inter, smaller, out=np.zeros_like(inter), where=smaller > 0)
