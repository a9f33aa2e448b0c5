"""``find_slice_settings``: try slice settings on a sample of a dataset and recommend one.

Users otherwise guess the slice size. The sweep runs the model on a few sampled
images with every combination of slice size, overlap, full-image pass and merge
strategy asked for, scores each setting in memory, times it, and recommends the
setting with the best small-object AP50 whose time stays within a budget (a
multiple of the default setting's time). Nothing is written to the samples:
predictions stay in memory, and the result is stored as one FiftyOne run.

How it keeps the cost down:

- a sample of ``num_samples`` images, never the whole dataset;
- each tile grid is predicted once per image (``slicer.predict_unmerged``) and
  every merge strategy, and the full-image pass (predicted once per image), is
  applied to those predictions; overlaps that give the same tiles share them;
- one set of predictions per setting serves every metric (overall, per size,
  on seams).

What it measures depends on what it has (``SweepResult.mode``):

- ``ground_truth``: AP50 overall, per COCO size and on the objects the
  setting's seams cross, recall on seams, detections per size;
- ``agreement``: without ground truth, the same metrics against the model's
  own predictions on the whole image at native resolution (input size = the
  image's longer side), the accuracy bar of sliced inference: taken only when
  every sampled image has at most ``native_max_pixels`` pixels;
- ``detections``: otherwise, detections per size only, and no recommendation.

Slice sizes, unless given, are multiples of the model's input size (1, 1.5, 2,
3 and 4 times, rounded to 32 px) kept between four times the 95th-percentile
object length (so most objects are well inside a tile) and the sampled images'
longer side; the default slice size is always among them.

Example::

    import sliced_inference as si

    sweep = si.find_slice_settings(
        dataset, "models/small-objects-det.pt", "ground_truth", num_samples=8
    )
    print(sweep)                          # the table and the recommendation
    si.apply_sliced_model(dataset, "models/small-objects-det.pt", "sliced",
                          **sweep.recommendation.params)
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import fiftyone as fo
import fiftyone.core.utils as fou
import numpy as np

from ..sdk.model_cache import cached_model, describe_model
from ..slicer import (
    ImageError,
    MergeConfig,
    ModelOptions,
    Predictions,
    PredictOptions,
    SliceOptions,
    TileModel,
    Unmerged,
    load_image,
    predict_full_image,
    predict_unmerged,
    tile_boxes,
)
from ..slicer.sliced import EDGE_MARGIN
from ..slicer.tiles import normalize_slice_wh
from .ap import Instances, evaluate50, seam_parts
from .sizes import COCO_SIZE_THRESHOLDS
from .sweep_results import DEFAULT_SWEEP_KEY, SweepPoint, SweepResult, store_sweep

#: Overlaps tried unless given.
DEFAULT_OVERLAPS = (0.1, 0.2, 0.3)
#: Merge settings tried unless given: ``strategy`` or ``strategy/metric``.
DEFAULT_MERGES = ("provenance", "nms/iou", "greedy_nmm/ios")
#: Slice sizes tried, as multiples of the model's input size.
SLICE_FACTORS = (1.0, 1.5, 2.0, 3.0, 4.0)
#: Most pixels of an image for the native whole-image reference (agreement mode).
NATIVE_MAX_PIXELS = 16_000_000
#: A ``(fraction, label)`` progress callback.
ProgressCallback = Callable[[float, str], None]

_SIZES = ("small", "medium", "large")


def find_slice_settings(
    samples: fo.core.collections.SampleCollection,
    model: Any,
    gt_field: str | None = None,
    *,
    slice_sizes: Sequence[int] | None = None,
    overlaps: Sequence[float] = DEFAULT_OVERLAPS,
    full_image_pass: Sequence[bool] = (False, True),
    merges: Sequence[str] = DEFAULT_MERGES,
    num_samples: int = 8,
    seed: int = 51,
    time_budget: float = 1.5,
    confidence: float = PredictOptions.confidence,
    device: str | None = ModelOptions.device,
    native_max_pixels: int = NATIVE_MAX_PIXELS,
    key: str = DEFAULT_SWEEP_KEY,
    progress: bool | ProgressCallback | None = None,
) -> SweepResult:
    """Sweeps slice settings on a sample of ``samples`` and recommends the best within a time budget.

    Args:
        samples: a dataset or view of images.
        model: anything ``apply_sliced_model`` takes.
        gt_field: a ground-truth ``Detections`` field; ``None`` compares with
            the whole image at native resolution instead (see the module).
        slice_sizes: slice sizes in pixels; ``None`` derives them from the
            model's input size and the objects' sizes.
        overlaps: overlap ratios to try.
        full_image_pass: whether to try without (``False``) and with
            (``True``) a full-image pass.
        merges: merge settings, ``"strategy"`` or ``"strategy/metric"``
            (e.g. ``"greedy_nmm/ios"``, SAHI's default).
        num_samples: images sampled (samples with ground truth when
            ``gt_field`` is given).
        seed: seed of the sample.
        time_budget: the most time a recommended setting may take, as a
            multiple of the default setting's time on the sample (>= 1).
        confidence: the confidence threshold of every setting.
        device: torch device (``None``: cuda, mps or cpu).
        native_max_pixels: largest image (in pixels) for the native
            whole-image reference without ground truth.
        key: the run key the sweep is stored under (replaced).
        progress: ``True``/``False``/``None`` shows/hides/defaults FiftyOne's
            progress bar; a callable gets ``(fraction, label)``.

    Returns:
        a ``SweepResult``: one point per combination asked for, plus the
        default setting if it was not among them, and the recommendation.

    Example::

        >>> sweep = find_slice_settings(dataset, "models/small-objects-det.pt", "ground_truth")  # doctest: +SKIP
        >>> sweep.recommendation.params  # doctest: +SKIP
        {'slice_wh': 640, 'overlap': 0.3, 'full_image_pass': False, 'merge': 'provenance', 'merge_metric': 'iou'}
    """
    _check(samples, gt_field, num_samples, time_budget, native_max_pixels)
    merge_params = [parse_merge(m) for m in merges]
    for overlap in overlaps:
        SliceOptions(overlap=overlap)  # a bad ratio fails before any inference
    view = samples.exists(gt_field) if gt_field else samples.view()
    if len(view) > num_samples:
        view = view.take(num_samples, seed=seed)
    if not len(view):
        raise ValueError(
            "no samples to sweep on"
            + (f" (none has labels in {gt_field!r})" if gt_field else "")
        )
    view.compute_metadata()
    ids, paths, widths, heights = view.values(
        ["id", "filepath", "metadata.width", "metadata.height"]
    )
    tile_model = cached_model(model, ModelOptions(device=device))
    label_ids = {name: i for i, name in tile_model.class_names.items()}
    truths = None
    if gt_field:
        truths = _truths(view, gt_field, label_ids)
    mode = _mode(truths, widths, heights, native_max_pixels)
    sizes = (
        list(slice_sizes)
        if slice_sizes
        else candidate_slice_sizes(
            tile_model.default_imgsz,
            _object_lengths(truths),
            max(max(widths), max(heights)),
        )
    )
    points = _grid_points(sizes, overlaps, full_image_pass, merge_params)
    observed = _predict(
        tile_model,
        dict(zip(ids, paths, strict=True)),
        points,
        confidence,
        native=mode == "agreement",
        progress=progress,
    )
    if observed.skipped:
        keep = [i for i, sid in enumerate(ids) if sid not in observed.skipped]
        ids = [ids[i] for i in keep]
        truths = None if truths is None else [truths[i] for i in keep]
    if mode == "agreement":
        truths = [
            Instances(p.boxes, p.class_ids)
            for p in observed.native  # type: ignore[union-attr]
        ]
    evaluated = [_evaluate_point(params, observed, truths) for params in points]
    _link_same_tiles(evaluated)
    result = _result(
        [point for point, _ in evaluated],
        mode,
        time_budget,
        describe_model(model),
        gt_field,
        ids,
        truths,
    )
    result.skipped = observed.skipped
    result.settings = {
        "slice_sizes": sizes,
        "overlaps": list(overlaps),
        "full_image_pass": [bool(f) for f in full_image_pass],
        "merges": list(merges),
        "num_samples": num_samples,
        "seed": seed,
        "time_budget": time_budget,
        "confidence": confidence,
    }
    store_sweep(samples, result, key)
    return result


def candidate_slice_sizes(
    model_imgsz: int | None,
    object_lengths: np.ndarray | None,
    image_side: int,
) -> list[int]:
    """Slice sizes worth trying: multiples of the model's input size the objects and images allow.

    Args:
        model_imgsz: the model's input size (``None``: 640).
        object_lengths: longer sides of ground-truth objects in pixels, if known.
        image_side: the sampled images' longest side.

    Returns:
        sorted sizes (multiples of 32), always with the default slice size.

    Example::

        >>> candidate_slice_sizes(320, np.array([20.0, 30, 40]), 3000)
        [320, 480, 640, 960, 1280]
        >>> candidate_slice_sizes(640, np.array([200.0]), 1500)
        [640, 960, 1280]
    """
    base = model_imgsz or 640
    sizes = {_round32(base * f) for f in SLICE_FACTORS}
    low = 0.0
    if object_lengths is not None and len(object_lengths):
        low = 4 * float(np.percentile(object_lengths, 95))
    kept = {s for s in sizes if low <= s <= max(image_side, base)}
    default = normalize_slice_wh(SliceOptions.slice_wh)[0]
    return sorted(kept | {default})


def parse_merge(spec: str) -> dict[str, str]:
    """``"greedy_nmm/ios"`` -> ``{"merge": "greedy_nmm", "merge_metric": "ios"}`` (validated).

    Example::

        >>> parse_merge("nms")
        {'merge': 'nms', 'merge_metric': 'iou'}
    """
    strategy, _, metric = str(spec).partition("/")
    config = MergeConfig(strategy=strategy, metric=metric or MergeConfig.metric)
    return {"merge": config.strategy, "merge_metric": config.metric}


@dataclass
class _Observed:
    """Per image: unmerged predictions of each tile grid, full and native passes, and their times.

    ``skipped``: sample id -> why its image could not be read (left out).
    """

    unmerged: list[dict[tuple, tuple[Unmerged, float]]]
    same_tiles: list[dict[tuple, tuple]]
    full: list[tuple[Predictions, float]] | None
    native: list[Predictions] | None
    skipped: dict[str, str]


def _predict(
    model: TileModel,
    paths: dict[str, str],
    points: Sequence[dict[str, Any]],
    confidence: float,
    *,
    native: bool,
    progress: bool | ProgressCallback | None,
) -> _Observed:
    """Runs every tile grid (once), the full-image pass and the native pass on each image.

    ``paths``: sample id -> image path; an unreadable image is skipped.
    """
    grids = list(dict.fromkeys((p["slice_wh"], p["overlap"]) for p in points))
    with_full = any(p["full_image_pass"] for p in points)
    observed = _Observed([], [], [] if with_full else None, [] if native else None, {})
    callback = progress if callable(progress) else None
    bar_setting = None if callback else progress
    with fou.ProgressBar(total=len(paths), progress=bar_setting) as bar:
        for done, (sample_id, path) in enumerate(paths.items(), start=1):
            try:
                image = load_image(path)
            except ImageError as error:
                observed.skipped[sample_id] = str(error)
            else:
                _observe(observed, image, model, grids, confidence)
            bar.update()
            if callback is not None:
                callback(done / len(paths), f"{done}/{len(paths)} images")
    if len(observed.skipped) == len(paths):
        raise ValueError(
            "no sampled image could be read: "
            + "; ".join(list(observed.skipped.values())[:3])
        )
    return observed


def _observe(
    observed: _Observed,
    image: np.ndarray,
    model: TileModel,
    grids: Sequence[tuple],
    confidence: float,
) -> None:
    """One image's predictions: each distinct tile grid once, then the whole-image passes."""
    height, width = image.shape[:2]
    by_tiles: dict[bytes, tuple] = {}
    per_grid, same = {}, {}
    for grid in grids:
        options = SliceOptions(slice_wh=grid[0], overlap=grid[1], confidence=confidence)
        tiles = tile_boxes((width, height), options.slice_wh, options.overlap)
        signature = tiles.tobytes()
        if signature in by_tiles:
            per_grid[grid] = per_grid[by_tiles[signature]]
            same[grid] = by_tiles[signature]
            continue
        by_tiles[signature] = grid
        per_grid[grid] = _timed(predict_unmerged, image, model, options)
    observed.unmerged.append(per_grid)
    observed.same_tiles.append(same)
    if observed.full is not None:
        observed.full.append(
            _timed(predict_full_image, image, model, confidence=confidence)
        )
    if observed.native is not None:
        native, _ = _timed(
            predict_full_image,
            image,
            model,
            imgsz=max(width, height),
            confidence=confidence,
        )
        observed.native.append(native)


def _evaluate_point(
    params: dict[str, Any], observed: _Observed, truths: list[Instances] | None
) -> tuple[SweepPoint, tuple | None]:
    """Merges, times and scores one setting from the shared predictions.

    Returns the point and, when its tiles equal an earlier grid's on every
    image, that grid (``(slice_wh, overlap)``).
    """
    grid = (params["slice_wh"], params["overlap"])
    config = MergeConfig(strategy=params["merge"], metric=params["merge_metric"])
    seconds, detections, grids = 0.0, [], []
    for i, per_grid in enumerate(observed.unmerged):
        unmerged, predict_seconds = per_grid[grid]
        seconds += predict_seconds
        if params["full_image_pass"]:
            full, full_seconds = observed.full[i]  # type: ignore[index]
            unmerged = unmerged.with_full_image(full)
            seconds += full_seconds
        started = time.perf_counter()
        merged = unmerged.merged(config)
        seconds += time.perf_counter() - started
        detections.append(Instances(merged.boxes, merged.class_ids, merged.scores))
        grids.append((unmerged.tiles, unmerged.image_wh))
    sames = {s.get(grid) for s in observed.same_tiles}
    point = SweepPoint(
        params=params,
        tiles=sum(len(t) for t, _ in grids),
        overlap_px=min(_smallest_overlap(t) for t, _ in grids),
        same_tiles_as=None,
        seconds=seconds,
        time_ratio=None,
        metrics=_metrics(truths, detections, grids),
        is_default=_is_default(params),
    )
    return point, sames.pop() if len(sames) == 1 else None


def _metrics(
    truths: list[Instances] | None,
    detections: list[Instances],
    grids: list[tuple[np.ndarray, tuple[int, int]]],
) -> dict[str, float | int | None]:
    """AP50 overall, per size and on seams (when there is a reference), and detections per size."""
    small, medium = COCO_SIZE_THRESHOLDS
    ranges = {
        "small": (0.0, small),
        "medium": (small, medium),
        "large": (medium, math.inf),
    }
    metrics: dict[str, float | int | None] = {}
    for size, (low, high) in ranges.items():
        metrics[f"detections_{size}"] = int(
            sum(
                ((d.areas(False) >= low) & (d.areas(False) < high)).sum()
                for d in detections
            )
        )
    if truths is None:
        return metrics
    metrics["AP50"] = _number(evaluate50(truths, detections).ap50)
    for size, area_range in ranges.items():
        metrics[f"AP50_{size}"] = _number(
            evaluate50(truths, detections, area_range=area_range).ap50
        )
    within, near = seam_parts(grids, EDGE_MARGIN)["seam"]
    seam = evaluate50(truths, detections, within=within, within_detections=near)
    metrics["AP50_seam"] = _number(seam.ap50)
    metrics["recall_seam"] = _number(seam.recall)
    return metrics


def _result(
    points: list[SweepPoint],
    mode: str,
    budget: float,
    model: str,
    gt_field: str | None,
    ids: list[str],
    truths: list[Instances] | None,
) -> SweepResult:
    """Times every point against the default and picks the recommendation."""
    default = next(p for p in points if p.is_default)
    for point in points:
        point.time_ratio = point.seconds / default.seconds if default.seconds else None
        point.within_budget = point.time_ratio is None or point.time_ratio <= budget
    criterion = "AP50_small"
    if mode != "detections" and all(p.metrics.get(criterion) is None for p in points):
        criterion = "AP50"
    recommended, reason = _recommend(points, criterion, budget, mode)
    return SweepResult(
        points=points,
        recommended=recommended,
        criterion=criterion,
        budget=budget,
        mode=mode,
        reason=reason,
        model=model,
        gt_field=gt_field,
        sample_ids=list(ids),
        num_objects=None
        if truths is None or mode != "ground_truth"
        else sum(len(t) for t in truths),
    )


def _link_same_tiles(evaluated: list[tuple[SweepPoint, tuple | None]]) -> None:
    """Sets ``same_tiles_as`` to the first point of the grid whose tiles a point reused."""
    first_of_grid: dict[tuple, int] = {}
    for i, (point, _) in enumerate(evaluated):
        first_of_grid.setdefault((point.params["slice_wh"], point.params["overlap"]), i)
    for point, same in evaluated:
        if same is not None:
            point.same_tiles_as = first_of_grid.get(same)


def _recommend(
    points: list[SweepPoint], criterion: str, budget: float, mode: str
) -> tuple[int | None, str]:
    """The best point by ``criterion`` within the budget (then AP50, then speed)."""
    if mode == "detections":
        return None, (
            "No recommendation: without ground truth, and with images too large "
            "for a whole-image reference, the sweep can only count detections."
        )
    candidates = [i for i, p in enumerate(points) if p.within_budget]
    best = max(
        candidates,
        key=lambda i: (
            _or_minus(points[i].metrics.get(criterion)),
            _or_minus(points[i].metrics.get("AP50")),
            -points[i].seconds,
        ),
    )
    point, default = points[best], next(p for p in points if p.is_default)
    measure = "agreement " if mode == "agreement" else ""
    return best, (
        f"Recommended: {point.label()}, {measure}{criterion} "
        f"{_fmt(point.metrics.get(criterion))} (default "
        f"{_fmt(default.metrics.get(criterion))}), {point.time_ratio or 1:.2f}x the "
        f"default's time (budget {budget:.2f}x)."
    )


def _grid_points(
    sizes: Sequence[int],
    overlaps: Sequence[float],
    full_image_pass: Sequence[bool],
    merges: Sequence[dict[str, str]],
) -> list[dict[str, Any]]:
    """Every combination (validated), then the default setting if it is missing."""
    points = []
    for size, overlap, full, merge in itertools.product(
        sizes, overlaps, full_image_pass, merges
    ):
        params = {
            "slice_wh": int(size),
            "overlap": overlap,
            "full_image_pass": bool(full),
            **merge,
        }
        SliceOptions.from_params(params)  # validates the combination
        points.append(params)
    if not any(_is_default(p) for p in points):
        points.append(_default_params())
    return points


def _default_params() -> dict[str, Any]:
    options = SliceOptions()
    return {
        "slice_wh": options.slice_wh[0],
        "overlap": options.overlap,
        "full_image_pass": options.full_image_pass,
        "merge": options.merge.strategy,
        "merge_metric": options.merge.metric,
    }


def _is_default(params: dict[str, Any]) -> bool:
    return params == _default_params()


def _truths(
    view: fo.core.collections.SampleCollection,
    gt_field: str,
    label_ids: dict[str, int],
) -> list[Instances]:
    """Ground truth per sampled image in pixels, labels mapped to the model's ids.

    Labels the model does not know get ids of their own (they can only be missed).
    """
    widths, heights, boxes, labels = view.values(
        [
            "metadata.width",
            "metadata.height",
            f"{gt_field}.detections.bounding_box",
            f"{gt_field}.detections.label",
        ]
    )
    ids = dict(label_ids)
    truths = []
    for width, height, rel, names in zip(widths, heights, boxes, labels, strict=True):
        rel = np.asarray(rel or [], dtype=np.float64).reshape(-1, 4)
        scale = np.array([width, height, width, height], dtype=np.float64)
        xyxy = np.concatenate([rel[:, :2], rel[:, :2] + rel[:, 2:]], axis=1) * scale
        classes = [ids.setdefault(str(n), len(ids) + 10_000) for n in names or []]
        truths.append(Instances(xyxy, np.asarray(classes, dtype=np.int64)))
    return truths


def _mode(
    truths: list[Instances] | None,
    widths: Sequence[int],
    heights: Sequence[int],
    native_max_pixels: int,
) -> str:
    if truths is not None:
        return "ground_truth"
    largest = max(w * h for w, h in zip(widths, heights, strict=True))
    return "agreement" if largest <= native_max_pixels else "detections"


def _object_lengths(truths: list[Instances] | None) -> np.ndarray | None:
    if truths is None:
        return None
    boxes = np.concatenate([t.boxes for t in truths]) if truths else np.zeros((0, 4))
    return (boxes[:, 2:] - boxes[:, :2]).max(axis=1) if len(boxes) else None


def _smallest_overlap(tiles: np.ndarray) -> int:
    """The smallest overlap between neighbouring tiles along either axis (0 for one tile)."""
    smallest = []
    for axis in (0, 1):
        starts = np.unique(tiles[:, axis])
        ends = np.unique(tiles[:, axis + 2])
        if len(starts) > 1:
            smallest.append(int((ends[:-1] - starts[1:]).min()))
    return min(smallest) if smallest else 0


def _timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - started


def _check(
    samples: fo.core.collections.SampleCollection,
    gt_field: str | None,
    num_samples: int,
    time_budget: float,
    native_max_pixels: int,
) -> None:
    if samples.media_type != "image":
        raise ValueError(f"the sweep runs on images, not {samples.media_type!r}")
    if gt_field is not None:
        kind = samples.get_field(gt_field)
        if getattr(kind, "document_type", None) is not fo.Detections:
            raise ValueError(f"{gt_field!r} is not a Detections field of this dataset")
    if int(num_samples) < 1:
        raise ValueError(f"num_samples must be at least 1, got {num_samples}")
    if not time_budget >= 1.0:
        raise ValueError(
            f"time_budget is a multiple of the default setting's time and must be "
            f">= 1 (the default itself), got {time_budget}"
        )
    if native_max_pixels < 1:
        raise ValueError(f"native_max_pixels must be positive, got {native_max_pixels}")


def _round32(value: float) -> int:
    return max(32, int(round(value / 32.0)) * 32)


def _number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _or_minus(value: float | int | None) -> float:
    return -1.0 if value is None else float(value)


def _fmt(value: float | int | None) -> str:
    return "-" if value is None else f"{value:.3f}"
