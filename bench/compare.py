"""The comparison benchmark: ``compare_runs`` against FiftyOne's bare evaluation, in one run.

What it measures, on generated scenes with simulated predictions (ground truth
kept with probability ``recall``, shifted by a few pixels, plus false
positives; masks copied from the ground truth for the mask runs):

- ``bare``: one ``evaluate_detections(method="coco", compute_mAP=True,
  eval_key=None, max_preds=1000)`` per run (mask IoU for the mask runs): what
  FiftyOne needs for the numbers alone, without writing anything;
- ``compare_runs``: the whole comparison of the same runs (overall, by size,
  recovered / lost, a FiftyOne evaluation per run with its per-object
  attributes written, the comparison stored);
- ``legacy`` (at the smaller size): the path ``compare_runs`` replaced
  (``bench.legacy_compare``: four FiftyOne evaluations per run);
- its share of mask IoU (polygon conversion and intersections).

Target (issue 12): ``compare_runs`` at most twice the bare cost, for boxes and
masks; ten times the images at most ten times the time. Timings are medians of
``--repeats`` interleaved repeats (one at the larger size), ``compare_runs``
first in each, after one warm-up of the process; ratios are taken within one
run.

Usage::

    .venv/bin/python -m bench.compare --out /tmp/compare.md
    .venv/bin/python -m bench.compare --images 2 --scale 2 --runs 2 --repeats 1   # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .report import load_average

GT_FIELD = "ground_truth"


@dataclass
class Case:
    """One measured configuration: IoU kind, images, runs, and the seconds of each path."""

    iou: str
    images: int
    objects: int
    predictions: int
    runs: int
    seconds: dict[str, float] = field(default_factory=dict)

    def ratio(self, slow: str, fast: str) -> float | None:
        """``seconds[slow] / seconds[fast]``, when both were measured."""
        if slow in self.seconds and self.seconds.get(fast):
            return self.seconds[slow] / self.seconds[fast]
        return None


def simulate_predictions(
    dataset: Any,
    field_name: str,
    *,
    seed: int,
    recall: float = 0.8,
    false_positives: float = 0.3,
    jitter_px: int = 2,
    masks: bool = True,
) -> None:
    """Writes ``field_name``: the ground truth found with probability ``recall``, shifted.

    Each kept object moves by up to ``jitter_px`` pixels and gets a random
    confidence; with probability ``false_positives`` a same-sized box of lower
    confidence lands at a random place. Masks (the ground truth's) are copied
    when ``masks``.

    Example::

        >>> simulate_predictions(dataset, "sliced", seed=1, recall=0.9)  # doctest: +SKIP
    """
    import fiftyone as fo

    rng = np.random.default_rng(seed)
    values = {}
    paths = ["id", "metadata.width", "metadata.height", f"{GT_FIELD}.detections"]
    for sample_id, width, height, truth in zip(*dataset.values(paths), strict=True):
        found = []
        for obj in truth or []:
            x, y, w, h = obj.bounding_box
            mask = obj.mask if masks else None
            if rng.random() < recall:
                dx, dy = rng.integers(-jitter_px, jitter_px + 1, 2)
                box = [x + dx / width, y + dy / height, w, h]
                found.append(_detection(obj.label, box, mask, rng.random()))
            if rng.random() < false_positives:
                box = [rng.random() * (1 - w), rng.random() * (1 - h), w, h]
                found.append(_detection(obj.label, box, mask, rng.random() / 2))
        values[sample_id] = fo.Detections(detections=found)
    dataset.set_values(field_name, values, key_field="id")


def build_dataset(name: str, root: Path, num_images: int, seed: int) -> Any:
    """Generated scenes (1600-2400 px, ground truth with masks) as a FiftyOne dataset."""
    from sliced_inference.synthetic import load_fiftyone_dataset, write_dataset

    write_dataset(
        root, num_images=num_images, seed=seed, min_width=1600, max_width=2400
    )
    dataset = load_fiftyone_dataset(root, name=name, overwrite=True)
    dataset.compute_metadata()
    return dataset


def measure(
    dataset: Any,
    fields: Sequence[str],
    *,
    masks: bool,
    repeats: int,
    legacy: bool,
    warm_up: bool = False,
) -> Case:
    """Times the bare evaluations, ``compare_runs`` (and the old path) on ``fields``."""
    from sliced_inference.bench.legacy_compare import legacy_compare_runs
    from sliced_inference.evaluation import compare_runs

    kind = "masks" if masks else "boxes"

    # On a copy without stored evaluations: their per-object attributes would
    # slow FiftyOne's reading of the labels (compare_runs reads none of them).
    pristine = dataset.clone()

    def bare() -> None:
        for name in fields:
            pristine.evaluate_detections(
                name,
                gt_field=GT_FIELD,
                method="coco",
                compute_mAP=True,
                max_preds=1000,
                use_masks=masks,
                tolerance=1.0 if masks else None,
                progress=False,
            )

    # compare_runs runs first in each repeat: a cold cache costs it, not the reference.
    actions: dict[str, Callable[[], Any]] = {
        "compare_runs": lambda: compare_runs(
            dataset, GT_FIELD, fields, use_masks=masks, progress=False
        ),
        "bare": bare,
    }
    if legacy:
        actions["legacy"] = lambda: legacy_compare_runs(
            dataset, GT_FIELD, fields, use_masks=masks
        )
    if warm_up:  # imports and first queries, once per process
        for name in ("compare_runs", "bare"):
            actions[name]()
    times: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(repeats):
        for name, action in actions.items():
            start = time.perf_counter()
            action()
            times[name].append(time.perf_counter() - start)
    pristine.delete()
    case = Case(
        iou=kind,
        images=len(dataset),
        objects=dataset.count(f"{GT_FIELD}.detections"),
        predictions=sum(dataset.count(f"{f}.detections") for f in fields),
        runs=len(fields),
        seconds={name: statistics.median(t) for name, t in times.items()},
    )
    if masks:
        case.seconds["mask IoU (in compare_runs)"] = _mask_iou_seconds(dataset, fields)
    return case


def render(cases: Sequence[Case], meta: dict[str, Any]) -> str:
    """The Markdown section of ``docs/benchmarks.md``."""
    lines = [
        "| IoU | images | GT objects | predictions | runs | bare FiftyOne s | "
        "compare_runs s | compare / bare | old path s | old / compare |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        s = case.seconds
        lines.append(
            f"| {case.iou} | {case.images} | {case.objects} | {case.predictions} | "
            f"{case.runs} | {s['bare']:.1f} | {s['compare_runs']:.1f} | "
            f"{_x(case.ratio('compare_runs', 'bare'))} | "
            f"{_s(s.get('legacy'))} | {_x(case.ratio('legacy', 'compare_runs'))} |"
        )
    lines += ["", *_scaling(cases), "", *_mask_share(cases), ""]
    lines += [
        f"Machine: {meta['cpu']} ({meta['cores']} cores; flags: {meta['flags']}). "
        f"Load average at start {meta['load_start']}, at end {meta['load_end']}. "
        f"Command: `{meta['command']}`; {meta['date']}.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark and writes its Markdown (and JSON next to it)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.compare", description=__doc__
    )
    parser.add_argument(
        "--images", type=int, default=4, help="images at the small size"
    )
    parser.add_argument(
        "--scale", type=int, default=10, help="times more images at the large size"
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="prediction fields compared"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed repeats at the small size (median)",
    )
    parser.add_argument("--out", type=Path, help="Markdown output (default: print)")
    args = parser.parse_args(argv)
    os.environ.setdefault("FIFTYONE_SHOW_PROGRESS_BARS", "false")
    meta = {
        "cpu": _cpu(),
        "cores": os.cpu_count(),
        "flags": _flags(),
        "load_start": load_average(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": "python -m bench.compare " + " ".join(argv or sys.argv[1:]),
    }
    cases = []
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        sizes = (
            (args.images, True, args.repeats),
            (args.images * args.scale, False, 1),
        )
        for size, legacy, repeats in sizes:
            name = f"bench-compare-{size}"
            dataset = build_dataset(name, Path(tmp) / name, size, seed=7)
            fields = [f"run_{i}" for i in range(args.runs)]
            for masks in (False, True):
                for i, name_i in enumerate(fields):
                    simulate_predictions(
                        dataset,
                        name_i,
                        seed=i,
                        recall=0.5 + 0.4 * i / args.runs,
                        masks=masks,
                    )
                cases.append(
                    measure(
                        dataset,
                        fields,
                        masks=masks,
                        repeats=repeats,
                        legacy=legacy,
                        warm_up=not cases,
                    )
                )
                print(json.dumps(asdict(cases[-1])), flush=True)
            dataset.delete()
    meta["load_end"] = load_average()
    text = render(cases, meta)
    if args.out:
        args.out.write_text(text + "\n")
        args.out.with_suffix(".json").write_text(
            json.dumps({"meta": meta, "cases": [asdict(c) for c in cases]}, indent=2)
        )
    print(text)
    return 0


def _mask_iou_seconds(dataset: Any, fields: Sequence[str]) -> float:
    """Seconds ``compare_runs`` spends on mask IoUs for ``fields`` (one GT conversion)."""
    from sliced_inference.evaluation.ious import PolygonCache, compute_candidates
    from sliced_inference.evaluation.objects import Images, Objects

    images = Images.load(dataset)
    gt = Objects.load(dataset, GT_FIELD, images, masks=True)
    preds = [Objects.load(dataset, name, images, masks=True) for name in fields]
    cache = PolygonCache(1.0)
    start = time.perf_counter()
    for objects in preds:
        compute_candidates(
            gt, objects, classwise=True, use_masks=True, tolerance=1.0, cache=cache
        )
    return time.perf_counter() - start


def _scaling(cases: Sequence[Case]) -> list[str]:
    lines = []
    for kind in ("boxes", "masks"):
        small, large = [c for c in cases if c.iou == kind][:2]
        factor = large.images / small.images
        for path in ("bare", "compare_runs"):
            ratio = large.seconds[path] / small.seconds[path]
            lines.append(
                f"- {kind}, {path}: {small.images} -> {large.images} images "
                f"(x{factor:.0f}) took x{ratio:.1f} the time"
            )
    return ["Scaling:", "", *lines]


def _mask_share(cases: Sequence[Case]) -> list[str]:
    lines = []
    for case in cases:
        iou = case.seconds.get("mask IoU (in compare_runs)")
        if iou is not None:
            share = iou / case.seconds["compare_runs"]
            lines.append(
                f"- masks, {case.images} images: mask IoU {iou:.1f} s of "
                f"{case.seconds['compare_runs']:.1f} s ({share:.0%})"
            )
    return ["Mask IoU share of compare_runs:", "", *lines]


def _detection(label: str, box: list[float], mask: Any, confidence: float) -> Any:
    import fiftyone as fo

    return fo.Detection(
        label=label, bounding_box=box, mask=mask, confidence=float(confidence)
    )


def _cpu() -> str:
    for line in _cpuinfo():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _flags() -> str:
    for line in _cpuinfo():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return " ".join(f for f in ("avx2", "avx512f", "avx512_vnni") if f in flags)
    return "unknown"


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def _s(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _x(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


if __name__ == "__main__":
    raise SystemExit(main())
