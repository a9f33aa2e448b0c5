"""Video benchmark: sliced inference on the frames of a generated drone video, ours vs SAHI.

Usage::

    .venv/bin/python -m bench.video --out /tmp/video.json            # 60 frames, 1920x1080
    .venv/bin/python -m bench.video --out /tmp/video.json --docs     # and docs/benchmarks.md
    .venv/bin/python -m bench.video --frames 4 --out /tmp/v.json     # a quick check
    .venv/bin/python -m bench.video --render /tmp/video.json --docs  # report again

What it measures, in one process and on the same decoded frames:

- **Frames per second** of the sliced prediction of each frame: ours
  (``predict_sliced``) against SAHI's per-frame loop
  (``sahi.predict.get_sliced_prediction`` with its Ultralytics model), with
  matched settings (the same tiles, model, per-tile input size, confidence,
  NMS IoU 0.5 per class, no full-image pass) and with SAHI's defaults (its own
  tiles, GREEDYNMM and a full-image pass). The tools take turns frame by frame
  (the order rotates), so load from elsewhere is spread over all of them;
  decoding is outside the timed calls. Ratios, not seconds, compare the tools.
- **AP50** (all objects and small ones) of each tool and of the whole-frame
  baseline against the video's ground truth (``bench.evaluate``).
- **Trackers** on our merged detections of every frame: Ultralytics' ByteTrack
  and BoT-SORT (what runs use) and, when installed, Roboflow's ``trackers``
  ByteTrack (the successor of supervision's): IDF1 against the true track ids,
  and milliseconds per frame.
- **The SDK end to end** (``apply_sliced_model`` on a FiftyOne video dataset,
  with ByteTrack): frames per second including decoding and writing frame
  labels, IDF1 of what it stored, and the process's memory (RSS) after each
  frame: it must stay flat over the length of the video.

Never import ``sahi.utils.fiftyone`` or ``sahi.predict.predict_fiftyone``:
importing them runs ``pkill mongod``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sliced_inference.evaluation.tracking import FrameTracks, identity_scores
from sliced_inference.slicer import (
    Tracker,
    VideoOptions,
    load_model,
    predict_full_image,
    read_frames,
)
from sliced_inference.synthetic import CLASSES, VideoLabels, write_video

from . import report
from .evaluate import SMALL_AREA, Instances, ap50
from .peers import Ours, Sahi, Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
DET_MODEL = REPO_ROOT / "models" / "small-objects-det.pt"
DOCS = REPO_ROOT / "docs" / "benchmarks.md"
SECTION = "bench.video"
MIB = 1024**2


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark; writes the JSON (and the docs section with ``--docs``)."""
    parser = argparse.ArgumentParser(prog="python -m bench.video", description=__doc__)
    parser.add_argument("--out", help="JSON file for the results")
    parser.add_argument(
        "--render", metavar="JSON", help="only rewrite the report from saved results"
    )
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads for every tool (0: all cores); 1 keeps timings "
        "stable on a machine shared with other work",
    )
    parser.add_argument("--docs", action="store_true", help="update docs/benchmarks.md")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.render:
        results = json.loads(Path(args.render).read_text())
        _report(results, args.docs)
        return results
    if not args.out:
        parser.error("--out is required (or --render)")
    meta = report.machine_info(argv, args.device)
    meta["command"] = "python -m bench.video " + " ".join(argv)
    with tempfile.TemporaryDirectory(prefix="bench-video-") as tmp:
        video = Path(tmp) / "drone.mp4"
        labels = write_video(
            video, args.frames, args.width, args.height, seed=args.seed
        )
        settings = Settings(device=args.device, threads=args.threads)
        settings.pin_threads()
        meta["torch_threads"] = _torch_threads()
        frames = per_frame(video, labels, settings)
        trackers = compare_trackers(frames["ours"]["predictions"], labels, video)
        settings.pin_threads()
        sdk = sdk_run(video)
    meta["load_end"] = report.load_average()
    results = {
        "meta": meta,
        "video": {
            "frames": args.frames,
            "width": args.width,
            "height": args.height,
            "seed": args.seed,
            "objects_per_frame": float(np.mean([len(f.boxes) for f in labels.frames])),
        },
        "per_frame": {k: _public(v) for k, v in frames.items()},
        "trackers": trackers,
        "sdk": sdk,
    }
    Path(args.out).write_text(json.dumps(results, indent=2))
    _report(results, args.docs)
    return results


def _report(results: dict[str, Any], docs: bool) -> None:
    text = render(results)
    print(text)
    if docs:
        report.write_section(DOCS, SECTION, text)


def per_frame(
    video: Path, labels: VideoLabels, settings: Settings
) -> dict[str, dict[str, Any]]:
    """Each tool on every frame, taking turns; seconds, AP50s and our predictions."""
    shared: dict = {}
    tools = {
        "ours": Ours(DET_MODEL, settings, shared),
        "sahi": Sahi(DET_MODEL, settings, shared),
        "sahi-default": Sahi(
            DET_MODEL, dataclasses.replace(settings, matched=False), shared
        ),
    }
    baseline_model = load_model(str(DET_MODEL), device=settings.device)
    truths = [_truth(f.boxes, f.labels) for f in labels.frames]
    out: dict[str, dict[str, Any]] = {
        name: {"seconds": [], "instances": [], "predictions": []} for name in tools
    }
    out["baseline"] = {"seconds": [], "instances": [], "predictions": []}
    numbers = range(1, len(labels.frames) + 1)
    for tool in tools.values():  # warm-up, untimed (first-call set-up)
        settings.pin_threads()
        tool.run(tool.prepare(next(read_frames(video, [1]))[1]))
    for index, (_, rgb) in enumerate(read_frames(video, numbers)):
        names = list(tools)
        names = names[index % len(names) :] + names[: index % len(names)]
        for name in names:
            tool = tools[name]
            prepared = tool.prepare(rgb)
            settings.pin_threads()
            start = time.perf_counter()
            result = tool.run(prepared)
            out[name]["seconds"].append(time.perf_counter() - start)
            out[name]["instances"].append(tool.convert(result))
            if name == "ours":
                out[name]["predictions"].append(result)
        start = time.perf_counter()
        whole = predict_full_image(rgb, baseline_model, confidence=settings.confidence)
        out["baseline"]["seconds"].append(time.perf_counter() - start)
        out["baseline"]["instances"].append(
            Instances(whole.boxes, whole.class_ids, whole.scores)
        )
    for result in out.values():
        result["fps"] = len(result["seconds"]) / sum(result["seconds"])
        result["AP50"] = ap50(truths, result["instances"])
        result["AP50_small"] = ap50(
            truths, result["instances"], area_range=(0, SMALL_AREA)
        )
    return out


def compare_trackers(
    predictions: list, labels: VideoLabels, video: Path
) -> dict[str, Any]:
    """IDF1 and ms per frame of each tracker on the same merged detections."""
    truth = [FrameTracks(f.boxes, f.track_ids) for f in labels.frames]
    numbers = range(1, len(labels.frames) + 1)
    results = {}
    for name in ("bytetrack", "botsort"):
        tracker = Tracker(VideoOptions(tracker=name))
        # BoT-SORT's motion compensation reads the frames; ByteTrack needs none.
        pixels = None if tracker.needs_frames else ()
        tracked, seconds = [], 0.0
        for preds, (_, frame) in zip(
            predictions, read_frames(video, numbers, pixels), strict=True
        ):
            boxes = _clipped(preds.boxes, labels.width, labels.height)
            start = time.perf_counter()
            ids = tracker.update(boxes, preds.scores, preds.class_ids, frame)
            seconds += time.perf_counter() - start
            tracked.append(FrameTracks(boxes, ids))
        results[f"ultralytics {name}"] = _tracking(truth, tracked, seconds)
    try:
        import supervision as sv
        from trackers import ByteTrackTracker
    except ImportError:
        return results
    tracker = ByteTrackTracker(frame_rate=labels.fps)
    tracked, seconds = [], 0.0
    for preds in predictions:
        boxes = _clipped(preds.boxes, labels.width, labels.height)
        detections = sv.Detections(
            xyxy=boxes.astype(np.float32),
            confidence=preds.scores,
            class_id=preds.class_ids.astype(int),
            data={"i": np.arange(len(preds))},
        )
        start = time.perf_counter()
        out = tracker.update(detections)
        seconds += time.perf_counter() - start
        ids = np.full(len(preds), -1)
        ids[out.data["i"]] = out.tracker_id
        tracked.append(FrameTracks(boxes, ids))
    results["trackers ByteTrack (Roboflow)"] = _tracking(truth, tracked, seconds)
    return results


def sdk_run(video: Path) -> dict[str, Any]:
    """``apply_sliced_model`` with ByteTrack on a video dataset: fps, IDF1, memory per frame."""
    import psutil

    import sliced_inference as si
    from sliced_inference.evaluation.tracking import collection_identity_scores
    from sliced_inference.synthetic import load_fiftyone_video_dataset

    dataset = load_fiftyone_video_dataset([video])
    process = psutil.Process()
    rss: list[int] = []

    def progress(fraction: float, label: str) -> None:
        if label.endswith("video 1/1"):  # one per labelled frame
            rss.append(process.memory_info().rss)

    try:
        summary = si.apply_sliced_model(
            dataset, str(DET_MODEL), "sliced", tracker="bytetrack", progress=progress
        )
        idf1 = collection_identity_scores(dataset, "ground_truth", "sliced").idf1
    finally:
        dataset.delete()
    quarter = max(len(rss) // 4 - 1, 0)
    return {
        "frames": summary.frames_processed,
        "fps": summary.frames_per_second,
        "seconds": summary.seconds,
        "idf1": idf1,
        "rss_mib": [round(r / MIB, 1) for r in rss],
        "rss_growth_after_first_quarter_mib": round((max(rss) - rss[quarter]) / MIB, 1),
    }


def render(results: dict[str, Any]) -> str:
    """The markdown section of ``docs/benchmarks.md``."""
    meta, video, frames = results["meta"], results["video"], results["per_frame"]
    ours = frames["ours"]
    lines = [
        "## Video: sliced frames, ours vs SAHI's per-frame loop",
        "",
        f"A generated drone-like video (`synthetic.write_video`, seed {video['seed']}): "
        f"{video['frames']} frames of {video['width']}x{video['height']}, about "
        f"{video['objects_per_frame']:.0f} objects of 12-40 px per frame, most "
        "moving. Bundled detector, 640 px tiles, overlap 0.2. Measured on "
        f"{meta['cpu']} ({meta['cores']} cores, torch threads {meta['torch_threads']}, "
        f"device {meta['device']}), {meta['date']}; load average at start "
        f"{meta['load_start']}, at end {meta['load_end']}: compare the ratios, "
        f"not the seconds. Command: `{meta['command']}` (commit {meta['commit']}).",
        "",
        "| per frame | frames/s | ours vs it | AP50 | small AP50 |",
        "| --- | --- | --- | --- | --- |",
    ]
    names = {
        "ours": "ours (`predict_sliced`)",
        "sahi": "SAHI `get_sliced_prediction`, matched",
        "sahi-default": "SAHI `get_sliced_prediction`, its defaults",
        "baseline": "whole frame (baseline)",
    }
    for key, label in names.items():
        r = frames[key]
        ratio = "" if key == "ours" else f"{ours['fps'] / r['fps']:.2f}x"
        lines.append(
            f"| {label} | {r['fps']:.2f} | {ratio} | {r['AP50']:.3f} | "
            f"{r['AP50_small']:.3f} |"
        )
    sdk = results["sdk"]
    lines += [
        "",
        f'The SDK end to end (`apply_sliced_model(..., tracker="bytetrack")` on a '
        f"FiftyOne video dataset: decoding, slicing, tracking and writing "
        f"`frames.sliced` in batches; default settings, provenance merge): "
        f"{sdk['fps']:.2f} frames/s (measured after the per-frame loop, not "
        f"interleaved with it: {sdk['fps'] / ours['fps']:.2f} of its rate), IDF1 "
        f"{sdk['idf1']:.3f} against the true track ids. Memory: RSS "
        f"{sdk['rss_mib'][0]:,.0f} MiB after the first frame, "
        f"{max(sdk['rss_mib']):,.0f} MiB at most; it grew by "
        f"{sdk['rss_growth_after_first_quarter_mib']:.1f} MiB over the last three "
        f"quarters of the video ({sdk['frames']} frames): flat.",
        "",
        "| tracker, on our detections of every frame (the NMS merge above) | "
        "IDF1 | IDP | IDR | "
        "ids (true ids) | ms/frame |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, t in results["trackers"].items():
        lines.append(
            f"| {name} | {t['idf1']:.3f} | {t['idp']:.3f} | {t['idr']:.3f} | "
            f"{t['num_pred_ids']} ({t['num_true_ids']}) | {t['ms_per_frame']:.1f} |"
        )
    lines += [
        "",
        "Runs use Ultralytics' trackers: ByteTrack is the default choice for a "
        "steady camera, BoT-SORT adds camera-motion compensation.",
    ]
    return "\n".join(lines) + "\n"


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _truth(boxes: list, labels: list[str]) -> Instances:
    return Instances(
        np.array(boxes, float).reshape(-1, 4), [CLASSES.index(x) for x in labels]
    )


def _clipped(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.clip(boxes, 0, [width, height, width, height]).astype(np.float64)


def _tracking(
    truth: list[FrameTracks], tracked: list[FrameTracks], seconds: float
) -> dict[str, Any]:
    scores = identity_scores(truth, tracked).to_dict()
    return {**scores, "ms_per_frame": 1000 * seconds / max(len(tracked), 1)}


def _public(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "fps": result["fps"],
        "AP50": result["AP50"],
        "AP50_small": result["AP50_small"],
        "seconds": result["seconds"],
    }


if __name__ == "__main__":
    os.environ.setdefault("YOLO_VERBOSE", "False")
    main()
