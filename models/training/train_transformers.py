"""Trains a small Transformers RT-DETR detector from scratch on generated tiles (CPU).

An experiment (issue 3): can a DETR-family detector from Hugging Face
Transformers learn the generator's small objects on 2 CPU cores within a fixed
wall-clock budget? The tiles come from ``models/training/train.py`` (same seeds, density,
tile size and labelling rules as the bundled YOLO models); the model is an
``RTDetrForObjectDetection`` built from a config with a small ResNet backbone
(``use_pretrained_backbone=False``: nothing is downloaded). RT-DETR was chosen
over DETR / Conditional DETR because its queries start from the encoder's
top-scoring anchors and its denoising queries speed up matching, which is what
makes DETR-family models converge in few steps, and because it reads stride-8
features, which an 8-px object needs.

Training is a plain torch loop (AdamW, fixed seeds, 2 threads) that stops at
``--minutes`` of training wall time, writes a checkpoint every
``--checkpoint-minutes``, and saves the model and its image processor with
``save_pretrained`` to ``--out`` (default under /tmp, never in the repository),
with settings, losses and times in ``--out/training.json``. Afterwards (or
alone, with ``--eval-only``) the saved directory is loaded with
``sliced_inference.slicer.load_model`` and run with ``predict_sliced`` on
held-out scenes (``image_seed(400, i)``); recall at class-aware IoU 0.5 and
COCO AP50 (all and small objects, ``bench/evaluate.py``) go to
``--out/evaluation.json``.

Usage::

    .venv/bin/python models/train_transformers.py --out /tmp/si-detr/model
    .venv/bin/python models/train_transformers.py --out /tmp/si-detr/model --eval-only \\
        --compare models/small-objects-det.pt
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

TRAINING_DIR = Path(__file__).resolve().parent
MODELS_DIR = TRAINING_DIR.parent  # the weights live in models/
if str(TRAINING_DIR) not in sys.path:
    sys.path.insert(0, str(TRAINING_DIR))

import measure  # noqa: E402  (models/training/measure.py: ground truth and AP50)
import train as yolo_train  # noqa: E402  (models/training/train.py: tiles and labels)

from sliced_inference.bench.evaluate import SMALL_AREA, Instances, box_iou  # noqa: E402
from sliced_inference.slicer import load_model, predict_sliced  # noqa: E402
from sliced_inference.synthetic import CLASSES, dataset_scenes  # noqa: E402

#: Held-out scenes: train.py uses seeds 100 and 200, measure.py 300.
EVAL_SEED = 400


def make_tiles(args: argparse.Namespace) -> dict[str, int]:
    """Writes training tiles with ``train.write_tiles`` (YOLO labels) under ``--work``."""
    root = args.work / "data"
    if (root / "det" / "images" / "train").exists() and args.reuse_data:
        return {"reused": 1}
    if root.exists():
        import shutil

        shutil.rmtree(root)
    return yolo_train.write_tiles(
        root,
        "train",
        args.train_scenes,
        yolo_train.TRAIN_SEED,
        args.tile,
        (args.min_width, args.max_width),
        args.density,
    )


def load_tiles(work: Path, tile: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """All training tiles in memory, padded to ``tile`` px, and their labels.

    Edge tiles can be smaller than ``tile``; they are padded (bottom/right)
    rather than resized, so objects keep their native pixel size.

    Returns:
        ``(N, tile, tile, 3)`` uint8 RGB and, per tile, ``(K, 5)`` float rows of
        ``class, cx, cy, w, h`` normalised by ``tile``.
    """
    images_dir = work / "data" / "det" / "images" / "train"
    labels_dir = work / "data" / "det" / "labels" / "train"
    paths = sorted(images_dir.glob("*.png"))
    images = np.zeros((len(paths), tile, tile, 3), np.uint8)
    labels = []
    for i, path in enumerate(paths):
        bgr = cv2.imread(str(path))
        h, w = bgr.shape[:2]
        images[i, :h, :w] = bgr[..., ::-1]
        text = (labels_dir / f"{path.stem}.txt").read_text().split()
        rows = np.array(text, np.float64).reshape(-1, 5)
        # YOLO labels are relative to the tile's own size; rescale to the padded one.
        rows[:, [1, 3]] *= w / tile
        rows[:, [2, 4]] *= h / tile
        labels.append(rows)
    return images, labels


def build_model(args: argparse.Namespace) -> tuple[Any, Any]:
    """A small RT-DETR with a from-scratch ResNet backbone, and its image processor."""
    from transformers import (
        RTDetrConfig,
        RTDetrForObjectDetection,
        RTDetrImageProcessor,
        RTDetrResNetConfig,
    )

    classes = CLASSES
    widths = [args.width, args.width * 2, args.width * 4, args.width * 8]
    backbone = RTDetrResNetConfig(
        embedding_size=args.width,
        hidden_sizes=widths,
        depths=[1, 1, 1, 1],
        layer_type="basic",
        out_features=["stage2", "stage3", "stage4"],  # strides 8, 16, 32
    )
    config = RTDetrConfig(
        backbone_config=backbone,
        use_pretrained_backbone=False,
        # Frozen batch norm is meant for a pretrained backbone; from scratch the
        # backbone needs working normalisation to train at all.
        freeze_backbone_batch_norms=False,
        encoder_in_channels=widths[1:],
        encoder_hidden_dim=args.d_model,
        encoder_ffn_dim=args.d_model * 2,
        encoder_attention_heads=4,
        # Halves the CSP blocks of the FPN/PAN, the encoder's main cost on CPU.
        hidden_expansion=0.5,
        d_model=args.d_model,
        decoder_in_channels=[args.d_model] * 3,
        decoder_ffn_dim=args.d_model * 4,
        decoder_attention_heads=4,
        decoder_layers=args.decoder_layers,
        num_queries=args.queries,
        num_denoising=args.denoising,
        id2label=dict(enumerate(classes)),
        label2id={name: i for i, name in enumerate(classes)},
    )
    model = RTDetrForObjectDetection(config)
    # Inputs exactly as in training: pixels / 255 at the tile size, no mean/std.
    processor = RTDetrImageProcessor(
        size={"height": args.tile, "width": args.tile},
        do_normalize=False,
        do_rescale=True,
    )
    return model, processor


def _batch(
    images: np.ndarray,
    labels: list[np.ndarray],
    index: np.ndarray,
    rng: np.random.Generator,
) -> tuple[Any, list[dict[str, Any]]]:
    """A batch with a random flip / transpose per tile (aerial views have no 'up')."""
    import torch

    pixels, targets = [], []
    for i in index:
        img, rows = images[i], labels[i].copy()
        if rng.random() < 0.5:
            img, rows[:, 1] = img[:, ::-1], 1 - rows[:, 1]
        if rng.random() < 0.5:
            img, rows[:, 2] = img[::-1], 1 - rows[:, 2]
        if rng.random() < 0.5:
            img = img.transpose(1, 0, 2)
            rows = rows[:, [0, 2, 1, 4, 3]]
        pixels.append(np.ascontiguousarray(img))
        targets.append(
            {
                "class_labels": torch.from_numpy(rows[:, 0].astype(np.int64)),
                "boxes": torch.from_numpy(rows[:, 1:].astype(np.float32)),
            }
        )
    x = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).float() / 255.0
    return x, targets


def train_model(args: argparse.Namespace) -> dict[str, Any]:
    """Trains until the wall-clock budget is spent; saves model, processor, record."""
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    start = time.perf_counter()
    data_stats = make_tiles(args)
    images, labels = load_tiles(args.work, args.tile)
    data_s = time.perf_counter() - start
    model, processor = build_model(args)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{len(images)} tiles, {n_params / 1e6:.2f} M parameters", flush=True)

    optimizer = torch.optim.AdamW(
        model.parameters(), lr=args.lr, weight_decay=args.weight_decay
    )
    budget = args.minutes * 60.0
    args.out.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "architecture": "RTDetrForObjectDetection",
        "config": model.config.to_diff_dict(),
        "parameters": n_params,
        "settings": {
            k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
        },
        "data": {
            **data_stats,
            "tiles_loaded": len(images),
            "prepare_s": round(data_s, 1),
        },
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "threads": torch.get_num_threads(),
        },
        "losses": [],
    }

    model.train()
    t0 = time.perf_counter()
    last_ckpt, step, epoch, window = t0, 0, 0, []
    order = rng.permutation(len(images))
    cursor = 0
    while (elapsed := time.perf_counter() - t0) < budget:
        # Schedule on elapsed time, not steps: the budget is time, and the
        # machine's speed (shared with other jobs) is not known in advance.
        frac = elapsed / budget
        warm = min(1.0, (step + 1) / args.warmup_steps)
        lr = args.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        if cursor + args.batch > len(order):
            order, cursor, epoch = rng.permutation(len(images)), 0, epoch + 1
        x, targets = _batch(images, labels, order[cursor : cursor + args.batch], rng)
        cursor += args.batch
        out = model(pixel_values=x, labels=targets)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        step += 1
        window.append(out.loss.item())
        if step % args.log_every == 0:
            entry = {
                "step": step,
                "epoch": round(epoch + cursor / len(images), 2),
                "minutes": round((time.perf_counter() - t0) / 60, 2),
                "lr": round(lr, 7),
                "loss": round(float(np.mean(window)), 4),
            }
            record["losses"].append(entry)
            window = []
            print(json.dumps(entry), flush=True)
        if time.perf_counter() - last_ckpt > args.checkpoint_minutes * 60:
            model.save_pretrained(args.out / "checkpoint")
            processor.save_pretrained(args.out / "checkpoint")
            last_ckpt = time.perf_counter()

    record["train_wall_s"] = round(time.perf_counter() - t0, 1)
    record["steps"] = step
    record["epochs"] = round(epoch + cursor / len(images), 2)
    record["final_loss"] = record["losses"][-1]["loss"] if record["losses"] else None
    model.eval()
    model.save_pretrained(args.out)
    processor.save_pretrained(args.out)
    record["saved_bytes"] = sum(
        p.stat().st_size for p in args.out.iterdir() if p.is_file()
    )
    (args.out / "training.json").write_text(
        json.dumps(record, indent=2, default=str) + "\n"
    )
    return record


def _match_recall(truth: Instances, det: Instances) -> np.ndarray:
    """Which ground-truth objects a same-class detection matches at IoU 0.5 (one-to-one)."""
    found = np.zeros(len(truth), bool)
    order = np.argsort(-det.scores, kind="stable")
    ious = box_iou(det.boxes[order], truth.boxes)
    same = det.class_ids[order][:, None] == truth.class_ids[None, :]
    ious = np.where(same, ious, 0.0)
    for row in ious:
        row = np.where(found, 0.0, row)
        if len(row) and row.max() >= 0.5:
            found[int(row.argmax())] = True
    return found


def evaluate(paths: list[Path], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Sliced prediction on held-out scenes: recall at IoU 0.5 and AP50 per model."""
    import torch

    torch.set_num_threads(args.threads)
    scenes = list(
        dataset_scenes(EVAL_SEED, args.eval_scenes, args.min_width, args.max_width)
    )
    truths = measure.ground_truth(scenes)
    results = []
    for path in paths:
        model = load_model(str(path), device="cpu")
        for slice_wh in args.eval_slices:
            start = time.perf_counter()
            dets = []
            for scene in scenes:
                p = predict_sliced(
                    scene.image,
                    model,
                    slice_wh=slice_wh,
                    overlap=0.2,
                    confidence=args.eval_conf,
                    max_detections=1000,
                    # Native resolution: a 640-px slice is not shrunk to 320.
                    imgsz=slice_wh,
                )
                dets.append(Instances(p.boxes, p.class_ids, p.scores))
            seconds = time.perf_counter() - start
            small = [t.areas(False) <= SMALL_AREA for t in truths]
            row: dict[str, Any] = {
                "model": str(path),
                "slice": slice_wh,
                "scenes": [f"{s.image.shape[1]}x{s.image.shape[0]}" for s in scenes],
                "objects": int(sum(len(t) for t in truths)),
                "small_objects": int(sum(s.sum() for s in small)),
                "detections": int(sum(len(d) for d in dets)),
                "seconds": round(seconds, 1),
            }
            for conf in (args.eval_conf, 0.25):
                found = [
                    _match_recall(t, d.select(np.nonzero(d.scores >= conf)[0]))
                    for t, d in zip(truths, dets, strict=True)
                ]
                hits = np.concatenate(found)
                hits_small = np.concatenate(
                    [f[s] for f, s in zip(found, small, strict=True)]
                )
                row[f"recall@{conf}"] = round(float(hits.mean()), 4)
                row[f"recall_small@{conf}"] = round(float(hits_small.mean()), 4)
            scores = measure.ap50_scores(truths, dets)
            row.update({f"ap50_{subset}": v for subset, v in scores.items()})
            print(json.dumps(row), flush=True)
            results.append(row)
    return results


def build_parser() -> argparse.ArgumentParser:
    """The command line of this script."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/si-detr"), help="scratch")
    p.add_argument("--out", type=Path, default=Path("/tmp/si-detr/model"))
    p.add_argument("--minutes", type=float, default=25.0, help="training wall budget")
    p.add_argument("--checkpoint-minutes", type=float, default=5.0)
    p.add_argument("--train-scenes", type=int, default=24)
    p.add_argument("--min-width", type=int, default=1600)
    p.add_argument("--max-width", type=int, default=3200)
    p.add_argument("--density", type=float, default=70.0)
    p.add_argument("--tile", type=int, default=320)
    p.add_argument("--width", type=int, default=16, help="backbone stem width")
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--decoder-layers", type=int, default=3)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--denoising", type=int, default=50)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--warmup-steps", type=int, default=30)
    p.add_argument("--clip", type=float, default=0.1)
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reuse-data", action="store_true", help="keep existing tiles")
    p.add_argument("--eval-only", action="store_true", help="evaluate --out only")
    p.add_argument("--eval-scenes", type=int, default=3)
    p.add_argument("--eval-slices", type=int, nargs="+", default=[320])
    p.add_argument("--eval-conf", type=float, default=0.05)
    p.add_argument(
        "--compare", type=Path, nargs="*", default=[], help="other models to evaluate"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Trains (unless ``--eval-only``), then evaluates on held-out scenes."""
    args = build_parser().parse_args(argv)
    args.work, args.out = args.work.resolve(), args.out.resolve()
    if not args.eval_only:
        record = train_model(args)
        print(
            json.dumps(
                {k: v for k, v in record.items() if k != "losses"},
                indent=2,
                default=str,
            )
        )
    results = evaluate([args.out, *args.compare], args)
    (args.out / "evaluation.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
