"""The comparison of video runs: FiftyOne's own evaluation of frame fields.

``compare_runs`` matches image runs once itself (``run_match``); on a video
collection it hands the frame fields (``frames.<field>``) to
``iter_video_runs``, which evaluates each run with FiftyOne's
``evaluate_detections`` (COCO method, mAP computed): objects are matched
within each frame and every frame counts as an image in the metrics. The
evaluation is stored under the run's eval key, so the App's Model Evaluation
panel and the per-object ``<eval_key>`` attributes work on it; each size
bucket is one more evaluation (not stored) on a view whose ground truth and
predictions are filtered by their own area in pixels of the frame
(``sizes.size_view``). Objects a run recovered or lost against the baseline
come from those per-object attributes; tracked runs (track ids in
``Detection.index`` on both sides) also get their identity scores (IDF1,
``tracking``).

Only the frames every run labelled are evaluated (``labelled_frames``: runs
with ``frame_step`` N label every Nth frame), so each run is scored on the
same frames.

``evaluate_run`` and ``legacy_metrics`` are also the reference the one-match
comparison of images is checked against (``bench/legacy_compare.py``).

Example::

    >>> steps = iter_video_runs(videos, "frames.ground_truth", ["frames.baseline", "frames.sliced"], keys, settings)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any

import fiftyone as fo

from ..sdk.run_records import get_run_info
from .fields import label_list_path, label_type_of
from .frame_fields import is_frame_path, object_values, run_field, schema_paths
from .logs import quiet_evaluation_logs
from .results import Metrics, RunMetrics
from .run_state import unfinished_note
from .sizes import size_ranges, size_view
from .store import eval_timestamps
from .tracking import collection_identity_scores

if TYPE_CHECKING:  # compare.py imports this module
    from .compare import ComparisonProgress, ComparisonSettings


def iter_video_runs(
    frames: fo.core.collections.SampleCollection,
    gt_field: str,
    pred_fields: Sequence[str],
    keys: dict[str, str],
    settings: ComparisonSettings,
    progress: ComparisonProgress,
) -> Generator[ComparisonProgress, None, list[RunMetrics]]:
    """Evaluates each run on ``frames`` (yielding progress), returns their metrics.

    Args:
        frames: the videos, with only the frames every run labelled.
        gt_field: the ground-truth frame field (``frames.<field>``).
        pred_fields: the runs' frame fields; the first is the baseline.
        keys: ``{prediction field: eval key}`` (checked by the caller).
        settings: the comparison's settings.
        progress: the first step (run 0, 0 of ``total`` frames done): each
            run's evaluation takes all frames at once.
    """
    s = settings
    frames.compute_metadata()
    runs = []
    with quiet_evaluation_logs():
        for index, name in enumerate(pred_fields):
            step = dataclasses.replace(progress, field=name, index=index)
            yield step
            masks = uses_masks(frames, gt_field, name, s.use_masks)
            run = evaluate_run(
                frames,
                gt_field,
                name,
                eval_key=keys[name],
                iou=s.iou,
                use_masks=masks,
                mask_tolerance=s.mask_tolerance,
                size_thresholds=s.size_thresholds,
                max_preds=s.max_preds,
                classwise=s.classwise,
            )
            info = get_run_info(frames, run_field(name))
            run.run_info = json.loads(json.dumps(info, default=str)) if info else None
            run.eval_timestamp = eval_timestamps(frames).get(keys[name])
            run.unfinished = unfinished_note(info)
            run.identity = _identity(frames, gt_field, name, s.iou)
            runs.append(run)
            yield dataclasses.replace(step, done=step.total)
    count_recovered_and_lost(frames, gt_field, runs)
    return runs


def evaluate_run(
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
) -> RunMetrics:
    """One run's metrics from FiftyOne's evaluations: stored overall, then one per size.

    An evaluation already under ``eval_key`` is replaced (callers check keys
    first). Works on image fields (``Detections`` or ``Polylines``) and on
    frame fields (``frames.<field>``).

    Example::

        >>> run = evaluate_run(dataset, "ground_truth", "sliced", eval_key="legacy_sliced", iou=0.5, use_masks=False, mask_tolerance=None, size_thresholds=(1024, 9216), max_preds=1000, classwise=True)  # doctest: +SKIP
        >>> run.by_size["small"].AP50  # doctest: +SKIP
    """
    options = dict(
        gt_field=gt_field,
        method="coco",
        iou=iou,
        classwise=classwise,
        compute_mAP=True,
        use_masks=use_masks,
        tolerance=mask_tolerance if use_masks else None,
        max_preds=max_preds,
        progress=False,
    )
    dataset = samples._root_dataset
    if eval_key in dataset.list_evaluations():
        dataset.delete_evaluation(eval_key)
    results = samples.evaluate_detections(pred_field, eval_key=eval_key, **options)
    lean = _without_eval_attributes(samples, [gt_field, pred_field])
    by_size = {}
    for size, (low, high) in size_ranges(size_thresholds).items():
        view = size_view(lean, [gt_field, pred_field], low, high)
        by_size[size] = legacy_metrics(
            view.evaluate_detections(pred_field, eval_key=None, **options)
        )
    polylines = label_type_of(samples, gt_field) is fo.Polylines
    return RunMetrics(
        field=pred_field,
        eval_key=eval_key,
        iou_type="polygons" if polylines else "masks" if use_masks else "boxes",
        overall=legacy_metrics(results),
        by_size=by_size,
    )


def legacy_metrics(results: Any) -> Metrics:
    """The metrics of a FiftyOne COCO ``DetectionResults`` (with mAP computed)."""
    tp = int((results.ytrue == results.ypred).sum())
    fp = int((results.ytrue == results.missing).sum())
    fn = int((results.ypred == results.missing).sum())
    has_gt = tp + fn > 0
    mean_ap = results.mAP() if has_gt else -1
    return Metrics(
        mAP=float(mean_ap) if mean_ap >= 0 else None,
        AP50=_ap50(results) if has_gt else None,
        precision=tp / (tp + fp) if tp + fp else None,
        recall=tp / (tp + fn) if tp + fn else None,
        tp=tp,
        fp=fp,
        fn=fn,
    )


def count_recovered_and_lost(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    runs: list[RunMetrics],
) -> None:
    """Counts, per run after the first, GT objects it found / lost vs the first,
    from the per-object ``<eval_key>`` attributes FiftyOne's evaluations wrote."""
    paths = [f"{label_list_path(samples, gt_field)}.{run.eval_key}" for run in runs]
    columns = object_values(samples, paths)
    for run, column in zip(runs[1:], columns[1:], strict=True):
        pairs = list(zip(columns[0], column, strict=True))
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
        if path.startswith(f"{label_list_path(samples, name)}.")
        and path.rsplit(".", 1)[-1] in suffixes
    ]
    return samples.exclude_fields(paths) if paths else samples


def uses_masks(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    pred_field: str,
    use_masks: bool | None,
) -> bool:
    """Whether a run is evaluated by mask IoU: as asked, else when both fields have masks."""
    if use_masks is not None:
        return bool(use_masks)
    return all(
        samples.count(f"{name}.detections.mask") > 0 for name in (gt_field, pred_field)
    )


def _ap50(results: Any) -> float | None:
    """COCO AP at IoU 0.50, averaged over the classes that have ground truth."""
    index = [i for i, t in enumerate(results.iou_threshs) if abs(t - 0.5) < 1e-6]
    if not index:
        return None
    per_class = results.precision[index[0]].mean(axis=-1)
    valid = per_class[per_class > -1]
    return float(valid.mean()) if valid.size else None
