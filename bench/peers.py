"""The three tools behind one small interface: ours, SAHI and supervision.

Each tool has three steps, so that only the tool's own work is timed:

- ``prepare(image_rgb)``: untimed; the input the tool's users would hand it
  (supervision gets BGR, as ``cv2.imread`` gives it to its users, because its
  callback feeds Ultralytics, which wants BGR arrays).
- ``run(prepared)``: timed; the tool's public call, returning its own result
  objects (``Predictions``, SAHI's ``PredictionResult``, ``sv.Detections``).
- ``convert(result)``: untimed; the result as ``bench.evaluate.Instances``
  (boxes, scores, class ids and masks cropped to their boxes), so one evaluator
  scores all three.

``matched`` settings make the tools do the same work: the same tiles (ours are
fed to the peers, see ``same_tiles``), model, per-tile input size (the slice
size), confidence, per-tile NMS, NMS IoU 0.5 per class for merging and no
full-image pass. ``default`` settings keep each tool's own merging defaults
(ours: provenance; SAHI: GREEDYNMM/IOS 0.5 plus a full-image pass;
supervision: NMS IoU 0.5) and its own tile placement.

Never import ``sahi.utils.fiftyone`` or ``sahi.predict.predict_fiftyone``:
importing them runs ``pkill mongod``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from sliced_inference.slicer import (
    MergeConfig,
    Predictions,
    SliceOptions,
    load_model,
    predict_sliced,
    tile_boxes,
)

from .evaluate import Instances


@dataclass(frozen=True)
class Settings:
    """What every tool is asked to do.

    Attributes:
        slice_wh: square tile size in pixels, also each tile's model input size.
        overlap: overlap ratio between neighbouring tiles.
        confidence: minimum score.
        iou: IoU threshold of the matched merge (NMS).
        batch_size: tiles per model call, the same for every tool.
        device: torch device (``cpu`` or ``cuda``).
        threads: torch CPU threads for every tool, pinned before each call
            (Ultralytics' predictor resets it to ``cpu_count - 1`` process-wide
            when it sets up, which would slow every tool in the process).
        matched: matched merge settings (True) or each tool's defaults (False).
    """

    slice_wh: int = 640
    overlap: float = 0.2
    confidence: float = 0.25
    iou: float = 0.5
    batch_size: int = 1
    device: str = "cpu"
    threads: int = 0
    matched: bool = True

    def pin_threads(self) -> None:
        """Sets torch's CPU thread count to ``threads`` (all cores when 0)."""
        import os

        import torch

        wanted = self.threads or os.cpu_count() or 1
        if torch.get_num_threads() != wanted:
            torch.set_num_threads(wanted)

    @property
    def overlap_px(self) -> int:
        """The overlap in pixels, rounded as SAHI and we do (``int(ratio * size)``)."""
        return int(self.overlap * self.slice_wh)

    @property
    def label(self) -> str:
        """``matched`` or ``default``."""
        return "matched" if self.matched else "default"


class Tool(Protocol):
    """A sliced-inference tool under test."""

    name: str

    def prepare(self, image_rgb: np.ndarray) -> Any:
        """The input in the form the tool's users hand it (untimed)."""
        ...

    def run(self, prepared: Any) -> Any:
        """The tool's own sliced prediction on one image (timed)."""
        ...

    def convert(self, result: Any) -> Instances:
        """The result for the evaluator (untimed)."""
        ...


class Ours:
    """``sliced_inference.slicer.predict_sliced`` with a loaded model."""

    name = "ours"

    def __init__(
        self, model_path: str | Path, settings: Settings, shared: dict | None = None
    ) -> None:
        self.model = _shared(
            shared,
            ("ours", str(model_path), settings.device),
            lambda: load_model(str(model_path), device=settings.device),
        )
        merge = (
            MergeConfig(strategy="nms", metric="iou", threshold=settings.iou)
            if settings.matched
            else MergeConfig()
        )
        self.options = SliceOptions(
            slice_wh=settings.slice_wh,
            overlap=settings.overlap,
            imgsz=None,  # each tile at its own resolution = the slice size
            full_image_pass=False,
            batch_size=settings.batch_size,
            confidence=settings.confidence,
            merge=merge,
        )

    def prepare(self, image_rgb: np.ndarray) -> np.ndarray:
        return image_rgb

    def run(self, prepared: np.ndarray) -> Predictions:
        return predict_sliced(prepared, self.model, self.options)

    def convert(self, result: Predictions) -> Instances:
        return Instances(
            result.boxes,
            result.class_ids,
            result.scores,
            result.masks,
            result.mask_boxes,
        )


class Sahi:
    """``sahi.predict.get_sliced_prediction`` with SAHI's Ultralytics model."""

    name = "sahi"

    def __init__(
        self, model_path: str | Path, settings: Settings, shared: dict | None = None
    ) -> None:
        from sahi import AutoDetectionModel

        self.settings = settings
        self.model = _shared(
            shared,
            ("sahi", str(model_path), settings.device, settings.confidence),
            lambda: AutoDetectionModel.from_pretrained(
                model_type="ultralytics",
                model_path=str(model_path),
                confidence_threshold=settings.confidence,
                device=settings.device,
                image_size=settings.slice_wh,
            ),
        )
        if settings.matched:
            self.kwargs: dict[str, Any] = dict(
                perform_standard_pred=False,
                postprocess_type="NMS",
                postprocess_match_metric="IOU",
                postprocess_match_threshold=settings.iou,
                postprocess_class_agnostic=False,
            )
        else:
            self.kwargs = {}  # GREEDYNMM / IOS 0.5 + full-image pass

    def prepare(self, image_rgb: np.ndarray) -> np.ndarray:
        return image_rgb

    def run(self, prepared: np.ndarray) -> Any:
        from sahi.predict import get_sliced_prediction

        s = self.settings
        with same_tiles_in_sahi(s) if s.matched else contextlib.nullcontext():
            return get_sliced_prediction(
                prepared,
                self.model,
                slice_height=s.slice_wh,
                slice_width=s.slice_wh,
                overlap_height_ratio=s.overlap,
                overlap_width_ratio=s.overlap,
                batch_size=s.batch_size,
                verbose=0,
                **self.kwargs,
            )

    def convert(self, result: Any) -> Instances:
        objects = result.object_prediction_list
        boxes = np.array([o.bbox.to_xyxy() for o in objects], float).reshape(-1, 4)
        scores = np.array([float(o.score.value) for o in objects])
        class_ids = np.array([int(o.category.id) for o in objects], np.int64)
        if not objects or objects[0].mask is None:
            return Instances(boxes, class_ids, scores)
        crops = [polygons_to_crop(o.mask.segmentation) for o in objects]
        return Instances(
            boxes,
            class_ids,
            scores,
            [c[0] for c in crops],
            np.array([c[1] for c in crops]).reshape(-1, 4),
        )


class Supervision:
    """``sv.InferenceSlicer`` with a callback running the same YOLO model.

    Args:
        compact_masks: supervision's own memory saver (masks as crop RLE);
            off by default, as in supervision.
    """

    name = "supervision"

    def __init__(
        self,
        model_path: str | Path,
        settings: Settings,
        shared: dict | None = None,
        compact_masks: bool = False,
    ) -> None:
        import supervision as sv
        from ultralytics import YOLO

        self.settings = settings
        self.yolo = _shared(
            shared, ("supervision", str(model_path)), lambda: YOLO(str(model_path))
        )
        if compact_masks:
            self.name = "supervision-compact"
        predict = dict(
            imgsz=settings.slice_wh,
            conf=settings.confidence,
            device=settings.device,
            verbose=False,
        )

        def one(tile: np.ndarray) -> Any:
            return sv.Detections.from_ultralytics(self.yolo.predict(tile, **predict)[0])

        def many(tiles: list[np.ndarray]) -> list[Any]:
            results = self.yolo.predict(tiles, **predict)
            return [sv.Detections.from_ultralytics(r) for r in results]

        slicer_class = our_tiles_slicer() if settings.matched else sv.InferenceSlicer
        self.slicer = slicer_class(
            callback=many if settings.batch_size > 1 else one,
            slice_wh=settings.slice_wh,
            overlap_wh=settings.overlap_px,
            overlap_filter="non_max_suppression",
            iou_threshold=settings.iou,
            overlap_metric="IOU",
            thread_workers=1,
            batch_size=settings.batch_size,
            compact_masks=compact_masks,
        )

    def prepare(self, image_rgb: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(image_rgb[..., ::-1])

    def run(self, prepared: np.ndarray) -> Any:
        return self.slicer(prepared)

    def convert(self, result: Any) -> Instances:
        boxes = np.asarray(result.xyxy, float).reshape(-1, 4)
        scores = np.asarray(result.confidence, float).reshape(-1)
        class_ids = np.asarray(result.class_id, np.int64).reshape(-1)
        if result.mask is None:
            return Instances(boxes, class_ids, scores)
        masks, mask_boxes = [], []
        compact = not isinstance(result.mask, np.ndarray)
        for i in range(len(result)):
            if compact:
                x0, y0 = (int(v) for v in result.mask.offsets[i])
                mask = result.mask.crop(i)
                box = (x0, y0, x0 + mask.shape[1], y0 + mask.shape[0])
            else:
                mask, box = dense_to_crop(result.mask[i])
            masks.append(mask)
            mask_boxes.append(box)
        return Instances(
            boxes, class_ids, scores, masks, np.array(mask_boxes).reshape(-1, 4)
        )


def _our_offsets(resolution_wh: tuple[int, int], slice_wh: Any, overlap_wh: Any) -> Any:
    """supervision's offset generator, replaced by our tile placement."""
    overlap = (overlap_wh[0], overlap_wh[1])
    return tile_boxes(resolution_wh, (slice_wh[0], slice_wh[1]), overlap)


@functools.cache
def our_tiles_slicer() -> type:
    """An ``sv.InferenceSlicer`` subclass that slices with our tile boxes."""
    import supervision as sv

    class OurTilesSlicer(sv.InferenceSlicer):
        """``InferenceSlicer`` whose tiles are ours (same count, evenly spread)."""

        _generate_offset = staticmethod(_our_offsets)

    return OurTilesSlicer


@contextlib.contextmanager
def same_tiles_in_sahi(settings: Settings) -> Iterator[None]:
    """Makes SAHI slice with our tile boxes (its ``get_slice_bboxes`` patched)."""
    import sahi.slicing

    original = sahi.slicing.get_slice_bboxes

    def ours(image_height: int, image_width: int, **_: Any) -> list[list[int]]:
        boxes = tile_boxes(
            (image_width, image_height), settings.slice_wh, settings.overlap
        )
        return boxes.tolist()

    sahi.slicing.get_slice_bboxes = ours
    try:
        yield
    finally:
        sahi.slicing.get_slice_bboxes = original


def polygons_to_crop(
    polygons: list[list[float]],
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """SAHI's COCO polygons as a cropped bool mask, rasterised as SAHI's ``bool_mask`` does."""
    points = [np.array(p).reshape(-1, 2).round().astype(np.int64) for p in polygons]
    points = [p for p in points if len(p)]
    if not points:
        return np.zeros((0, 0), bool), (0, 0, 0, 0)
    every = np.concatenate(points)
    x0, y0 = every.min(axis=0)
    x1, y1 = every.max(axis=0) + 1
    canvas = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(canvas, [(p - (x0, y0)).astype(np.int32) for p in points], (1,))
    return canvas.astype(bool), (int(x0), int(y0), int(x1), int(y1))


def dense_to_crop(mask: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A full-image bool mask cut down to the box of its pixels."""
    rows = np.flatnonzero(mask.any(axis=1))
    if not len(rows):
        return np.zeros((0, 0), bool), (0, 0, 0, 0)
    cols = np.flatnonzero(mask[rows[0] : rows[-1] + 1].any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return mask[y0:y1, x0:x1].copy(), (int(x0), int(y0), int(x1), int(y1))


def build_tool(
    name: str, model_path: str | Path, settings: Settings, shared: dict | None = None
) -> Tool:
    """``ours``, ``sahi``, ``supervision`` or ``supervision-compact``.

    Tools built with the same ``shared`` dict share their loaded models, so a
    tool with default settings reuses the warm model of its matched twin.
    """
    if name == "ours":
        return Ours(model_path, settings, shared)
    if name == "sahi":
        return Sahi(model_path, settings, shared)
    if name == "supervision":
        return Supervision(model_path, settings, shared)
    if name == "supervision-compact":
        return Supervision(model_path, settings, shared, compact_masks=True)
    raise ValueError(f"unknown tool {name!r}")


def _shared(shared: dict | None, key: tuple, load: Any) -> Any:
    """``load()``, or the model already loaded under ``key`` in ``shared``."""
    if shared is None:
        return load()
    if key not in shared:
        shared[key] = load()
    return shared[key]
