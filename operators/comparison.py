"""Compare prediction runs (baseline vs sliced) against ground truth, overall and by size.

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

import hashlib
import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import fiftyone as fo
from fiftyone import ViewField as F

logger = logging.getLogger(__name__)

#: Prefix of the evaluation keys and comparison keys this module writes.
DEFAULT_PREFIX = "si_"
#: ``method`` of the FiftyOne runs that store comparisons.
COMPARISON_METHOD = "sliced_inference.comparison"
#: COCO's small / medium / large boundaries, in square pixels.
COCO_SIZE_THRESHOLDS = (32**2, 96**2)
SIZES = ("small", "medium", "large")

_MAX_KEY_LENGTH = 60


@dataclass
class Metrics:
    """Detection metrics of one run on one set of objects.

    Attributes:
        mAP: COCO mAP (IoU 0.50:0.95, averaged over classes with ground truth);
            ``None`` when there is no ground truth.
        AP50: COCO AP at IoU 0.50, averaged the same way; ``None`` likewise.
        precision: ``tp / (tp + fp)`` at the comparison IoU; ``None`` if no
            predictions.
        recall: ``tp / (tp + fn)``; ``None`` if no ground truth.
        tp: matched predictions (= matched ground-truth objects).
        fp: unmatched predictions.
        fn: unmatched ground-truth objects.
    """

    mAP: float | None
    AP50: float | None
    precision: float | None
    recall: float | None
    tp: int
    fp: int
    fn: int

    @property
    def num_gt(self) -> int:
        """Ground-truth objects evaluated (``tp + fn``)."""
        return self.tp + self.fn

    @property
    def num_pred(self) -> int:
        """Predictions evaluated (``tp + fp``)."""
        return self.tp + self.fp

    @classmethod
    def from_results(cls, results: Any) -> Metrics:
        """Reads the metrics of a COCO ``DetectionResults`` (with mAP computed)."""
        tp = int((results.ytrue == results.ypred).sum())
        fp = int((results.ytrue == results.missing).sum())
        fn = int((results.ypred == results.missing).sum())
        return cls(
            mAP=_ap_or_none(results.mAP()) if tp + fn else None,
            AP50=_ap50(results) if tp + fn else None,
            precision=tp / (tp + fp) if tp + fp else None,
            recall=tp / (tp + fn) if tp + fn else None,
            tp=tp,
            fp=fp,
            fn=fn,
        )


@dataclass
class RunMetrics:
    """One prediction field of a comparison.

    Attributes:
        field: the prediction field.
        eval_key: where its evaluation is stored.
        iou_type: ``"boxes"`` or ``"masks"``, the IoU the evaluation used.
        overall: metrics on all objects.
        by_size: metrics per size bucket (``small``, ``medium``, ``large``).
        run_info: the run record of the field (kind, model, settings, seconds,
            images_per_second), when inference recorded one.
        recovered: ground-truth objects this run found (TP) that the first run
            missed (FN); ``None`` for the first run.
        lost: ground-truth objects the first run found that this one missed.
        eval_timestamp: when the evaluation was stored (ISO format), to tell
            whether it changed since.
    """

    field: str
    eval_key: str
    iou_type: str
    overall: Metrics
    by_size: dict[str, Metrics]
    run_info: dict[str, Any] | None = None
    recovered: int | None = None
    lost: int | None = None
    eval_timestamp: str | None = None

    @property
    def seconds(self) -> float | None:
        """Inference time of the run, from its run record."""
        return _number((self.run_info or {}).get("seconds"))

    @property
    def images_per_second(self) -> float | None:
        """Inference throughput of the run, from its run record."""
        return _number((self.run_info or {}).get("images_per_second"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunMetrics:
        """Inverse of ``asdict``."""
        d = dict(d)
        d["overall"] = Metrics(**d["overall"])
        d["by_size"] = {k: Metrics(**v) for k, v in d["by_size"].items()}
        return cls(**d)


@dataclass
class Comparison:
    """Metrics of several prediction runs on the same samples; the first is the baseline.

    ``str(comparison)`` (or ``to_table()``) is a text table; ``to_dict()`` and
    ``to_json()`` give the same numbers as data.

    Attributes:
        gt_field: the ground-truth field.
        runs: one ``RunMetrics`` per prediction field, baseline first.
        iou: IoU threshold of TP / FP / FN, precision and recall.
        size_thresholds: small/medium and medium/large area boundaries (px^2).
        num_samples: samples evaluated.
        key: run key the comparison is stored under (``None`` if not stored).
    """

    gt_field: str
    runs: list[RunMetrics]
    iou: float = 0.5
    size_thresholds: tuple[float, float] = COCO_SIZE_THRESHOLDS
    num_samples: int = 0
    key: str | None = None

    @property
    def baseline(self) -> RunMetrics:
        """The first run, which the others are compared with."""
        return self.runs[0]

    def run(self, field: str) -> RunMetrics:
        """The run of prediction field ``field``."""
        for run in self.runs:
            if run.field == field:
                return run
        raise KeyError(f"no run for field {field!r}; runs: {self.fields}")

    @property
    def fields(self) -> list[str]:
        """The prediction fields, baseline first."""
        return [run.field for run in self.runs]

    @property
    def eval_keys(self) -> list[str]:
        """The evaluation key of each run, baseline first."""
        return [run.eval_key for run in self.runs]

    def differences(self) -> list[dict[str, Any]]:
        """Each run after the first minus the baseline.

        Returns:
            one dict per run after the first: ``field``, the differences of
            ``mAP``, ``AP50``, ``precision``, ``recall``, ``tp``, ``fp``, ``fn``,
            ``by_size`` (the same per bucket), ``recovered`` and ``lost``
            objects, and ``time_ratio`` (seconds of the run / seconds of the
            baseline, ``None`` without run records).
        """
        base = self.baseline
        return [
            {
                "field": run.field,
                **_metrics_delta(run.overall, base.overall),
                "by_size": {
                    size: _metrics_delta(m, base.by_size[size])
                    for size, m in run.by_size.items()
                    if size in base.by_size
                },
                "recovered": run.recovered,
                "lost": run.lost,
                "time_ratio": _ratio(run.seconds, base.seconds),
            }
            for run in self.runs[1:]
        ]

    def size_counts(self) -> dict[str, int]:
        """Ground-truth objects per size bucket."""
        return {size: m.num_gt for size, m in self.baseline.by_size.items()}

    def to_dict(self) -> dict[str, Any]:
        """The comparison as JSON-friendly data (differences included)."""
        return {
            "gt_field": self.gt_field,
            "iou": self.iou,
            "size_thresholds": list(self.size_thresholds),
            "num_samples": self.num_samples,
            "key": self.key,
            "runs": [asdict(run) for run in self.runs],
            "differences": self.differences(),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """``to_dict()`` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Comparison:
        """Rebuilds a comparison from ``to_dict()`` output."""
        return cls(
            gt_field=d["gt_field"],
            runs=[RunMetrics.from_dict(r) for r in d["runs"]],
            iou=d.get("iou", 0.5),
            size_thresholds=tuple(d.get("size_thresholds", COCO_SIZE_THRESHOLDS)),
            num_samples=d.get("num_samples", 0),
            key=d.get("key"),
        )

    def to_table(self) -> str:
        """The comparison as a text table (see ``comparison_table``)."""
        from .comparison_table import render_comparison

        return render_comparison(self)

    def __str__(self) -> str:
        return self.to_table()

    def is_current(self, samples: fo.core.collections.SampleCollection) -> bool:
        """Whether every evaluation it was computed from is still stored unchanged."""
        stored = _eval_timestamps(samples)
        return all(
            run.eval_key in stored and stored[run.eval_key] == run.eval_timestamp
            for run in self.runs
        )


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

    Args:
        samples: a dataset or view with image ``metadata`` (computed if missing).
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
        progress: FiftyOne progress setting passed to the evaluations.

    Returns:
        a ``Comparison``.

    Example::

        >>> import sliced_inference as si
        >>> c = si.compare_runs(dataset, "ground_truth", ["baseline", "sliced"])  # doctest: +SKIP
        >>> print(c)  # doctest: +SKIP
        >>> c.differences()[0]["by_size"]["small"]["AP50"]  # doctest: +SKIP
        0.41
    """
    pred_fields = list(pred_fields)
    _check_inputs(samples, gt_field, pred_fields, size_thresholds, iou, max_preds)
    samples.compute_metadata()
    gt_has_masks = _has_masks(samples, gt_field)
    runs = []
    for pred_field in pred_fields:
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
                progress=progress,
            )
        )
    _count_recovered_and_lost(samples, gt_field, runs)
    comparison = Comparison(
        gt_field=gt_field,
        runs=runs,
        iou=iou,
        size_thresholds=tuple(size_thresholds),
        num_samples=len(samples),
        key=comparison_key or default_comparison_key(pred_fields, eval_key_prefix),
    )
    _store_comparison(samples, comparison, use_masks, mask_tolerance, max_preds)
    return comparison


def recovered_view(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    baseline_field: str,
    sliced_field: str,
    *,
    eval_key_prefix: str = DEFAULT_PREFIX,
) -> fo.DatasetView:
    """Ground-truth objects the sliced run found (TP) that the baseline missed (FN).

    Reads the per-object ``<eval_key>`` attributes ``compare_runs`` (or any
    ``evaluate_detections`` of these fields) wrote. The view keeps the samples
    with such objects, only those objects in ``gt_field`` and only the matching
    predictions in ``sliced_field``; ``baseline_field`` is left whole.

    Example::

        >>> view = recovered_view(dataset, "ground_truth", "baseline", "sliced")  # doctest: +SKIP
        >>> session = fo.launch_app(view)  # doctest: +SKIP
    """
    return _difference_view(
        samples,
        gt_field,
        found=sliced_field,
        missed=baseline_field,
        prefix=eval_key_prefix,
    )


def lost_view(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    baseline_field: str,
    sliced_field: str,
    *,
    eval_key_prefix: str = DEFAULT_PREFIX,
) -> fo.DatasetView:
    """Ground-truth objects the baseline found (TP) that the sliced run missed (FN).

    The mirror of ``recovered_view``: ``gt_field`` keeps only those objects and
    ``baseline_field`` only their matches.

    Example::

        >>> view = lost_view(dataset, "ground_truth", "baseline", "sliced")  # doctest: +SKIP
        >>> len(view)  # doctest: +SKIP
    """
    return _difference_view(
        samples,
        gt_field,
        found=baseline_field,
        missed=sliced_field,
        prefix=eval_key_prefix,
    )


def eval_key_for(pred_field: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The evaluation key ``compare_runs`` uses for a prediction field.

    Example::

        >>> eval_key_for("sliced_640")
        'si_sliced_640'
    """
    return _identifier(prefix + pred_field)


def default_comparison_key(
    pred_fields: Sequence[str], prefix: str = DEFAULT_PREFIX
) -> str:
    """The run key a comparison of ``pred_fields`` is stored under by default.

    Example::

        >>> default_comparison_key(["baseline", "sliced"])
        'si_cmp_baseline_sliced'
    """
    key = _identifier(prefix + "cmp_" + "_".join(pred_fields))
    if len(key) <= _MAX_KEY_LENGTH:
        return key
    digest = hashlib.sha1("\0".join(pred_fields).encode()).hexdigest()[:8]
    return f"{key[: _MAX_KEY_LENGTH - 9]}_{digest}"


def list_comparisons(samples: fo.core.collections.SampleCollection) -> list[str]:
    """Keys of the comparisons stored on the dataset of ``samples``, newest first."""
    dataset = samples._root_dataset
    keys = dataset.list_runs(method=COMPARISON_METHOD)
    return sorted(keys, key=lambda k: dataset.get_run_info(k).timestamp, reverse=True)


def load_comparison(
    samples: fo.core.collections.SampleCollection, key: str | None = None
) -> Comparison | None:
    """A stored comparison (the newest if ``key`` is None); ``None`` if there is none.

    Example::

        >>> comparison = load_comparison(dataset)  # doctest: +SKIP
        >>> comparison.is_current(dataset)  # doctest: +SKIP
        True
    """
    keys = list_comparisons(samples)
    if key is None:
        if not keys:
            return None
        key = keys[0]
    elif key not in keys:
        return None
    results = samples._root_dataset.load_run_results(key, cache=False, load_view=False)
    comparison = Comparison.from_dict(results.comparison)
    comparison.key = key
    return comparison


def find_eval_key(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    pred_field: str,
    prefix: str = DEFAULT_PREFIX,
) -> str:
    """The key of a stored detection evaluation of ``pred_field`` against ``gt_field``.

    Prefers ``eval_key_for(pred_field, prefix)``; otherwise the newest matching
    evaluation. Raises ``ValueError`` when there is none.
    """
    dataset = samples._root_dataset
    candidates = []
    for key in dataset.list_evaluations(type="detection"):
        config = dataset.get_evaluation_info(key).config
        if config.gt_field == gt_field and config.pred_field == pred_field:
            candidates.append(key)
    preferred = eval_key_for(pred_field, prefix)
    if preferred in candidates:
        return preferred
    if not candidates:
        raise ValueError(
            f"no evaluation of {pred_field!r} against {gt_field!r}; "
            "run compare_runs (or evaluate_detections) first"
        )
    return max(candidates, key=lambda k: dataset.get_evaluation_info(k).timestamp)


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
        by_size[size] = Metrics.from_results(
            view.evaluate_detections(pred_field, eval_key=None, **options)
        )
    return RunMetrics(
        field=pred_field,
        eval_key=eval_key,
        iou_type="masks" if use_masks else "boxes",
        overall=Metrics.from_results(results),
        by_size=by_size,
        run_info=_run_info(samples, pred_field),
        eval_timestamp=_eval_timestamps(samples).get(eval_key),
    )


def size_ranges(
    size_thresholds: tuple[float, float] = COCO_SIZE_THRESHOLDS,
) -> dict[str, tuple[float, float]]:
    """``{size: (low, high)}`` pixel-area ranges, ``low <= area < high``.

    Example::

        >>> size_ranges()["medium"]
        (1024, 9216)
    """
    small, medium = size_thresholds
    return {
        "small": (0, small),
        "medium": (small, medium),
        "large": (medium, math.inf),
    }


def size_view(
    samples: fo.core.collections.SampleCollection,
    fields: Sequence[str],
    low: float,
    high: float,
) -> fo.DatasetView:
    """``samples`` with only the objects of ``fields`` whose box area is in ``[low, high)``.

    Areas are box areas in pixels (``metadata`` must be computed); samples
    without such objects stay, with empty fields.

    Example::

        >>> small = size_view(dataset, ["ground_truth"], 0, 32**2)  # doctest: +SKIP
        >>> small.count("ground_truth.detections")  # doctest: +SKIP
    """
    area = (
        F("bounding_box")[2]
        * F("$metadata.width")
        * F("bounding_box")[3]
        * F("$metadata.height")
    )
    in_range = area >= low if math.isinf(high) else (area >= low) & (area < high)
    view = samples.view()
    for name in fields:
        view = view.filter_labels(name, in_range, only_matches=False)
    return view


def _without_eval_attributes(
    samples: fo.core.collections.SampleCollection, fields: Sequence[str]
) -> fo.core.collections.SampleCollection:
    """``samples`` without the per-object attributes stored evaluations wrote.

    Only speed: every evaluation adds three attributes to each object, and
    FiftyOne decodes them all on each pass of a later evaluation.
    """
    schema = samples.get_field_schema(flat=True)
    suffixes = {
        f"{key}{suffix}"
        for key in samples._root_dataset.list_evaluations()
        for suffix in ("", "_id", "_iou")
    }
    paths = [
        path
        for name in fields
        for path in schema
        if path.startswith(f"{name}.detections.")
        and path.rsplit(".", 1)[-1] in suffixes
    ]
    return samples.exclude_fields(paths) if paths else samples


def _difference_view(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    *,
    found: str,
    missed: str,
    prefix: str,
) -> fo.DatasetView:
    found_key = find_eval_key(samples, gt_field, found, prefix)
    missed_key = find_eval_key(samples, gt_field, missed, prefix)
    view = samples.filter_labels(
        gt_field, (F(found_key) == "tp") & (F(missed_key) == "fn")
    )
    gt_ids = view.values(f"{gt_field}.detections.id", unwind=True)
    return view.filter_labels(
        found, F(f"{found_key}_id").is_in(gt_ids), only_matches=False
    )


def _count_recovered_and_lost(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    runs: list[RunMetrics],
) -> None:
    """Counts, per run after the first, GT objects it found / lost vs the first."""
    paths = [f"{gt_field}.detections.{run.eval_key}" for run in runs]
    columns = [
        [s for sample in values for s in (sample or [])]
        for values in samples.values(paths)
    ]
    base = columns[0]
    for run, column in zip(runs[1:], columns[1:], strict=True):
        pairs = list(zip(base, column, strict=True))
        run.recovered = sum(b == "fn" and r == "tp" for b, r in pairs)
        run.lost = sum(b == "tp" and r == "fn" for b, r in pairs)


def _store_comparison(
    samples: fo.core.collections.SampleCollection,
    comparison: Comparison,
    use_masks: bool | None,
    mask_tolerance: float | None,
    max_preds: int,
) -> None:
    config = samples.init_run(
        method=COMPARISON_METHOD,
        gt_field=comparison.gt_field,
        pred_fields=comparison.fields,
        eval_keys=comparison.eval_keys,
        iou=comparison.iou,
        size_thresholds=list(comparison.size_thresholds),
        use_masks=use_masks,
        mask_tolerance=mask_tolerance,
        max_preds=max_preds,
    )
    samples.register_run(comparison.key, config, overwrite=True, cleanup=False)
    results = samples.init_run_results(comparison.key, comparison=comparison.to_dict())
    samples.save_run_results(comparison.key, results, overwrite=True)


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
    try:
        from .run_records import get_run_info
    except ImportError:  # inference records not available in this install
        return None
    info = get_run_info(samples, field_name)
    return json.loads(json.dumps(info, default=str)) if info else None


def _eval_timestamps(samples: fo.core.collections.SampleCollection) -> dict[str, str]:
    dataset = samples._root_dataset
    return {
        key: dataset.get_evaluation_info(key).timestamp.isoformat()
        for key in dataset.list_evaluations()
    }


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


def _metrics_delta(run: Metrics, base: Metrics) -> dict[str, float | int | None]:
    return {
        name: _diff(getattr(run, name), getattr(base, name))
        for name in ("mAP", "AP50", "precision", "recall", "tp", "fp", "fn")
    }


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def _identifier(text: str) -> str:
    key = re.sub(r"\W", "_", text)
    return key if key.isidentifier() else f"_{key}"
