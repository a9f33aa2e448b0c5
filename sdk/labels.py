"""The one place where engine ``Predictions`` and FiftyOne ``Detections`` / ``Polylines`` meet.

FiftyOne boxes are relative ``[x, y, width, height]`` with a top-left origin;
instance masks cover only their box. The engine works in pixels (``xyxy``) with
masks cropped to an integer pixel box. Both directions live here so the
coordinate conventions are decided once:

- ``to_detections``: engine -> FiftyOne. A detection with a mask gets the
  relative box of its integer mask box, so ``mask.shape`` equals the box's
  pixel size and FiftyOne's mask IoU places the mask where the model put it.
- ``to_polylines``: engine rotated boxes (OBB models) -> closed, filled 4-point
  ``fo.Polylines`` (``fo.Polyline.from_rotated_box``), so FiftyOne evaluates
  them with polygon IoU; ``to_labels`` picks one of the two.
- ``predictions_from_detections``: FiftyOne -> engine (for FiftyOne models run on tiles).
  Masks are resized onto the pixel box FiftyOne itself would render them in
  (``eta.core.image.render_instance_mask``: corners truncated to ints).
"""

from __future__ import annotations

from collections.abc import Mapping

import fiftyone as fo
import numpy as np

from ..slicer import Predictions


def relative_box(
    x0: float, y0: float, x1: float, y1: float, width: int, height: int
) -> list[float]:
    """Pixel ``xyxy`` -> FiftyOne's relative ``[x, y, w, h]``, clipped to the image.

    Example::

        >>> relative_box(10, 20, 30, 30, 100, 100)
        [0.1, 0.2, 0.2, 0.1]
    """
    x0, x1 = min(max(x0, 0.0), width), min(max(x1, 0.0), width)
    y0, y1 = min(max(y0, 0.0), height), min(max(y1, 0.0), height)
    return [
        float(x0) / width,
        float(y0) / height,
        float(max(x1 - x0, 0.0)) / width,
        float(max(y1 - y0, 0.0)) / height,
    ]


def to_detections(preds: Predictions, width: int, height: int) -> fo.Detections:
    """Converts an image's ``Predictions`` to ``fo.Detections``.

    Args:
        preds: predictions in pixels of the image (after slicing and merging).
        width: width of the decoded image (EXIF orientation applied), in pixels.
        height: its height.

    Returns:
        ``fo.Detections`` whose detections carry ``confidence``, ``tile`` (the
        tile index, ``-1`` for the full-image pass) and ``truncated`` (touches
        an interior tile edge), plus a mask cropped to the box when the model
        segments.

    Example::

        >>> p = Predictions.from_arrays([[10, 20, 30, 30]], [0.9], [0], {0: "car"})
        >>> d = to_detections(p, 100, 100).detections[0]
        >>> d.label, d.bounding_box, d.tile
        ('car', [0.1, 0.2, 0.2, 0.1], -1)
    """
    labels = preds.labels
    detections = []
    for i in range(len(preds)):
        mask = None
        if preds.masks is not None:
            mask, box = _clipped_mask(
                preds.masks[i], preds.mask_boxes[i], width, height
            )
        if mask is not None:
            bounding_box = relative_box(*box, width, height)
        else:
            bounding_box = relative_box(*preds.boxes[i].tolist(), width, height)
        if bounding_box[2] <= 0 or bounding_box[3] <= 0:
            continue  # wholly outside the image: nothing to show or evaluate
        detections.append(
            fo.Detection(
                label=labels[i],
                bounding_box=bounding_box,
                confidence=float(preds.scores[i]),
                mask=mask,
                tile=int(preds.tile_index[i]),
                truncated=bool(preds.truncated[i]),
            )
        )
    return fo.Detections(detections=detections)


def tile_polylines(tiles: np.ndarray, width: int, height: int) -> fo.Polylines:
    """The tile grid as closed rectangles the App draws over the image (the seams show).

    Args:
        tiles: int ``(T, 4)`` ``xyxy`` tile boxes (``slicer.tile_boxes``).
        width: the image's width in pixels.
        height: its height.

    Returns:
        one unfilled ``fo.Polyline`` labelled ``"tile"`` per tile, with its
        index as ``tile`` (the ``tile`` attribute of the run's detections).

    Example::

        >>> lines = tile_polylines(np.array([[0, 0, 50, 100], [40, 0, 100, 100]]), 100, 100)
        >>> lines.polylines[1].points
        [[(0.4, 0.0), (1.0, 0.0), (1.0, 1.0), (0.4, 1.0)]]
    """
    polylines = []
    for index, (x0, y0, x1, y1) in enumerate(np.asarray(tiles).tolist()):
        a, b = x0 / width, y0 / height
        c, d = x1 / width, y1 / height
        polylines.append(
            fo.Polyline(
                label="tile",
                points=[[(a, b), (c, b), (c, d), (a, d)]],
                closed=True,
                filled=False,
                tile=index,
            )
        )
    return fo.Polylines(polylines=polylines)


def to_polylines(preds: Predictions, width: int, height: int) -> fo.Polylines:
    """Converts an image's rotated-box ``Predictions`` to ``fo.Polylines``.

    Each rotated box becomes a closed, filled 4-point polygon in relative
    coordinates, with ``confidence``, ``tile``, ``truncated`` and ``angle``
    (radians in ``[0, pi/2)``: the turn of the box's ``w`` side from the
    image's x axis towards its y axis, i.e. clockwise as the App shows it).
    Boxes whose envelope lies wholly outside the image are dropped.

    Example::

        >>> p = Predictions.from_rotated([[50, 50, 40, 10, 0.5]], [0.8], [0], {0: "ship"})
        >>> line = to_polylines(p, 100, 100).polylines[0]
        >>> line.label, len(line.points[0]), line.closed, line.filled, line.angle
        ('ship', 4, True, True, 0.5)
    """
    labels = preds.labels
    polylines = []
    for i in range(len(preds)):
        x0, y0, x1, y1 = preds.boxes[i].tolist()
        if min(x1, width) <= max(x0, 0) or min(y1, height) <= max(y0, 0):
            continue  # wholly outside the image: nothing to show or evaluate
        cx, cy, w, h, angle = preds.rboxes[i].tolist()
        polylines.append(
            fo.Polyline.from_rotated_box(
                cx,
                cy,
                w,
                h,
                angle,
                frame_size=(width, height),
                label=labels[i],
                filled=True,
                confidence=float(preds.scores[i]),
                tile=int(preds.tile_index[i]),
                truncated=bool(preds.truncated[i]),
                angle=float(angle),
            )
        )
    return fo.Polylines(polylines=polylines)


def label_type(rotated: bool) -> type:
    """The label list a run writes: ``fo.Polylines`` for rotated boxes, else ``fo.Detections``."""
    return fo.Polylines if rotated else fo.Detections


def to_labels(
    preds: Predictions, width: int, height: int, rotated: bool
) -> fo.Detections | fo.Polylines:
    """``to_polylines`` for a rotated-box model's predictions, ``to_detections`` otherwise.

    Example::

        >>> p = Predictions.from_arrays([[10, 20, 30, 30]], [0.9], [0], {0: "car"})
        >>> type(to_labels(p, 100, 100, rotated=False)).__name__
        'Detections'
    """
    if rotated:
        return to_polylines(preds.as_rotated(), width, height)
    return to_detections(preds, width, height)


def count_labels(labels: fo.Detections | fo.Polylines | None) -> int:
    """How many objects a label list holds."""
    if labels is None:
        return 0
    if isinstance(labels, fo.Polylines):
        return len(labels.polylines)
    return len(labels.detections)


def predictions_from_detections(
    detections: fo.Detections | None,
    width: int,
    height: int,
    class_ids: dict[str, int],
) -> Predictions:
    """Converts ``fo.Detections`` on an image (or tile) of ``width x height`` to pixels.

    Args:
        detections: FiftyOne detections, boxes relative to that image.
        width: the image's width in pixels.
        height: its height.
        class_ids: label -> class id; labels not in it are added (new ids
            after the largest), so ids stay stable across tiles.

    Returns:
        ``Predictions`` in that image's pixels; with masks when every
        detection has one (masks resized onto the box FiftyOne renders them in).

    Example::

        >>> dets = fo.Detections(detections=[fo.Detection(label="car", bounding_box=[0.1, 0.2, 0.2, 0.1], confidence=0.8)])
        >>> predictions_from_detections(dets, 100, 100, {}).boxes.tolist()
        [[10.0, 20.0, 30.0, 30.0]]
    """
    dets = [] if detections is None else list(detections.detections)
    boxes = np.zeros((len(dets), 4), np.float32)
    scores = np.ones(len(dets), np.float32)
    ids = np.zeros(len(dets), np.int64)
    for i, det in enumerate(dets):
        x, y, w, h = det.bounding_box
        boxes[i] = (x * width, y * height, (x + w) * width, (y + h) * height)
        if det.confidence is not None:
            scores[i] = det.confidence
        ids[i] = _class_id(class_ids, det.label)
    names = {cid: label for label, cid in class_ids.items()}
    preds = Predictions(boxes, scores, ids, names)
    if dets and all(det.mask is not None for det in dets):
        masks, mask_boxes = zip(
            *(_mask_on_pixel_box(det, width, height) for det in dets), strict=True
        )
        preds.masks, preds.mask_boxes = list(masks), np.array(mask_boxes, np.int32)
    return preds


def class_id_map(class_names: Mapping[int, str]) -> dict[str, int]:
    """Inverse of a ``class_names`` mapping (label -> id)."""
    return {str(label): int(cid) for cid, label in class_names.items()}


def _class_id(class_ids: dict[str, int], label: str | None) -> int:
    label = str(label)
    if label not in class_ids:
        class_ids[label] = max(class_ids.values(), default=-1) + 1
    return class_ids[label]


def _clipped_mask(
    mask: np.ndarray, box: np.ndarray, width: int, height: int
) -> tuple[np.ndarray | None, tuple[int, int, int, int]]:
    """The mask and its integer box, trimmed to the image; ``None`` if nothing is left."""
    x0, y0, x1, y1 = (int(v) for v in box)
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x1, width), min(y1, height)
    if cx1 <= cx0 or cy1 <= cy0:
        return None, (cx0, cy0, cx1, cy1)
    mask = np.asarray(mask, dtype=bool)[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    return np.ascontiguousarray(mask), (cx0, cy0, cx1, cy1)


def _mask_on_pixel_box(
    det: fo.Detection, width: int, height: int
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    import cv2

    x, y, w, h = det.bounding_box
    # The same truncation FiftyOne uses when it draws or evaluates the mask.
    x0, y0 = int(width * x), int(height * y)
    x1, y1 = int(width * (x + w)), int(height * (y + h))
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
    mask = np.asarray(det.mask).astype(np.uint8)
    if mask.shape != (y1 - y0, x1 - x0):
        mask = cv2.resize(mask, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
    return mask.astype(bool), (x0, y0, x1, y1)
