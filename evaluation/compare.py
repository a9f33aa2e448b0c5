"""``compare_runs``: evaluate prediction runs (baseline vs sliced) against ground truth, overall and by size.

Every prediction field is evaluated with FiftyOne's own ``evaluate_detections``
(COCO method, mAP computed, ``max_preds`` raised for sliced output) and the
evaluation is stored under ``<prefix><field>`` (``si_sliced`` for the field
``sliced``), so the App's Model Evaluation panel, ``load_evaluation_view`` and the
per-object ``<eval_key>`` attributes all work on it. The comparison itself (overall
and per-size metrics, differences to the first run, speed) is stored on the
dataset as a FiftyOne run, which the comparison panel reads.

**Object sizes.** FiftyOne has no size breakdown, and ``results.use_subset()``
does not change mAP, so each size bucket is a separate evaluation (not stored)
on a view whose ground truth *and* predictions are filtered by their own box area
in pixels (``metadata`` width x height, computed when missing). Buckets follow
COCO's thresholds by default: small ``area < 32**2``, medium ``32**2 <= area <
96**2``, large ``area >= 96**2``. This differs from pycocotools near a threshold:
COCO evaluates all detections against ground truth in the range and *ignores*
out-of-range objects and unmatched out-of-range detections, so a small ground
truth box found by a slightly larger, medium-sized prediction is a true positive
in "small" and nothing in "medium". Here each object counts only in its own
bucket: that ground truth is a false negative in "small" and the prediction a
false positive in "medium". Per-size numbers are therefore a little stricter than
COCO's where boxes straddle a threshold, and within a bucket ``TP + FN`` is
exactly the number of ground-truth objects in it.

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

import json
from collections.abc import Sequence
from typing import Any

import fiftyone as fo
import fiftyone.core.utils as fou

from ..sdk.run_records import get_run_info
from .frame_fields import (
    is_frame_path,
    label_path,
    labelled_frames,
    object_values,
    run_field,
    schema_paths,
)
from .logs import quiet_evaluation_logs
from .results import Comparison, Metrics, RunMetrics
from .sizes import COCO_SIZE_THRESHOLDS, size_ranges, size_view
from .store import (
    DEFAULT_PREFIX,
    default_comparison_key,
    eval_key_for,
    eval_timestamps,
    store_comparison,
)
from .tracking import collection_identity_scores


def compare_runs(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    pred_fields: Sequence[str],
    *,
    eval_key_prefix: str = DEFAULT_PREFIX,
    iou: float = 0.5,
    use_masks: bool | None = None,
    mask_tolerance: float | None = 1.0,
    size_thresholds: tuple[float, float] = COCO_SIZE_THRESHOLDS,
    max_preds: int = 1000,
    classwise: bool = True,
    overwrite: bool = True,
    comparison_key: str | None = None,
    progress: Any = None,
) -> Comparison:
    """Evaluates prediction fields against ground truth and compares them with the first.

    Each field is evaluated with ``evaluate_detections(method="coco",
    compute_mAP=True, max_preds=max_preds)`` and stored under the eval key
    ``<eval_key_prefix><field>``; then once per size bucket on views whose
    ground truth and predictions are filtered by pixel area (see the module
    docstring for the rule near a threshold; these evaluations are not stored).
    The comparison is stored as a FiftyOne run under ``comparison_key``.

    On a video collection the fields are frame fields (``frames.<field>``, or
    the bare name), evaluated frame by frame with FiftyOne's video evaluation
    (objects are matched within each frame; every frame counts as an image in
    the metrics), overall and by object size in pixels of the frame. Only the
    frames every run labelled are evaluated (runs with ``frame_step`` N label
    every Nth frame), so each run is scored on the same frames.

    Args:
        samples: a dataset or view with image (or video) ``metadata``
            (computed if missing).
        gt_field: the ground-truth ``Detections`` field.
        pred_fields: two or more prediction ``Detections`` fields; the first is
            the baseline the others are compared with.
        eval_key_prefix: prefix of the evaluation keys.
        iou: IoU threshold for TP / FP / FN, precision and recall.
        use_masks: use instance-mask IoU; ``None`` uses masks for a run when both
            its predictions and the ground truth have masks, boxes otherwise.
        mask_tolerance: with masks, FiftyOne's ``tolerance``: masks become
            polygons simplified to this many pixels and IoUs are polygon IoUs.
            ``None`` asks for FiftyOne's exact pixel IoU, which pastes both masks
            into full-image arrays for every overlapping pair: minutes per
            evaluation on large images with hundreds of objects.
        size_thresholds: ``(small_max, medium_max)`` box areas in square pixels.
        max_preds: most predictions per image used for mAP (FiftyOne's default,
            100, truncates sliced output).
        classwise: only match objects of the same class.
        overwrite: replace evaluations already stored under the same keys;
            ``False`` raises if one exists.
        comparison_key: run key for the stored comparison; ``None`` derives one
            from the prefix and the fields.
        progress: the comparison's progress bar: ``True``/``False``/``None``
            (FiftyOne's default) or a callable, as FiftyOne's ``progress``.

    Returns:
        a ``Comparison``.

    Example::

        >>> import sliced_inference as si
        >>> c = si.compare_runs(dataset, "ground_truth", ["baseline", "sliced"])  # doctest: +SKIP
        >>> print(c)  # doctest: +SKIP
        >>> c.differences()[0]["by_size"]["small"]["AP50"]  # doctest: +SKIP
        0.41
    """
    gt_field = label_path(samples, gt_field)
    pred_fields = [label_path(samples, name) for name in pred_fields]
    _check_inputs(samples, gt_field, pred_fields, size_thresholds, iou, max_preds)
    samples = labelled_frames(samples, pred_fields)
    samples.compute_metadata()
    gt_has_masks = _has_masks(samples, gt_field)
    runs = []
    # One progress bar for the comparison: FiftyOne's lines and bars of the
    # several evaluations per run stay hidden under it.
    bar = fou.ProgressBar(total=len(pred_fields), progress=progress)
    with quiet_evaluation_logs(), bar:
        for pred_field in bar(pred_fields):
            masks = (
                gt_has_masks and _has_masks(samples, pred_field)
                if use_masks is None
                else bool(use_masks)
            )
            runs.append(
                _evaluate_run(
                    samples,
                    gt_field,
                    pred_field,
                    eval_key=eval_key_for(pred_field, eval_key_prefix),
                    iou=iou,
                    use_masks=masks,
                    mask_tolerance=mask_tolerance,
                    size_thresholds=size_thresholds,
                    max_preds=max_preds,
                    classwise=classwise,
                    overwrite=overwrite,
                    progress=False,
                )
            )
    _count_recovered_and_lost(samples, gt_field, runs)
    for run in runs:
        run.identity = _identity(samples, gt_field, run.field, iou)
    comparison = Comparison(
        gt_field=gt_field,
        runs=runs,
        iou=iou,
        size_thresholds=tuple(size_thresholds),
        num_samples=len(samples),
        num_frames=samples.count("frames") if samples.media_type == "video" else None,
        key=comparison_key or default_comparison_key(pred_fields, eval_key_prefix),
    )
    store_comparison(samples, comparison, use_masks, mask_tolerance, max_preds)
    return comparison


def rerun_comparison(
    samples: fo.core.collections.SampleCollection, key: str
) -> Comparison:
    """Computes the stored comparison ``key`` again, with the settings it was made with.

    Example::

        >>> comparison = rerun_comparison(dataset, "si_cmp_baseline_sliced")  # doctest: +SKIP
    """
    dataset = samples._root_dataset
    config = dataset.get_run_info(key).config
    return compare_runs(
        dataset.load_run_view(key),
        config.gt_field,
        config.pred_fields,
        iou=config.iou,
        use_masks=config.use_masks,
        mask_tolerance=getattr(config, "mask_tolerance", 1.0),
        size_thresholds=tuple(config.size_thresholds),
        max_preds=config.max_preds,
        comparison_key=key,
    )


def metrics_from_results(results: Any) -> Metrics:
    """The metrics of a FiftyOne COCO ``DetectionResults`` (with mAP computed)."""
    tp = int((results.ytrue == results.ypred).sum())
    fp = int((results.ytrue == results.missing).sum())
    fn = int((results.ypred == results.missing).sum())
    return Metrics(
        mAP=_ap_or_none(results.mAP()) if tp + fn else None,
        AP50=_ap50(results) if tp + fn else None,
        precision=tp / (tp + fp) if tp + fp else None,
        recall=tp / (tp + fn) if tp + fn else None,
        tp=tp,
        fp=fp,
        fn=fn,
    )


def _evaluate_run(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    pred_field: str,
    *,
    eval_key: str,
    iou: float,
    use_masks: bool,
    mask_tolerance: float | None,
    size_thresholds: tuple[float, float],
    max_preds: int,
    classwise: bool,
    overwrite: bool,
    progress: Any,
) -> RunMetrics:
    options = dict(
        gt_field=gt_field,
        method="coco",
        iou=iou,
        classwise=classwise,
        compute_mAP=True,
        use_masks=use_masks,
        tolerance=mask_tolerance if use_masks else None,
        max_preds=max_preds,
        progress=progress,
    )
    if eval_key in samples._root_dataset.list_evaluations():
        if not overwrite:
            raise ValueError(f"evaluation {eval_key!r} exists and overwrite=False")
        samples._root_dataset.delete_evaluation(eval_key)
    results = samples.evaluate_detections(pred_field, eval_key=eval_key, **options)
    lean = _without_eval_attributes(samples, [gt_field, pred_field])
    by_size = {}
    for size, (low, high) in size_ranges(size_thresholds).items():
        view = size_view(lean, [gt_field, pred_field], low, high)
        by_size[size] = metrics_from_results(
            view.evaluate_detections(pred_field, eval_key=None, **options)
        )
    return RunMetrics(
        field=pred_field,
        eval_key=eval_key,
        iou_type="masks" if use_masks else "boxes",
        overall=metrics_from_results(results),
        by_size=by_size,
        run_info=_run_info(samples, pred_field),
        eval_timestamp=eval_timestamps(samples).get(eval_key),
    )


def _without_eval_attributes(
    samples: fo.core.collections.SampleCollection, fields: Sequence[str]
) -> fo.core.collections.SampleCollection:
    """``samples`` without the per-object attributes stored evaluations wrote.

    Only speed: every evaluation adds three attributes to each object, and
    FiftyOne decodes them all on each pass of a later evaluation.
    """
    suffixes = {
        f"{key}{suffix}"
        for key in samples._root_dataset.list_evaluations()
        for suffix in ("", "_id", "_iou")
    }
    paths = [
        path
        for name in fields
        for path in schema_paths(samples, name)
        if path.startswith(f"{name}.detections.")
        and path.rsplit(".", 1)[-1] in suffixes
    ]
    return samples.exclude_fields(paths) if paths else samples


def _count_recovered_and_lost(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    runs: list[RunMetrics],
) -> None:
    """Counts, per run after the first, GT objects it found / lost vs the first."""
    paths = [f"{gt_field}.detections.{run.eval_key}" for run in runs]
    columns = object_values(samples, paths)
    base = columns[0]
    for run, column in zip(runs[1:], columns[1:], strict=True):
        pairs = list(zip(base, column, strict=True))
        run.recovered = sum(b == "fn" and r == "tp" for b, r in pairs)
        run.lost = sum(b == "tp" and r == "fn" for b, r in pairs)


def _identity(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    pred_field: str,
    iou: float,
) -> dict[str, Any] | None:
    """IDF1 of a tracked frame field (ids in ``index`` on both sides), else ``None``."""
    if not (is_frame_path(gt_field) and is_frame_path(pred_field)):
        return None
    if not all(samples.count(f"{f}.detections.index") for f in (gt_field, pred_field)):
        return None
    return collection_identity_scores(samples, gt_field, pred_field, iou).to_dict()


def _check_inputs(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    pred_fields: list[str],
    size_thresholds: tuple[float, float],
    iou: float,
    max_preds: int,
) -> None:
    if len(pred_fields) < 2:
        raise ValueError("compare_runs needs at least two prediction fields")
    if len(set(pred_fields)) != len(pred_fields):
        raise ValueError(f"prediction fields repeat: {pred_fields}")
    if gt_field in pred_fields:
        raise ValueError(f"{gt_field!r} is both ground truth and a prediction field")
    for name in [gt_field, *pred_fields]:
        kind = samples.get_field(name)
        if kind is None:
            raise ValueError(f"no field {name!r} on {samples._root_dataset.name!r}")
        if getattr(kind, "document_type", None) is not fo.Detections:
            raise ValueError(f"field {name!r} is not a Detections field")
    small, medium = size_thresholds
    if not 0 < small < medium:
        raise ValueError(
            f"size_thresholds must be 0 < small < medium, got {size_thresholds}"
        )
    if not 0 < iou < 1:
        raise ValueError(f"iou must be in (0, 1), got {iou}")
    if max_preds < 1:
        raise ValueError(f"max_preds must be positive, got {max_preds}")


def _has_masks(samples: fo.core.collections.SampleCollection, field_name: str) -> bool:
    return samples.count(f"{field_name}.detections.mask") > 0


def _run_info(
    samples: fo.core.collections.SampleCollection, field_name: str
) -> dict[str, Any] | None:
    info = get_run_info(samples, run_field(field_name))
    return json.loads(json.dumps(info, default=str)) if info else None


def _ap50(results: Any) -> float | None:
    """COCO AP at IoU 0.50, averaged over the classes that have ground truth."""
    index = [i for i, t in enumerate(results.iou_threshs) if abs(t - 0.5) < 1e-6]
    if not index:
        return None
    per_class = results.precision[index[0]].mean(axis=-1)
    valid = per_class[per_class > -1]
    return float(valid.mean()) if valid.size else None


def _ap_or_none(value: float) -> float | None:
    return None if value is None or value < 0 else float(value)
