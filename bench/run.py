"""The benchmark command: ours vs SAHI vs supervision, written where you say.

Usage::

    .venv/bin/python -m bench.run --out /tmp/bench.md     # everything (an hour or more on 2 cores)
    .venv/bin/python -m bench.run --docs                  # ... and regenerate docs/benchmarks.md
    .venv/bin/python -m bench.run --quick --out /tmp/b.md # one small image, one run
    .venv/bin/python -m bench.run --device cuda --batch-size 8 --out /tmp/gpu.md

The report goes to ``--out`` (and its raw numbers to the same name with
``.json``); ``docs/benchmarks.md`` is only rewritten with ``--docs``.
Everything runs in one process (memory: one child process per tool) on the
same generated images, with the same model, tiles and settings; see
``bench.peers`` for the rows and what "matched" and "default" settings mean.
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
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from . import report
from .evaluate import SMALL_AREA, Instances, ap50
from .floor import forward_only
from .memory import MemoryResult, measure
from .peers import Settings, build_tool
from .report import FLOOR, FLOOR_TORCH, LoadSampler
from .scenes import BenchImage, generate
from .timing import time_interleaved

REPO_ROOT = Path(__file__).resolve().parents[1]
DET_MODEL = REPO_ROOT / "models" / "small-objects-det.pt"
SEG_MODEL = REPO_ROOT / "models" / "small-objects-seg.pt"
DOCS_REPORT = REPO_ROOT / "docs" / "benchmarks.md"
#: The timed rows (see ``bench.peers``), detection and its density sweep.
DET_TOOLS = (
    "ours",
    "ours-1stream",
    "ours-torch",
    "ours-int8",
    "sdk",
    "sdk-int8",
    "sahi",
    "sahi-default",
    "sahi-openvino",
    "supervision",
)
#: Segmentation adds supervision's compact masks; its density sweep leaves
#: supervision out (its mask NMS grows with the square of the detections:
#: minutes per image here; its numbers are in the section's table).
SEG_TOOLS = (*DET_TOOLS, "supervision-compact")
SEG_DENSITY_TOOLS = tuple(t for t in DET_TOOLS if t != "supervision")
#: Rows that only exist on a CPU (OpenVINO and the two-stream scheme).
CPU_ONLY = ("ours-1stream", "ours-torch", "ours-int8", "sdk-int8", "sahi-openvino")
#: Rows already at their tool's default settings (scored as "default").
DEFAULT_ROWS = ("sdk", "sdk-int8", "sahi-default")
#: Tools also scored once at their own defaults (the others have a row for it).
DEFAULT_TWINS = ("ours", "supervision")
#: supervision's default (dense) masks are full-image arrays, and its mask NMS
#: multiplies them as one float32 ``N x H*W`` matrix: images where that would
#: pass this size are not given to it (its compact-mask mode still runs).
DENSE_MASK_LIMIT = 3 * 1024**3


@dataclass
class Plan:
    """What to run: image sizes, object counts, repeats."""

    det_sizes: list[tuple[int, int]]
    seg_sizes: list[tuple[int, int]]
    seg_density: float | None
    density_size: tuple[int, int] | None
    density_levels: list[float]
    seg_density_size: tuple[int, int] | None
    seg_density_levels: list[float]
    memory_size: tuple[int, int] | None
    memory_density: float
    repeats: int
    warmup: int
    seed: int = 1000


FULL_PLAN = Plan(
    det_sizes=[(1600, 1200), (3200, 2400), (4800, 3600), (8000, 6000)],
    seg_sizes=[(1600, 1200), (2400, 1800)],
    seg_density=100.0,
    density_size=(3200, 2400),
    density_levels=[10.0, 40.0, 160.0, 320.0],
    seg_density_size=(1600, 1200),
    seg_density_levels=[50.0, 100.0, 200.0, 400.0],
    memory_size=(8000, 6000),
    memory_density=40.0,
    repeats=3,
    warmup=1,
)
QUICK_PLAN = Plan(
    det_sizes=[(1280, 960)],
    seg_sizes=[(1280, 960)],
    seg_density=60.0,
    density_size=None,
    density_levels=[],
    seg_density_size=None,
    seg_density_levels=[],
    memory_size=None,
    memory_density=0.0,
    repeats=1,
    warmup=1,
)


@dataclass
class ImageRun:
    """Every tool's median time and detection count on one image."""

    image: str
    width: int
    height: int
    tiles: int
    objects: int
    seconds: dict[str, float] = field(default_factory=dict)
    spread: dict[str, float] = field(default_factory=dict)
    detections: dict[str, int] = field(default_factory=dict)


@dataclass
class Accuracy:
    """AP50 of one tool at one setting, pooled over a section's images."""

    setting: str
    tool: str
    box_all: float
    box_small: float
    mask_all: float | None = None
    mask_small: float | None = None
    seconds: float | None = None
    detections: int = 0


@dataclass
class Section:
    """One task (detection or segmentation): timings and accuracy."""

    task: str
    model: str
    settings: dict
    tools: list[str]
    runs: list[ImageRun] = field(default_factory=list)
    accuracy: list[Accuracy] = field(default_factory=list)


@dataclass
class DensityRun:
    """Time per image at one object count (fixed image size and tiles)."""

    task: str
    objects: int
    tiles: int
    seconds: dict[str, float]
    detections: dict[str, int]


def run_section(
    task: str,
    model_path: Path,
    images: Sequence[BenchImage],
    tools: Sequence[str],
    settings: Settings,
    plan: Plan,
    *,
    with_floor: bool,
    shared: dict,
) -> Section:
    """Times the tools on each image (matched settings), then scores them at
    matched and at default settings."""
    section = Section(task, model_path.name, dataclasses.asdict(settings), list(tools))
    matched = {name: build_tool(name, model_path, settings, shared) for name in tools}
    outputs: dict[str, list[Instances]] = {name: [] for name in tools}
    totals = dict.fromkeys(tools, 0.0)
    for bench_image in images:
        _log(f"{task}: {bench_image.name}, {len(bench_image.truth)} objects")
        runnable = {
            n: t for n, t in matched.items() if not _too_big(n, task, bench_image)
        }
        prepared = {n: t.prepare(bench_image.image) for n, t in runnable.items()}
        calls = {n: partial(t.run, prepared[n]) for n, t in runnable.items()}
        if with_floor:
            for floor, tool in ((FLOOR, "ours"), (FLOOR_TORCH, "ours-torch")):
                if tool in matched:
                    ours = matched[tool]
                    calls[floor] = forward_only(
                        ours.model, bench_image.image, ours.options
                    )
        timings, last = time_interleaved(
            calls,
            repeats=plan.repeats,
            warmup=plan.warmup,
            before=settings.pin_threads,
        )
        run = ImageRun(
            bench_image.name,
            bench_image.width,
            bench_image.height,
            _tile_count(bench_image, settings),
            len(bench_image.truth),
        )
        for name, timing in timings.items():
            run.seconds[name] = timing.median
            run.spread[name] = timing.spread
            if name in matched:
                converted = matched[name].convert(last[name])
                outputs[name].append(converted)
                run.detections[name] = len(converted)
                totals[name] += timing.median
        _log("  " + ", ".join(f"{k} {v:.2f}s" for k, v in run.seconds.items()))
        section.runs.append(run)
    truths = [b.truth for b in images]
    masks = task == "segmentation"
    for name in tools:
        if len(outputs[name]) < len(images):
            continue  # not run on every image: no pooled AP to compare
        setting = "default" if name in DEFAULT_ROWS else "matched"
        section.accuracy.append(
            _score(setting, name, truths, outputs[name], masks, totals[name])
        )
    section.accuracy += _default_accuracy(
        model_path, images, tools, settings, masks, shared
    )
    return section


def dense_mask_bytes(bench_image: BenchImage) -> int:
    """Rough size of supervision's float32 mask matrix for an image (1.3 masks per object)."""
    return int(
        1.3 * len(bench_image.truth) * bench_image.width * bench_image.height * 4
    )


def _too_big(tool: str, task: str, bench_image: BenchImage) -> bool:
    return (
        tool == "supervision"
        and task == "segmentation"
        and dense_mask_bytes(bench_image) > DENSE_MASK_LIMIT
    )


def _default_accuracy(
    model_path: Path,
    images: Sequence[BenchImage],
    tools: Sequence[str],
    settings: Settings,
    masks: bool,
    shared: dict,
) -> list[Accuracy]:
    """Each tool with its own default merging (one timed run per image)."""
    defaults = dataclasses.replace(settings, matched=False)
    scores = []
    for name in tools:
        if name not in DEFAULT_TWINS:
            continue  # a variant, or already a default row
        if any(_too_big(name, "segmentation" if masks else "", b) for b in images):
            name = "supervision-compact"
        tool = build_tool(name, model_path, defaults, shared)
        outputs, seconds = [], 0.0
        for bench_image in images:
            prepared = tool.prepare(bench_image.image)
            settings.pin_threads()
            start = time.perf_counter()
            result = tool.run(prepared)
            seconds += time.perf_counter() - start
            outputs.append(tool.convert(result))
        truths = [b.truth for b in images]
        scores.append(_score("default", name, truths, outputs, masks, seconds))
    return scores


def _score(
    setting: str,
    tool: str,
    truths: list[Instances],
    outputs: list[Instances],
    masks: bool,
    seconds: float,
) -> Accuracy:
    small = (0.0, SMALL_AREA)
    accuracy = Accuracy(
        setting,
        tool,
        box_all=ap50(truths, outputs),
        box_small=ap50(truths, outputs, area_range=small),
        seconds=seconds,
        detections=sum(len(o) for o in outputs),
    )
    if masks:
        accuracy.mask_all = ap50(truths, outputs, use_masks=True)
        accuracy.mask_small = ap50(truths, outputs, use_masks=True, area_range=small)
    return accuracy


def run_density(
    task: str,
    model_path: Path,
    size: tuple[int, int] | None,
    levels: Sequence[float],
    tools: Sequence[str],
    plan: Plan,
    settings: Settings,
    shared: dict,
) -> list[DensityRun]:
    """Time per image against the number of objects, at a fixed size (same tiles)."""
    if size is None:
        return []
    width, height = size
    class_names = _class_names(model_path)
    tools = {n: build_tool(n, model_path, settings, shared) for n in tools}
    runs = []
    for level in levels:
        bench_image = generate(
            plan.seed + 500 + int(level), width, height, class_names, density=level
        )
        _log(f"{task} density: {len(bench_image.truth)} objects")
        prepared = {n: t.prepare(bench_image.image) for n, t in tools.items()}
        calls = {n: partial(t.run, prepared[n]) for n, t in tools.items()}
        timings, last = time_interleaved(
            calls, repeats=plan.repeats, warmup=0, before=settings.pin_threads
        )
        runs.append(
            DensityRun(
                task,
                len(bench_image.truth),
                _tile_count(bench_image, settings),
                {n: t.median for n, t in timings.items()},
                {n: len(tools[n].convert(last[n])) for n in tools},
            )
        )
    return runs


def run_memory(
    model_path: Path,
    plan: Plan,
    settings: Settings,
    class_names: dict[int, str],
    cap_bytes: int,
) -> tuple[dict, list[MemoryResult]]:
    """Peak RSS of each tool on one large segmentation image, each in its own process."""
    if plan.memory_size is None:
        return {}, []
    width, height = plan.memory_size
    bench_image = generate(
        plan.seed + 900, width, height, class_names, density=plan.memory_density
    )
    info = {"image": bench_image.name, "objects": len(bench_image.truth)}
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        path = Path(tmp) / "image.npy"
        np.save(path, bench_image.image)
        del bench_image
        for tool in (
            "ours",
            "ours-torch",
            "sahi",
            "supervision",
            "supervision-compact",
        ):
            _log(f"memory: {tool}")
            results.append(
                measure(
                    tool,
                    model_path,
                    path,
                    dataclasses.asdict(settings),
                    cap_bytes=cap_bytes,
                )
            )
    return info, results


def _tile_count(bench_image: BenchImage, settings: Settings) -> int:
    from sliced_inference.slicer import tile_boxes

    size = (bench_image.width, bench_image.height)
    return len(tile_boxes(size, settings.slice_wh, settings.overlap))


def _class_names(model_path: Path) -> dict[int, str]:
    from ultralytics import YOLO

    return {int(k): str(v) for k, v in YOLO(str(model_path)).names.items()}


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def render_raw(raw: dict, args: argparse.Namespace) -> str:
    """The report of a run from the raw JSON it wrote (e.g. after report changes)."""
    sections = [
        Section(
            **{
                **s,
                "runs": [ImageRun(**r) for r in s["runs"]],
                "accuracy": [Accuracy(**a) for a in s["accuracy"]],
            }
        )
        for s in raw["sections"]
    ]
    density = [DensityRun(**d) for d in raw["density"]]
    memory = [MemoryResult(**m) for m in raw["memory"]["results"]]
    return report.render(
        raw["meta"],
        sections,
        density,
        raw["memory"]["image"],
        memory,
        args.memory_cap_gb,
    )


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and writes the report."""
    parser = argparse.ArgumentParser(
        description="Sliced inference: ours vs SAHI vs supervision"
    )
    parser.add_argument(
        "--quick", action="store_true", help="one small image, one timed run"
    )
    parser.add_argument(
        "--out", type=Path, help="the report to write (and its raw .json beside it)"
    )
    parser.add_argument(
        "--docs",
        action="store_true",
        help=f"also regenerate {DOCS_REPORT.relative_to(REPO_ROOT)} from this run",
    )
    parser.add_argument("--det-model", type=Path, default=DET_MODEL)
    parser.add_argument("--seg-model", type=Path, default=SEG_MODEL)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: all cores)"
    )
    parser.add_argument("--slice", type=int, default=640)
    parser.add_argument("--overlap", type=float, default=0.2)
    parser.add_argument("--confidence", type=float, default=0.25)
    parser.add_argument(
        "--repeats", type=int, help="timed runs per image (default 3; quick 1)"
    )
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["det", "seg", "density", "memory"]
    )
    parser.add_argument(
        "--render",
        type=Path,
        help="only re-render the report from a raw JSON file an earlier run wrote",
    )
    parser.add_argument(
        "--memory-cap-gb",
        type=float,
        default=10.0,
        help="stop a tool's process above this RSS",
    )
    args = parser.parse_args(argv)
    targets = [args.out] if args.out else []
    targets += [DOCS_REPORT] if args.docs else []
    if not targets:
        parser.error("name the report with --out PATH (or regenerate the docs: --docs)")
    if args.render:
        text = render_raw(json.loads(args.render.read_text()), args)
        for target in targets:
            target.write_text(report.with_marked_sections(target, text))
            _log(f"wrote {target} from {args.render}")
        return 0

    os.environ.setdefault("YOLO_OFFLINE", "1")
    plan = dataclasses.replace(QUICK_PLAN if args.quick else FULL_PLAN)
    if args.repeats:
        plan.repeats = args.repeats
    settings = Settings(
        slice_wh=args.slice,
        overlap=args.overlap,
        confidence=args.confidence,
        batch_size=args.batch_size,
        device=args.device,
        threads=args.threads,
    )
    meta = report.machine_info(argv if argv is not None else sys.argv[1:], args.device)
    _log(f"load average at start: {meta['load_start']}")
    sampler = LoadSampler()
    cpu = args.device == "cpu"
    det_tools = tuple(t for t in DET_TOOLS if cpu or t not in CPU_ONLY)
    seg_tools = tuple(t for t in SEG_TOOLS if cpu or t not in CPU_ONLY)
    seg_density_tools = tuple(t for t in SEG_DENSITY_TOOLS if t in seg_tools)
    shared: dict = {}
    sections: list[Section] = []
    density: list[DensityRun] = []
    memory_info, memory = {}, []
    if "det" not in args.skip:
        names = _class_names(args.det_model)
        images = [
            generate(plan.seed + i, w, h, names)
            for i, (w, h) in enumerate(plan.det_sizes)
        ]
        sections.append(
            run_section(
                "detection",
                args.det_model,
                images,
                det_tools,
                settings,
                plan,
                with_floor=True,
                shared=shared,
            )
        )
        del images
        if "density" not in args.skip:
            density += run_density(
                "detection",
                args.det_model,
                plan.density_size,
                plan.density_levels,
                det_tools,
                plan,
                settings,
                shared,
            )
    if "seg" not in args.skip and plan.seg_sizes and args.seg_model.is_file():
        names = _class_names(args.seg_model)
        images = [
            generate(plan.seed + 100 + i, w, h, names, density=plan.seg_density)
            for i, (w, h) in enumerate(plan.seg_sizes)
        ]
        sections.append(
            run_section(
                "segmentation",
                args.seg_model,
                images,
                seg_tools,
                settings,
                plan,
                with_floor=True,
                shared=shared,
            )
        )
        del images
        if "density" not in args.skip:
            density += run_density(
                "segmentation",
                args.seg_model,
                plan.seg_density_size,
                plan.seg_density_levels,
                seg_density_tools,
                plan,
                settings,
                shared,
            )
    shared.clear()
    if "memory" not in args.skip and args.seg_model.is_file():
        memory_info, memory = run_memory(
            args.seg_model,
            plan,
            settings,
            _class_names(args.seg_model),
            int(args.memory_cap_gb * 1024**3),
        )
    meta["load_end"] = report.load_average()
    meta["load_during"] = sampler.stop()
    text = report.render(
        meta, sections, density, memory_info, memory, args.memory_cap_gb
    )
    raw = {
        "meta": meta,
        "sections": [dataclasses.asdict(s) for s in sections],
        "density": [dataclasses.asdict(d) for d in density],
        "memory": {
            "image": memory_info,
            "results": [dataclasses.asdict(m) for m in memory],
        },
    }
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(report.with_marked_sections(target, text))
        target.with_suffix(".json").write_text(json.dumps(raw, indent=1, default=float))
        _log(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
