"""Trains the bundled oriented-box (OBB) detector on generated scenes (CPU, offline).

Generates scenes of rotated, elongated objects with
``sliced_inference.synthetic.generate_oriented_scene``, cuts them into tiles at
native resolution (a random grid offset per scene), writes YOLO OBB labels
(four corners per object, relative to the tile), trains a YOLOv8n-obb from
scratch (``yolov8n-obb.yaml``: nothing is downloaded) with the settings of the
other bundled models plus rotation augmentation, and copies the stripped
weights to ``models/small-objects-obb.pt``. Settings, dataset sizes, final
validation metrics and wall time go to ``models/training-obb.json``.

An object cut by a tile edge is labelled in that tile when at least 30 % of its
area (or 400 px) is inside, with the minimum-area rotated rectangle of its
visible part: what a model sees in a tile of sliced inference, and what the
engine merges back into one rotated box.

Usage (about 40 minutes on 2 CPU cores)::

    nice -n 10 .venv/bin/python models/training/train_obb.py --work /tmp/si-train-obb
    .venv/bin/python models/training/train_obb.py --epochs 1 --train-scenes 4  # a trial
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("YOLO_OFFLINE", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

TRAINING_DIR = Path(__file__).resolve().parent
MODELS_DIR = TRAINING_DIR.parent  # the weights live in models/
if str(TRAINING_DIR) not in sys.path:
    sys.path.insert(0, str(TRAINING_DIR))

import train as yolo_train  # noqa: E402  (models/training/train.py: shared settings)

from sliced_inference import synthetic  # noqa: E402
from sliced_inference.slicer import rotated  # noqa: E402

OUTPUT = "small-objects-obb.pt"
RECORD = "training-obb.json"
ARCHITECTURE = "yolov8n-obb.yaml"
# Seeds of training and validation scenes (evaluate_obb.py uses another).
TRAIN_SEED = 110
VAL_SEED = 210


def tile_obb_labels(
    scene: Any, x0: int, y0: int, x1: int, y1: int, min_fraction: float = 0.3
) -> list[tuple[int, np.ndarray]]:
    """Objects of an ``OrientedScene`` in the tile ``(x0, y0, x1, y1)``: class id and corners.

    Returns:
        ``(class_id, (4, 2) corners in tile pixels)`` per object kept: the
        object's own rectangle when it is wholly inside, else the
        minimum-area rotated rectangle of its visible part.

    Example::

        >>> scene = synthetic.generate_oriented_scene(0, 640, 480)
        >>> all(c.shape == (4, 2) for _, c in tile_obb_labels(scene, 0, 0, 320, 320))
        True
    """
    polygons = scene.polygons
    tile = rotated.box_polygons(np.array([[x0, y0, x1, y1]] * len(polygons)))
    visible = rotated.intersect_convex(polygons, tile)
    fraction = rotated.polygon_areas(visible) / np.maximum(scene.areas, 1e-9)
    out = []
    for k in np.flatnonzero(fraction > 0):
        area = fraction[k] * scene.areas[k]
        if fraction[k] < min_fraction and area < 400:
            continue  # a sliver: not recognisable, and labelling it teaches guessing
        if fraction[k] > 0.999:
            corners = polygons[k]
        else:
            box = rotated.enclosing_rbox(visible[k])
            corners = rotated.rbox_corners(box[None])[0]
        out.append((int(scene.class_ids[k]), corners - [x0, y0]))
    return out


def write_obb_tiles(
    root: Path,
    split: str,
    num_scenes: int,
    seed: int,
    tile: int,
    size_range: tuple[int, int],
    density: float,
) -> dict[str, int]:
    """Generates scenes and writes tiles with YOLO OBB labels under ``root/{images,labels}/split``.

    Returns:
        Counts of scenes, tiles and objects written.
    """
    images, labels = root / "images" / split, root / "labels" / split
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    n_tiles = n_objects = 0
    for i, scene, (tx0, ty0, tx1, ty1), rng in yolo_train.scene_tiles(
        synthetic.generate_oriented_scene, num_scenes, seed, tile, size_range, density
    ):
        objs = tile_obb_labels(scene, tx0, ty0, tx1, ty1)
        if not objs and rng.random() > 0.15:
            continue  # keep some empty tiles as negatives, not all
        name = f"{split}_{i:03d}_{tx0:05d}_{ty0:05d}"
        crop = scene.image[ty0:ty1, tx0:tx1]
        cv2.imwrite(str(images / f"{name}.png"), crop[..., ::-1])
        size = np.array([tx1 - tx0, ty1 - ty0], dtype=np.float64)
        lines = [
            f"{cid} " + " ".join(f"{v:.6f}" for v in np.clip(c / size, 0, 1).ravel())
            for cid, c in objs
        ]
        (labels / f"{name}.txt").write_text("\n".join(lines))
        n_tiles += 1
        n_objects += len(objs)
    return {"scenes": num_scenes, "tiles": n_tiles, "objects": n_objects}


def make_data(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Writes the tiles of both splits and the dataset yaml."""
    root = work / "data"
    if root.exists():
        shutil.rmtree(root)
    stats = yolo_train.write_splits(root, args, write_obb_tiles, (TRAIN_SEED, VAL_SEED))
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(synthetic.ORIENTED_CLASSES))
    (root / "obb.yaml").write_text(
        f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n{names}\n"
    )
    return stats


def count_tiles(root: Path, split: str) -> dict[str, int]:
    """Tiles and objects already written for ``split`` (for ``--reuse-data``)."""
    labels = sorted((root / "labels" / split).glob("*.txt"))
    objects = sum(len(p.read_text().splitlines()) for p in labels)
    return {"tiles": len(labels), "objects": objects}


def build_parser() -> argparse.ArgumentParser:
    """``train.py``'s command line, with this script's defaults."""
    p = yolo_train.build_parser(with_task=False)
    p.description = __doc__.split("\n\n")[0]
    p.set_defaults(work=Path("/tmp/si-train-obb"), density=120.0, epochs=6)
    p.add_argument(
        "--degrees",
        type=float,
        default=180.0,
        help="rotation augmentation (labels of rotated boxes stay exact)",
    )
    p.add_argument("--out", type=Path, default=MODELS_DIR / OUTPUT)
    return p


def main(argv: list[str] | None = None) -> int:
    """Generates data, trains the OBB model, writes its training record."""
    args = build_parser().parse_args(argv)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {}
    start = time.perf_counter()
    if args.reuse_data and (work / "data" / "obb.yaml").exists():
        record["data"] = {
            split: count_tiles(work / "data", split) for split in ("train", "val")
        }
    else:
        record["data"] = make_data(work, args)
        record["data"]["generation_s"] = round(time.perf_counter() - start, 1)
    record["data_settings"] = {
        "generator": "generate_oriented_scene",
        "train_seed": TRAIN_SEED,
        "val_seed": VAL_SEED,
        "train_scenes": args.train_scenes,
        "val_scenes": args.val_scenes,
        "width_range": [args.min_width, args.max_width],
        "tile": args.tile,
        "density": args.density,
    }
    record["environment"] = yolo_train.environment()
    settings = yolo_train.yolo_settings(work / "data" / "obb.yaml", args, work, "obb")
    settings["degrees"] = args.degrees
    command = " ".join(
        ["models/training/train_obb.py", *(argv if argv is not None else sys.argv[1:])]
    )
    record["obb"] = {
        "command": command,
        **yolo_train.fit_and_ship(ARCHITECTURE, settings, args.out),
    }
    (args.out.parent / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
