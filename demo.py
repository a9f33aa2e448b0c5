"""The demo: baseline vs sliced inference on generated large images, compared in FiftyOne.

One command (``bash bin/demo``, or ``python -m sliced_inference.demo``), offline:
it generates a small dataset of large synthetic images with many small objects,
runs the bundled detection and segmentation models on whole images (the
baseline) and on tiles (sliced), evaluates every run against the ground truth,
prints the comparison tables and how to open the result in the FiftyOne App.
The dataset stays in FiftyOne's database as ``sliced-inference-demo``.

With ``--images DIR`` it runs on your own images instead; without ground truth
it reports what each run found, by object size, rather than accuracy.

Example::

    python -m sliced_inference.demo --num-images 4
    python -m sliced_inference.demo --images ~/aerial --model yolo11s.pt
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
DET_MODEL = PACKAGE_DIR / "models" / "small-objects-det.pt"
SEG_MODEL = PACKAGE_DIR / "models" / "small-objects-seg.pt"
DEFAULT_DATASET = "sliced-inference-demo"


@dataclass
class Run:
    """One inference run of the demo: a label field, how to fill it, its group."""

    field: str
    description: str
    model: str
    sliced: bool
    options: dict[str, Any] = field(default_factory=dict)
    group: str = "detection"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The demo's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m sliced_inference.demo",
        description=(
            "Baseline vs sliced inference on large images with small objects, "
            "compared in FiftyOne (offline, bundled models and generated data)."
        ),
    )
    parser.add_argument(
        "--images",
        type=Path,
        help="a folder of your own images instead of generated ones (no ground "
        "truth: the demo reports detections by size instead of accuracy)",
    )
    parser.add_argument(
        "--model",
        help=f"detection model (default: the bundled {DET_MODEL.name}); with "
        "--model the segmentation runs need --seg-model",
    )
    parser.add_argument(
        "--seg-model",
        help=f"segmentation model (default: the bundled {SEG_MODEL.name}; "
        "'none' skips the segmentation runs)",
    )
    parser.add_argument(
        "--num-images",
        type=int,
        help="images to generate (default 8; 2 with --quick) or to take from --images",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a reduced run for tests: fewer, smaller images and no 1280 px baseline",
    )
    parser.add_argument(
        "--dataset", default=DEFAULT_DATASET, help="FiftyOne dataset name"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="where generated images are written (default: FiftyOne's dataset dir)",
    )
    parser.add_argument("--slice", type=int, default=640, help="tile size in pixels")
    parser.add_argument("--overlap", type=float, default=0.2, help="tile overlap ratio")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the generated scenes"
    )
    args = parser.parse_args(argv)
    if args.num_images is None:
        args.num_images = 2 if args.quick else 8
    if args.num_images < 1:
        parser.error("--num-images must be at least 1")
    if args.images is not None and not args.images.is_dir():
        parser.error(f"--images: no such folder: {args.images}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the demo; returns the process exit code."""
    args = parse_args(argv)
    _quiet_logs()
    started = time.perf_counter()
    print(f"sliced-inference demo: dataset {args.dataset!r}", flush=True)
    dataset = build_dataset(args)
    runs = plan_runs(args)
    for run in runs:
        _timed(
            f"{run.field:<16} {run.description}",
            lambda run=run: run_inference(dataset, run),
        )
    if dataset.has_field("ground_truth"):
        comparisons = compare(dataset, runs)
        print()
        for comparison in comparisons:
            print(comparison.to_table(), end="\n\n")
    else:
        print()
        print(detections_by_size(dataset, [run.field for run in runs]), end="\n\n")
    print(app_instructions(dataset.name))
    print(f"\nDone in {time.perf_counter() - started:.0f} s.")
    return 0


def build_dataset(args: argparse.Namespace) -> Any:
    """The demo's persistent dataset: generated scenes, or the images of ``--images``."""
    import fiftyone as fo

    if fo.dataset_exists(args.dataset):
        fo.delete_dataset(args.dataset)
    if args.images is not None:
        dataset = fo.Dataset.from_images_dir(str(args.images), name=args.dataset)
        if len(dataset) > args.num_images:
            dataset.delete_samples(dataset.skip(args.num_images))
        print(f"  {len(dataset)} images from {args.images}")
    else:
        dataset = _generated_dataset(args)
    dataset.persistent = True
    dataset.compute_metadata()
    return dataset


def plan_runs(args: argparse.Namespace) -> list[Run]:
    """The inference runs: baseline and sliced for each model; without ``--quick``
    also a 1280 px baseline and sliced with a full-image pass."""
    det = args.model or str(DET_MODEL)
    seg = args.seg_model or (None if args.model else str(SEG_MODEL))
    slicing = {"slice_wh": args.slice, "overlap": args.overlap}
    tiles = f"sliced, {args.slice} px tiles, overlap {args.overlap:g}"
    runs = [Run("baseline", "full image, model input size", det, sliced=False)]
    if not args.quick:
        runs.append(
            Run("baseline_1280", "full image at 1280 px", det, False, {"imgsz": 1280})
        )
    runs.append(Run("sliced", tiles, det, sliced=True, options=slicing))
    if not args.quick:
        # Tiles cut objects larger than a tile; a whole-image pass gets them back.
        runs.append(
            Run(
                "sliced_full",
                f"{tiles}, plus a full-image pass",
                det,
                True,
                {**slicing, "full_image_pass": True},
            )
        )
    if seg and seg.lower() != "none":
        runs += [
            Run(
                "seg_baseline",
                "segmentation, full image",
                seg,
                False,
                group="segmentation",
            ),
            Run(
                "seg_sliced",
                f"segmentation, {tiles}",
                seg,
                True,
                slicing,
                "segmentation",
            ),
        ]
    return runs


def run_inference(dataset: Any, run: Run) -> None:
    """Fills ``run.field`` with the SDK's sliced or baseline inference."""
    from .sdk import apply_baseline_model, apply_sliced_model

    apply = apply_sliced_model if run.sliced else apply_baseline_model
    apply(dataset, run.model, run.field, **run.options)


def compare(dataset: Any, runs: list[Run]) -> list[Any]:
    """One comparison per model group, the group's first run as the baseline."""
    from .evaluation import compare_runs

    groups: dict[str, list[str]] = {}
    for run in runs:
        groups.setdefault(run.group, []).append(run.field)
    comparisons = []
    for fields in groups.values():
        if len(fields) >= 2:
            comparisons.append(
                _timed(
                    f"evaluating {', '.join(fields)}",
                    lambda fields=fields: compare_runs(dataset, "ground_truth", fields),
                )
            )
    return comparisons


def detections_by_size(dataset: Any, fields: list[str]) -> str:
    """Without ground truth: how many objects each run found, overall and by size."""
    from .evaluation.sizes import size_ranges, size_view
    from .evaluation.table import Table, render_text

    ranges = size_ranges()
    rows = []
    for name in fields:
        row = {"run": name, "all": str(dataset.count(f"{name}.detections"))}
        for size, (low, high) in ranges.items():
            view = size_view(dataset, [name], low, high)
            row[size] = str(view.count(f"{name}.detections"))
        rows.append(row)
    columns = {"run": "run", "all": "all", **{size: size for size in ranges}}
    title = "No ground truth: detections found by each run, by box area (COCO sizes)."
    return render_text([Table("detections", title, columns, rows)])


def app_instructions(dataset_name: str) -> str:
    """How to open the result in the App (and install the plugin if it is missing)."""
    python = sys.executable
    lines = [
        "Open the result in the FiftyOne App:",
        f'  {python} -c "import fiftyone as fo; '
        f"fo.launch_app(fo.load_dataset('{dataset_name}')).wait()\"",
        f"  (or: {_fiftyone_cli()} app launch {dataset_name})",
        'Then open the "Sliced vs baseline" panel (+ next to the Samples tab) for '
        "the tables, the AP-by-size plot and the recovered / lost objects.",
    ]
    if not _plugin_installed():
        lines += [
            "The panel needs this plugin in FiftyOne's plugins dir; link it with:",
            f'  ln -s "{PACKAGE_DIR}" "$({python} -c '
            "'import fiftyone as fo; print(fo.config.plugins_dir)')/sliced-inference\"",
        ]
    return "\n".join(lines)


def _generated_dataset(args: argparse.Namespace) -> Any:
    import fiftyone as fo

    from .synthetic import load_fiftyone_dataset, write_dataset

    root = args.data_dir or Path(fo.config.default_dataset_dir) / args.dataset
    size = {"min_width": 1600, "max_width": 2000 if args.quick else 3000}
    _timed(
        f"generating {args.num_images} images in {root}",
        lambda: write_dataset(root, num_images=args.num_images, seed=args.seed, **size),
    )
    return load_fiftyone_dataset(
        root, name=args.dataset, overwrite=True, persistent=True
    )


def _timed(label: str, action: Callable[[], Any]) -> Any:
    print(f"  {label} ...", end="", flush=True)
    start = time.perf_counter()
    result = action()
    print(f" {time.perf_counter() - start:.1f} s", flush=True)
    return result


def _fiftyone_cli() -> str:
    """The ``fiftyone`` command of this Python environment (the bare name if absent)."""
    cli = Path(sys.executable).parent / "fiftyone"
    return str(cli) if cli.exists() else "fiftyone"


def _plugin_installed() -> bool:
    try:
        import fiftyone.plugins as fop

        from .operators import PLUGIN_NAME

        return any(p.name == PLUGIN_NAME for p in fop.list_plugins())
    except Exception:  # a broken plugins dir must not fail the demo
        return False


def _quiet_logs() -> None:
    """Keeps the terminal to the demo's own lines and tables.

    FiftyOne logs every evaluation at INFO and draws progress bars, and warns
    about the MongoDB 6 that ``bin/setup`` installs offline (harmless there).
    Ultralytics announces the settings file it creates on first import, at
    whatever log level is set before: only its own variable keeps it quiet.
    """
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    import fiftyone as fo  # sets its own log level on import: configure after

    fo.config.show_progress_bars = False
    for name in ("fiftyone", "ultralytics", "sliced_inference"):
        logging.getLogger(name).setLevel(logging.WARNING)


if __name__ == "__main__":
    sys.exit(main())
