"""Seam loss: sliced inference against the same model on the whole image at the same scale.

The accuracy bar for sliced inference is the model run on the whole image at
native resolution (input size = the image's longer side: scale 1, padded to the
stride), where every object is seen at the tile's scale and none is cut. What
sliced inference loses against it is lost at the seams. This task reports, for
several slice settings, AP50 overall and split into the ground-truth objects
that cross an interior tile edge of that run's grid ("seam") and those that do
not ("interior"), with the difference to the whole-image run.

Two sets of generated scenes (seeds the bundled models never saw):

- ``seams``: objects of 24-72 px, 60 % of the ungrouped ones centred on the
  default grid's seams, so that over half of the objects are cut;
- ``plain``: the generator's defaults (8-48 px objects, a few 200-420 px; about
  one object in six on a seam).

Each tile grid is predicted once per image (``predict_unmerged``) and merged
with every merge setting that uses it; the whole-image reference runs once per
image. A detection counts as on a seam when its box reaches within
``EDGE_MARGIN`` of an interior edge (a detection of a cut object ends at the
edge without crossing it); see ``sliced_inference.evaluation.ap`` for how a
subset is scored.

Usage::

    .venv/bin/python -m bench.seams --out docs/benchmarks.md   # its own section there
    .venv/bin/python -m bench.seams --quick --out /tmp/seams.md
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sliced_inference.slicer import (
    SliceOptions,
    Unmerged,
    load_model,
    predict_full_image,
    predict_unmerged,
    seam_lines,
    tile_boxes,
)
from sliced_inference.slicer.sliced import EDGE_MARGIN

from .evaluate import Instances, Scores50, evaluate50, seam_parts
from .report import load_average, machine_info, write_section
from .scenes import BenchImage, generate

REPO_ROOT = Path(__file__).resolve().parents[1]
DET_MODEL = REPO_ROOT / "models" / "small-objects-det.pt"
#: Scene sets: generator options (``lines`` are added from the default grid).
SCENE_SETS = {
    "seams": dict(density=120.0, size_range=(24.0, 72.0), line_fraction=0.6),
    "plain": dict(),
}
#: Image sizes, cycled through; ``--images`` per set (a seam holds few objects
#: of a plain scene, so a set needs several images to say much about them).
SIZES = [(1600, 1200), (2000, 1500), (2400, 1800), (1800, 1350)]
IMAGES_PER_SET = 8
FIRST_SEED = 700
#: This task's name in a shared Markdown file (``report.write_section``).
TASK = "bench.seams"


def settings_rows(model_imgsz: int) -> dict[str, dict[str, Any]]:
    """The slice settings compared: label -> ``SliceOptions`` parameters."""
    return {
        "defaults (640 px, overlap 0.2, provenance)": {},
        "overlap 0.3": {"overlap": 0.3},
        "overlap 0.4": {"overlap": 0.4},
        f"{model_imgsz} px tiles (the model's input size)": {"slice_wh": model_imgsz},
        "1024 px tiles": {"slice_wh": 1024},
        "NMS merge (IoU 0.5)": {"merge": "nms"},
        "SAHI's merge (greedy NMM, IoS 0.5)": {
            "merge": "greedy_nmm",
            "merge_metric": "ios",
        },
        "defaults + full-image pass": {"full_image_pass": True},
    }


@dataclass
class SeamLoss:
    """One setting on one scene set: AP50 of sliced and whole-image runs.

    Attributes:
        setting: the row's label.
        params: its ``SliceOptions`` parameters.
        sliced, whole: scores overall, on seam and on interior objects.
        seconds: sliced inference time over the set (tiles + merge).
        tiles: tiles over the set.
    """

    setting: str
    params: dict[str, Any]
    sliced: dict[str, Scores50]
    whole: dict[str, Scores50]
    seconds: float
    tiles: int

    def loss(self, part: str) -> float:
        """Whole-image AP50 minus sliced AP50 on ``part`` (positive: sliced lost)."""
        return self.whole[part].ap50 - self.sliced[part].ap50


@dataclass
class SceneSet:
    """A set of scenes, its whole-image reference and every setting's seam loss."""

    name: str
    images: list[str]
    objects: int
    reference_seconds: float
    rows: list[SeamLoss] = field(default_factory=list)


def seam_scene(
    seed: int,
    width: int,
    height: int,
    class_names: dict[int, str],
    options: SliceOptions | None = None,
    **generator_options: Any,
) -> BenchImage:
    """A generated scene whose ``lines`` (with ``line_fraction``) sit on the seams of ``options``' grid."""
    options = options or SliceOptions()
    tiles = tile_boxes((width, height), options.slice_wh, options.overlap)
    if "line_fraction" in generator_options:
        generator_options["lines"] = seam_lines(tiles, (width, height))
    return generate(seed, width, height, class_names, **generator_options)


def whole_image_reference(image: BenchImage, model: Any) -> Instances:
    """The model on the whole image at native resolution (scale 1)."""
    preds = predict_full_image(image.image, model, imgsz=max(image.width, image.height))
    return Instances(preds.boxes, preds.class_ids, preds.scores)


def seam_scores(
    truths: Sequence[Instances],
    detections: Sequence[Instances],
    grids: Sequence[tuple[Any, tuple[int, int]]],
) -> dict[str, Scores50]:
    """AP50 and recall overall, on seam objects and on interior objects.

    Args:
        truths: ground truth per image.
        detections: detections per image.
        grids: per image, the tile boxes and ``(width, height)`` that decide
            which objects are on a seam.
    """
    scores = {"all": evaluate50(truths, detections)}
    for part, (within, near) in seam_parts(grids, EDGE_MARGIN).items():
        scores[part] = evaluate50(
            truths, detections, within=within, within_detections=near
        )
    return scores


def measure_seam_loss(
    images: Sequence[BenchImage],
    model: Any,
    rows: dict[str, dict[str, Any]],
    reference: Sequence[Instances] | None = None,
) -> list[SeamLoss]:
    """Seam loss of every setting in ``rows`` on ``images``.

    Each distinct tile grid is predicted once per image; merge settings reuse
    it (``Unmerged.merged``), and a full-image pass is predicted once.

    Args:
        images: scenes with ground truth.
        model: a loaded ``TileModel``.
        rows: label -> ``SliceOptions`` parameters.
        reference: whole-image predictions per image (computed if ``None``).
    """
    if reference is None:
        reference = [whole_image_reference(image, model) for image in images]
    truths = [image.truth for image in images]
    cache: dict[tuple, tuple[list[Unmerged], float]] = {}
    results = []
    for label, params in rows.items():
        options = SliceOptions.from_params(params)
        key = (options.slice_wh, options.overlap, options.full_image_pass)
        if key not in cache:
            cache[key] = _predict_unmerged(images, model, options)
        unmerged, predict_seconds = cache[key]
        started = time.perf_counter()
        merged = [u.merged(options.merge) for u in unmerged]
        seconds = predict_seconds + time.perf_counter() - started
        detections = [Instances(m.boxes, m.class_ids, m.scores) for m in merged]
        grids = [(u.tiles, u.image_wh) for u in unmerged]
        results.append(
            SeamLoss(
                setting=label,
                params=params,
                sliced=seam_scores(truths, detections, grids),
                whole=seam_scores(truths, reference, grids),
                seconds=seconds,
                tiles=sum(len(u.tiles) for u in unmerged),
            )
        )
    return results


def _predict_unmerged(
    images: Sequence[BenchImage], model: Any, options: SliceOptions
) -> tuple[list[Unmerged], float]:
    started = time.perf_counter()
    unmerged = [predict_unmerged(image.image, model, options) for image in images]
    return unmerged, time.perf_counter() - started


def _cpu_flags() -> str:
    """The CPU's vector extensions that matter for inference speed."""
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "flags unknown"
    flags = set(re.search(r"^flags\s*:(.*)$", text, re.M).group(1).split())
    return " ".join(f for f in wanted if f in flags) or "no AVX2"


def run_set(
    name: str,
    sizes: Sequence[tuple[int, int]],
    model: Any,
    first_seed: int,
) -> SceneSet:
    """Generates one scene set and measures every setting on it."""
    images = [
        seam_scene(first_seed + i, w, h, model.class_names, **SCENE_SETS[name])
        for i, (w, h) in enumerate(sizes)
    ]
    started = time.perf_counter()
    reference = [whole_image_reference(image, model) for image in images]
    scene_set = SceneSet(
        name,
        [image.name for image in images],
        sum(len(image.truth) for image in images),
        time.perf_counter() - started,
    )
    scene_set.rows = measure_seam_loss(
        images, model, settings_rows(model.default_imgsz), reference
    )
    return scene_set


def render(sets: Sequence[SceneSet], meta: dict[str, Any]) -> str:
    """The Markdown section of the results."""
    lines = [
        "## Seams: sliced vs the whole image at the same scale",
        "",
        f"Written by `python -m bench.seams` ({meta['command']}); "
        f"{meta['cpu']}, load average {meta['load']}, commit {meta['commit']}.",
        "",
        "Reference: the same model on the whole image at native resolution "
        "(input size = the image's longer side, scale 1), where no object is "
        "cut. **Loss** = its AP50 minus the sliced run's (positive: sliced "
        "inference lost accuracy). Seam objects: ground truth whose box crosses "
        "an interior edge of that run's tile grid; a detection counts there "
        "when it reaches within 2 px of one. Times are sliced inference over the "
        "set (tiles and merge) on this CPU.",
    ]
    for scene_set in sets:
        seams = scene_set.rows[0].sliced["seam"].num_truth
        lines += [
            "",
            f"### {scene_set.name}: {len(scene_set.images)} images, "
            f"{scene_set.objects} objects ({seams} on the default grid's seams)",
            "",
            "| setting | tiles | AP50 sliced | AP50 whole | loss | seam objects "
            "| seam AP50 sliced / whole | seam loss | seam recall sliced / whole "
            "| interior loss | seconds |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for row in scene_set.rows:
            s, w = row.sliced, row.whole
            lines.append(
                f"| {row.setting} | {row.tiles} | {s['all'].ap50:.3f} | "
                f"{w['all'].ap50:.3f} | {row.loss('all'):+.3f} | "
                f"{s['seam'].num_truth} | {s['seam'].ap50:.3f} / "
                f"{w['seam'].ap50:.3f} | {row.loss('seam'):+.3f} | "
                f"{s['seam'].recall:.3f} / {w['seam'].recall:.3f} | "
                f"{row.loss('interior'):+.3f} | {row.seconds:.1f} |"
            )
        lines.append(
            f"\nWhole-image reference: {scene_set.reference_seconds:.1f} s over the set."
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="Markdown file: the results become its 'Seams' section (raw "
        "numbers in <out>.seams.json)",
    )
    parser.add_argument("--model", type=Path, default=DET_MODEL)
    parser.add_argument(
        "--images", type=int, default=IMAGES_PER_SET, help="images per scene set"
    )
    parser.add_argument(
        "--quick", action="store_true", help="one image per set (a smoke run)"
    )
    parser.add_argument("--seed", type=int, default=FIRST_SEED)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    started = time.time()
    load_start = load_average()
    model = load_model(args.model, device=args.device)
    count = 1 if args.quick else args.images
    sizes = [SIZES[i % len(SIZES)] for i in range(count)]
    sets = [
        run_set(name, sizes, model, args.seed + 100 * i)
        for i, name in enumerate(SCENE_SETS)
    ]
    info = machine_info(argv, args.device)
    meta = {
        "command": "`python -m bench.seams " + " ".join(argv) + "`",
        "cpu": f"{info.get('cpu', '')} ({_cpu_flags()}), {info.get('cores')} cores",
        "load": f"{load_start} at the start, {load_average()} at the end",
        "commit": info.get("commit", ""),
        "minutes": (time.time() - started) / 60,
    }
    write_section(args.out, TASK, render(sets, meta))
    raw = {"meta": {**info, **meta}, "sets": [asdict(s) for s in sets]}
    args.out.with_suffix(".seams.json").write_text(
        json.dumps(raw, indent=1, default=float)
    )
    print(render(sets, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
