"""Synthetic large images with many small objects, and their exact labels.

A seeded, deterministic generator (numpy and OpenCV only) of aerial-like scenes:
textured backgrounds with clutter, and objects of the classes ``CLASSES``, most
8-48 px, a few of 200 px or more, some touching, overlapping or cut by the
border. ``write_dataset`` saves images and a COCO JSON; ``load_fiftyone_dataset``
(which imports FiftyOne) turns that folder into a FiftyOne dataset.
``write_video`` makes a short video of the same objects moving, with per-frame
labels and true track ids; ``load_fiftyone_video_dataset`` loads such videos.

Example::

    from sliced_inference.synthetic import generate_scene, write_dataset

    scene = generate_scene(seed=0, width=3200, height=2400)
    print(scene.image.shape, len(scene.labels), scene.boxes[:2])
    write_dataset("/tmp/synth", num_images=8, seed=0)
"""

from __future__ import annotations

from typing import Any

from .export import (
    coco_rle,
    dataset_scenes,
    decode_coco_rle,
    image_seed,
    write_dataset,
    write_oriented_dataset,
)
from .oriented import ORIENTED_CLASSES, OrientedScene, generate_oriented_scene
from .scenes import Scene, generate_scene, scene_size
from .shapes import CLASSES, Sprite, draw_sprite
from .video import FrameLabels, VideoLabels, iter_video_frames, write_video

__all__ = [
    "CLASSES",
    "ORIENTED_CLASSES",
    "FrameLabels",
    "OrientedScene",
    "Scene",
    "Sprite",
    "VideoLabels",
    "coco_rle",
    "dataset_scenes",
    "decode_coco_rle",
    "draw_sprite",
    "generate_oriented_scene",
    "generate_scene",
    "image_seed",
    "iter_video_frames",
    "load_fiftyone_dataset",
    "load_fiftyone_video_dataset",
    "load_oriented_dataset",
    "oriented_scene_to_polylines",
    "scene_size",
    "scene_to_detections",
    "write_dataset",
    "write_oriented_dataset",
    "write_video",
]


def __getattr__(name: str) -> Any:
    # FiftyOne is slow to import and optional for the generator: load on use.
    if name in (
        "load_fiftyone_dataset",
        "load_fiftyone_video_dataset",
        "load_oriented_dataset",
        "oriented_scene_to_polylines",
        "scene_to_detections",
    ):
        from . import fiftyone_dataset

        return getattr(fiftyone_dataset, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
