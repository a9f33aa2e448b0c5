"""Where comparisons and their evaluations are kept: keys, storing, loading, freshness.

Each prediction field's evaluation is stored under ``<prefix><field>``
(``si_sliced`` for the field ``sliced``; a field name that is not a Python
identifier, such as ``sliced-640``, gets a short hash so that it cannot share
``sliced_640``'s key); a comparison is stored as a FiftyOne run (method
``COMPARISON_METHOD``) whose results hold ``Comparison.to_dict()``. A stored
comparison is current while its evaluations are the ones it made and its
fields' fingerprints (``fingerprint``) are unchanged.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import fiftyone as fo

from .fingerprint import current_fingerprints
from .frame_fields import run_field
from .results import Comparison

#: Prefix of the evaluation keys and comparison keys this package writes.
DEFAULT_PREFIX = "si_"
#: ``method`` of the FiftyOne runs that store comparisons.
COMPARISON_METHOD = "sliced_inference.comparison"

_MAX_KEY_LENGTH = 60


def eval_key_for(pred_field: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The evaluation key ``compare_runs`` uses for a prediction field.

    Characters FiftyOne does not allow in keys become ``_``, and then a short
    hash of the field name keeps the key apart from another field's.

    Example::

        >>> eval_key_for("sliced_640")
        'si_sliced_640'
        >>> eval_key_for("sliced-640")
        'si_sliced_640_9b3ba0'
        >>> eval_key_for("frames.sliced")
        'si_sliced'
    """
    name = run_field(pred_field)  # a video's frames.<field>: the field's name
    return _identifier(prefix + name, source=name)


def check_eval_keys(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    keys: dict[str, str],
    overwrite: bool,
) -> None:
    """Refuses keys that collide: with each other, or with another field's evaluation.

    Args:
        samples: the compared samples.
        gt_field: the ground-truth field.
        keys: ``{prediction field: eval key}``.
        overwrite: whether an evaluation of the same field may be replaced.

    Raises:
        ValueError: two fields share a key, a key holds an evaluation of
            another prediction field, or (without ``overwrite``) any
            evaluation.
    """
    by_key: dict[str, str] = {}
    for name, key in keys.items():
        if key in by_key:
            raise ValueError(
                f"fields {by_key[key]!r} and {name!r} would share the eval key "
                f"{key!r}; rename one or compare them separately"
            )
        by_key[key] = name
    dataset = samples._root_dataset
    existing = set(dataset.list_evaluations())
    for name, key in keys.items():
        if key not in existing:
            continue
        config = dataset.get_evaluation_info(key).config
        other = getattr(config, "pred_field", None)
        if other != name:
            raise ValueError(
                f"eval key {key!r} holds an evaluation of {other!r}, not of "
                f"{name!r}: it is not replaced. Delete it "
                f"(dataset.delete_evaluation({key!r})) or pass another "
                "eval_key_prefix"
            )
        if not overwrite:
            raise ValueError(f"evaluation {key!r} exists and overwrite=False")


def default_comparison_key(
    pred_fields: Sequence[str], prefix: str = DEFAULT_PREFIX
) -> str:
    """The run key a comparison of ``pred_fields`` is stored under by default.

    Example::

        >>> default_comparison_key(["baseline", "sliced"])
        'si_cmp_baseline_sliced'
    """
    key = _identifier(prefix + "cmp_" + "_".join(pred_fields), "\0".join(pred_fields))
    if len(key) <= _MAX_KEY_LENGTH:
        return key
    return f"{key[: _MAX_KEY_LENGTH - 9]}_{_digest(chr(0).join(pred_fields), 8)}"


def comparison_key_for(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    pred_fields: Sequence[str],
    prefix: str = DEFAULT_PREFIX,
) -> str:
    """``default_comparison_key``, unless it holds a comparison of other fields.

    ``["a_b", "c"]`` and ``["a", "b_c"]`` have the same default key; the second
    to be stored gets a hash of its fields appended instead of replacing the
    first.
    """
    key = default_comparison_key(pred_fields, prefix)
    dataset = samples._root_dataset
    if key not in dataset.list_runs(method=COMPARISON_METHOD):
        return key
    config = dataset.get_run_info(key).config
    if config.gt_field == gt_field and list(config.pred_fields) == list(pred_fields):
        return key
    source = "\0".join([gt_field, *pred_fields])
    return f"{key[: _MAX_KEY_LENGTH - 9]}_{_digest(source, 8)}"


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
    """Whether ``comparison`` still describes the dataset.

    True while every evaluation it made is stored unchanged and every field
    it compared (ground truth included) has the labels and run record it had:
    an overwrite run, a resume, deleted or edited labels make it stale. A
    comparison stored without fingerprints (older versions) is stale.

    Example::

        >>> is_current(dataset, load_comparison(dataset))  # doctest: +SKIP
        True
    """
    stored = eval_timestamps(samples)
    evaluations_unchanged = all(
        run.eval_key in stored and stored[run.eval_key] == run.eval_timestamp
        for run in comparison.runs
    )
    if not evaluations_unchanged or not comparison.fingerprints:
        return False
    view = _comparison_view(samples, comparison)
    if view is None:
        return False
    fields = list(comparison.fingerprints)
    return current_fingerprints(view, fields) == comparison.fingerprints


def eval_timestamps(samples: fo.core.collections.SampleCollection) -> dict[str, str]:
    """When each stored evaluation of the dataset was made (ISO format), by key."""
    dataset = samples._root_dataset
    return {
        key: dataset.get_evaluation_info(key).timestamp.isoformat()
        for key in dataset.list_evaluations()
    }


def _comparison_view(
    samples: fo.core.collections.SampleCollection, comparison: Comparison
) -> fo.core.collections.SampleCollection | None:
    """The samples ``comparison`` was computed on (``None`` if they cannot be loaded)."""
    dataset = samples._root_dataset
    if not comparison.key or comparison.key not in dataset.list_runs():
        return samples
    try:
        return dataset.load_run_view(comparison.key)
    except Exception:  # the view refers to fields or tags that are gone
        return None


def _identifier(text: str, source: str) -> str:
    """``text`` as a key FiftyOne accepts; a hash of ``source`` if it had to change."""
    key = re.sub(r"\W", "_", text)
    if not key.isidentifier():
        key = f"_{key}"
    return key if key == text else f"{key}_{_digest(source, 6)}"


def _digest(text: str, length: int) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:length]
