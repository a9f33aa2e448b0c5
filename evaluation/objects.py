"""The objects a comparison evaluates, read once from the database as flat arrays.

One ``values()`` call per label field reads ids, classes, boxes (or, for
``Polylines`` of rotated boxes, points), confidences, crowd flags (and, for
mask IoU, the masks); nothing is decoded into samples, and nothing is read
twice: the ground truth is read once for all runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import fiftyone as fo
import numpy as np

from .fields import label_list_path, label_type_of
from .sizes import polygon_area

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
        path: where it keeps its objects (``fields.label_list_path``).
        bounds: the objects of sample ``i`` are ``bounds[i]:bounds[i + 1]``.
        sample: per object, the index of its sample.
        ids: per object, its label id (``ObjectId``).
        labels: per object, its class (``None`` when missing).
        boxes: ``(n, 4)`` relative ``[x, y, w, h]`` boxes (a polyline's
            envelope).
        confidence: per object, its confidence (NaN when missing).
        crowd: per object, FiftyOne's crowd flag.
        areas: per object, the box (or polygon) area in pixels, computed as
            the size views of ``sizes.size_view`` compute it (so an object on
            a threshold falls on the same side).
        detections: per object, a ``fo.Detection`` with the box and mask, for
            mask IoU; ``None`` when masks were not read.
        points: per polyline, its shapes' relative points (``None`` for
            ``Detections``): polygon IoU converts them (``polylines``).
        closed: per polyline, whether its shapes are closed.
    """

    field: str
    path: str
    bounds: np.ndarray
    sample: np.ndarray
    ids: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray
    confidence: np.ndarray
    crowd: np.ndarray
    areas: np.ndarray
    detections: list[fo.Detection] | None = None
    points: list[Any] | None = None
    closed: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.sample)

    @property
    def str_ids(self) -> list[str]:
        """The label ids as strings (as FiftyOne's results store them)."""
        return [str(i) for i in self.ids]

    @property
    def is_polylines(self) -> bool:
        """Whether these are polylines (rotated boxes), matched by polygon IoU."""
        return self.points is not None

    def polylines(self, indices: Sequence[int]) -> list[fo.Polyline]:
        """The polylines ``indices`` as filled ``fo.Polyline`` labels (with their ids).

        Built on demand, only for the objects whose IoUs are computed: a
        label object costs about 0.1 ms to create.
        """
        return [
            fo.Polyline(
                _id=self.ids[i],
                points=self.points[i],
                closed=bool(self.closed[i]),
                filled=True,  # FiftyOne's polygon IoU fills every polyline
            )
            for i in indices
        ]

    @classmethod
    def load(
        cls,
        samples: fo.core.collections.SampleCollection,
        field: str,
        images: Images,
        *,
        masks: bool = False,
    ) -> Objects:
        """Reads the objects of ``field`` on ``samples``, in the order of ``images``.

        Args:
            samples: the dataset or view being compared.
            field: a ``Detections`` field, or a ``Polylines`` field (whose
                boxes are the polygons' envelopes and areas their polygon areas).
            images: the samples, as ``Images.load(samples)`` read them.
            masks: also read the instance masks (for mask IoU; ``Detections``).

        Example::

            >>> images = Images.load(dataset)  # doctest: +SKIP
            >>> gt = Objects.load(dataset, "ground_truth", images)  # doctest: +SKIP
            >>> len(gt), gt.labels[:3]  # doctest: +SKIP
        """
        path = label_list_path(samples, field)
        polylines = label_type_of(samples, field) is fo.Polylines
        geometry = ["points", "closed"] if polylines else ["bounding_box"]
        if masks and not polylines:
            geometry += ["mask", "mask_path"]
        counts, columns = _read_columns(
            samples,
            path,
            ["_id", "label", "confidence", CROWD_ATTRIBUTE, *geometry],
            images,
        )
        sample = np.repeat(np.arange(len(images)), counts)
        if polylines:
            boxes = _envelopes(columns["points"])
            areas = _polygon_areas(columns["points"], images, sample)
        else:
            boxes = np.array(columns["bounding_box"], dtype=float).reshape(-1, 4)
            areas = _pixel_areas(boxes, images, sample)
        return cls(
            field=field,
            path=path,
            bounds=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            sample=sample,
            ids=np.array(columns["_id"], dtype=object),
            labels=np.array(columns["label"], dtype=object),
            boxes=boxes,
            confidence=_floats(columns["confidence"]),
            crowd=np.array([bool(c) for c in columns[CROWD_ATTRIBUTE]], dtype=bool),
            areas=areas,
            detections=_detections(boxes, columns["mask"], columns["mask_path"])
            if "mask" in columns
            else None,
            points=columns["points"] if polylines else None,
            closed=np.array(columns["closed"], dtype=bool) if polylines else None,
        )


def _read_columns(
    samples: fo.core.collections.SampleCollection,
    path: str,
    names: list[str],
    images: Images,
) -> tuple[np.ndarray, dict[str, list[Any]]]:
    """Objects per image of ``images``, and each attribute in ``names`` flattened in that order.

    One ``values()`` call; a sample added since ``images`` was read is not
    part of the comparison.
    """
    sample_ids, *columns = samples.values(["id", *(f"{path}.{n}" for n in names)])
    position = {sample_id: i for i, sample_id in enumerate(images.ids)}
    # (index in ``images``, row of the values) of every sample with labels.
    rows = sorted(
        (position[sid], j)
        for j, sid in enumerate(sample_ids)
        if sid in position and columns[0][j]
    )
    counts = np.zeros(len(images), dtype=np.int64)
    for i, j in rows:
        counts[i] = len(columns[0][j])
    flat = {
        name: [value for _, j in rows for value in column[j]]
        for name, column in zip(names, columns, strict=True)
    }
    return counts, flat


def count_masks(samples: fo.core.collections.SampleCollection, field: str) -> int:
    """Number of objects of ``field`` with an instance mask (none for ``Polylines``)."""
    return samples.count(f"{label_list_path(samples, field)}.mask")


def _pixel_areas(boxes: np.ndarray, images: Images, sample: np.ndarray) -> np.ndarray:
    """``((w * width) * h) * height``: the order of ``size_view``'s database expression."""
    return (
        boxes[:, 2] * images.widths[sample] * boxes[:, 3] * images.heights[sample]
        if len(sample)
        else np.zeros(0)
    )


def _envelopes(points: Sequence[Any]) -> np.ndarray:
    """Relative ``[x, y, w, h]`` envelope of each polyline's points (FiftyOne's
    ``Polyline.to_detection`` box, which its R-tree prefilters pairs with)."""
    boxes = np.zeros((len(points), 4))
    for k, shapes in enumerate(points):
        xy = [p for shape in shapes for p in shape]
        if xy:
            (x0, y0), (x1, y1) = np.min(xy, axis=0), np.max(xy, axis=0)
            boxes[k] = (x0, y0, x1 - x0, y1 - y0)
    return boxes


def _polygon_areas(
    points: Sequence[Any], images: Images, sample: np.ndarray
) -> np.ndarray:
    """Polygon areas in pixels, as ``sizes`` computes them for its size views."""
    return np.array(
        [
            polygon_area(shapes, images.widths[i], images.heights[i])
            for shapes, i in zip(points, sample.tolist(), strict=True)
        ],
        dtype=float,
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
