"""A plain function ``tile -> detections`` behind ``TileModel``, like the guide's callbacks."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..predictions import Predictions
from .base import INPUT_SIZE_SETTINGS, Runtime

#: What a callable does not take: it sizes its input and places itself.
_CALLABLE_RUNTIME = Runtime(
    ignored={
        **dict.fromkeys(INPUT_SIZE_SETTINGS, "the callable sizes its own input"),
        "device": "the callable runs wherever it runs its own model",
        "half": "the callable runs in its own precision",
    }
)


class CallableModel:
    """Wraps ``fn(tile) -> detections`` so the engine can slice with it.

    ``fn`` may return our ``Predictions``, a ``supervision.Detections`` (or any
    object with ``xyxy``, ``confidence``, ``class_id`` and optional full-tile
    ``mask``), or a mapping with ``boxes`` (xyxy), ``scores``, ``labels`` and
    optional full-tile ``masks``, all in tile pixels. An oriented-box callback
    returns ``rboxes`` (``(N, 5)`` ``cx, cy, w, h, angle``) instead of
    ``boxes`` (or rotated ``Predictions``), and is wrapped with ``rotated=True``
    so runs write ``Polylines``.

    Args:
        fn: the callback.
        class_names: id -> label; names found in the outputs are added.
        channels: ``"rgb"`` (default) or ``"bgr"`` for callbacks written for
            OpenCV images (``cv2.imread`` order), like the supervision guide's.
        rotated: ``fn`` returns rotated boxes.

    Example::

        >>> def fn(tile):
        ...     return {"boxes": [[1, 1, 5, 5]], "scores": [0.9], "labels": [0]}
        >>> model = CallableModel(fn, class_names={0: "car"})
        >>> model.predict_tiles([np.zeros((8, 8, 3), np.uint8)])[0].labels
        ['car']
    """

    def __init__(
        self,
        fn: Callable[[np.ndarray], Any],
        *,
        class_names: Mapping[int, str] | None = None,
        channels: str = "rgb",
        rotated: bool = False,
    ) -> None:
        if channels not in ("rgb", "bgr"):
            raise ConfigError(f"channels must be 'rgb' or 'bgr', got {channels!r}")
        self.fn = fn
        self.channels = channels
        self.class_names = {int(k): str(v) for k, v in (class_names or {}).items()}
        self.learns_classes = True  # names found in the outputs are added
        self.default_imgsz = None
        self.segments = False
        self.runtime = _CALLABLE_RUNTIME
        self.rotated = rotated

    def predict_tiles(
        self,
        tiles: Sequence[np.ndarray],
        *,
        imgsz: int | None = None,
        confidence: float = 0.25,
    ) -> list[Predictions]:
        """Calls ``fn`` on each tile (``imgsz`` does not apply: ``fn`` sizes its input)."""
        results = []
        for tile in tiles:
            image = (
                np.ascontiguousarray(tile[..., ::-1])
                if self.channels == "bgr"
                else tile
            )
            preds = predictions_from_output(
                self.fn(image), tile.shape[:2], self.class_names
            )
            self.class_names.update(preds.class_names)
            self.segments = self.segments or preds.has_masks
            results.append(preds.select(preds.scores >= confidence))
        return results


def predictions_from_output(
    output: Any, tile_hw: tuple[int, int], class_names: Mapping[int, str] | None = None
) -> Predictions:
    """Converts a callback's output (see ``CallableModel``) to ``Predictions``."""
    names = dict(class_names or {})
    if isinstance(output, Predictions):
        output.class_names = {**names, **output.class_names}
        return output
    if hasattr(output, "xyxy"):
        boxes, scores, class_ids = output.xyxy, output.confidence, output.class_id
        full_masks = getattr(output, "mask", None)
        data = getattr(output, "data", None) or {}
        for cid, name in zip(
            class_ids if class_ids is not None else [],
            data.get("class_name", []),
            strict=False,
        ):
            names.setdefault(int(cid), str(name))
    elif isinstance(output, Mapping) and "rboxes" in output:
        return _rotated_from_mapping(output, tile_hw, names)
    elif isinstance(output, Mapping):
        boxes, scores = output.get("boxes"), output.get("scores")
        class_ids, full_masks = output.get("labels"), output.get("masks")
    else:
        raise TypeError(
            "a slicing callback must return Predictions, supervision Detections or a "
            f"dict with boxes/scores/labels, got {type(output).__name__}"
        )
    boxes = _numpy(boxes, np.float32).reshape(-1, 4)
    n = len(boxes)
    scores = np.ones(n, np.float32) if scores is None else _numpy(scores, np.float32)
    class_ids = (
        np.zeros(n, np.int64) if class_ids is None else _numpy(class_ids, np.int64)
    )
    preds = Predictions(boxes, scores, class_ids, names)
    if full_masks is not None:
        preds.masks, preds.mask_boxes = crop_full_masks(
            _numpy(full_masks, bool), boxes, tile_hw
        )
    return preds


def _rotated_from_mapping(
    output: Mapping, tile_hw: tuple[int, int], names: dict[int, str]
) -> Predictions:
    rboxes = _numpy(output["rboxes"], np.float64).reshape(-1, 5)
    n = len(rboxes)
    scores, class_ids = output.get("scores"), output.get("labels")
    return Predictions.from_rotated(
        rboxes,
        np.ones(n, np.float32) if scores is None else _numpy(scores, np.float32),
        np.zeros(n, np.int64) if class_ids is None else _numpy(class_ids, np.int64),
        names,
        clip_wh=(tile_hw[1], tile_hw[0]),
    )


def crop_full_masks(
    full_masks: np.ndarray, boxes: np.ndarray, tile_hw: tuple[int, int]
) -> tuple[list[np.ndarray], np.ndarray]:
    """Crops tile-sized masks ``(N, H, W)`` to each box rounded out to whole pixels."""
    height, width = tile_hw
    mask_boxes = np.concatenate([np.floor(boxes[:, :2]), np.ceil(boxes[:, 2:])], axis=1)
    mask_boxes = mask_boxes.clip(0, [width, height, width, height]).astype(np.int32)
    masks = [
        m[y0:y1, x0:x1].copy()
        for m, (x0, y0, x1, y1) in zip(full_masks, mask_boxes, strict=True)
    ]
    return masks, mask_boxes


def _numpy(values: Any, dtype: type) -> np.ndarray:
    if hasattr(values, "detach"):  # torch tensors
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=dtype)
