"""Cropped instance masks: each covers only its own pixel box, never the whole image."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def union_box(mask_boxes: np.ndarray) -> np.ndarray:
    """The int ``xyxy`` box enclosing all ``mask_boxes`` (``x1``/``y1`` exclusive).

    Example::

        >>> union_box(np.array([[0, 5, 4, 9], [2, 1, 6, 3]])).tolist()
        [0, 1, 6, 9]
    """
    boxes = np.asarray(mask_boxes, dtype=np.int64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2].min(axis=0), boxes[:, 2:].max(axis=0)])


def paste_union(
    masks: Sequence[np.ndarray], mask_boxes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """ORs cropped masks onto the box that encloses them all.

    Args:
        masks: bool arrays, ``masks[i]`` covering exactly ``mask_boxes[i]``.
        mask_boxes: int ``(N, 4)`` ``xyxy`` pixel boxes, ``x1``/``y1`` exclusive.

    Returns:
        the merged bool mask and its int32 box.

    Example::

        >>> a, b = np.ones((2, 2), bool), np.ones((1, 3), bool)
        >>> mask, box = paste_union([a, b], np.array([[0, 0, 2, 2], [1, 2, 4, 3]]))
        >>> box.tolist(), mask.astype(int).tolist()
        ([0, 0, 4, 3], [[1, 1, 0, 0], [1, 1, 0, 0], [0, 1, 1, 1]])
    """
    boxes = np.asarray(mask_boxes, dtype=np.int64).reshape(-1, 4)
    if len(masks) != len(boxes) or not len(boxes):
        raise ValueError(f"need one mask per box, got {len(masks)} for {len(boxes)}")
    box = union_box(boxes)
    canvas = np.zeros((box[3] - box[1], box[2] - box[0]), dtype=bool)
    for mask, (x0, y0, x1, y1) in zip(masks, boxes - box[[0, 1, 0, 1]], strict=True):
        if mask.shape != (y1 - y0, x1 - x0):
            raise ValueError(
                f"mask of shape {mask.shape} does not cover its box "
                f"({y1 - y0}x{x1 - x0} pixels)"
            )
        canvas[y0:y1, x0:x1] |= mask.astype(bool, copy=False)
    return canvas, box.astype(np.int32)
