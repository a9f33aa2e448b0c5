"""Where comparisons and their evaluations are kept: keys, storing, loading, freshness.

Each prediction field's evaluation is stored under ``<prefix><field>``
(``si_sliced`` for the field ``sliced``); a comparison is stored as a FiftyOne
run (method ``COMPARISON_METHOD``) whose results hold ``Comparison.to_dict()``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import fiftyone as fo

from .results import Comparison

#: Prefix of the evaluation keys and comparison keys this package writes.
DEFAULT_PREFIX = "si_"
#: ``method`` of the FiftyOne runs that store comparisons.
COMPARISON_METHOD = "sliced_inference.comparison"

_MAX_KEY_LENGTH = 60


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
    return runs_newest_first(samples, COMPARISON_METHOD)


def runs_newest_first(
    samples: fo.core.collections.SampleCollection, method: str
) -> list[str]:
    """Keys of the FiftyOne runs of ``method`` on the dataset of ``samples``, newest first."""
    dataset = samples._root_dataset
    keys = dataset.list_runs(method=method)
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


def delete_comparisons(
    samples: fo.core.collections.SampleCollection,
    eval_key_prefix: str = DEFAULT_PREFIX,
) -> list[str]:
    """Deletes every stored comparison and every evaluation whose key has the prefix.

    What ``compare_runs`` stored (the ``si_*`` evaluations and the comparison
    runs); the prediction fields and other evaluations stay.

    Args:
        samples: the dataset, or any view of it.
        eval_key_prefix: prefix of the evaluation keys to delete.

    Returns:
        the deleted comparison and evaluation keys.

    Example::

        >>> delete_comparisons(dataset)  # doctest: +SKIP
        ['si_cmp_baseline_sliced', 'si_baseline', 'si_sliced']
    """
    dataset = samples._root_dataset
    deleted = list_comparisons(dataset)
    for key in deleted:
        dataset.delete_run(key)
    for key in dataset.list_evaluations():
        if key.startswith(eval_key_prefix):
            dataset.delete_evaluation(key)
            deleted.append(key)
    return deleted


def store_comparison(
    samples: fo.core.collections.SampleCollection,
    comparison: Comparison,
    use_masks: bool | None,
    mask_tolerance: float | None,
    max_preds: int,
) -> None:
    """Stores ``comparison`` (and the settings it was computed with) under its key."""
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


def is_current(
    samples: fo.core.collections.SampleCollection, comparison: Comparison
) -> bool:
    """Whether every evaluation ``comparison`` was computed from is still stored unchanged.

    Example::

        >>> is_current(dataset, load_comparison(dataset))  # doctest: +SKIP
        True
    """
    stored = eval_timestamps(samples)
    return all(
        run.eval_key in stored and stored[run.eval_key] == run.eval_timestamp
        for run in comparison.runs
    )


def eval_timestamps(samples: fo.core.collections.SampleCollection) -> dict[str, str]:
    """When each stored evaluation of the dataset was made (ISO format), by key."""
    dataset = samples._root_dataset
    return {
        key: dataset.get_evaluation_info(key).timestamp.isoformat()
        for key in dataset.list_evaluations()
    }


def _identifier(text: str) -> str:
    key = re.sub(r"\W", "_", text)
    return key if key.isidentifier() else f"_{key}"
