"""The comparison as it was computed before the one-match path: a frozen reference.

Four FiftyOne evaluations per run: ``evaluate_detections(method="coco",
compute_mAP=True, eval_key=...)`` on the samples, then one per object size on a
view holding only that size's ground truth and predictions. Kept only to check
that ``compare_runs`` gives the same numbers (``tests/test_comparison.py``) and
to measure how much faster it is (``bench/compare.py``); nothing else uses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import fiftyone as fo

from sliced_inference.evaluation.fields import label_list_path, label_type_of
from sliced_inference.evaluation.logs import quiet_evaluation_logs
from sliced_inference.evaluation.results import Comparison, Metrics, RunMetrics
from sliced_inference.evaluation.sizes import (
    COCO_SIZE_THRESHOLDS,
    size_ranges,
    size_view,
)


def legacy_compare_runs(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    pred_fields: Sequence[str],
    *,
    eval_key_prefix: str = "legacy_",
    iou: float = 0.5,
    use_masks: bool | None = None,
    mask_tolerance: float | None = 1.0,
    size_thresholds: tuple[float, float] = COCO_SIZE_THRESHOLDS,
    max_preds: int = 1000,
    classwise: bool = True,
) -> Comparison:
    """The old ``compare_runs``: the same ``Comparison`` (not stored), from FiftyOne's evaluations.

    Evaluations are stored under ``<eval_key_prefix><field>`` (the old path
    wrote its per-object attributes through FiftyOne); run records, timestamps
    and fingerprints are left out.
    """
    samples.compute_metadata()
    gt_masks = samples.count(f"{gt_field}.detections.mask") > 0
    polylines = label_type_of(samples, gt_field) is fo.Polylines
    runs = []
    with quiet_evaluation_logs():
        for name in pred_fields:
            masks = (
                gt_masks and samples.count(f"{name}.detections.mask") > 0
                if use_masks is None
                else bool(use_masks)
            )
            options = dict(
                gt_field=gt_field,
                method="coco",
                iou=iou,
                classwise=classwise,
                compute_mAP=True,
                use_masks=masks,
                tolerance=mask_tolerance if masks else None,
                max_preds=max_preds,
                progress=False,
            )
            key = eval_key_prefix + name
            if key in samples._root_dataset.list_evaluations():
                samples._root_dataset.delete_evaluation(key)
            results = samples.evaluate_detections(name, eval_key=key, **options)
            by_size = {}
            for size, (low, high) in size_ranges(size_thresholds).items():
                view = size_view(samples, [gt_field, name], low, high)
                by_size[size] = legacy_metrics(
                    view.evaluate_detections(name, eval_key=None, **options)
                )
            runs.append(
                RunMetrics(
                    field=name,
                    eval_key=key,
                    iou_type="polygons" if polylines else "masks" if masks else "boxes",
                    overall=legacy_metrics(results),
                    by_size=by_size,
                )
            )
    columns = [
        [s for sample in values for s in (sample or [])]
        for values in samples.values(
            [f"{label_list_path(samples, gt_field)}.{run.eval_key}" for run in runs]
        )
    ]
    for run, column in zip(runs[1:], columns[1:], strict=True):
        pairs = list(zip(columns[0], column, strict=True))
        run.recovered = sum(b == "fn" and r == "tp" for b, r in pairs)
        run.lost = sum(b == "tp" and r == "fn" for b, r in pairs)
    return Comparison(
        gt_field=gt_field,
        runs=runs,
        iou=iou,
        size_thresholds=tuple(size_thresholds),
        num_samples=len(samples),
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


def _ap50(results: Any) -> float | None:
    index = [i for i, t in enumerate(results.iou_threshs) if abs(t - 0.5) < 1e-6]
    if not index:
        return None
    per_class = results.precision[index[0]].mean(axis=-1)
    valid = per_class[per_class > -1]
    return float(valid.mean()) if valid.size else None
