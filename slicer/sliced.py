"""Sliced and full-image prediction of one image: tile, predict, shift, merge."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError
from .merge import MergeConfig, merge_detections
from .models import BatchedTileModel, TileModel, load_model
from .options import PredictOptions, SliceOptions
from .predictions import FULL_IMAGE, Predictions
from .rasters import ArrayRaster, RasterSource, open_raster
from .tiles import interior_edges, tile_boxes

#: A detection within this many pixels of an interior tile edge counts as cut by it.
EDGE_MARGIN = 2.0
#: Longest side of a whole-image pass on a windowed raster when the model has
#: no input size of its own (it would shrink the image anyway).
WHOLE_IMAGE_MAX_SIDE = 2048

#: What the engine predicts on: an array, an image path or a ``RasterSource``.
ImageInput = np.ndarray | str | Path | RasterSource


def predict_sliced(
    image: ImageInput,
    model: Any,
    options: SliceOptions | None = None,
    **overrides: Any,
) -> Predictions:
    """Sliced prediction on one image: tiles, per-tile predictions, shift, merge.

    Tiles are read from the image as batches are formed, so a raster read in
    windows (a tiled TIFF, BigTIFF or GeoTIFF) is never decoded whole: memory
    holds the tiles in flight and the detections.

    Args:
        image: an RGB ``HxWx3`` array (see ``images.to_rgb`` for other layouts),
            an image path (tiled TIFFs are read in windows, see
            ``rasters.open_raster``) or a ``RasterSource``.
        model: anything ``load_model`` accepts; load it once with
            ``load_model`` when predicting on many images.
        options: ``SliceOptions``; keyword ``overrides`` replace its fields.

    Returns:
        merged ``Predictions`` in full-image pixels, best first.

    Raises:
        ImageError: the image, or one of its stored tiles, cannot be read.

    Example::

        >>> model = load_model("models/small-objects-det.pt")
        >>> preds = predict_sliced("large.jpg", model, slice_wh=640, overlap=0.2)  # doctest: +SKIP
        >>> preds = predict_sliced("scene.tif", model, bands=(4, 3, 2))  # doctest: +SKIP
    """
    options = _options(SliceOptions, options, overrides)
    unmerged = predict_unmerged(image, model, options)
    return _best(unmerged.merged(options.merge), options.max_detections)


@dataclass
class Unmerged:
    """An image's tile (and full-image pass) predictions before merging.

    What ``predict_sliced`` merges; kept apart so that several merge settings
    can be tried on one set of predictions (``merged``), as the settings sweep
    does.

    Attributes:
        predictions: in full-image pixels, with ``tile_index`` and
            ``truncated`` set; ``classes`` already applied.
        tiles: int ``(T, 4)`` ``xyxy`` tile boxes ``tile_index`` refers to.
        image_wh: the image's ``(width, height)``.
        slice_wh: the slice size the tiles were cut at.
    """

    predictions: Predictions
    tiles: np.ndarray
    image_wh: tuple[int, int]
    slice_wh: tuple[int, int]

    def merged(self, config: MergeConfig) -> Predictions:
        """The predictions merged with ``config`` (best first)."""
        return merge_detections(
            self.predictions, self.tiles, self.image_wh, config, self.slice_wh
        )

    def with_full_image(self, full: Predictions) -> Unmerged:
        """These predictions plus a full-image pass's (``tile_index`` ``FULL_IMAGE``)."""
        full = dataclasses.replace(
            full,
            tile_index=np.full(len(full), FULL_IMAGE, dtype=np.int32),
            truncated=np.zeros(len(full), dtype=bool),
        )
        both = Predictions.concatenate([self.predictions, full])
        return dataclasses.replace(self, predictions=both)


def predict_unmerged(
    image: ImageInput,
    model: Any,
    options: SliceOptions | None = None,
    **overrides: Any,
) -> Unmerged:
    """Per-tile predictions shifted into the image, not merged yet.

    Takes the arguments of ``predict_sliced``, whose merge settings and
    ``max_detections`` it leaves to ``Unmerged.merged``.

    Example::

        >>> unmerged = predict_unmerged("large.jpg", model, slice_wh=640)  # doctest: +SKIP
        >>> nms = unmerged.merged(MergeConfig(strategy="nms"))  # doctest: +SKIP
    """
    options = _options(SliceOptions, options, overrides)
    model = load_model(model)
    check_classes(model, options.classes)
    source = open_raster(image, options.bands, options.scaling)
    try:
        return _predict_unmerged(source, model, options)
    finally:
        if source is not image:
            source.close()


def _predict_unmerged(
    source: RasterSource, model: TileModel, options: SliceOptions
) -> Unmerged:
    width, height = source.size
    tiles = tile_boxes((width, height), options.slice_wh, options.overlap)
    parts = list(_predict_tiles(source, tiles, model, options))
    if options.full_image_pass:
        parts.append(
            _predict_whole(source, model, options.full_image_imgsz, options.confidence)
        )
    preds = Predictions.concatenate(parts, model.class_names)
    preds = keep_classes(preds, options.classes)
    return Unmerged(preds, tiles, (width, height), options.slice_wh)


def predict_full_image(
    image: ImageInput,
    model: Any,
    options: PredictOptions | None = None,
    **overrides: Any,
) -> Predictions:
    """The baseline: one prediction on the whole image, shrunk to the model's input size.

    A raster read in windows is shrunk while it is read (from a pyramid level
    when the file has one), to the model's input size, which is what the model
    would have shrunk it to: it is never decoded whole.

    Args:
        image: an RGB ``HxWx3`` array, an image path or a ``RasterSource``.
        model: anything ``load_model`` accepts.
        options: ``PredictOptions`` (``imgsz`` raises the input resolution,
            e.g. 1280, instead of slicing); keyword ``overrides`` replace its
            fields.

    Example::

        >>> preds = predict_full_image("large.jpg", model, imgsz=1280)  # doctest: +SKIP
    """
    options = _options(PredictOptions, options, overrides)
    model = load_model(model)
    check_classes(model, options.classes)
    source = open_raster(image, options.bands, options.scaling)
    try:
        preds = _predict_whole(source, model, options.imgsz, options.confidence)
    finally:
        if source is not image:
            source.close()
    preds = keep_classes(preds, options.classes).sorted_by_score()
    return _best(preds, options.max_detections)


def check_classes(model: TileModel, classes: Sequence[str | int] | None) -> None:
    """Refuses ``classes`` the model never predicts, which would keep nothing.

    Checked against ``model.class_names`` (labels and ids) unless the model
    learns its labels from its outputs (``learns_classes``: callables, FiftyOne
    models without a class list) or has none.

    Raises:
        ConfigError: naming the unknown classes and the model's own.

    Example::

        >>> check_classes(load_model("models/small-objects-det.pt"), ["cars"])
        Traceback (most recent call last):
        ...
        sliced_inference.slicer.errors.ConfigError: classes 'cars' are not labels or class ids of this model; its labels: plane, car, boat, storage-tank
    """
    names = model.class_names
    if classes is None or not names or getattr(model, "learns_classes", False):
        return
    known = {str(label) for label in names.values()} | {str(cid) for cid in names}
    unknown = [c for c in classes if str(c) not in known]
    if unknown:
        raise ConfigError(
            f"classes {', '.join(map(repr, unknown))} are not labels or class ids "
            f"of this model; its labels: {', '.join(map(str, names.values()))}"
        )


def keep_classes(
    preds: Predictions, classes: Sequence[str | int] | None
) -> Predictions:
    """Only the detections whose label or class id is in ``classes`` (all if None)."""
    if classes is None:
        return preds
    wanted = {str(c) for c in classes}
    keep = [
        str(label) in wanted or str(int(cid)) in wanted
        for label, cid in zip(preds.labels, preds.class_ids, strict=False)
    ]
    return preds.select(np.array(keep, dtype=bool))


def iter_tile_batches(
    image: np.ndarray | RasterSource, tiles: np.ndarray, batch_size: int
) -> Iterator[tuple[np.ndarray, list[np.ndarray]]]:
    """Yields ``(tile_indices, crops)``, reading each batch only when it is asked for.

    Crops of an array are views of one shape, never copies; crops of a
    windowed raster are read from the file.
    """
    source = ArrayRaster(image) if isinstance(image, np.ndarray) else image
    for index in batch_indices(len(tiles), batch_size):
        yield index, read_tiles(source, tiles[index])


def batch_indices(count: int, batch_size: int) -> list[np.ndarray]:
    """The tile indices of each batch, in order."""
    return [
        np.arange(start, min(start + batch_size, count))
        for start in range(0, count, batch_size)
    ]


def read_tiles(source: RasterSource, boxes: np.ndarray) -> list[np.ndarray]:
    """The pixels of each ``xyxy`` tile box."""
    return [source.read_window(*(int(v) for v in box)) for box in boxes]


def mark_truncated(
    preds: Predictions, tile: np.ndarray, interior: np.ndarray
) -> np.ndarray:
    """Which detections (in tile pixels) touch one of the tile's interior sides."""
    x0, y0, x1, y1 = tile
    w, h = x1 - x0, y1 - y0
    b = preds.boxes
    near = np.stack(
        [
            b[:, 0] <= EDGE_MARGIN,
            b[:, 1] <= EDGE_MARGIN,
            b[:, 2] >= w - EDGE_MARGIN,
            b[:, 3] >= h - EDGE_MARGIN,
        ],
        axis=1,
    )
    return (near & interior[None, :]).any(axis=1)


def _predict_tiles(
    source: RasterSource, tiles: np.ndarray, model: TileModel, options: SliceOptions
) -> Iterator[Predictions]:
    interior = interior_edges(tiles, source.size)
    batches = batch_indices(len(tiles), options.batch_size)
    # A generator: the model pulls each batch's pixels when it is ready for it.
    crops = (read_tiles(source, tiles[index]) for index in batches)
    if isinstance(model, BatchedTileModel):
        outputs = model.predict_batches(
            crops, imgsz=options.imgsz, confidence=options.confidence
        )
    else:
        outputs = (
            model.predict_tiles(c, imgsz=options.imgsz, confidence=options.confidence)
            for c in crops
        )
    for index, batch_outputs in zip(batches, outputs, strict=True):
        for t, preds in zip(index, batch_outputs, strict=True):
            preds.tile_index = np.full(len(preds), t, dtype=np.int32)
            preds.truncated = mark_truncated(preds, tiles[t], interior[t])
            yield preds.shifted(int(tiles[t, 0]), int(tiles[t, 1]))


def _predict_whole(
    source: RasterSource, model: TileModel, imgsz: int | None, confidence: float
) -> Predictions:
    imgsz = imgsz or model.default_imgsz
    image, (sx, sy) = source.whole_image(imgsz or WHOLE_IMAGE_MAX_SIDE)
    (preds,) = model.predict_tiles([image], imgsz=imgsz, confidence=confidence)
    if (sx, sy) != (1.0, 1.0):
        preds = preds.scaled(sx, sy)
    preds.tile_index = np.full(len(preds), FULL_IMAGE, dtype=np.int32)
    preds.truncated = np.zeros(len(preds), dtype=bool)
    return preds


def _best(preds: Predictions, max_detections: int | None) -> Predictions:
    if max_detections is None or len(preds) <= max_detections:
        return preds
    return preds.sorted_by_score().select(slice(0, max_detections))


def _options(cls: type, options: Any, overrides: dict[str, Any]) -> Any:
    if options is None:
        return cls(**overrides)
    if overrides:
        return dataclasses.replace(options, **overrides)
    return options
