"""Trains the bundled small-object detectors on generated data (CPU, offline).

Generates scenes with ``sliced_inference.synthetic``, cuts them into tiles at
native resolution (objects keep their pixel size, as in a tile that sliced
inference cuts from a large image), writes YOLO labels (boxes for detection,
polygons for segmentation), trains a YOLOv8n detector and a YOLOv8n-seg
segmenter from scratch (architectures from Ultralytics' yaml, nothing is
downloaded) and copies the final, stripped weights next to this script:
``small-objects-det.pt`` and ``small-objects-seg.pt``. Settings, dataset sizes,
final validation metrics and wall times go to ``training.json``.

Usage (on 2 CPU cores about 20 minutes for the detector, 30 for the segmenter;
the committed models were trained with exactly these defaults)::

    .venv/bin/python models/train.py --work /tmp/si-train            # both models
    .venv/bin/python models/train.py --work /tmp/si-train --task det
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Ultralytics must never try the network here (fonts, weights, AMP checks).
os.environ.setdefault("YOLO_OFFLINE", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

MODELS_DIR = Path(__file__).resolve().parents[1]  # the weights live in models/
REPO_ROOT = MODELS_DIR.parent
OUTPUTS = {"det": "small-objects-det.pt", "seg": "small-objects-seg.pt"}
ARCHITECTURES = {"det": "yolov8n.yaml", "seg": "yolov8n-seg.yaml"}

# Seeds of training and validation scenes; models/training/measure.py uses others.
TRAIN_SEED = 100
VAL_SEED = 200


def _synthetic() -> Any:
    """The generator package, importable from a checkout or an installed package."""
    try:
        import sliced_inference.synthetic as synthetic
    except ImportError:  # a checkout that is not installed: the root is the package
        sys.path.insert(0, str(REPO_ROOT.parent))
        import importlib

        synthetic = importlib.import_module(f"{REPO_ROOT.name}.synthetic")
    return synthetic


def tile_labels(
    scene: Any, x0: int, y0: int, x1: int, y1: int, min_fraction: float = 0.3
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Objects of ``scene`` inside the tile ``(x0, y0, x1, y1)``: class id, box, mask.

    An object is kept when at least ``min_fraction`` of its visible pixels (or
    400 pixels) fall in the tile: slivers of objects cut by the tile edge are
    not recognisable, and labelling them would teach the model to guess.

    Returns:
        ``(class_id, box xyxy in tile pixels, bool mask of that box)`` per object.

    Example::

        >>> scene = _synthetic().generate_scene(0, 640, 480)
        >>> all(len(b) == 4 for _, b, _ in tile_labels(scene, 0, 0, 320, 320))
        True
    """
    out = []
    for cid, box, mask in zip(scene.class_ids, scene.boxes, scene.masks, strict=True):
        bx0, by0, bx1, by1 = (int(v) for v in box)
        ix0, iy0, ix1, iy1 = max(bx0, x0), max(by0, y0), min(bx1, x1), min(by1, y1)
        if ix1 <= ix0 or iy1 <= iy0:
            continue
        part = mask[iy0 - by0 : iy1 - by0, ix0 - bx0 : ix1 - bx0]
        inside = int(part.sum())
        if inside == 0 or (inside < min_fraction * mask.sum() and inside < 400):
            continue
        ys, xs = np.nonzero(part)
        tight = part[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        tb = np.array(
            [ix0 + xs.min(), iy0 + ys.min(), ix0 + xs.max() + 1, iy0 + ys.max() + 1]
        )
        out.append((int(cid), tb - [x0, y0, x0, y0], tight))
    return out


def _polygon(mask: np.ndarray) -> np.ndarray | None:
    """The outline of a mask's largest part as ``(K, 2)`` pixel corners."""
    padded = np.pad(mask.astype(np.uint8), 1)
    contours, _ = cv2.findContours(padded, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    pts = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64) - 1
    if len(pts) < 3:  # a line or a dot: use the box corners instead
        h, w = mask.shape
        pts = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    else:
        # Contours run through pixel centres; push them out half a pixel.
        centre = pts.mean(axis=0)
        pts = pts + 0.5 + 0.5 * np.sign(pts - centre)
    return pts


def scene_tiles(
    generate: Any,
    num_scenes: int,
    seed: int,
    tile: int,
    size_range: tuple[int, int],
    density: float,
) -> Iterator[tuple[int, Any, tuple[int, int, int, int], np.random.Generator]]:
    """Generates scenes and yields ``(scene index, scene, tile box, rng)`` per tile.

    Tiles lie on a grid with a random offset per scene, so tile edges fall
    anywhere on objects; tiles less than half the size (at the borders) are
    left out. ``rng`` is the scene's generator, for per-tile choices.
    """
    synthetic = _synthetic()
    for i in range(num_scenes):
        s = synthetic.image_seed(seed, i)
        rng = np.random.default_rng(s)
        width, height = synthetic.scene_size(rng, *size_range)
        scene = generate(s, width, height, density=density)
        ox, oy = (int(v) for v in rng.integers(0, tile, size=2))
        for y0 in range(oy % tile - tile if oy else 0, height, tile):
            for x0 in range(ox % tile - tile if ox else 0, width, tile):
                tx0, ty0 = max(x0, 0), max(y0, 0)
                tx1, ty1 = min(x0 + tile, width), min(y0 + tile, height)
                if tx1 - tx0 >= tile // 2 and ty1 - ty0 >= tile // 2:
                    yield i, scene, (tx0, ty0, tx1, ty1), rng


def write_tiles(
    root: Path,
    split: str,
    num_scenes: int,
    seed: int,
    tile: int,
    size_range: tuple[int, int],
    density: float,
) -> dict[str, int]:
    """Generates scenes and writes their tiles with detection and segmentation labels.

    Layout: ``root/{det,seg}/{images,labels}/split``; the segmentation images
    are hard links to the detection ones (Ultralytics resolves symlinked
    folders to their target, and would then read the detection labels).

    Returns:
        Counts of scenes, tiles and objects written.
    """
    synthetic = _synthetic()
    det_img = root / "det" / "images" / split
    det_lbl = root / "det" / "labels" / split
    seg_img = root / "seg" / "images" / split
    seg_lbl = root / "seg" / "labels" / split
    for d in (det_img, det_lbl, seg_img, seg_lbl):
        d.mkdir(parents=True, exist_ok=True)
    n_tiles = n_objects = 0
    for i, scene, (tx0, ty0, tx1, ty1), rng in scene_tiles(
        synthetic.generate_scene, num_scenes, seed, tile, size_range, density
    ):
        crop = scene.image[ty0:ty1, tx0:tx1]
        objs = tile_labels(scene, tx0, ty0, tx1, ty1)
        if not objs and rng.random() > 0.15:
            continue  # keep some empty tiles as negatives, not all
        name = f"{split}_{i:03d}_{tx0:05d}_{ty0:05d}"
        cv2.imwrite(str(det_img / f"{name}.png"), crop[..., ::-1])
        os.link(det_img / f"{name}.png", seg_img / f"{name}.png")
        tw, th = tx1 - tx0, ty1 - ty0
        det_lines, seg_lines = [], []
        for cid, box, mask in objs:
            cx, cy = (box[0] + box[2]) / 2 / tw, (box[1] + box[3]) / 2 / th
            bw, bh = (box[2] - box[0]) / tw, (box[3] - box[1]) / th
            det_lines.append(f"{cid} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
            poly = _polygon(mask)
            if poly is not None:
                poly = (poly + box[:2]) / [tw, th]
                coords = " ".join(f"{v:.6f}" for v in np.clip(poly, 0, 1).ravel())
                seg_lines.append(f"{cid} {coords}")
        (det_lbl / f"{name}.txt").write_text("\n".join(det_lines))
        (seg_lbl / f"{name}.txt").write_text("\n".join(seg_lines))
        n_tiles += 1
        n_objects += len(objs)
    return {"scenes": num_scenes, "tiles": n_tiles, "objects": n_objects}


def write_splits(
    root: Path,
    args: argparse.Namespace,
    write: Callable[..., dict[str, int]],
    seeds: tuple[int, int],
) -> dict[str, dict[str, int]]:
    """Runs a tile writer (``write_tiles`` or alike) on the training and validation scenes."""
    sizes = (args.min_width, args.max_width)
    return {
        split: write(root, split, scenes, seed, args.tile, sizes, args.density)
        for split, scenes, seed in (
            ("train", args.train_scenes, seeds[0]),
            ("val", args.val_scenes, seeds[1]),
        )
    }


def make_data(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Writes the tiles of both splits and the two dataset yaml files."""
    synthetic = _synthetic()
    if (work / "data").exists():
        shutil.rmtree(work / "data")
    root = work / "data"
    stats = write_splits(root, args, write_tiles, (TRAIN_SEED, VAL_SEED))
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(synthetic.CLASSES))
    for task in ("det", "seg"):
        (root / f"{task}.yaml").write_text(
            f"path: {root / task}\ntrain: images/train\nval: images/val\nnames:\n{names}\n"
        )
    return stats


def yolo_settings(
    data: Path, args: argparse.Namespace, work: Path, name: str
) -> dict[str, Any]:
    """Ultralytics training settings shared by every bundled YOLO model."""
    settings = {
        "data": str(data),
        "epochs": args.epochs,
        "imgsz": args.tile,
        "batch": args.batch,
        "device": "cpu",
        "workers": args.workers,
        "seed": args.seed,
        "deterministic": True,
        "pretrained": False,
        "amp": False,
        "plots": False,
        "cache": False,  # 'ram' caching makes Ultralytics training non-deterministic
        "optimizer": "AdamW",
        "lr0": args.lr0,
        "cos_lr": True,
        "warmup_epochs": 1.0,
        "close_mosaic": max(1, args.epochs // 5),
        "mosaic": 1.0,
        # Objects must stay near native scale: little scale jitter, no rotation
        # (boxes of rotated objects would loosen); flips are free on aerial views.
        "scale": 0.2,
        "degrees": 0.0,
        "translate": 0.1,
        "fliplr": 0.5,
        "flipud": 0.5,
        "max_det": 500,
        "patience": 0,
        "project": str(work / "runs"),
        "name": name,
        "exist_ok": True,
        "verbose": False,
    }
    if args.time_hours:
        settings["time"] = args.time_hours
    return settings


def fit_and_ship(
    architecture: str, settings: dict[str, Any], out: Path
) -> dict[str, Any]:
    """Trains ``architecture`` from scratch with ``settings`` and copies the stripped
    weights to ``out``; returns the training record."""
    import torch
    from ultralytics import YOLO
    from ultralytics.utils.torch_utils import strip_optimizer

    random.seed(settings["seed"])
    np.random.seed(settings["seed"])
    torch.manual_seed(settings["seed"])
    model = YOLO(architecture)
    start = time.perf_counter()
    model.train(**settings)
    wall = time.perf_counter() - start
    run_dir = Path(settings["project"]) / settings["name"] / "weights"
    best = (
        run_dir / "best.pt" if (run_dir / "best.pt").exists() else run_dir / "last.pt"
    )
    shutil.copyfile(best, out)
    strip_optimizer(str(out))  # weights only, half precision
    metrics = {k: round(float(v), 4) for k, v in model.trainer.metrics.items()}
    return {
        "architecture": architecture,
        "settings": {
            k: v for k, v in settings.items() if k not in ("project", "exist_ok")
        },
        "final_val_metrics": metrics,
        "wall_time_s": round(wall, 1),
        "weights": out.name,
        "weights_bytes": out.stat().st_size,
        "from": best.name,
    }


def train(task: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Trains one model from scratch; returns its settings, metrics and wall time."""
    settings = yolo_settings(work / "data" / f"{task}.yaml", args, work, task)
    return fit_and_ship(ARCHITECTURES[task], settings, MODELS_DIR / OUTPUTS[task])


def build_parser(with_task: bool = True) -> argparse.ArgumentParser:
    """The command line of this script (``train_obb.py`` shares it without ``--task``)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--work", type=Path, default=Path("/tmp/si-train"), help="scratch folder"
    )
    if with_task:
        p.add_argument("--task", choices=("det", "seg", "both"), default="both")
    p.add_argument("--train-scenes", type=int, default=24)
    p.add_argument("--val-scenes", type=int, default=2)
    p.add_argument("--min-width", type=int, default=1600)
    p.add_argument("--max-width", type=int, default=3200)
    p.add_argument(
        "--density",
        type=float,
        default=70.0,
        help="objects per megapixel in training scenes (denser = more signal per tile)",
    )
    p.add_argument("--tile", type=int, default=320, help="tile and training image size")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument(
        "--time-hours", type=float, default=None, help="Ultralytics time cap"
    )
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr0", type=float, default=0.002)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reuse-data", action="store_true", help="keep existing tiles")
    return p


def environment() -> dict[str, Any]:
    """Versions and CPU threads, for the training record."""
    import torch
    import ultralytics

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "ultralytics": ultralytics.__version__,
        "cpu_threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }


def main(argv: list[str] | None = None) -> int:
    """Generates data, trains the requested models, writes ``training.json``."""
    args = build_parser().parse_args(argv)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    record_path = MODELS_DIR / "training.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    start = time.perf_counter()
    if not (args.reuse_data and (work / "data" / "det.yaml").exists()):
        record["data"] = make_data(work, args)
        record["data"]["generation_s"] = round(time.perf_counter() - start, 1)
    record["data_settings"] = {
        "train_seed": TRAIN_SEED,
        "val_seed": VAL_SEED,
        "train_scenes": args.train_scenes,
        "val_scenes": args.val_scenes,
        "width_range": [args.min_width, args.max_width],
        "tile": args.tile,
        "density": args.density,
    }
    record["environment"] = environment()
    command = " ".join(
        ["models/training/train.py", *(argv if argv is not None else sys.argv[1:])]
    )
    for task in ("det", "seg") if args.task == "both" else (args.task,):
        record[task] = {"command": command, **train(task, work, args)}
        record_path.write_text(json.dumps(record, indent=2) + "\n")
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
