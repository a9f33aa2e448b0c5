"""Sliced and full-image prediction of one image: tile, predict, shift, merge."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError
from .images import load_image, to_rgb
from .merge import MergeConfig, merge_detections
from .models import TileModel, load_model
from .predictions import FULL_IMAGE, Predictions
from .tiles import (
    Overlap,
    SliceWH,
    interior_edges,
    normalize_slice_wh,
    overlap_pixels,
    tile_boxes,
)

#: A detection within this many pixels of an interior tile edge counts as cut by it.
EDGE_MARGIN = 2.0


@dataclass(frozen=True)
class SliceOptions:
    """Every setting of a sliced run, validated once when built.

    Attributes:
        slice_wh: tile size in pixels, an int or ``(width, height)``.
        overlap: ratio in ``[0, 1)`` (float or pair) or pixels (int or pair).
        imgsz: model input size for tiles; ``None`` runs each tile at its own
            resolution, so small objects are not shrunk again.
        full_image_pass: also predict on the whole image and merge, which
            helps objects larger than a tile.
        full_image_imgsz: input size of that pass; ``None`` = the model's own.
        batch_size: tiles per forward pass (all of one shape).
        confidence: minimum score kept.
        classes: labels (or ids) to keep; ``None`` keeps all.
        max_detections: most detections per image after merging (best first).
        merge: how duplicates across tiles are merged.

    Example::

        >>> SliceOptions(slice_wh=512, overlap=0.25).slice_wh
        (512, 512)
    """

    slice_wh: SliceWH = 640
    overlap: Overlap = 0.2
    imgsz: int | None = None
    full_image_pass: bool = False
    full_image_imgsz: int | None = None
    batch_size: int = 1
    confidence: float = 0.25
    classes: Sequence[str | int] | None = None
    max_detections: int | None = None
    merge: MergeConfig = field(default_factory=MergeConfig)

    def __post_init__(self) -> None:
        slice_wh = normalize_slice_wh(self.slice_wh)
        object.__setattr__(self, "slice_wh", slice_wh)
        overlap_pixels(self.overlap, slice_wh)  # validates
        if isinstance(self.overlap, list):
            object.__setattr__(self, "overlap", tuple(self.overlap))
        if isinstance(self.merge, str):
            object.__setattr__(self, "merge", MergeConfig(strategy=self.merge))
        elif isinstance(self.merge, dict):
            object.__setattr__(self, "merge", MergeConfig(**self.merge))
        check_common_options(self.confidence, self.batch_size, self.max_detections)
        for name in ("imgsz", "full_image_imgsz"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, (int, np.integer)) or value <= 0
            ):
                raise ConfigError(
                    f"{name} must be a positive int or None, got {value!r}"
                )
        if self.classes is not None:
            object.__setattr__(self, "classes", tuple(self.classes))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly settings, for run records."""
        return asdict(self)


def check_common_options(
    confidence: float, batch_size: int, max_detections: int | None
) -> None:
    """Validates the options sliced and full-image runs share."""
    if not isinstance(confidence, (int, float)) or not 0.0 <= confidence <= 1.0:
        raise ConfigError(f"confidence must be in [0, 1], got {confidence!r}")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive int, got {batch_size!r}")
    if max_detections is not None and max_detections < 1:
        raise ConfigError(
            f"max_detections must be positive or None, got {max_detections!r}"
        )


def predict_sliced(
    image: np.ndarray | str | Path,
    model: Any,
    options: SliceOptions | None = None,
    **overrides: Any,
) -> Predictions:
    """Sliced prediction on one image: tiles, per-tile predictions, shift, merge.

    Args:
        image: an RGB ``HxWx3`` array (see ``images.to_rgb`` for other layouts)
            or an image path.
        model: anything ``load_model`` accepts; load it once with
            ``load_model`` when predicting on many images.
        options: ``SliceOptions``; keyword ``overrides`` replace its fields.

    Returns:
        merged ``Predictions`` in full-image pixels, best first.

    Example::

        >>> model = load_model("models/small-objects-det.pt")
        >>> preds = predict_sliced("large.jpg", model, slice_wh=640, overlap=0.2)  # doctest: +SKIP
    """
    options = _options(options, overrides)
    model = load_model(model)
    rgb = _as_rgb(image)
    height, width = rgb.shape[:2]
    tiles = tile_boxes((width, height), options.slice_wh, options.overlap)
    parts = list(_predict_tiles(rgb, tiles, model, options))
    if options.full_image_pass:
        parts.append(
            _predict_whole(rgb, model, options.full_image_imgsz, options.confidence)
        )
    preds = Predictions.concatenate(parts, model.class_names)
    preds = keep_classes(preds, options.classes)
    merged = merge_detections(
        preds, tiles, (width, height), options.merge, options.slice_wh
    )
    return _best(merged, options.max_detections)


def predict_full_image(
    image: np.ndarray | str | Path,
    model: Any,
    *,
    imgsz: int | None = None,
    confidence: float = 0.25,
    classes: Sequence[str | int] | None = None,
    max_detections: int | None = None,
) -> Predictions:
    """The baseline: one prediction on the whole image, shrunk to the model's input size.

    ``imgsz`` raises the input resolution (e.g. 1280) instead of slicing.
    """
    check_common_options(confidence, 1, max_detections)
    model = load_model(model)
    rgb = _as_rgb(image)
    preds = _predict_whole(rgb, model, imgsz, confidence)
    return _best(keep_classes(preds, classes).sorted_by_score(), max_detections)


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
    image: np.ndarray, tiles: np.ndarray, batch_size: int
) -> Iterator[tuple[np.ndarray, list[np.ndarray]]]:
    """Yields ``(tile_indices, crops)``; crops are views of one shape, never copies."""
    for start in range(0, len(tiles), batch_size):
        index = np.arange(start, min(start + batch_size, len(tiles)))
        yield index, [image[y0:y1, x0:x1] for x0, y0, x1, y1 in tiles[index]]


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
    image: np.ndarray, tiles: np.ndarray, model: TileModel, options: SliceOptions
) -> Iterator[Predictions]:
    height, width = image.shape[:2]
    interior = interior_edges(tiles, (width, height))
    batches = list(iter_tile_batches(image, tiles, options.batch_size))
    crops = (crops for _, crops in batches)
    if hasattr(model, "predict_batches"):
        outputs = model.predict_batches(
            crops, imgsz=options.imgsz, confidence=options.confidence
        )
    else:
        outputs = (
            model.predict_tiles(c, imgsz=options.imgsz, confidence=options.confidence)
            for c in crops
        )
    for (index, _), batch_outputs in zip(batches, outputs, strict=True):
        for t, preds in zip(index, batch_outputs, strict=True):
            preds.tile_index = np.full(len(preds), t, dtype=np.int32)
            preds.truncated = mark_truncated(preds, tiles[t], interior[t])
            yield preds.shifted(int(tiles[t, 0]), int(tiles[t, 1]))


def _predict_whole(
    image: np.ndarray, model: TileModel, imgsz: int | None, confidence: float
) -> Predictions:
    imgsz = imgsz or getattr(model, "default_imgsz", None)
    (preds,) = model.predict_tiles([image], imgsz=imgsz, confidence=confidence)
    preds.tile_index = np.full(len(preds), FULL_IMAGE, dtype=np.int32)
    preds.truncated = np.zeros(len(preds), dtype=bool)
    return preds


def _best(preds: Predictions, max_detections: int | None) -> Predictions:
    if max_detections is None or len(preds) <= max_detections:
        return preds
    return preds.sorted_by_score().select(slice(0, max_detections))


def _as_rgb(image: np.ndarray | str | Path) -> np.ndarray:
    if isinstance(image, (str, Path)):
        return load_image(image)
    return to_rgb(image)


def _options(options: SliceOptions | None, overrides: dict[str, Any]) -> SliceOptions:
    if options is None:
        return SliceOptions(**overrides)
    if overrides:
        return SliceOptions(**{**options.__dict__, **overrides})
    return options
