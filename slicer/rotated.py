"""Rotated boxes: corners, envelopes, exact rotated-box IoU, and the box of a union.

A rotated box is ``(cx, cy, w, h, angle)`` in pixels (Ultralytics' ``xywhr``):
the ``w`` side points along ``(cos angle, sin angle)`` in image coordinates
(``y`` down), as in ``fo.Polyline.from_rotated_box``. ``regularize`` puts every
box in one form (``0 <= angle < pi/2``) so equal boxes compare equal.

Overlaps are exact: the intersection of two convex polygons is cut out by
Sutherland-Hodgman clipping, vectorised over all pairs at once. Polygons are
``(P, K, 2)`` arrays; a polygon with fewer than ``K`` corners repeats its first
corner to fill the row, which neither the clipping nor the shoelace area
notices (repeated corners make zero-length edges).

Example::

    >>> import numpy as np
    >>> a = np.array([[10, 10, 8, 2, 0.0]])
    >>> b = np.array([[10, 10, 8, 2, np.pi / 2]])
    >>> float(pair_rotated_iou(a, b)[0].round(3))  # a cross: 2x2 shared of 16+16-4
    0.143
"""

from __future__ import annotations

import cv2
import numpy as np

#: An ``xyxy`` clip region that cuts nothing (for rows that need no clipping).
NO_CLIP = np.array([-1e9, -1e9, 1e9, 1e9])


def regularize(rboxes: np.ndarray) -> np.ndarray:
    """The same boxes with ``0 <= angle < pi/2`` (``w`` and ``h`` swapped where needed).

    Mirrors Ultralytics' ``ops.regularize_rboxes`` in numpy.

    Example::

        >>> regularize(np.array([[0, 0, 4, 2, np.pi / 2]])).round(3).tolist()
        [[0.0, 0.0, 2.0, 4.0, 0.0]]
    """
    r = np.array(rboxes, dtype=np.float64).reshape(-1, 5)
    swap = np.mod(r[:, 4], np.pi) >= np.pi / 2
    r[swap, 2], r[swap, 3] = r[swap, 3].copy(), r[swap, 2].copy()
    r[:, 4] = np.mod(r[:, 4], np.pi / 2)
    return r


def rbox_corners(rboxes: np.ndarray) -> np.ndarray:
    """``(N, 4, 2)`` corners of ``(N, 5)`` rotated boxes, counter-clockwise (positive area).

    Example::

        >>> rbox_corners(np.array([[5, 5, 4, 2, 0.0]])).tolist()
        [[[7.0, 6.0], [3.0, 6.0], [3.0, 4.0], [7.0, 4.0]]]
    """
    r = np.asarray(rboxes, dtype=np.float64).reshape(-1, 5)
    cos, sin = np.cos(r[:, 4]), np.sin(r[:, 4])
    along = np.stack([cos, sin], axis=1) * (r[:, 2:3] / 2)
    across = np.stack([-sin, cos], axis=1) * (r[:, 3:4] / 2)
    centre = r[:, :2]
    return np.stack(
        [
            centre + along + across,
            centre - along + across,
            centre - along - across,
            centre + along - across,
        ],
        axis=1,
    )


def rbox_envelopes(rboxes: np.ndarray) -> np.ndarray:
    """``(N, 4)`` ``xyxy`` axis-aligned boxes that just contain each rotated box.

    Example::

        >>> rbox_envelopes(np.array([[5, 5, 4, 2, np.pi / 2]])).round(3).tolist()
        [[4.0, 3.0, 6.0, 7.0]]
    """
    corners = rbox_corners(rboxes)
    return np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)


def box_polygons(boxes: np.ndarray) -> np.ndarray:
    """``(N, 4, 2)`` counter-clockwise corners of ``xyxy`` boxes.

    Example::

        >>> box_polygons(np.array([[0, 0, 2, 1]])).tolist()
        [[[0.0, 0.0], [2.0, 0.0], [2.0, 1.0], [0.0, 1.0]]]
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x0, y0, x1, y1 = b.T
    return np.stack(
        [np.stack(p, axis=1) for p in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))],
        axis=1,
    )


def polygon_areas(polygons: np.ndarray) -> np.ndarray:
    """Areas of ``(P, K, 2)`` polygons (shoelace formula; orientation ignored).

    Example::

        >>> polygon_areas(box_polygons(np.array([[0, 0, 3, 2]]))).tolist()
        [6.0]
    """
    p = np.asarray(polygons, dtype=np.float64)
    if p.shape[1] == 0:
        return np.zeros(len(p))
    nxt = np.roll(p, -1, axis=1)
    cross = p[..., 0] * nxt[..., 1] - nxt[..., 0] * p[..., 1]
    return np.abs(cross.sum(axis=1)) / 2


def intersect_convex(subject: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Row-wise intersections of convex polygons ``(P, K, 2)`` and ``(P, M, 2)``.

    Cuts ``subject`` by the half-plane of each edge of ``clip``
    (Sutherland-Hodgman). Both must be convex; either orientation works.

    Returns:
        ``(P, L, 2)`` polygons (corners repeated to fill rows; all zeros where
        the intersection is empty).

    Example::

        >>> a = box_polygons(np.array([[0, 0, 4, 4]]))
        >>> b = box_polygons(np.array([[2, 1, 6, 3]]))
        >>> polygon_areas(intersect_convex(a, b)).tolist()
        [4.0]
    """
    out = np.asarray(subject, dtype=np.float64)
    clip = _counter_clockwise(np.asarray(clip, dtype=np.float64))
    for m in range(clip.shape[1]):
        start = clip[:, m]
        edge = clip[:, (m + 1) % clip.shape[1]] - start
        out = _cut(out, start, edge)
    return out


def pair_rotated_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise exact IoU of two aligned ``(P, 5)`` arrays of rotated boxes.

    Example::

        >>> a = np.array([[0, 0, 4, 4, 0.0]])
        >>> float(pair_rotated_iou(a, a + [2, 0, 0, 0, 0])[0].round(3))
        0.333
    """
    return polygon_iou(rbox_corners(a), rbox_corners(b))


def pair_rotated_ios(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise intersection over the smaller rotated box's area (SAHI's IOS).

    Example::

        >>> big, small = np.array([[0, 0, 10, 10, 0.3]]), np.array([[0, 0, 2, 2, 1.0]])
        >>> float(pair_rotated_ios(big, small)[0].round(6))
        1.0
    """
    pa, pb = rbox_corners(a), rbox_corners(b)
    inter = polygon_areas(intersect_convex(pa, pb))
    smaller = np.minimum(polygon_areas(pa), polygon_areas(pb))
    return np.divide(inter, smaller, out=np.zeros_like(inter), where=smaller > 0)


def clipped_rotated_iou(
    a: np.ndarray, b: np.ndarray, clip_a: np.ndarray, clip_b: np.ndarray
) -> np.ndarray:
    """Row-wise IoU of rotated boxes ``a`` and ``b`` after cutting each to an ``xyxy`` region.

    How the tile-aware merge compares a detection with a truncated one: only
    the part the other tile saw counts (``NO_CLIP`` leaves a row whole).

    Example::

        >>> whole = np.array([[10, 5, 20, 4, 0.0]])  # x 0-20
        >>> part = np.array([[5, 5, 10, 4, 0.0]])  # its left half, cut at x = 10
        >>> clipped_rotated_iou(whole, part, np.array([[0, 0, 10, 10]]), NO_CLIP[None]).tolist()
        [1.0]
    """
    pa = intersect_convex(rbox_corners(a), box_polygons(clip_a))
    pb = intersect_convex(rbox_corners(b), box_polygons(clip_b))
    return polygon_iou(pa, pb)


def polygon_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of two aligned arrays of convex polygons (0 where both are empty).

    Example::

        >>> a = box_polygons(np.array([[0, 0, 2, 2]]))
        >>> polygon_iou(a, box_polygons(np.array([[1, 0, 3, 2]]))).round(3).tolist()
        [0.333]
    """
    inter = polygon_areas(intersect_convex(a, b))
    union = polygon_areas(a) + polygon_areas(b) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def enclosing_rbox(corners: np.ndarray) -> np.ndarray:
    """The minimum-area rotated box ``(5,)`` around points ``(K, 2)`` (``cv2.minAreaRect``).

    How fragments of one object cut by tile edges become one rotated box: the
    smallest rectangle that holds all their corners.

    Example::

        >>> dx, dy = 2 * np.cos(0.5), 2 * np.sin(0.5)  # two halves of an 8x2 box
        >>> halves = np.array([[-dx, -dy, 4, 2, 0.5], [dx, dy, 4, 2, 0.5]])
        >>> enclosing_rbox(rbox_corners(halves)).round(2).tolist()
        [0.0, 0.0, 8.0, 2.0, 0.5]
    """
    pts = np.asarray(corners, dtype=np.float32).reshape(-1, 2)
    (cx, cy), (w, h), degrees = cv2.minAreaRect(pts)
    return regularize(np.array([cx, cy, w, h, np.deg2rad(degrees)]))[0]


def _counter_clockwise(polygons: np.ndarray) -> np.ndarray:
    """The polygons with positive signed area (interior left of every edge)."""
    nxt = np.roll(polygons, -1, axis=1)
    signed = (polygons[..., 0] * nxt[..., 1] - nxt[..., 0] * polygons[..., 1]).sum(1)
    return np.where((signed < 0)[:, None, None], polygons[:, ::-1], polygons)


def _cut(polygons: np.ndarray, start: np.ndarray, edge: np.ndarray) -> np.ndarray:
    """Keeps the part of each polygon left of its line ``start + t * edge``.

    Each corner yields itself (if inside) and the crossing point of the edge
    to the next corner (if that edge crosses the line); a zero-length
    ``edge`` keeps everything.
    """
    rel = polygons - start[:, None, :]
    side = edge[:, None, 0] * rel[..., 1] - edge[:, None, 1] * rel[..., 0]
    inside = side >= 0
    nxt_side = np.roll(side, -1, axis=1)
    crosses = inside != np.roll(inside, -1, axis=1)
    t = side / np.where(crosses, side - nxt_side, 1.0)
    crossing = polygons + t[..., None] * (np.roll(polygons, -1, axis=1) - polygons)
    p, k = inside.shape
    candidates = np.stack([polygons, crossing], axis=2).reshape(p, 2 * k, 2)
    valid = np.stack([inside, crosses], axis=2).reshape(p, 2 * k)
    return _compact(candidates, valid)


def _compact(candidates: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Valid corners first, rows padded with their first corner, trimmed to the longest."""
    order = np.argsort(~valid, axis=1, kind="stable")
    points = np.take_along_axis(candidates, order[..., None], axis=1)
    counts = valid.sum(axis=1)
    width = max(int(counts.max(initial=0)), 1)
    points = points[:, :width]
    filled = np.arange(width)[None, :] < counts[:, None]
    points = np.where(filled[..., None], points, points[:, :1])
    points[counts == 0] = 0.0
    return points
