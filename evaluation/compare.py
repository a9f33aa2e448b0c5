"""``compare_runs``: prediction runs (baseline vs sliced) against ground truth, overall and by size.

**One match per run.** Each prediction field is read once (``objects``), its
IoUs with the ground truth are computed once (``ious``: FiftyOne's box IoU, or
its polygon mask IoU), and it is matched with FiftyOne's COCO rule
(``matching``) at the comparison IoU and at the ten mAP thresholds
(``run_match``). Everything is derived from that: overall mAP, AP50,
precision, recall, TP / FP / FN; the same per object size; the objects each run
recovered or lost against the baseline. The match is then stored as FiftyOne's
own COCO evaluation under ``<prefix><field>`` (``si_sliced`` for the field
``sliced``), with its per-object ``<eval_key>`` attributes written in bulk by
label id (``fiftyone_evaluation``), so the App's Model Evaluation panel (and
its compare mode), ``load_evaluation_results``, ``load_evaluation_view`` and
the TP / FP / FN filters all work on it. The comparison itself is stored on the
dataset as a FiftyOne run, which the comparison panel reads.

The numbers are those of the path this replaced: one FiftyOne
``evaluate_detections(method="coco", compute_mAP=True)`` per run plus one per
size view (``tests/test_comparison.py`` checks every cell of the tables against
it, ``bench/compare.py`` measures both). On the demo it is about ten times
faster: FiftyOne's path spent most of its time saving samples one by one
(change tracking over label lists with masks) and computed every IoU eight
times per run.

**Object sizes.** Buckets follow COCO's thresholds by default: small ``area <
32**2``, medium ``32**2 <= area < 96**2``, large ``area >= 96**2``, in pixels
of box area (``metadata`` width x height, computed when missing; TIFFs from
their headers, so a BigTIFF larger than memory is never decoded). Each bucket is
evaluated as a view holding only its own objects would be: the bucket's ground
truth against the bucket's predictions, re-matched from the same IoUs. This is
the rule the comparison has always used, kept so that the numbers do not change;
it differs from pycocotools' area ranges near a threshold: COCO evaluates all
detections against the ground truth in the range and *ignores* out-of-range
objects and unmatched out-of-range detections, so a small ground-truth box
found by a slightly larger, medium-sized prediction is a true positive in
"small" and nothing in "medium". Here that ground truth is a false negative in
"small" and the prediction a false positive in "medium". Per-size numbers are
therefore a little stricter than COCO's where boxes straddle a threshold, and
within a bucket ``TP + FN`` is exactly the number of ground-truth objects in
it. ``RunMatch.metrics(gt_subset, pred_subset)`` evaluates any other grouping
of objects the same way.

**Fields being written.** A comparison refuses a field that an inference run
is still writing (``run_state``): it would count half a run, and FiftyOne's
own per-sample saving could leave label stubs in a list that the run just
replaced. ``wait`` waits for the run; ``allow_running`` compares anyway (for a
record left at ``running`` by a process that died on another machine). Runs
that did not process every image are starred in the tables, with a warning.

**Rotated boxes.** Oriented-box runs are ``Polylines`` fields (closed, filled
4-point polygons); FiftyOne matches them by polygon IoU, and an object's size
is its polygon area (``sizes``). Ground truth and predictions of one
comparison are all ``Detections`` or all ``Polylines``.

**Videos.** On a video collection the fields are frame fields
(``frames.<field>``, or the bare name) and each run is evaluated by FiftyOne's
own video evaluation, frame by frame, overall and by size, on the frames every
run labelled (``video_compare``); tracked runs also get IDF1.

Example::

    import fiftyone as fo
    import sliced_inference as si

    dataset = fo.load_dataset("sliced-inference-demo")
    comparison = si.compare_runs(dataset, "ground_truth", ["baseline", "sliced"])
    print(comparison)                       # text table
    session = fo.launch_app(si.recovered_view(
        dataset, "ground_truth", "baseline", "sliced"))
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

import fiftyone as fo
import fiftyone.core.utils as fou
import fiftyone.core.validation as fov
import numpy as np

from ..sdk.metadata import compute_metadata
from ..sdk.run_records import get_run_info
from .fields import EVALUATED_TYPES, label_type_of, unfilled_polygons
from .fiftyone_evaluation import evaluation_config, store_evaluation
from .fingerprint import fingerprint
from .frame_fields import label_path, labelled_frames, run_field
from .ious import PolygonCache, iter_image_candidates
from .matching import stack_candidates
from .objects import Images, Objects, count_masks
from .results import Comparison, Metrics, RunMetrics
from .run_match import RunMatch
from .run_state import unfinished_note, wait_for_runs, warn_unfinished
from .seams import add_seam_metrics
from .sizes import COCO_SIZE_THRESHOLDS, size_ranges
from .store import (
    DEFAULT_PREFIX,
    check_eval_keys,
    comparison_key_for,
    eval_key_for,
    eval_timestamps,
    store_comparison,
)
from .video_compare import iter_video_runs

logger = logging.getLogger(__name__)

#: ``progress`` callbacks get ``(fraction done, label)``.
ProgressCallback = Callable[[float, str], None]


@dataclass(frozen=True)
class ComparisonSettings:
    """How ``compare_runs`` evaluates and stores: every option and its default, once.

    The attributes are ``compare_runs``'s keywords (see there).
    """

    eval_key_prefix: str = DEFAULT_PREFIX
    iou: float = 0.5
    use_masks: bool | None = None
    mask_tolerance: float | None = 1.0
    size_thresholds: tuple[float, float] = COCO_SIZE_THRESHOLDS
    max_preds: int = 1000
    classwise: bool = True
    overwrite: bool = True
    comparison_key: str | None = None
    wait: float = 0.0
    allow_running: bool = False


@dataclass(frozen=True)
class ComparisonProgress:
    """Where a comparison is: run ``index`` of ``num_runs``, ``done`` of ``total`` images."""

    field: str
    index: int
    num_runs: int
    done: int
    total: int

    @property
    def fraction(self) -> float:
        """Fraction of the whole comparison done."""
        return (self.index + self.done / max(self.total, 1)) / self.num_runs

    @property
    def label(self) -> str:
        """A short line for a progress display."""
        return f"{self.field}: {self.done}/{self.total} images"


def compare_runs(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    pred_fields: Sequence[str],
    *,
    eval_key_prefix: str = ComparisonSettings.eval_key_prefix,
    iou: float = ComparisonSettings.iou,
    use_masks: bool | None = ComparisonSettings.use_masks,
    mask_tolerance: float | None = ComparisonSettings.mask_tolerance,
    size_thresholds: tuple[float, float] = ComparisonSettings.size_thresholds,
    max_preds: int = ComparisonSettings.max_preds,
    classwise: bool = ComparisonSettings.classwise,
    overwrite: bool = ComparisonSettings.overwrite,
    comparison_key: str | None = ComparisonSettings.comparison_key,
    progress: bool | ProgressCallback | None = None,
    wait: float = ComparisonSettings.wait,
    allow_running: bool = ComparisonSettings.allow_running,
) -> Comparison:
    """Evaluates prediction fields against ground truth and compares them with the first.

    Each field is matched once against the ground truth (see the module
    docstring) and stored as FiftyOne's COCO evaluation (``compute_mAP=True``,
    ``max_preds=max_preds``) under the eval key ``eval_key_for(field,
    eval_key_prefix)``; the metrics by object size come from the same match.
    The comparison is stored as a FiftyOne run under ``comparison_key``.

    Args:
        samples: a dataset or view with image ``metadata`` (computed if missing).
        gt_field: the ground-truth ``Detections`` field, or a ``Polylines``
            field of filled polygons for rotated-box runs.
        pred_fields: two or more prediction fields of the same type; the first
            is the baseline the others are compared with.
        eval_key_prefix: prefix of the evaluation keys.
        iou: IoU threshold for TP / FP / FN, precision and recall.
        use_masks: use instance-mask IoU; ``None`` uses masks for a run when both
            its predictions and the ground truth have masks, boxes otherwise.
        mask_tolerance: with masks, FiftyOne's ``tolerance``: masks become
            polygons simplified to this many pixels and IoUs are polygon IoUs.
            ``None`` asks for FiftyOne's exact pixel IoU, which pastes both masks
            into full-image arrays for every overlapping pair: minutes per
            run on large images with hundreds of objects.
        size_thresholds: ``(small_max, medium_max)`` box areas in square pixels.
        max_preds: most predictions per image (and class) used for mAP
            (FiftyOne's default, 100, truncates sliced output).
        classwise: only match objects of the same class.
        overwrite: replace evaluations of the same fields already stored under
            the same keys; ``False`` raises if one exists. An evaluation of
            another field under a key is never replaced.
        comparison_key: run key for the stored comparison; ``None`` derives one
            from the prefix and the fields.
        progress: ``True``/``False``/``None`` shows/hides/defaults a FiftyOne
            progress bar per run; a callable gets ``(fraction, label)``.
        wait: seconds to wait for inference runs still writing a compared
            field before refusing.
        allow_running: compare fields that a run is writing anyway (with a
            warning), e.g. when its record was left at ``running`` by a
            process that died on another machine.

    Returns:
        a ``Comparison``. Runs written by ``apply_sliced_model`` also get
        ``seams``: their metrics on the ground truth their tile seams cross
        and on the rest, and the baseline's on the same objects
        (``evaluation.seams``; not rotated-box runs, see
        ``seams.POLYLINES_REASON``).

    Raises:
        RunInProgressError: a run is writing a compared field (see ``wait``).
        ValueError: bad fields or options, or colliding eval keys.

    Example::

        >>> import sliced_inference as si
        >>> c = si.compare_runs(dataset, "ground_truth", ["baseline", "sliced"])  # doctest: +SKIP
        >>> print(c)  # doctest: +SKIP
        >>> c.differences()[0]["by_size"]["small"]["AP50"]  # doctest: +SKIP
        0.41
    """
    given = locals()
    names = [f.name for f in dataclasses.fields(ComparisonSettings)]
    settings = ComparisonSettings(**{name: given[name] for name in names})
    steps = iter_compare_runs(samples, gt_field, pred_fields, settings)
    return run_comparison(steps, progress)


def iter_compare_runs(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    pred_fields: Sequence[str],
    settings: ComparisonSettings | None = None,
) -> Generator[ComparisonProgress, None, Comparison]:
    """``compare_runs`` as a generator of ``ComparisonProgress``, returning the ``Comparison``.

    For progress displays (the App operator); ``run_comparison`` runs it.

    Example::

        >>> steps = iter_compare_runs(dataset, "ground_truth", ["baseline", "sliced"])  # doctest: +SKIP
        >>> comparison = run_comparison(steps, progress=True)  # doctest: +SKIP
    """
    s = settings or ComparisonSettings()
    gt_field = label_path(samples, gt_field)  # a video's frame fields: frames.<name>
    pred_fields = [label_path(samples, name) for name in pred_fields]
    _check_inputs(samples, gt_field, pred_fields, s.size_thresholds, s.iou, s.max_preds)
    keys = {name: eval_key_for(name, s.eval_key_prefix) for name in pred_fields}
    check_eval_keys(samples, gt_field, keys, s.overwrite)
    fields = [run_field(name) for name in (gt_field, *pred_fields)]
    wait_for_runs(samples, fields, wait=s.wait, allow_running=s.allow_running)
    if samples.media_type == "video":  # FiftyOne's own evaluation of frame fields
        frames = labelled_frames(samples, pred_fields)
        total = frames.count("frames")
        first = ComparisonProgress(pred_fields[0], 0, len(pred_fields), 0, total)
        runs = yield from iter_video_runs(frames, gt_field, pred_fields, keys, s, first)
        comparison = _comparison(
            samples, gt_field, pred_fields, runs, s, num_samples=len(frames)
        )
        comparison.num_frames = total
        store_comparison(frames, comparison, s.use_masks, s.mask_tolerance, s.max_preds)
        return comparison
    compute_metadata(samples)  # TIFFs from their headers, never decoded
    images = Images.load(samples)
    masks = _mask_choice(samples, gt_field, pred_fields, s.use_masks)
    gt = Objects.load(samples, gt_field, images, masks=any(masks.values()))
    prints = {gt_field: fingerprint(images, gt, get_run_info(samples, gt_field))}
    cache = PolygonCache(s.mask_tolerance)
    runs, found = [], []
    for index, name in enumerate(pred_fields):
        preds = Objects.load(samples, name, images, masks=masks[name])
        prints[name] = fingerprint(images, preds, get_run_info(samples, name))
        progress = ComparisonProgress(name, index, len(pred_fields), 0, len(images))
        match = yield from _match(gt, preds, s, masks[name], cache, progress)
        runs.append(_stored_run(samples, match, keys[name], s, images, masks[name]))
        found.append(match.gt_found)
    _count_recovered_and_lost(runs, found)
    add_seam_metrics(samples, gt_field, runs)
    warn_unfinished({run.field: run.unfinished for run in runs if run.unfinished})
    comparison = _comparison(
        samples, gt_field, pred_fields, runs, s, num_samples=len(images)
    )
    comparison.fingerprints = prints
    store_comparison(samples, comparison, s.use_masks, s.mask_tolerance, s.max_preds)
    return comparison


def _comparison(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    pred_fields: list[str],
    runs: list[RunMetrics],
    s: ComparisonSettings,
    num_samples: int,
) -> Comparison:
    """The ``Comparison`` of ``runs``, under ``s.comparison_key`` or the fields' key."""
    return Comparison(
        gt_field=gt_field,
        runs=runs,
        iou=s.iou,
        size_thresholds=tuple(s.size_thresholds),
        num_samples=num_samples,
        key=s.comparison_key
        or comparison_key_for(samples, gt_field, pred_fields, s.eval_key_prefix),
    )


def rerun_comparison(
    samples: fo.core.collections.SampleCollection, key: str
) -> Comparison:
    """Computes the stored comparison ``key`` again, with the settings it was made with.

    Example::

        >>> comparison = rerun_comparison(dataset, "si_cmp_baseline_sliced")  # doctest: +SKIP
    """
    dataset = samples._root_dataset
    config = dataset.get_run_info(key).config
    settings = ComparisonSettings(
        iou=config.iou,
        use_masks=config.use_masks,
        mask_tolerance=getattr(config, "mask_tolerance", 1.0),
        size_thresholds=tuple(config.size_thresholds),
        max_preds=config.max_preds,
        comparison_key=key,
    )
    steps = iter_compare_runs(
        dataset.load_run_view(key), config.gt_field, config.pred_fields, settings
    )
    return run_comparison(steps)


def _match(
    gt: Objects,
    preds: Objects,
    s: ComparisonSettings,
    use_masks: bool,
    cache: PolygonCache | None,
    progress: ComparisonProgress,
) -> Generator[ComparisonProgress, None, RunMatch]:
    """Computes a run's IoUs image by image (yielding progress), then matches it."""
    parts = []
    yield progress
    images = iter_image_candidates(
        gt,
        preds,
        classwise=s.classwise,
        use_masks=use_masks,
        tolerance=s.mask_tolerance,
        cache=cache,
    )
    for done, part in enumerate(images, start=1):
        parts.append(part)
        yield dataclasses.replace(progress, done=done)
    candidates = stack_candidates(parts, len(preds))
    return RunMatch.from_candidates(
        gt, preds, candidates, iou=s.iou, max_preds=s.max_preds, classwise=s.classwise
    )


def _stored_run(
    samples: fo.core.collections.SampleCollection,
    match: RunMatch,
    eval_key: str,
    s: ComparisonSettings,
    images: Images,
    use_masks: bool,
) -> RunMetrics:
    """Stores ``match`` as FiftyOne's evaluation under ``eval_key``; the run's metrics."""
    name = match.preds.field
    config = evaluation_config(
        name,
        match.gt.field,
        iou=s.iou,
        classwise=s.classwise,
        use_masks=use_masks,
        tolerance=s.mask_tolerance,
        max_preds=s.max_preds,
    )
    dataset = samples._root_dataset
    if eval_key in dataset.list_evaluations():
        dataset.delete_evaluation(eval_key)
    store_evaluation(samples, match, eval_key, config, images.ids)
    return RunMetrics(
        field=name,
        eval_key=eval_key,
        iou_type=_iou_type(match, use_masks),
        overall=match.metrics(),
        by_size=_metrics_by_size(match, s.size_thresholds),
        run_info=_run_info(samples, name),
        eval_timestamp=eval_timestamps(samples).get(eval_key),
        unfinished=unfinished_note(get_run_info(samples, name)),
    )


def _iou_type(match: RunMatch, use_masks: bool) -> str:
    """What the run's IoUs were computed on (FiftyOne fills polylines whatever ``use_masks``)."""
    if match.gt.is_polylines:
        return "polygons"
    return "masks" if use_masks else "boxes"


def _metrics_by_size(
    match: RunMatch, size_thresholds: tuple[float, float]
) -> dict[str, Metrics]:
    """Each size bucket's own ground truth against its own predictions."""
    by_size = {}
    for size, (low, high) in size_ranges(size_thresholds).items():
        gt_in = (match.gt.areas >= low) & (match.gt.areas < high)
        pred_in = (match.preds.areas >= low) & (match.preds.areas < high)
        by_size[size] = match.metrics(gt_in, pred_in)
    return by_size


def _count_recovered_and_lost(runs: list[RunMetrics], found: list[np.ndarray]) -> None:
    """Counts, per run after the first, GT objects it found / lost vs the first."""
    base = found[0]
    for run, other in zip(runs[1:], found[1:], strict=True):
        run.recovered = int((~base & other).sum())
        run.lost = int((base & ~other).sum())


def _mask_choice(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    pred_fields: list[str],
    use_masks: bool | None,
) -> dict[str, bool]:
    """Per prediction field, whether its IoUs are mask IoUs."""
    if use_masks is not None:
        return {name: bool(use_masks) for name in pred_fields}
    gt_masks = count_masks(samples, gt_field) > 0
    return {name: gt_masks and count_masks(samples, name) > 0 for name in pred_fields}


def run_comparison(
    steps: Generator[ComparisonProgress, None, Comparison],
    progress: bool | ProgressCallback | None = None,
) -> Comparison:
    """Runs ``iter_compare_runs`` steps to the end, with a FiftyOne progress bar per run.

    Args:
        steps: from ``iter_compare_runs``.
        progress: ``True``/``False``/``None`` shows/hides/defaults the bars; a
            callable gets ``(fraction, label)`` instead.
    """
    callback = progress if callable(progress) else None
    bar, current = None, None
    try:
        while True:
            step = next(steps)
            if callback is not None:
                callback(step.fraction, step.label)
                continue
            if step.field != current:
                if bar is not None:
                    bar.close()
                current = step.field
                logger.info("Matching %s against the ground truth", step.field)
                bar = fou.ProgressBar(
                    total=step.total, progress=progress, iters_str=f"images {current}"
                )
                bar.start()
            bar.set_iteration(step.done)
    except StopIteration as stop:
        return stop.value
    finally:
        if bar is not None:
            bar.close()


def _check_inputs(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    pred_fields: list[str],
    size_thresholds: tuple[float, float],
    iou: float,
    max_preds: int,
) -> None:
    fov.validate_non_grouped_collection(samples)  # as evaluate_detections
    if len(pred_fields) < 2:
        raise ValueError("compare_runs needs at least two prediction fields")
    if len(set(pred_fields)) != len(pred_fields):
        raise ValueError(f"prediction fields repeat: {pred_fields}")
    if gt_field in pred_fields:
        raise ValueError(f"{gt_field!r} is both ground truth and a prediction field")
    gt_type = label_type_of(samples, gt_field)
    for name in [gt_field, *pred_fields]:
        if samples.get_field(name) is None:
            raise ValueError(f"no field {name!r} on {samples._root_dataset.name!r}")
        if label_type_of(samples, name) is None:
            names = " or ".join(t.__name__ for t in EVALUATED_TYPES)
            raise ValueError(f"field {name!r} is not a {names} field")
        if label_type_of(samples, name) is not gt_type:
            raise ValueError(
                f"field {name!r} holds {label_type_of(samples, name).__name__} and "
                f"the ground truth {gt_type.__name__}: compare boxes with boxes and "
                "rotated boxes (Polylines) with rotated boxes"
            )
    unfilled = unfilled_polygons(samples, gt_field)
    if unfilled:
        raise ValueError(
            f"{unfilled} ground-truth polylines of {gt_field!r} are not filled, so "
            "FiftyOne would score them as lines, not by polygon IoU; mark them "
            f"filled: dataset.set_field('{gt_field}.polylines.filled', True).save()"
        )
    small, medium = size_thresholds
    if not 0 < small < medium:
        raise ValueError(
            f"size_thresholds must be 0 < small < medium, got {size_thresholds}"
        )
    if not 0 < iou < 1:
        raise ValueError(f"iou must be in (0, 1), got {iou}")
    if max_preds < 1:
        raise ValueError(f"max_preds must be positive, got {max_preds}")


def _run_info(
    samples: fo.core.collections.SampleCollection, field_name: str
) -> dict[str, Any] | None:
    info = get_run_info(samples, field_name)
    return json.loads(json.dumps(info, default=str)) if info else None
