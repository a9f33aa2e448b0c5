"""The objects a comparison evaluates, read once from the database as flat arrays.

One ``values()`` call per label field reads ids, classes, boxes, confidences,
crowd flags (and, for mask IoU, the masks); nothing is decoded into samples, and
nothing is read twice: the ground truth is read once for all runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import fiftyone as fo
import numpy as np

#: The crowd attribute FiftyOne's COCO evaluation reads (its default ``iscrowd``).
CROWD_ATTRIBUTE = "iscrowd"


@dataclass(frozen=True)
class Images:
    """The samples of a comparison, in the order every field is read.

    Attributes:
        ids: sample ids.
        widths: image widths in pixels (NaN where metadata is missing).
        heights: image heights in pixels (NaN likewise).
    """

    ids: list[str]
    widths: np.ndarray
    heights: np.ndarray

    @classmethod
    def load(cls, samples: fo.core.collections.SampleCollection) -> Images:
        """Reads the sample ids and image sizes of ``samples``."""
        ids, widths, heights = samples.values(
            ["id", "metadata.width", "metadata.height"]
        )
        return cls(list(ids), _floats(widths), _floats(heights))

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Objects:
    """One label field's objects over ``Images``, as flat arrays in sample order.

    Attributes:
        field: the label field.
        bounds: the objects of sample ``i`` are ``bounds[i]:bounds[i + 1]``.
        sample: per object, the index of its sample.
        ids: per object, its label id (``ObjectId``).
        labels: per object, its class (``None`` when missing).
        boxes: ``(n, 4)`` relative ``[x, y, w, h]`` boxes.
        confidence: per object, its confidence (NaN when missing).
        crowd: per object, FiftyOne's crowd flag.
        areas: per object, the box area in pixels, computed as the size views
            of ``sizes.size_view`` compute it (so an object on a threshold
            falls on the same side).
        detections: per object, a ``fo.Detection`` with the box and mask, for
            mask IoU; ``None`` when masks were not read.
    """

    field: str
    bounds: np.ndarray
    sample: np.ndarray
    ids: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray
    confidence: np.ndarray
    crowd: np.ndarray
    areas: np.ndarray
    detections: list[fo.Detection] | None = None

    def __len__(self) -> int:
        return len(self.sample)

    @property
    def str_ids(self) -> list[str]:
        """The label ids as strings (as FiftyOne's results store them)."""
        return [str(i) for i in self.ids]

    @classmethod
    def load(
        cls,
        samples: fo.core.collections.SampleCollection,
        field: str,
        images: Images,
        *,
        masks: bool = False,
    ) -> Objects:
        """Reads the ``Detections`` of ``field`` on ``samples``, in the order of ``images``.

        Args:
            samples: the dataset or view being compared.
            field: a ``Detections`` field.
            images: the samples, as ``Images.load(samples)`` read them.
            masks: also read the instance masks (for mask IoU).

        Example::

            >>> images = Images.load(dataset)  # doctest: +SKIP
            >>> gt = Objects.load(dataset, "ground_truth", images)  # doctest: +SKIP
            >>> len(gt), gt.labels[:3]  # doctest: +SKIP
        """
        prefix = f"{field}.detections."
        names = ["_id", "label", "bounding_box", "confidence", CROWD_ATTRIBUTE]
        if masks:
            names += ["mask", "mask_path"]
        sample_ids, *columns = samples.values(
            ["id", *(prefix + name for name in names)]
        )
        position = {sample_id: i for i, sample_id in enumerate(images.ids)}
        # (index in ``images``, row of the values) of every sample with labels;
        # a sample added since ``images`` was read is not part of the comparison.
        rows = sorted(
            (position[sid], j)
            for j, sid in enumerate(sample_ids)
            if sid in position and columns[0][j]
        )
        counts = np.zeros(len(images), dtype=np.int64)
        for i, j in rows:
            counts[i] = len(columns[0][j])
        flat = [[value for _, j in rows for value in column[j]] for column in columns]
        ids, labels, boxes, confidence, crowd = flat[:5]
        sample = np.repeat(np.arange(len(images)), counts)
        box_array = np.array(boxes, dtype=float).reshape(-1, 4)
        return cls(
            field=field,
            bounds=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            sample=sample,
            ids=np.array(ids, dtype=object),
            labels=np.array(labels, dtype=object),
            boxes=box_array,
            confidence=_floats(confidence),
            crowd=np.array([bool(c) for c in crowd], dtype=bool),
            areas=_pixel_areas(box_array, images, sample),
            detections=_detections(box_array, flat[5], flat[6]) if masks else None,
        )


def count_masks(samples: fo.core.collections.SampleCollection, field: str) -> int:
    """Number of objects of ``field`` with an instance mask."""
    return samples.count(f"{field}.detections.mask")


def _pixel_areas(boxes: np.ndarray, images: Images, sample: np.ndarray) -> np.ndarray:
    """``((w * width) * h) * height``: the order of ``size_view``'s database expression."""
    return (
        boxes[:, 2] * images.widths[sample] * boxes[:, 3] * images.heights[sample]
        if len(sample)
        else np.zeros(0)
    )


def _detections(
    boxes: np.ndarray, masks: Sequence[Any], mask_paths: Sequence[Any]
) -> list[fo.Detection]:
    return [
        fo.Detection(bounding_box=list(box), mask=mask, mask_path=path)
        for box, mask, path in zip(boxes, masks, mask_paths, strict=True)
    ]


def _floats(values: Sequence[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)
