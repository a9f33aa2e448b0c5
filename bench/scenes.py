"""Benchmark images: large synthetic scenes with their ground truth.

The images come from the project's generator (``sliced_inference.synthetic``),
so the benchmark needs no download and its ground truth is exact. Labels are
mapped to the model's class ids once, here, so the evaluator compares ids.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np

from .evaluate import Instances


@dataclass
class BenchImage:
    """One benchmark image.

    Attributes:
        name: e.g. ``"3200x2400 seed 11"``.
        image: ``HxWx3`` uint8 RGB.
        truth: ground truth boxes, class ids (the model's) and cropped masks.
    """

    name: str
    image: np.ndarray
    truth: Instances

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6


def generate(
    seed: int,
    width: int,
    height: int,
    class_names: dict[int, str],
    **generator_options: Any,
) -> BenchImage:
    """A synthetic scene as a ``BenchImage``.

    Args:
        seed: generator seed (the same seed gives the same image).
        width, height: image size in pixels.
        class_names: the model's id -> label map, to turn labels into ids.
        generator_options: passed to ``generate_scene`` where it takes them
            (e.g. an object count or density); others are ignored.
    """
    from sliced_inference.synthetic import generate_scene

    accepted = inspect.signature(generate_scene).parameters
    options = {k: v for k, v in generator_options.items() if k in accepted}
    scene = generate_scene(seed, width, height, **options)
    return BenchImage(
        name=f"{width}x{height} seed {seed}",
        image=np.ascontiguousarray(scene.image),
        truth=scene_truth(scene, class_names),
    )


def scene_truth(scene: Any, class_names: dict[int, str]) -> Instances:
    """A generated scene's ground truth with labels mapped to ``class_names`` ids."""
    ids = {name: cid for cid, name in class_names.items()}
    labels = [str(label) for label in scene.labels]
    unknown = sorted(set(labels) - set(ids))
    if unknown:
        raise ValueError(
            f"labels {unknown} are not classes of the model ({sorted(ids)})"
        )
    boxes = np.asarray(scene.boxes, dtype=np.float64).reshape(-1, 4)
    masks = getattr(scene, "masks", None)
    mask_boxes = None
    if masks is not None:
        masks = [np.asarray(m, dtype=bool) for m in masks]
        mask_boxes = _mask_boxes(scene, boxes, masks)
    return Instances(
        boxes, np.array([ids[x] for x in labels], np.int64), None, masks, mask_boxes
    )


def _mask_boxes(scene: Any, boxes: np.ndarray, masks: list[np.ndarray]) -> np.ndarray:
    """The int box each cropped mask covers: the scene's own, or the object box."""
    own = getattr(scene, "mask_boxes", None)
    if own is not None:
        return np.asarray(own, dtype=np.int64).reshape(-1, 4)
    origin = np.floor(boxes[:, :2]).astype(np.int64)
    sizes = np.array([m.shape[::-1] for m in masks], dtype=np.int64).reshape(-1, 2)
    return np.concatenate([origin, origin + sizes], axis=1)
