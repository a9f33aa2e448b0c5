"""Hugging Face Transformers detectors and instance segmenters behind ``TileModel``.

Any ``AutoModelForObjectDetection`` (DETR, Conditional/Deformable DETR,
RT-DETR, YOLOS, ...) works, and instance segmentation models whose processor
has ``post_process_instance_segmentation``. ``trust_remote_code`` stays off
unless the caller turns it on; a hub token comes from ``HF_TOKEN`` (read by
Transformers itself) or the ``token`` argument, and is never logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelLoadError
from ..predictions import Predictions
from .base import INPUT_SIZE_SETTINGS, select_device, torch_runtime

_SEGMENTATION_SUFFIXES = (
    "ForSegmentation",
    "ForInstanceSegmentation",
    "ForUniversalSegmentation",
)


def load_transformers(
    name_or_path: str | Path,
    *,
    trust_remote_code: bool = False,
    token: str | None = None,
) -> tuple[Any, Any]:
    """Loads ``(model, processor)`` from a local directory or a hub id."""
    import transformers

    source = str(name_or_path)
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if token:
        kwargs["token"] = token
    try:
        config = transformers.AutoConfig.from_pretrained(source, **kwargs)
        processor = transformers.AutoImageProcessor.from_pretrained(source, **kwargs)
        architecture = (config.architectures or [""])[0]
        if architecture.endswith(_SEGMENTATION_SUFFIXES) and hasattr(
            transformers, architecture
        ):
            model_class = getattr(transformers, architecture)
        else:
            model_class = transformers.AutoModelForObjectDetection
        model = model_class.from_pretrained(source, **kwargs)
    except OSError as error:
        where = "directory" if Path(source).exists() else "hub id (no network here?)"
        raise ModelLoadError(
            f"could not load Transformers model from {where} {source!r}: {error}"
        ) from error
    except ValueError as error:
        raise ModelLoadError(
            f"{source!r} is not a supported detector: {error}"
        ) from error
    return model, processor


class TransformersModel:
    """A Transformers detection or instance segmentation model as a ``TileModel``.

    Args:
        model: the model (e.g. ``DetrForObjectDetection``).
        processor: its image processor.
        device: torch device; ``None`` picks cuda, mps or cpu.
        half: run in float16 (GPU only).

    Example::

        >>> from transformers import DetrConfig, DetrForObjectDetection, DetrImageProcessor
        >>> config = DetrConfig(use_pretrained_backbone=False, use_timm_backbone=False)
        >>> model = TransformersModel(DetrForObjectDetection(config), DetrImageProcessor())
        >>> len(model.predict_tiles([np.zeros((64, 64, 3), np.uint8)]))
        1
    """

    def __init__(
        self,
        model: Any,
        processor: Any,
        *,
        device: str | None = None,
        half: bool = False,
    ) -> None:
        self.device = select_device(device)
        # A processor that does not resize gives the model each tile as it is.
        fixed_size = getattr(processor, "do_resize", True) is False
        self.runtime = torch_runtime(
            self.device,
            half,
            dict.fromkeys(
                INPUT_SIZE_SETTINGS if fixed_size else (),
                f"{type(processor).__name__} has do_resize=False: the model gets "
                "each tile at its own size",
            ),
        )
        self.half = self.runtime.applied["half"]
        self.model = model.to(self.device).eval()
        if self.half:
            self.model = self.model.half()
        self.processor = processor
        self.segments = type(model).__name__.endswith(_SEGMENTATION_SUFFIXES)
        if self.segments and not hasattr(
            processor, "post_process_instance_segmentation"
        ):
            raise ModelLoadError(
                f"{type(processor).__name__} has no post_process_instance_segmentation"
            )
        self.class_names = {int(k): str(v) for k, v in model.config.id2label.items()}
        self.default_imgsz = None  # the processor's own size
        #: what runs the network, and with what numbers (for the run record)
        self.backend = "torch"
        self.precision = "fp16" if self.half else "fp32"

    def predict_tiles(
        self,
        tiles: Sequence[np.ndarray],
        *,
        imgsz: int | None = None,
        confidence: float = 0.25,
    ) -> list[Predictions]:
        """Predicts on same-shaped RGB tiles; see ``TileModel``."""
        import torch

        if not len(tiles):
            return []
        inputs = self.processor(
            images=list(tiles), return_tensors="pt", **self._size_override(imgsz)
        ).to(self.device)
        if self.half:
            inputs["pixel_values"] = inputs["pixel_values"].half()
        with torch.inference_mode():
            outputs = self.model(**inputs)
        sizes = [t.shape[:2] for t in tiles]
        if self.segments:
            results = self.processor.post_process_instance_segmentation(
                outputs, threshold=confidence, target_sizes=sizes
            )
            return [self._instances(r) for r in results]
        results = self.processor.post_process_object_detection(
            outputs, threshold=confidence, target_sizes=sizes
        )
        return [
            Predictions(
                r["boxes"].float().cpu().numpy(),
                r["scores"].float().cpu().numpy(),
                r["labels"].cpu().numpy(),
                self.class_names,
            )
            for r in results
        ]

    def _size_override(self, imgsz: int | None) -> dict[str, Any]:
        """Processor ``size`` for an input size override, in the processor's own terms."""
        if imgsz is None:
            return {}
        size = getattr(self.processor, "size", None) or {}
        keys = size.keys() if isinstance(size, dict) else vars(size).keys()
        if "height" in keys and "width" in keys:
            return {"size": {"height": imgsz, "width": imgsz}}
        return {"size": {"shortest_edge": imgsz, "longest_edge": imgsz}}

    def _instances(self, result: dict[str, Any]) -> Predictions:
        """A segment-id map and its segments' info -> masks cropped to their boxes."""
        segmentation = result["segmentation"]
        infos = result.get("segments_info") or []
        if segmentation is None or not infos:
            return Predictions.empty(self.class_names, with_masks=True)
        ids = segmentation.cpu().numpy()
        boxes, scores, labels, masks = [], [], [], []
        for info in infos:
            full = ids == info["id"]
            rows, cols = np.flatnonzero(full.any(1)), np.flatnonzero(full.any(0))
            if not len(rows):
                continue
            x0, y0, x1, y1 = cols[0], rows[0], cols[-1] + 1, rows[-1] + 1
            boxes.append([x0, y0, x1, y1])
            masks.append(full[y0:y1, x0:x1].copy())
            scores.append(info["score"])
            labels.append(info["label_id"])
        if not boxes:
            return Predictions.empty(self.class_names, with_masks=True)
        return Predictions(
            np.array(boxes, np.float32),
            scores,
            labels,
            self.class_names,
            masks=masks,
            mask_boxes=np.array(boxes, np.int32),
        )
