"""Review views: the objects one run found and another missed, from their stored evaluations."""

from __future__ import annotations

import fiftyone as fo
from fiftyone import ViewField as F

from .fields import label_list_path
from .frame_fields import label_path
from .store import DEFAULT_PREFIX, eval_key_for


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


def check_evaluation_current(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    pred_field: str,
    eval_key: str,
) -> None:
    """Raises if ``pred_field`` changed since it was evaluated under ``eval_key``.

    An overwrite run or a resume leaves predictions without the evaluation's
    per-object results, and deleting matched predictions leaves ground truth
    marked as found by nothing: in either case the objects a review view
    would show come from predictions that are gone.

    Raises:
        ValueError: naming the field and what changed.
    """
    pred_path = label_list_path(samples, pred_field)
    gt_path = label_list_path(samples, gt_field)
    preds, pred_results, gt_results = samples.aggregate(
        [
            fo.Count(pred_path),
            fo.CountValues(f"{pred_path}.{eval_key}"),
            fo.CountValues(f"{gt_path}.{eval_key}"),
        ]
    )
    evaluated = sum(n for value, n in pred_results.items() if value is not None)
    pred_tp, gt_tp = pred_results.get("tp", 0), gt_results.get("tp", 0)
    # A crowd object may match several predictions: tp predictions >= tp objects.
    if evaluated != preds or pred_tp < gt_tp:
        raise ValueError(
            f"field {pred_field!r} changed since it was evaluated under "
            f"{eval_key!r} ({preds - evaluated} of {preds} predictions have no "
            f"result; {gt_tp} objects found by {pred_tp} predictions still "
            "there): run compare_runs again"
        )


def _difference_view(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    *,
    found: str,
    missed: str,
    prefix: str,
) -> fo.DatasetView:
    gt_field = label_path(samples, gt_field)
    found, missed = label_path(samples, found), label_path(samples, missed)
    found_key = find_eval_key(samples, gt_field, found, prefix)
    missed_key = find_eval_key(samples, gt_field, missed, prefix)
    for name, key in ((found, found_key), (missed, missed_key)):
        check_evaluation_current(samples, gt_field, name, key)
    view = samples.filter_labels(
        gt_field, (F(found_key) == "tp") & (F(missed_key) == "fn")
    )
    gt_ids = view.values(f"{label_list_path(samples, gt_field)}.id", unwind=True)
    return view.filter_labels(
        found, F(f"{found_key}_id").is_in(gt_ids), only_matches=False
    )
