"""The comparison as it was computed before the one-match path: a frozen reference.

Four FiftyOne evaluations per run: ``evaluate_detections(method="coco",
compute_mAP=True, eval_key=...)`` on the samples, then one per object size on a
view holding only that size's ground truth and predictions. Kept only to check
that ``compare_runs`` gives the same numbers (``tests/test_comparison.py``) and
to measure how much faster it is (``bench/compare.py``); nothing else uses it.
"""

from __future__ import annotations

from collections.abc import Sequence

import fiftyone as fo

from sliced_inference.evaluation.logs import quiet_evaluation_logs
from sliced_inference.evaluation.results import Comparison
from sliced_inference.evaluation.sizes import COCO_SIZE_THRESHOLDS
from sliced_inference.evaluation.video_compare import (
    count_recovered_and_lost,
    evaluate_run,
    legacy_metrics,
    uses_masks,
)

__all__ = ["legacy_compare_runs", "legacy_metrics"]


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
    and fingerprints are left out. Each run is evaluated by
    ``evaluation.video_compare.evaluate_run``, the path video comparisons
    still take.
    """
    samples.compute_metadata()
    with quiet_evaluation_logs():
        runs = [
            evaluate_run(
                samples,
                gt_field,
                name,
                eval_key=eval_key_prefix + name,
                iou=iou,
                use_masks=uses_masks(samples, gt_field, name, use_masks),
                mask_tolerance=mask_tolerance,
                size_thresholds=size_thresholds,
                max_preds=max_preds,
                classwise=classwise,
            )
            for name in pred_fields
        ]
    count_recovered_and_lost(samples, gt_field, runs)
    return Comparison(
        gt_field=gt_field,
        runs=runs,
        iou=iou,
        size_thresholds=tuple(size_thresholds),
        num_samples=len(samples),
    )
