"""Loads a folder written by ``write_dataset`` (or ``write_oriented_dataset``) as a FiftyOne dataset.

The only module of the generator that imports FiftyOne. Boxes and masks are
built from the same integer pixel box, so a detection's mask covers exactly
its ``bounding_box`` (relative ``[x, y, w, h]``) and has its pixel size.
Rotated objects become closed, filled 4-point ``fo.Polyline`` s
(``fo.Polyline.from_rotated_box``), which FiftyOne evaluates by polygon IoU.

Example::

    from sliced_inference.synthetic import write_dataset, load_fiftyone_dataset

    write_dataset("/tmp/synth", num_images=4)
    dataset = load_fiftyone_dataset("/tmp/synth", name="synth", overwrite=True)
    print(dataset.count("ground_truth.detections"))
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import fiftyone as fo
import numpy as np

from .export import COCO_FILENAME, ORIENTED_FILENAME, decode_coco_rle
from .oriented import ORIENTED_CLASSES, OrientedScene
from .scenes import Scene
from .shapes import CLASSES

GT_FIELD = "ground_truth"


def detection(
    label: str, box: Sequence[int], mask: np.ndarray | None, width: int, height: int
) -> fo.Detection:
    """A ``fo.Detection`` from an integer pixel ``xyxy`` box and its cropped mask.

    Example::

        >>> d = detection("car", (10, 20, 30, 30), None, 100, 100)
        >>> d.bounding_box
        [0.1, 0.2, 0.2, 0.1]
    """
    x0, y0, x1, y1 = (int(v) for v in box)
    if mask is not None and mask.shape != (y1 - y0, x1 - x0):
        raise ValueError(f"mask shape {mask.shape} does not match box {box}")
    return fo.Detection(
        label=label,
        bounding_box=[x0 / width, y0 / height, (x1 - x0) / width, (y1 - y0) / height],
        mask=None if mask is None else np.asarray(mask, dtype=bool),
        area=None if mask is None else int(mask.sum()),
    )


def scene_to_detections(scene: Scene, with_masks: bool = True) -> fo.Detections:
    """A scene's ground truth as ``fo.Detections``.

    Example::

        >>> from sliced_inference.synthetic import generate_scene
        >>> dets = scene_to_detections(generate_scene(0, 400, 300))
        >>> len(dets.detections) > 0
        True
    """
    return fo.Detections(
        detections=[
            detection(
                label, box, mask if with_masks else None, scene.width, scene.height
            )
            for box, mask, label in zip(
                scene.boxes, scene.masks, scene.labels, strict=True
            )
        ]
    )


def load_fiftyone_dataset(
    out_dir: str | Path,
    name: str | None = None,
    overwrite: bool = False,
    persistent: bool = False,
    with_masks: bool = True,
) -> fo.Dataset:
    """A FiftyOne dataset of a folder written by ``write_dataset``.

    Args:
        out_dir: the folder holding ``coco.json`` and the images.
        name: dataset name; ``None`` lets FiftyOne choose one.
        overwrite: replace an existing dataset of that name (otherwise an
            existing name is an error).
        persistent: keep the dataset after the process exits.
        with_masks: attach instance masks (they cost memory and database space).

    Returns:
        A dataset with a ``ground_truth`` field of ``fo.Detections``, image
        metadata, the generator's seed per sample and ``default_classes``.

    Example::

        dataset = load_fiftyone_dataset("/tmp/synth", name="synth", overwrite=True)
    """
    root = Path(out_dir).resolve()
    coco = json.loads((root / COCO_FILENAME).read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    by_image: dict[int, list[dict]] = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)

    dataset = _new_dataset(name, overwrite, persistent, CLASSES, coco.get("info", {}))

    samples = []
    for img in coco["images"]:
        width, height = int(img["width"]), int(img["height"])
        dets = []
        for ann in by_image.get(img["id"], []):
            x0, y0, w, h = (int(v) for v in ann["bbox"])
            box = (x0, y0, x0 + w, y0 + h)
            mask = decode_coco_rle(ann["segmentation"], box) if with_masks else None
            dets.append(detection(names[ann["category_id"]], box, mask, width, height))
        samples.append(_sample(root, img, fo.Detections(detections=dets)))
    dataset.add_samples(samples)
    dataset.save()
    return dataset


def rotated_polyline(
    label: str, rbox: Sequence[float], width: int, height: int
) -> fo.Polyline:
    """A closed, filled 4-point ``fo.Polyline`` from a pixel rotated box ``(cx, cy, w, h, angle)``.

    Example::

        >>> line = rotated_polyline("ship", (50, 50, 40, 10, 0.0), 100, 100)
        >>> line.points[0][0], line.filled
        ([0.7, 0.55], True)
    """
    cx, cy, w, h, angle = (float(v) for v in rbox)
    return fo.Polyline.from_rotated_box(
        cx, cy, w, h, angle, frame_size=(width, height), label=label, filled=True
    )


def oriented_scene_to_polylines(scene: OrientedScene) -> fo.Polylines:
    """An oriented scene's ground truth as ``fo.Polylines``.

    Example::

        >>> from sliced_inference.synthetic import generate_oriented_scene
        >>> lines = oriented_scene_to_polylines(generate_oriented_scene(0, 400, 300))
        >>> len(lines.polylines) > 0
        True
    """
    return fo.Polylines(
        polylines=[
            rotated_polyline(label, rbox, scene.width, scene.height)
            for label, rbox in zip(scene.labels, scene.rboxes, strict=True)
        ]
    )


def load_oriented_dataset(
    out_dir: str | Path,
    name: str | None = None,
    overwrite: bool = False,
    persistent: bool = False,
) -> fo.Dataset:
    """A FiftyOne dataset of a folder written by ``write_oriented_dataset``.

    Returns:
        A dataset with a ``ground_truth`` field of ``fo.Polylines`` (closed,
        filled rotated rectangles), image metadata, the seed per sample and
        ``default_classes``.

    Example::

        write_oriented_dataset("/tmp/obb", num_images=4)
        dataset = load_oriented_dataset("/tmp/obb", name="obb", overwrite=True)
    """
    root = Path(out_dir).resolve()
    record = json.loads((root / ORIENTED_FILENAME).read_text())
    by_image: dict[int, list[dict]] = {}
    for ann in record["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    dataset = _new_dataset(
        name, overwrite, persistent, ORIENTED_CLASSES, record.get("info", {})
    )
    samples = []
    for img in record["images"]:
        width, height = int(img["width"]), int(img["height"])
        lines = [
            rotated_polyline(ann["label"], ann["rbox"], width, height)
            for ann in by_image.get(img["id"], [])
        ]
        samples.append(_sample(root, img, fo.Polylines(polylines=lines)))
    dataset.add_samples(samples)
    dataset.save()
    return dataset


def load_fiftyone_video_dataset(
    video_paths: Sequence[str | Path],
    name: str | None = None,
    overwrite: bool = False,
    persistent: bool = False,
) -> fo.Dataset:
    """A FiftyOne video dataset of videos written by ``synthetic.write_video``.

    Each video's labels (the JSON next to it) become the frame field
    ``frames.ground_truth``: one ``fo.Detections`` per frame, each detection's
    ``index`` its true track id (FiftyOne's convention for object identity).

    Args:
        video_paths: videos written by ``write_video``.
        name: dataset name; ``None`` lets FiftyOne choose one.
        overwrite: replace an existing dataset of that name.
        persistent: keep the dataset after the process exits.

    Example::

        from sliced_inference.synthetic import write_video, load_fiftyone_video_dataset

        write_video("/tmp/videos/drone.mp4", num_frames=60)
        dataset = load_fiftyone_video_dataset(["/tmp/videos/drone.mp4"])
        print(dataset.count("frames.ground_truth.detections"))
    """
    from .video import VideoLabels, labels_path

    dataset = _new_dataset(name, overwrite, persistent, CLASSES, {})
    paths = [Path(p).resolve() for p in video_paths]
    all_labels = [VideoLabels.load(labels_path(p)) for p in paths]
    samples = [
        fo.Sample(
            filepath=str(path),
            metadata=fo.VideoMetadata(
                frame_width=labels.width,
                frame_height=labels.height,
                frame_rate=labels.fps,
                total_frame_count=len(labels.frames),
                duration=len(labels.frames) / labels.fps,
                mime_type="video/mp4",
            ),
            seed=labels.seed,
        )
        for path, labels in zip(paths, all_labels, strict=True)
    ]
    ids = dataset.add_samples(samples)
    frames = {
        sample_id: {
            f.frame_number: fo.Detections(
                detections=[
                    fo.Detection(
                        label=label,
                        bounding_box=[
                            x0 / labels.width,
                            y0 / labels.height,
                            (x1 - x0) / labels.width,
                            (y1 - y0) / labels.height,
                        ],
                        index=track_id,
                    )
                    for (x0, y0, x1, y1), label, track_id in zip(
                        f.boxes, f.labels, f.track_ids, strict=True
                    )
                ]
            )
            for f in labels.frames
        }
        for sample_id, labels in zip(ids, all_labels, strict=True)
    }
    dataset.set_values(f"frames.{GT_FIELD}", frames, key_field="id")
    return dataset


def _sample(root: Path, img: dict, ground_truth: fo.Label) -> fo.Sample:
    """A sample of one written image entry, with its metadata, seed and ground truth."""
    width, height = int(img["width"]), int(img["height"])
    return fo.Sample(
        filepath=str(root / img["file_name"]),
        metadata=fo.ImageMetadata(width=width, height=height, num_channels=3),
        seed=int(img.get("seed", -1)),
        **{GT_FIELD: ground_truth},
    )


def _new_dataset(
    name: str | None,
    overwrite: bool,
    persistent: bool,
    classes: Sequence[str],
    info: dict,
) -> fo.Dataset:
    """An empty dataset for generated scenes (an existing name needs ``overwrite``)."""
    if name is not None and fo.dataset_exists(name):
        if not overwrite:
            raise ValueError(
                f"dataset {name!r} exists; pass overwrite=True to replace it"
            )
        fo.delete_dataset(name)
    dataset = fo.Dataset(name, persistent=persistent)
    dataset.default_classes = list(classes)
    dataset.info = {"generator": "sliced_inference.synthetic", **info}
    return dataset
