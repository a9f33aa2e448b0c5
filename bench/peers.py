"""The tools behind one small interface: ours (engine and SDK), SAHI and supervision.

The rows: ``ours`` (the engine, ``backend="auto"``: OpenVINO on a CPU, two
streams), ``ours-1stream`` (the same on one stream, all cores: what SAHI and
supervision do), ``ours-torch`` (the PyTorch backend), ``ours-int8`` (the
opt-in INT8 OpenVINO model, calibrated on each image's first tiles), ``sdk``
(the SDK end to end on a FiftyOne dataset: JPEG decode, inference, merge,
label write, at its default settings), ``sdk-int8`` (the same with
``precision="int8"``: each one-image run calibrates on its image's tiles,
quantized once and then read from the export cache), ``sahi`` (matched settings), ``sahi-default`` (SAHI's
own defaults), ``sahi-openvino`` (SAHI given our exported OpenVINO model,
loaded by Ultralytics as ``YOLO(<dir>)``), ``supervision`` and
``supervision-compact``.

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
import dataclasses
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
    calibrate,
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
    """``sliced_inference.slicer.predict_sliced`` with a loaded model.

    Args:
        backend: ``"auto"`` (OpenVINO on a CPU) or ``"torch"``.
        parallel: ``None``: the engine's default (two streams on a CPU on
            PyTorch, one on OpenVINO); ``False``: one stream.
        precision: ``"fp32"`` or ``"int8"`` (OpenVINO; calibrated on the
            first image it is given, untimed, as a run calibrates on its
            first tiles).
    """

    name = "ours"

    def __init__(
        self,
        model_path: str | Path,
        settings: Settings,
        shared: dict | None = None,
        *,
        backend: str = "auto",
        parallel: bool | None = None,
        precision: str = "fp32",
        name: str = "ours",
    ) -> None:
        self.name = name
        self.model = _shared(
            shared,
            ("ours", str(model_path), settings.device, backend, parallel, precision),
            lambda: _our_model(
                model_path, settings.device, backend, parallel, precision
            ),
        )
        self.options = our_options(settings)

    def prepare(self, image_rgb: np.ndarray) -> np.ndarray:
        # INT8 only: quantized on this image's first tiles, untimed (found in the
        # export cache when the same image comes again).
        calibrate(self.model, [image_rgb], self.options)
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


def our_options(settings: Settings) -> SliceOptions:
    """Our options for ``settings`` (matched: NMS/IoU; default: our own merge)."""
    merge = (
        MergeConfig(strategy="nms", metric="iou", threshold=settings.iou)
        if settings.matched
        else MergeConfig()
    )
    return SliceOptions(
        slice_wh=settings.slice_wh,
        overlap=settings.overlap,
        imgsz=None,  # each tile at its own resolution = the slice size
        full_image_pass=False,
        batch_size=settings.batch_size,
        confidence=settings.confidence,
        merge=merge,
    )


def _our_model(
    model_path: str | Path,
    device: str,
    backend: str,
    parallel: bool | None,
    precision: str = "fp32",
) -> Any:
    model = load_model(
        str(model_path), device=device, backend=backend, precision=precision
    )
    model.parallel = parallel
    return model


class Sdk:
    """``apply_sliced_model`` on a one-image FiftyOne dataset: the user's whole path.

    ``prepare`` writes the image as a JPEG (quality 95) into a temporary
    dataset and computes its metadata, as a user's dataset has it; the timed
    ``run`` is one ``apply_sliced_model`` call on that sample (reading and
    decoding the file, inference, merging, writing the labels and the run
    record), with the SDK's default settings unless matched.
    """

    name = "sdk"

    def __init__(
        self,
        model_path: str | Path,
        settings: Settings,
        shared: dict | None = None,
        *,
        precision: str = "fp32",
        name: str = "sdk",
    ) -> None:
        from ultralytics import YOLO

        self.name = name
        self.field = name.replace("-", "_")  # a field per row: rows share the dataset
        self.model_path = str(model_path)
        self.settings = settings
        self.class_ids = {
            str(v): int(k) for k, v in YOLO(self.model_path).names.items()
        }
        self.folder, self.dataset = _shared(shared, ("sdk-dataset",), _sdk_dataset)
        options = our_options(settings)
        self.keywords = {
            "slice_wh": options.slice_wh,
            "overlap": options.overlap,
            "batch_size": options.batch_size,
            "confidence": options.confidence,
            "merge": options.merge.strategy,
            "merge_metric": options.merge.metric,
            "merge_threshold": options.merge.threshold,
            "device": settings.device,
            "precision": precision,
        }

    def prepare(self, image_rgb: np.ndarray) -> Any:
        import fiftyone as fo

        path = Path(self.folder) / f"{len(self.dataset)}.jpg"
        cv2.imwrite(str(path), image_rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        sample = fo.Sample(filepath=str(path))
        self.dataset.add_sample(sample)
        view = self.dataset.select(sample.id)
        view.compute_metadata()
        return view

    def run(self, view: Any) -> Any:
        from sliced_inference.sdk import apply_sliced_model

        apply_sliced_model(
            view,
            self.model_path,
            self.field,
            overwrite=True,
            progress=False,
            **self.keywords,
        )
        return view

    def convert(self, view: Any) -> Instances:
        from sliced_inference.sdk.labels import predictions_from_detections

        sample = view.first()
        preds = predictions_from_detections(
            sample[self.field],
            sample.metadata.width,
            sample.metadata.height,
            dict(self.class_ids),
        )
        return Instances(
            preds.boxes, preds.class_ids, preds.scores, preds.masks, preds.mask_boxes
        )


def _sdk_dataset() -> tuple[str, Any]:
    """A temporary folder and a non-persistent FiftyOne dataset for the SDK rows."""
    import tempfile

    import fiftyone as fo

    folder = tempfile.mkdtemp(prefix="bench-sdk-")
    return folder, fo.Dataset(persistent=False)


class Sahi:
    """``sahi.predict.get_sliced_prediction`` with SAHI's Ultralytics model.

    ``model_path`` may be a ``.pt`` or an exported OpenVINO directory
    (Ultralytics runs it, as ``YOLO(<dir>)``).
    """

    name = "sahi"

    def __init__(
        self,
        model_path: str | Path,
        settings: Settings,
        shared: dict | None = None,
        name: str = "sahi",
    ) -> None:
        from sahi import AutoDetectionModel

        self.name = name
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
    """A tool by name (see the module docstring for the rows).

    Tools built with the same ``shared`` dict share their loaded models, so a
    tool with default settings reuses the warm model of its matched twin.
    """
    if name == "ours":
        return Ours(model_path, settings, shared)
    if name == "ours-1stream":
        return Ours(model_path, settings, shared, parallel=False, name=name)
    if name == "ours-torch":
        return Ours(model_path, settings, shared, backend="torch", name=name)
    if name == "ours-int8":
        return Ours(model_path, settings, shared, precision="int8", name=name)
    if name in ("sdk", "sdk-int8"):
        defaults = dataclasses.replace(settings, matched=False)
        precision = "int8" if name == "sdk-int8" else "fp32"
        return Sdk(model_path, defaults, shared, precision=precision, name=name)
    if name == "sahi":
        return Sahi(model_path, settings, shared)
    if name == "sahi-default":
        defaults = dataclasses.replace(settings, matched=False)
        return Sahi(model_path, defaults, shared, name=name)
    if name == "sahi-openvino":
        return Sahi(openvino_export(model_path), settings, shared, name=name)
    if name == "supervision":
        return Supervision(model_path, settings, shared)
    if name == "supervision-compact":
        return Supervision(model_path, settings, shared, compact_masks=True)
    raise ValueError(f"unknown tool {name!r}")


def openvino_export(model_path: str | Path) -> Path:
    """Our cached OpenVINO export of ``model_path`` (the one our engine runs)."""
    from ultralytics import YOLO

    from sliced_inference.slicer.models.openvino_network import exported_dir

    return exported_dir(YOLO(str(model_path)))


def _shared(shared: dict | None, key: tuple, load: Any) -> Any:
    """``load()``, or the model already loaded under ``key`` in ``shared``."""
    if shared is None:
        return load()
    if key not in shared:
        shared[key] = load()
    return shared[key]
