"""Whose labels a field holds, and whether a new run may add to them.

A field's labels come from the run that created or overwrote it and from the
runs that resumed it (``skip_existing``): its ``label_runs`` in the records.
A resume made with other settings (another model, other tiles, ...) would mix
two runs' labels in one field without anyone knowing, so it is refused unless
the caller asks for it; a partial ``overwrite`` (samples outside its target
keep older labels) is allowed, and the combined record says the field mixes.
"""

from __future__ import annotations

from typing import Any

import fiftyone as fo
from fiftyone import ViewField as F

from .label_fields import LabelFieldError
from .run_records import combined_shards, prediction_settings, stored_field_entry
from .sample_scope import dataset_samples


def labels_role(
    dataset: fo.Dataset,
    label_field: str,
    run: dict[str, Any],
    *,
    to_label: int,
    labelled_in_target: int,
    overwrite: bool,
    allow_mixed_settings: bool,
) -> str:
    """How a starting run changes the field's ``label_runs``: ``replace``, ``add`` or ``none``.

    Args:
        dataset: the dataset.
        label_field: the field.
        run: the starting run's record so far (``run_id``, kind, model,
            settings).
        to_label: samples the run will label.
        labelled_in_target: samples of the run's target that hold labels now.
        overwrite: the run replaces labels.
        allow_mixed_settings: add to labels made with other settings anyway.

    Raises:
        LabelFieldError: the run would add labels with other settings than
            the field's, and ``allow_mixed_settings`` is off.

    Example::

        >>> labels_role(dataset, "sliced", run, to_label=3, labelled_in_target=5,
        ...             overwrite=False, allow_mixed_settings=False)  # doctest: +SKIP
        'add'
    """
    if not (dataset.has_field(label_field) or dataset.has_frame_field(label_field)):
        return "replace"
    if to_label == 0 and not overwrite:
        return "none"  # it labels nothing: the field's labels are not its own
    previous = _other_label_runs(dataset, label_field, run["run_id"])
    if not previous:
        return "replace"
    if overwrite:
        everywhere = _labelled_samples(dataset, label_field).count()
        return "replace" if everywhere <= labelled_in_target else "add"
    if not allow_mixed_settings:
        mine = prediction_settings(run)
        for other in previous:
            if prediction_settings(other) != mine:
                raise LabelFieldError(_mixed_settings_message(label_field, other, mine))
    return "add"


def labelled_videos(
    samples: fo.core.collections.SampleCollection, label_field: str
) -> fo.core.collections.SampleCollection:
    """The videos of ``samples`` with a value in the frame field ``label_field``,
    with only those frames.

    Example::

        >>> labelled_videos(videos, "sliced").values("frames.frame_number")  # doctest: +SKIP
        [[1, 3, 5]]
    """
    if not samples._root_dataset.has_frame_field(label_field):
        return samples.limit(0)
    return samples.match_frames(F(label_field).exists())


def _labelled_samples(
    dataset: fo.Dataset, label_field: str
) -> fo.core.collections.SampleCollection:
    """Every sample of ``dataset`` whose field holds labels (a video: in a frame)."""
    if dataset.media_type == "video":
        return labelled_videos(dataset, label_field)
    return dataset_samples(dataset).exists(label_field)


def _other_label_runs(
    dataset: fo.Dataset, label_field: str, run_id: str
) -> list[dict[str, Any]]:
    """The records of the other runs whose labels the field holds now."""
    entry = stored_field_entry(dataset, label_field)
    if entry is None:
        return []
    return [
        combined_shards(entry["runs"][rid])
        for rid in entry["label_runs"]
        if rid in entry["runs"] and rid != run_id
    ]


def _mixed_settings_message(
    label_field: str, previous: dict[str, Any], mine: dict[str, Any]
) -> str:
    """Why a resume is refused: which settings differ from the field's labels."""
    theirs = prediction_settings(previous)
    changes = [
        f"{key}: {theirs.get(key)!r} -> {mine.get(key)!r}"
        for key in ("kind", "model")
        if theirs.get(key) != mine.get(key)
    ]
    old, new = theirs["settings"], mine["settings"]
    changes += [
        f"{key}: {old.get(key)!r} -> {new.get(key)!r}"
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]
    return (
        f"Field {label_field!r} holds labels of run {previous.get('run_id')} made "
        f"with other settings ({'; '.join(changes)}): adding to them would mix two "
        "runs' labels in one field. Use the same settings, write to another "
        "field, overwrite it, or pass allow_mixed_settings=True"
    )
