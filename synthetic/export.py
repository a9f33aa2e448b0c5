"""Writes generated scenes to disk: images plus one COCO JSON (``coco.json``).

Annotations carry the integer ``bbox`` ``[x0, y0, w, h]`` of the visible mask,
its pixel ``area`` and an uncompressed COCO RLE ``segmentation`` (exact, holes
from occlusion included). Each image entry records the ``seed`` that made it,
so any image can be regenerated without the file.

Example::

    >>> import tempfile
    >>> path = write_dataset(tempfile.mkdtemp(), num_images=1, min_width=800, max_width=800)
    >>> path.name
    'coco.json'
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .oriented import ORIENTED_CLASSES, OrientedScene, generate_oriented_scene
from .scenes import Scene, generate_scene, scene_size
from .shapes import CLASSES

COCO_FILENAME = "coco.json"
ORIENTED_FILENAME = "oriented.json"
IMAGE_DIR = "data"


def image_seed(seed: int, index: int) -> int:
    """The seed of image ``index`` in a dataset made with ``seed``.

    Derived with ``SeedSequence`` so datasets made with nearby seeds share no
    image (``seed + index`` would).

    Example::

        >>> image_seed(0, 1) != image_seed(1, 0)
        True
    """
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def coco_rle(mask: np.ndarray, box: Sequence[int], width: int, height: int) -> dict:
    """Uncompressed COCO RLE of a cropped mask placed at ``box`` in the image.

    COCO runs are column-major over the whole image; only the columns the box
    spans are materialised, so this costs the box's columns, not the image.

    Args:
        mask: bool ``(y1 - y0, x1 - x0)``.
        box: int ``(x0, y0, x1, y1)``.
        width, height: image size.

    Returns:
        ``{"size": [height, width], "counts": [...]}`` (counts start with zeros).

    Example::

        >>> coco_rle(np.ones((1, 1), bool), (1, 0, 2, 1), 2, 2)
        {'size': [2, 2], 'counts': [2, 1, 1]}
    """
    x0, y0, x1, y1 = (int(v) for v in box)
    band = np.zeros((height, x1 - x0), dtype=bool)
    band[y0:y1] = mask
    flat = band.ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(edges)
    if flat[0]:
        counts = np.concatenate([[0], counts])
    counts = counts.astype(np.int64)
    counts[0] += x0 * height  # the columns left of the box are all zeros
    tail = (width - x1) * height
    if tail:
        if len(counts) % 2 == 1:  # ends on a run of zeros: extend it
            counts[-1] += tail
        else:
            counts = np.append(counts, tail)
    return {"size": [int(height), int(width)], "counts": [int(c) for c in counts]}


def decode_coco_rle(rle: dict, box: Sequence[int]) -> np.ndarray:
    """The crop of an uncompressed COCO RLE mask covered by ``box``.

    Args:
        rle: ``{"size": [h, w], "counts": [...]}`` as written by ``coco_rle``.
        box: int ``(x0, y0, x1, y1)`` to crop to.

    Returns:
        bool array ``(y1 - y0, x1 - x0)``.

    Example::

        >>> decode_coco_rle({"size": [2, 2], "counts": [2, 1, 1]}, (1, 0, 2, 1))
        array([[ True]])
    """
    height = int(rle["size"][0])
    x0, y0, x1, y1 = (int(v) for v in box)
    ends = np.cumsum(rle["counts"])
    starts = ends - np.asarray(rle["counts"])
    band = np.zeros(height * (x1 - x0), dtype=bool)
    offset = x0 * height
    # Odd-indexed runs are ones; clip each to the box's columns.
    for s, e in zip(starts[1::2], ends[1::2], strict=True):
        s, e = max(s - offset, 0), min(e - offset, band.size)
        if e > s:
            band[s:e] = True
    return band.reshape((x1 - x0, height)).T[y0:y1].copy()


def scene_annotations(scene: Scene, image_id: int, first_id: int) -> list[dict]:
    """COCO annotation dicts for a scene (ids from ``first_id`` on).

    Example::

        >>> anns = scene_annotations(generate_scene(0, 400, 300), 1, 1)
        >>> sorted(anns[0])[:3]
        ['area', 'bbox', 'category_id']
    """
    anns = []
    for k, (box, mask, label) in enumerate(
        zip(scene.boxes, scene.masks, scene.labels, strict=True)
    ):
        x0, y0, x1, y1 = (int(v) for v in box)
        anns.append(
            {
                "id": first_id + k,
                "image_id": image_id,
                "category_id": CLASSES.index(label) + 1,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": int(mask.sum()),
                "segmentation": coco_rle(mask, box, scene.width, scene.height),
                "iscrowd": 0,
            }
        )
    return anns


def dataset_scenes(
    seed: int,
    num_images: int,
    min_width: int = 1600,
    max_width: int = 4000,
    *,
    generate: Callable[..., Any] = generate_scene,
    **scene_options: Any,
) -> Iterator[Scene]:
    """The scenes of a generated dataset, one at a time: image ``i`` uses ``image_seed(seed, i)``.

    ``write_dataset`` writes these; the measuring scripts score models on them.

    Args:
        seed: dataset seed.
        num_images: number of scenes.
        min_width, max_width: range of image widths (heights follow an aspect ratio).
        generate: the scene generator, ``generate_scene`` or
            ``generate_oriented_scene``.
        scene_options: passed to ``generate`` (e.g. ``density``).

    Example::

        >>> [s.seed == image_seed(300, i) for i, s in enumerate(dataset_scenes(300, 2))]
        [True, True]
    """
    if num_images < 0:
        raise ValueError(f"num_images must be >= 0, got {num_images}")
    for i in range(num_images):
        s = image_seed(seed, i)
        width, height = scene_size(np.random.default_rng(s), min_width, max_width)
        yield generate(s, width, height, **scene_options)


def write_dataset(
    out_dir: str | Path,
    num_images: int = 8,
    seed: int = 0,
    *,
    min_width: int = 1600,
    max_width: int = 4000,
    image_format: str = "jpg",
    jpeg_quality: int = 95,
    **scene_options: Any,
) -> Path:
    """Generates ``num_images`` scenes into ``out_dir`` and writes their COCO JSON.

    Args:
        out_dir: folder to write (created if needed); images go to ``data/``.
        num_images: number of scenes.
        seed: dataset seed; image ``i`` uses ``image_seed(seed, i)``.
        min_width, max_width: range of image widths (heights follow an aspect ratio).
        image_format: ``"jpg"`` or ``"png"``.
        jpeg_quality: JPEG quality when ``image_format`` is ``"jpg"``.
        scene_options: passed to ``generate_scene`` (e.g. ``density``).

    Returns:
        Path of the written ``coco.json``.

    Example::

        write_dataset("/tmp/synth", num_images=8, seed=0, image_format="png")
    """
    images, annotations = [], []
    scenes = dataset_scenes(seed, num_images, min_width, max_width, **scene_options)
    for i, scene, entry in _write_images(out_dir, scenes, image_format, jpeg_quality):
        images.append(entry)
        annotations += scene_annotations(scene, i + 1, len(annotations) + 1)
    coco = {
        "info": {
            "description": "sliced_inference.synthetic scenes",
            "seed": seed,
            "scene_options": {k: _jsonable(v) for k, v in scene_options.items()},
        },
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": k + 1, "name": name, "supercategory": "object"}
            for k, name in enumerate(CLASSES)
        ],
    }
    path = Path(out_dir) / COCO_FILENAME
    path.write_text(json.dumps(coco))
    return path


def write_oriented_dataset(
    out_dir: str | Path,
    num_images: int = 4,
    seed: int = 0,
    *,
    min_width: int = 1600,
    max_width: int = 3200,
    image_format: str = "jpg",
    jpeg_quality: int = 95,
    **scene_options: Any,
) -> Path:
    """Generates ``num_images`` scenes of rotated objects and writes ``oriented.json``.

    Like ``write_dataset``, with ``generate_oriented_scene``; each annotation
    holds the object's ``label``, its rotated box ``rbox`` (``cx, cy, w, h,
    angle`` in pixels) and its four corners ``polygon`` (pixels).

    Returns:
        Path of the written ``oriented.json``.

    Example::

        >>> import tempfile
        >>> write_oriented_dataset(tempfile.mkdtemp(), 1, min_width=640, max_width=640).name
        'oriented.json'
    """
    images, annotations = [], []
    scenes: Iterator[OrientedScene] = dataset_scenes(
        seed,
        num_images,
        min_width,
        max_width,
        generate=generate_oriented_scene,
        **scene_options,
    )
    for i, scene, entry in _write_images(out_dir, scenes, image_format, jpeg_quality):
        images.append(entry)
        for label, rbox, corners in zip(
            scene.labels, scene.rboxes, scene.polygons, strict=True
        ):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "label": label,
                    "rbox": [float(v) for v in rbox],
                    "polygon": corners.tolist(),
                }
            )
    record = {
        "info": {
            "description": "sliced_inference.synthetic oriented scenes",
            "seed": seed,
            "scene_options": {k: _jsonable(v) for k, v in scene_options.items()},
        },
        "images": images,
        "annotations": annotations,
        "classes": list(ORIENTED_CLASSES),
    }
    path = Path(out_dir) / ORIENTED_FILENAME
    path.write_text(json.dumps(record))
    return path


def _write_images(
    out_dir: str | Path,
    scenes: Iterator[Any],
    image_format: str,
    jpeg_quality: int,
) -> Iterator[tuple[int, Any, dict[str, Any]]]:
    """Writes each scene's image to ``out_dir/data``; yields ``(index, scene, image entry)``."""
    if image_format not in ("jpg", "png"):
        raise ValueError(f"image_format must be 'jpg' or 'png', got {image_format!r}")
    out = Path(out_dir)
    (out / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    params = (
        [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if image_format == "jpg" else []
    )
    for i, scene in enumerate(scenes):
        name = f"{IMAGE_DIR}/{i:05d}.{image_format}"
        if not cv2.imwrite(str(out / name), scene.image[..., ::-1], params):
            raise OSError(f"could not write {out / name}")
        entry = {"id": i + 1, "file_name": name, "width": scene.width}
        yield i, scene, {**entry, "height": scene.height, "seed": scene.seed}


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
