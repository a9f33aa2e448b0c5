"""The predictions container shared by every model adapter, the merger and the SDK."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from .rotated import rbox_envelopes, regularize

#: ``Predictions.tile_index`` of detections that come from the full-image pass.
FULL_IMAGE = -1


@dataclass
class Predictions:
    """Detections of one image (or one tile), with optional instance masks.

    Attributes:
        boxes: ``(N, 4)`` float32 ``xyxy`` boxes in pixels of the image they
            belong to (tile pixels inside a model adapter, full-image pixels
            after slicing).
        scores: ``(N,)`` float32 confidences.
        class_ids: ``(N,)`` int64 class ids; ``class_names`` maps them to labels.
        class_names: id -> label of the model that made the detections.
        masks: ``None`` when the model does not segment; otherwise one bool
            array per detection covering exactly ``mask_boxes[i]`` (so masks stay
            cropped: memory grows with object size, not image size).
        mask_boxes: ``(N, 4)`` int32 ``xyxy`` pixel boxes (``x1``/``y1``
            exclusive) that the masks cover; ``None`` without masks.
        tile_index: ``(N,)`` int32 index of the tile each detection came from,
            or ``FULL_IMAGE`` for the full-image pass.
        truncated: ``(N,)`` bool, whether the detection touches an interior
            tile edge, i.e. the model may have seen only part of the object.
        rboxes: ``None`` for axis-aligned detections; for oriented-box (OBB)
            models ``(N, 5)`` float64 rotated boxes ``(cx, cy, w, h, angle)``
            in pixels (see ``rotated``). ``boxes`` then holds each rotated
            box's envelope (clipped to the tile), so candidates, shifting and
            truncation work on envelopes; merging compares the rotated boxes.

    Example::

        >>> import numpy as np
        >>> p = Predictions.from_arrays([[10, 10, 20, 30]], [0.9], [0], {0: "car"})
        >>> len(p), p.labels
        (1, ['car'])
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    class_names: dict[int, str] = field(default_factory=dict)
    masks: list[np.ndarray] | None = None
    mask_boxes: np.ndarray | None = None
    tile_index: np.ndarray | None = None
    truncated: np.ndarray | None = None
    rboxes: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.boxes)
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(n, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(n)
        self.class_ids = np.asarray(self.class_ids, dtype=np.int64).reshape(n)
        if self.tile_index is None:
            self.tile_index = np.full(n, FULL_IMAGE, dtype=np.int32)
        else:
            self.tile_index = np.asarray(self.tile_index, dtype=np.int32).reshape(n)
        if self.truncated is None:
            self.truncated = np.zeros(n, dtype=bool)
        else:
            self.truncated = np.asarray(self.truncated, dtype=bool).reshape(n)
        if self.masks is not None:
            if self.mask_boxes is None:
                raise ValueError("masks need mask_boxes (the pixel box each covers)")
            self.mask_boxes = np.asarray(self.mask_boxes, dtype=np.int32).reshape(n, 4)
            if len(self.masks) != n:
                raise ValueError(f"{len(self.masks)} masks for {n} detections")
        if self.rboxes is not None:
            self.rboxes = np.asarray(self.rboxes, dtype=np.float64).reshape(n, 5)

    @classmethod
    def from_arrays(
        cls,
        boxes: Sequence | np.ndarray,
        scores: Sequence | np.ndarray,
        class_ids: Sequence | np.ndarray,
        class_names: dict[int, str] | None = None,
    ) -> Predictions:
        """Builds box-only predictions from array-likes."""
        return cls(
            boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
            scores=scores,
            class_ids=class_ids,
            class_names=dict(class_names or {}),
        )

    @classmethod
    def from_rotated(
        cls,
        rboxes: Sequence | np.ndarray,
        scores: Sequence | np.ndarray,
        class_ids: Sequence | np.ndarray,
        class_names: dict[int, str] | None = None,
        clip_wh: tuple[float, float] | None = None,
    ) -> Predictions:
        """Rotated-box predictions from ``(N, 5)`` ``(cx, cy, w, h, angle)`` pixels.

        Angles are regularized to ``[0, pi/2)``; ``boxes`` become the
        envelopes, clipped to ``clip_wh`` (the tile) when given.

        Example::

            >>> p = Predictions.from_rotated([[10, 10, 8, 2, np.pi / 2]], [0.9], [0])
            >>> p.boxes.tolist(), p.rboxes.round(3).tolist()
            ([[9.0, 6.0, 11.0, 14.0]], [[10.0, 10.0, 2.0, 8.0, 0.0]])
        """
        rboxes = regularize(rboxes)
        boxes = rbox_envelopes(rboxes)
        if clip_wh is not None:
            boxes = boxes.clip(0, [clip_wh[0], clip_wh[1], clip_wh[0], clip_wh[1]])
        return cls(
            boxes=boxes,
            scores=scores,
            class_ids=class_ids,
            class_names=dict(class_names or {}),
            rboxes=rboxes,
        )

    @classmethod
    def empty(
        cls,
        class_names: dict[int, str] | None = None,
        with_masks: bool = False,
        rotated: bool = False,
    ) -> Predictions:
        """Predictions with no detections."""
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros(0, np.float32),
            class_ids=np.zeros(0, np.int64),
            class_names=dict(class_names or {}),
            masks=[] if with_masks else None,
            mask_boxes=np.zeros((0, 4), np.int32) if with_masks else None,
            rboxes=np.zeros((0, 5)) if rotated else None,
        )

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def has_masks(self) -> bool:
        """Whether the detections carry instance masks."""
        return self.masks is not None

    @property
    def rotated(self) -> bool:
        """Whether the detections are rotated boxes (``rboxes``)."""
        return self.rboxes is not None

    @property
    def labels(self) -> list[str]:
        """Class label of each detection (the id as text when unnamed)."""
        return [self.class_names.get(int(c), str(int(c))) for c in self.class_ids]

    @property
    def areas(self) -> np.ndarray:
        """Box areas in square pixels."""
        wh = np.clip(self.boxes[:, 2:] - self.boxes[:, :2], 0, None)
        return wh[:, 0] * wh[:, 1]

    def select(self, index: np.ndarray | Sequence[int] | slice) -> Predictions:
        """The detections at ``index`` (a bool mask, integer indices or a slice)."""
        idx = np.arange(len(self))[index]
        return replace(
            self,
            boxes=self.boxes[idx],
            scores=self.scores[idx],
            class_ids=self.class_ids[idx],
            masks=None if self.masks is None else [self.masks[i] for i in idx],
            mask_boxes=None if self.mask_boxes is None else self.mask_boxes[idx],
            tile_index=self.tile_index[idx],
            truncated=self.truncated[idx],
            rboxes=None if self.rboxes is None else self.rboxes[idx],
        )

    def shifted(self, dx: int, dy: int) -> Predictions:
        """The same detections moved by ``(dx, dy)`` pixels (tile -> image)."""
        offset = np.array([dx, dy, dx, dy])
        return replace(
            self,
            boxes=self.boxes + offset.astype(np.float32),
            mask_boxes=None
            if self.mask_boxes is None
            else self.mask_boxes + offset.astype(np.int32),
            rboxes=None
            if self.rboxes is None
            else self.rboxes + np.array([dx, dy, 0.0, 0.0, 0.0]),
        )

    def as_rotated(self) -> Predictions:
        """These detections with rotated boxes (axis-aligned boxes get angle 0).

        Example::

            >>> Predictions.from_arrays([[0, 0, 4, 2]], [1], [0]).as_rotated().rboxes.tolist()
            [[2.0, 1.0, 4.0, 2.0, 0.0]]
        """
        if self.rotated:
            return self
        centres = (self.boxes[:, :2] + self.boxes[:, 2:]) / 2
        sizes = self.boxes[:, 2:] - self.boxes[:, :2]
        angles = np.zeros((len(self), 1))
        return replace(self, rboxes=np.concatenate([centres, sizes, angles], axis=1))

    def scaled(self, sx: float, sy: float) -> Predictions:
        """The same detections in an image ``sx`` x ``sy`` times larger (a shrunk copy -> the image).

        Masks are resized (nearest neighbour) to their scaled pixel boxes, so
        they stay cropped and aligned with them.
        """
        factor = np.array([sx, sy, sx, sy], dtype=np.float64)
        boxes = (self.boxes * factor).astype(np.float32)
        if self.masks is None:
            return replace(self, boxes=boxes)
        mask_boxes = np.round(self.mask_boxes * factor).astype(np.int32)
        mask_boxes[:, 2:] = np.maximum(mask_boxes[:, 2:], mask_boxes[:, :2] + 1)
        masks = [
            cv2.resize(
                mask.astype(np.uint8),
                (int(x1 - x0), int(y1 - y0)),
                interpolation=cv2.INTER_NEAREST,
            ).astype(bool)
            for mask, (x0, y0, x1, y1) in zip(self.masks, mask_boxes, strict=True)
        ]
        return replace(self, boxes=boxes, masks=masks, mask_boxes=mask_boxes)

    def sorted_by_score(self) -> Predictions:
        """Detections by decreasing score (ties keep their order: deterministic)."""
        return self.select(np.argsort(-self.scores, kind="stable"))

    @staticmethod
    def concatenate(
        parts: Sequence[Predictions], class_names: dict[int, str] | None = None
    ) -> Predictions:
        """Joins predictions of one image; masks (and rotated boxes) are kept only
        if all parts have them."""
        names = dict(class_names or {})
        for p in parts:
            names.update(p.class_names)
        parts = [p for p in parts if len(p)] or list(parts[:1])
        if not parts:
            return Predictions.empty(names)
        with_masks = all(p.has_masks for p in parts)
        rotated = all(p.rotated for p in parts)
        return Predictions(
            boxes=np.concatenate([p.boxes for p in parts]),
            scores=np.concatenate([p.scores for p in parts]),
            class_ids=np.concatenate([p.class_ids for p in parts]),
            class_names=names,
            masks=[m for p in parts for m in p.masks] if with_masks else None,
            mask_boxes=np.concatenate([p.mask_boxes for p in parts])
            if with_masks
            else None,
            tile_index=np.concatenate([p.tile_index for p in parts]),
            truncated=np.concatenate([p.truncated for p in parts]),
            rboxes=np.concatenate([p.rboxes for p in parts]) if rotated else None,
        )
