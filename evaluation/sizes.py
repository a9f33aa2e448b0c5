"""Object sizes: COCO's small / medium / large pixel-area ranges, and views filtered by them.

The size of an object is its area in pixels: the box area for ``Detections``,
the polygon area for ``Polylines`` (a rotated box's ``w * h``, whatever its
angle; its axis-aligned envelope would make a long object at 45 degrees look
several times larger than the same object lying flat).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import fiftyone as fo
import numpy as np
from bson import ObjectId
from fiftyone import ViewField as F

from .fields import label_type_of

#: COCO's small / medium / large boundaries, in square pixels.
COCO_SIZE_THRESHOLDS = (32**2, 96**2)
SIZES = ("small", "medium", "large")


def size_ranges(
    size_thresholds: tuple[float, float] = COCO_SIZE_THRESHOLDS,
) -> dict[str, tuple[float, float]]:
    """``{size: (low, high)}`` pixel-area ranges, ``low <= area < high``.

    Example::

        >>> size_ranges()["medium"]
        (1024, 9216)
    """
    small, medium = size_thresholds
    return {
        "small": (0, small),
        "medium": (small, medium),
        "large": (medium, math.inf),
    }


def size_view(
    samples: fo.core.collections.SampleCollection,
    fields: Sequence[str],
    low: float,
    high: float,
) -> fo.DatasetView:
    """``samples`` with only the objects of ``fields`` whose area is in ``[low, high)``.

    Areas are in pixels (``metadata`` must be computed; a video's frame size
    for frame fields): box areas of ``Detections``, polygon areas of
    ``Polylines``. Samples without such objects stay, with empty fields.

    Example::

        >>> small = size_view(dataset, ["ground_truth"], 0, 32**2)  # doctest: +SKIP
        >>> small.count("ground_truth.detections")  # doctest: +SKIP
    """
    # Video metadata names the frame size differently from image metadata.
    width, height = (
        ("frame_width", "frame_height")
        if samples.media_type == "video"
        else ("width", "height")
    )
    area = (
        F("bounding_box")[2]
        * F(f"$metadata.{width}")
        * F("bounding_box")[3]
        * F(f"$metadata.{height}")
    )
    in_range = area >= low if math.isinf(high) else (area >= low) & (area < high)
    view = samples.view()
    for name in fields:
        if label_type_of(samples, name) is fo.Polylines:
            ids = polylines_in_range(samples, name, low, high)
            keep = F("_id").is_in([ObjectId(i) for i in ids])
            view = view.filter_labels(name, keep, only_matches=False)
        else:
            view = view.filter_labels(name, in_range, only_matches=False)
    return view


def polylines_in_range(
    samples: fo.core.collections.SampleCollection,
    field_name: str,
    low: float,
    high: float,
) -> list[str]:
    """Ids of the polylines of ``field_name`` whose polygon area in pixels is in ``[low, high)``.

    A polyline's area is the sum of its shapes' areas (shoelace formula, in
    pixels from the relative points and the image ``metadata``).

    Example::

        >>> small = polylines_in_range(dataset, "obb", 0, 32**2)  # doctest: +SKIP
    """
    ids, shapes, widths, heights = samples.values(
        [
            f"{field_name}.polylines.id",
            f"{field_name}.polylines.points",
            "metadata.width",
            "metadata.height",
        ]
    )
    found = []
    for sample_ids, sample_shapes, width, height in zip(
        ids, shapes, widths, heights, strict=True
    ):
        for label_id, points in zip(sample_ids or [], sample_shapes or [], strict=True):
            if low <= polygon_area(points, width, height) < high:
                found.append(label_id)
    return found


def polygon_area(
    shapes: Sequence[Sequence[Sequence[float]]], width: float, height: float
) -> float:
    """Area in pixels of a polyline's shapes given in relative coordinates (their sum).

    The size of a rotated box; ``compare_runs`` buckets polylines by it.

    Example::

        >>> polygon_area([[[0.1, 0.1], [0.2, 0.1], [0.2, 0.3]]], 100, 50)
        50.0
    """
    return float(sum(_shoelace(shape, width, height) for shape in shapes))


def _shoelace(points: Sequence[Sequence[float]], width: float, height: float) -> float:
    """Area in pixels of one closed shape given in relative coordinates."""
    if len(points) < 3:
        return 0.0
    xy = np.asarray(points, dtype=np.float64) * [width, height]
    x, y = xy[:, 0], xy[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) / 2)
