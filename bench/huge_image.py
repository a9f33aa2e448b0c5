"""The huge-image benchmark: a 40000x30000 tiled BigTIFF labelled through the SDK.

Usage::

    .venv/bin/python -m bench.huge_image --out docs/benchmarks.md   # its own section
    .venv/bin/python -m bench.huge_image --skip-flat            # the test's cheap model

The image is a zlib-compressed, tiled GeoTIFF (BigTIFF) of a flat background
with four generated 1600x1200 scenes pasted at known places
(``synthetic.mosaic``); the same four scenes are also saved as PNGs. One child
process labels all of them with ``apply_sliced_model`` (640 px tiles, overlap
0.2, the bundled detector on every tile) and reports its time, tiles per
second and peak resident memory (``VmHWM``, reset after a warm-up), then the
AP50 and recall (IoU 0.5) of the pasted objects against the same scenes
labelled as separate images, and the same for a baseline run (the whole image
shrunk to the model's input size while it is read). With ``--skip-flat`` the
model is given only tiles that are not one flat colour (``SkipFlatTiles``):
every tile is still read and merged, so memory and the pasted regions are
measured as they are, in a fraction of the time (what the test suite runs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .evaluate import IOU_THRESHOLD, Instances, ap50, box_iou
from .memory import peak_rss, reset_peak_rss
from .report import write_section

REPO_ROOT = Path(__file__).resolve().parents[1]
DET_MODEL = REPO_ROOT / "models" / "small-objects-det.pt"
MIB = 1024 * 1024
#: Generated scenes pasted into the image: (seed, x, y), ``x`` and ``y`` as
#: fractions of the room left beside the scene (off the 512 px tile grid).
PLACEMENTS = (
    (1, 0.026, 0.046),
    (2, 0.5295, 0.339),
    (3, 0.987, 0.99),
    (4, 0.2025, 0.695),
)
SCENE_SIZE = (1600, 1200)
SLICE = {"slice_wh": 640, "overlap": 0.2}


@dataclass
class HugeCase:
    """The files of one benchmark case (all under one folder, described by ``case.json``).

    Attributes:
        image: the BigTIFF.
        size: its ``(width, height)``.
        scenes: the pasted scenes as PNGs, in ``PLACEMENTS`` order.
        offsets: where each scene sits in the image (its top-left corner).
        boxes: per scene, ``xyxy`` ground-truth boxes in scene pixels.
        labels: per scene, their class names.
        corrupt: a copy of the image with one stored tile overwritten, or None.
    """

    image: str
    size: tuple[int, int]
    scenes: list[str]
    offsets: list[tuple[int, int]]
    boxes: list[list[list[float]]]
    labels: list[list[str]]
    corrupt: str | None = None

    def save(self, folder: Path) -> Path:
        path = folder / "case.json"
        path.write_text(json.dumps(asdict(self)))
        return path

    @classmethod
    def load(cls, path: str | Path) -> HugeCase:
        return cls(**json.loads(Path(path).read_text()))


def make_case(
    folder: str | Path,
    width: int = 40000,
    height: int = 30000,
    corrupt_tile: int | None = None,
) -> HugeCase:
    """Writes the BigTIFF, the scenes as PNGs and (optionally) a copy with one corrupt tile."""
    import cv2

    from sliced_inference.synthetic import generate_scene
    from sliced_inference.synthetic.mosaic import write_mosaic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    room_w, room_h = width - SCENE_SIZE[0], height - SCENE_SIZE[1]
    placed = [
        (generate_scene(seed, *SCENE_SIZE), round(fx * room_w), round(fy * room_h))
        for seed, fx, fy in PLACEMENTS
    ]
    mosaic = write_mosaic(folder / "huge.tif", placed, width, height)
    scenes = []
    for (scene, _, _), (seed, _, _) in zip(placed, PLACEMENTS, strict=True):
        path = folder / f"scene_{seed}.png"
        cv2.imwrite(str(path), scene.image[..., ::-1])
        scenes.append(str(path))
    case = HugeCase(
        image=str(mosaic.path),
        size=(width, height),
        scenes=scenes,
        offsets=[(x, y) for _, x, y in placed],
        boxes=[s.boxes.tolist() for s, _, _ in placed],
        labels=[list(s.labels) for s, _, _ in placed],
    )
    if corrupt_tile is not None:
        case.corrupt = str(folder / "huge-corrupt.tif")
        corrupt_copy(mosaic.path, case.corrupt, corrupt_tile)
    case.save(folder)
    return case


def corrupt_copy(source: str | Path, target: str | Path, tile: int) -> None:
    """Copies a TIFF and overwrites the stored bytes of one tile with garbage."""
    import tifffile

    shutil.copyfile(source, target)
    with tifffile.TiffFile(target) as tif:
        page = tif.pages.first
        offset, count = page.dataoffsets[tile], page.databytecounts[tile]
    with open(target, "r+b") as handle:
        handle.seek(offset)
        handle.write(b"\xa5" * count)


class SkipFlatTiles:
    """A ``TileModel`` that gives its model only tiles that are not one flat colour.

    A flat tile holds nothing to detect; skipping its forward pass makes a
    mostly empty huge image cheap to label, while every tile is still read
    from the file, shifted and merged as usual. Counts what it saw.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.class_names = model.class_names
        self.default_imgsz = model.default_imgsz
        self.segments = model.segments
        self.tiles = 0
        self.predicted = 0

    def predict_tiles(
        self,
        tiles: Sequence[np.ndarray],
        *,
        imgsz: int | None = None,
        confidence: float = 0.25,
    ) -> list:
        from sliced_inference.slicer import Predictions

        results = []
        for tile in tiles:
            self.tiles += 1
            if _is_flat(tile):
                results.append(Predictions.empty(self.class_names, self.segments))
                continue
            self.predicted += 1
            results += self.model.predict_tiles(
                [tile], imgsz=imgsz, confidence=confidence
            )
        return results


def _is_flat(tile: np.ndarray) -> bool:
    """Whether every pixel equals the first (rows equal the first row, which repeats one pixel)."""
    rows = np.ascontiguousarray(tile).reshape(tile.shape[0], -1)
    first = rows[0]
    return not (rows != first).any() and not (first.reshape(-1, 3) != first[:3]).any()


def recall50(truths: Sequence[Instances], detections: Sequence[Instances]) -> float:
    """Share of ground truth matched (same class, IoU >= 0.5, best scores first)."""
    found = total = 0
    for truth, det in zip(truths, detections, strict=True):
        total += len(truth)
        taken = np.zeros(len(truth), dtype=bool)
        for i in np.argsort(-det.scores, kind="stable"):
            same = (truth.class_ids == det.class_ids[i]) & ~taken
            if not same.any():
                continue
            ious = np.where(same, box_iou(det.boxes[i : i + 1], truth.boxes)[0], 0.0)
            best = int(np.argmax(ious))
            if ious[best] >= IOU_THRESHOLD:
                taken[best] = True
        found += int(taken.sum())
    return found / total if total else float("nan")


def measure(
    case_path: str | Path,
    model: str | Path = DET_MODEL,
    skip_flat: bool = False,
    baseline: bool = True,
    timeout_s: float = 6 * 3600.0,
) -> dict[str, Any]:
    """Runs ``python -m bench.huge_image --child`` on a case and returns its JSON report."""
    command = [sys.executable, "-m", "bench.huge_image", "--child", str(case_path)]
    command += ["--model", str(model)]
    command += ["--skip-flat"] * skip_flat + ["--no-baseline"] * (not baseline)
    result = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout_s
    )
    if result.returncode != 0:
        raise RuntimeError(f"huge-image child failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _child(case: HugeCase, model_path: str, skip_flat: bool, baseline: bool) -> dict:
    """Labels the case through the SDK in this process and reports time, memory and accuracy."""
    import fiftyone as fo

    import sliced_inference as si
    from sliced_inference.sdk import cached_model
    from sliced_inference.slicer import predict_sliced, tile_boxes

    dataset = fo.Dataset()
    paths = [case.image, *case.scenes] + ([case.corrupt] if case.corrupt else [])
    dataset.add_samples([fo.Sample(filepath=p) for p in paths])
    ids = dict(zip(dataset.values("filepath"), dataset.values("id"), strict=True))
    paths_by_id = {sample_id: path for path, sample_id in ids.items()}
    loaded = cached_model(model_path)
    model = SkipFlatTiles(loaded) if skip_flat else loaded
    predict_sliced(np.zeros((640, 640, 3), np.uint8), loaded)  # imports, first forward
    boxes = tile_boxes(tuple(case.size), SLICE["slice_wh"], SLICE["overlap"])
    report: dict[str, Any] = {
        "rss_before_mib": _rss() / MIB,
        "read_only": _read_all(case.image, boxes),
    }
    reset_peak_rss()
    started, cpu = time.perf_counter(), time.process_time()
    summary = si.apply_sliced_model(dataset, model, "sliced", progress=False, **SLICE)
    seconds = time.perf_counter() - started
    report.update(
        peak_rss_mib=peak_rss() / MIB,
        seconds=seconds,
        cpu_seconds=time.process_time() - cpu,
        huge_tiles=len(boxes),
        tiles_per_second=len(boxes) / seconds,
        processed=summary.processed,
        errors={paths_by_id[k]: v for k, v in summary.errors.items()},
    )
    if skip_flat:
        report.update(tiles_seen=model.tiles, tiles_predicted=model.predicted)
    mosaic = dataset[ids[case.image]]
    report["metadata"] = {
        "width": mosaic.metadata.width,
        "height": mosaic.metadata.height,
        "georeference": mosaic.metadata["georeference"],
    }
    report["pasted"] = _score_mosaic(case, mosaic, "sliced", loaded.class_names)
    report["alone"] = _score_scenes(case, dataset, ids, loaded.class_names)
    if baseline:
        view = dataset.select(ids[case.image])
        reset_peak_rss()
        started = time.perf_counter()
        si.apply_baseline_model(view, loaded, "baseline", progress=False)
        report["baseline"] = {
            "seconds": time.perf_counter() - started,
            "peak_rss_mib": peak_rss() / MIB,
            **_score_mosaic(
                case, dataset[ids[case.image]], "baseline", loaded.class_names
            ),
        }
    dataset.delete()
    return report


def _read_all(path: str, boxes: np.ndarray) -> dict[str, float]:
    """Wall and CPU seconds to read every slice of the image, without a model."""
    from sliced_inference.slicer import open_raster

    started, cpu = time.perf_counter(), time.process_time()
    with open_raster(path) as raster:
        for box in boxes:
            raster.read_window(*(int(v) for v in box))
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
    }


def _score_mosaic(case: HugeCase, sample: Any, field: str, names: dict) -> dict:
    """AP50 and recall of the pasted objects, and detections off the scenes."""
    truth = _instances(
        [
            np.asarray(b, float).reshape(-1, 4) + [x, y, x, y]
            for b, (x, y) in zip(case.boxes, case.offsets, strict=True)
        ],
        [label for labels in case.labels for label in labels],
        names,
    )
    dets = _detections(sample[field], *case.size, names)
    inside = np.zeros(len(dets.boxes), dtype=bool)
    for x, y in case.offsets:
        cx = (dets.boxes[:, 0] + dets.boxes[:, 2]) / 2
        cy = (dets.boxes[:, 1] + dets.boxes[:, 3]) / 2
        inside |= (
            (cx >= x) & (cx < x + SCENE_SIZE[0]) & (cy >= y) & (cy < y + SCENE_SIZE[1])
        )
    return {
        "objects": len(truth.boxes),
        "detections": len(dets.boxes),
        "off_scenes": int((~inside).sum()),
        "AP50": ap50([truth], [dets]),
        "recall": recall50([truth], [dets]),
    }


def _score_scenes(case: HugeCase, dataset: Any, ids: dict, names: dict) -> dict:
    truths = [
        _instances([np.asarray(b, float).reshape(-1, 4)], labels, names)
        for b, labels in zip(case.boxes, case.labels, strict=True)
    ]
    dets = [
        _detections(dataset[ids[path]]["sliced"], *SCENE_SIZE, names)
        for path in case.scenes
    ]
    return {
        "objects": sum(len(t.boxes) for t in truths),
        "detections": sum(len(d.boxes) for d in dets),
        "AP50": ap50(truths, dets),
        "recall": recall50(truths, dets),
    }


def _instances(boxes: list[np.ndarray], labels: list[str], names: dict) -> Instances:
    ids = {name: cid for cid, name in names.items()}
    return Instances(np.concatenate(boxes), [ids[label] for label in labels])


def _detections(detections: Any, width: int, height: int, names: dict) -> Instances:
    ids = {name: cid for cid, name in names.items()}
    dets = detections.detections if detections is not None else []
    boxes = [
        [x * width, y * height, (x + w) * width, (y + h) * height]
        for x, y, w, h in (d.bounding_box for d in dets)
    ]
    return Instances(
        np.asarray(boxes, float).reshape(-1, 4),
        [ids[d.label] for d in dets],
        [d.confidence for d in dets],
    )


def _rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def render(report: dict, meta: dict, width: int, height: int) -> str:
    """The report's Markdown section."""
    pasted, alone, read = report["pasted"], report["alone"], report["read_only"]
    lines = [
        "## Huge image: a BigTIFF larger than memory",
        "",
        f"Written by `bench/huge_image.py` on {meta['date']}: {meta['cpu']}, "
        f"{meta['cores']} cores, load average (1, 5, 15 min) at the start "
        f"{meta['load_start']}, at the end {meta['load_end']}; commit "
        f"{meta['commit']}. Command: `{meta['command']}`.",
        "",
        f"A {width}x{height} zlib-tiled GeoTIFF (BigTIFF, 512 px tiles; decoded it "
        f"would take {width * height * 3 / 2**30:.1f} GiB) with four 1600x1200 "
        "generated scenes pasted in; labelled through `apply_sliced_model` "
        f"(640 px tiles, overlap 0.2, {_model_words(report)}) in one child "
        "process, with the four scenes as separate PNGs in the same run.",
        "",
        "| image | tiles | time | tiles/s | CPU s per tile | peak RSS | objects | AP50 pasted | AP50 scenes alone | recall pasted | recall scenes alone |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {width}x{height} BigTIFF | {report['huge_tiles']} | {report['seconds']:.0f} s | "
        f"{report['tiles_per_second']:.1f} | "
        f"{report['cpu_seconds'] / report['huge_tiles']:.3f} | "
        f"{report['peak_rss_mib']:,.0f} MiB | "
        f"{pasted['objects']} | {pasted['AP50']:.3f} | {alone['AP50']:.3f} | "
        f"{pasted['recall']:.3f} | {alone['recall']:.3f} |",
        "",
        f"Time and tiles/s cover the whole run (the BigTIFF's {report['huge_tiles']} "
        "tiles and the four scenes' tiles); peak RSS is the process's high-water "
        f"mark during the run (model and libraries loaded: {report['rss_before_mib']:,.0f} "
        f"MiB before it). Detections off the pasted scenes: {pasted['off_scenes']}. "
        "CPU seconds (user + system, all threads) are less sensitive than wall time "
        "to other jobs on the machine. Reading every slice of the image alone, "
        f"without a model: {read['seconds']:.0f} s ({read['cpu_seconds'] / report['huge_tiles'] * 1000:.1f} "
        "ms CPU per slice).",
    ]
    base = report.get("baseline")
    if base:
        lines += [
            "",
            f"Baseline on the same image (shrunk to the model's input size while "
            f"it is read, never decoded whole): {base['seconds']:.0f} s, peak RSS "
            f"{base['peak_rss_mib']:,.0f} MiB, AP50 {base['AP50']:.3f}, recall "
            f"{base['recall']:.3f}.",
        ]
    return "\n".join(lines) + "\n"


def _model_words(report: dict) -> str:
    if "tiles_predicted" not in report:
        return "the bundled detector on every tile"
    return (
        f"`--skip-flat`: the bundled detector on the {report['tiles_predicted']} "
        f"of {report['tiles_seen']} tiles that are not one flat colour"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the Markdown section to this file")
    parser.add_argument("--width", type=int, default=40000)
    parser.add_argument("--height", type=int, default=30000)
    parser.add_argument("--skip-flat", action="store_true", help="SkipFlatTiles model")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--model", default=str(DET_MODEL))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    if args.child:
        report = _child(
            HugeCase.load(args.child), args.model, args.skip_flat, not args.no_baseline
        )
        print(json.dumps(report), flush=True)
        return 0
    from .report import load_average, machine_info

    meta = machine_info(argv or sys.argv[1:], "cpu")
    meta["command"] = meta["command"].replace("bench.run", "bench.huge_image")
    with tempfile.TemporaryDirectory(prefix="huge-image-") as folder:
        started = time.perf_counter()
        make_case(folder, args.width, args.height)
        written = time.perf_counter() - started
        report = measure(
            Path(folder) / "case.json", args.model, args.skip_flat, not args.no_baseline
        )
    report["write_seconds"] = written
    meta["load_end"] = load_average()
    text = render(report, meta, args.width, args.height)
    print(json.dumps(report, indent=1))
    print(text)
    if args.out:
        write_section(Path(args.out), "bench.huge_image", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
