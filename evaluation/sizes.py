"""Object sizes: COCO's small / medium / large pixel-area ranges, and views filtered by them."""

from __future__ import annotations

import math
from collections.abc import Sequence

import fiftyone as fo
from fiftyone import ViewField as F

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
    """``samples`` with only the objects of ``fields`` whose box area is in ``[low, high)``.

    Areas are box areas in pixels (``metadata`` must be computed; a video's
    frame size for frame fields); samples without such objects stay, with
    empty fields.

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
        view = view.filter_labels(name, in_range, only_matches=False)
    return view
