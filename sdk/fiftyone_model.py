"""Any FiftyOne ``Model`` that returns ``Detections``, behind the engine's ``TileModel``.

FiftyOne models (zoo models, ``fiftyone.utils.ultralytics`` and
``fiftyone.utils.transformers`` wrappers, your own ``fom.Model``) take an RGB
``HxWx3`` uint8 array and return ``fo.Detections`` relative to it. On a tile,
that is relative to the tile: ``labels.predictions_from_detections`` turns it into tile
pixels (masks onto their pixel box) and the engine shifts it into the image.
The adapter lives here rather than in the engine because the engine never
imports FiftyOne.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import fiftyone as fo
import fiftyone.core.models as fom
import numpy as np

from ..slicer import ModelLoadError, Predictions
from ..slicer.models.base import INPUT_SIZE_SETTINGS, OWN_BACKEND, Runtime
from .labels import class_id_map, predictions_from_detections


def is_fiftyone_model(model: Any) -> bool:
    """Whether ``model`` is a FiftyOne ``Model`` (``fiftyone.core.models.Model``)."""
    return isinstance(model, fom.Model)


class FiftyOneTileModel:
    """Runs a FiftyOne ``Model`` on tiles.

    Args:
        model: an image ``fom.Model`` whose predictions are ``fo.Detections``
            (a dict of labels is accepted if it holds exactly one
            ``Detections``).
        class_names: id -> label; by default the model's ``classes`` if it
            has them, else ids are given to labels as they are first seen.

    ``imgsz``, ``device`` and ``half`` do not apply: the model's own
    transforms size its input, and it runs on the device and in the precision
    it was built with (``runtime`` says which, when the model tells).

    Example::

        import fiftyone.utils.ultralytics as fouu
        from ultralytics import YOLO
        from sliced_inference.slicer import predict_sliced

        model = FiftyOneTileModel(fouu.convert_ultralytics_model(YOLO("best.pt")))
        preds = predict_sliced("large.jpg", model, slice_wh=640)
    """

    def __init__(self, model: fom.Model, class_names: dict[int, str] | None = None):
        if not is_fiftyone_model(model):
            raise ModelLoadError(
                f"expected a fiftyone.core.models.Model, got {type(model).__name__}"
            )
        if getattr(model, "media_type", "image") != "image":
            raise ModelLoadError(
                f"{type(model).__name__} is a {model.media_type} model; "
                "sliced inference needs an image model"
            )
        self.model = model
        if class_names is None:
            classes = getattr(model, "classes", None) or []
            class_names = dict(enumerate(str(c) for c in classes))
        self.class_names = dict(class_names)
        # Without a class list, labels get ids as they are first seen.
        self.learns_classes = not self.class_names
        self._class_ids = class_id_map(self.class_names)
        self.default_imgsz = None
        self.segments = False
        self.runtime = _runtime(model)

    @property
    def name(self) -> str:
        """The wrapped model's class name (for run records)."""
        return type(self.model).__name__

    def predict_tiles(
        self,
        tiles: Sequence[np.ndarray],
        *,
        imgsz: int | None = None,
        confidence: float = 0.25,
    ) -> list[Predictions]:
        """Predicts on each tile with ``predict_all``; keeps scores >= ``confidence``."""
        arrays = [np.ascontiguousarray(t) for t in tiles]
        outputs = (
            [self.model.predict(arrays[0])]
            if len(arrays) == 1
            else self.model.predict_all(arrays)
        )
        results = []
        for tile, output in zip(arrays, outputs, strict=True):
            height, width = tile.shape[:2]
            preds = predictions_from_detections(
                _detections(output, self.name), width, height, self._class_ids
            )
            self.segments = self.segments or preds.has_masks
            results.append(preds.select(preds.scores >= confidence))
        self.class_names = {cid: label for label, cid in self._class_ids.items()}
        for preds in results:
            preds.class_names = self.class_names
        return results


def _runtime(model: fom.Model) -> Runtime:
    """What a FiftyOne model runs with (Torch models tell their device)."""
    device = getattr(model, "device", None)
    half = getattr(model, "using_half_precision", None)
    applied = {**OWN_BACKEND, "device": None if device is None else str(device)}
    if half is not None:
        applied["half"] = bool(half)
    where = f"on {applied['device']}" if device is not None else "where it was built"
    return Runtime(
        applied,
        {
            **dict.fromkeys(
                INPUT_SIZE_SETTINGS, "a FiftyOne Model's own transforms size its input"
            ),
            "device": f"a FiftyOne Model runs {where}; build it for another device",
            "half": "a FiftyOne Model runs in the precision it was built with",
        },
    )


def _detections(output: Any, name: str) -> fo.Detections | None:
    if output is None or isinstance(output, fo.Detections):
        return output
    if isinstance(output, dict):
        found = [v for v in output.values() if isinstance(v, fo.Detections)]
        if len(found) == 1:
            return found[0]
    raise ModelLoadError(
        f"{name} returned {type(output).__name__}; sliced inference needs a "
        "model that returns fo.Detections"
    )
