"""Which collections a run accepts, and how it sees the samples it writes.

A run reads the samples of the user's view but decides what exists, and
writes, on the dataset itself: a view's projection (``exclude_fields``,
``select_fields``) must not hide labels from ``skip_existing``, and a view of
a group slice that is not the active one must still get its tags.

Example::

    >>> collection_problem(dataset.to_patches("ground_truth"))  # doctest: +SKIP
    'This is a patches view ...'
"""

from __future__ import annotations

from collections.abc import Sequence

import fiftyone as fo
import fiftyone.core.media as fomm
import fiftyone.core.odm as fodm

#: The media types a run labels: images, and the frames of videos (``VideoRun``).
LABELLED_MEDIA = (fomm.IMAGE, fomm.VIDEO)


def collection_problem(samples: fo.core.collections.SampleCollection) -> str | None:
    """Why a run cannot label ``samples``, or ``None`` if it can.

    Refused: patches views (labels written there never reach the images),
    frames and clips views (their labels would not reach the videos' own
    frames), dynamic groups, and any media type other than ``image`` and
    ``video``.

    Example::

        >>> collection_problem(dataset) is None  # doctest: +SKIP
        True
    """
    if samples._is_frames:
        return (
            "This is a frames view of a video dataset (to_frames): run on the "
            "videos themselves, which labels their frames (frames.<field>), or "
            "export the frames as images to a dataset of their own"
        )
    if samples._is_patches:
        return (
            "This is a patches view (to_patches / to_evaluation_patches): its "
            "samples are objects cut from images, and labels written there are "
            "not stored on the images. Run on the images instead, e.g. "
            'dataset.select(patches.distinct("sample_id"))'
        )
    if samples._is_clips:
        return (
            "This is a clips view of a video dataset: run on the videos, with "
            "first_frame and last_frame for the range"
        )
    if samples._is_dynamic_groups:
        return (
            "This is a dynamic groups view (group_by): run on the images, e.g. "
            "the dataset or a flat view of it"
        )
    if samples.media_type not in LABELLED_MEDIA:
        return (
            f"Sliced inference runs on images and videos; this collection's media "
            f"type is {samples.media_type!r}"
            + (
                ": select an image slice with select_group_slices(...)"
                if samples.media_type == fomm.GROUP
                else ""
            )
        )
    return None


def dataset_samples(dataset: fo.Dataset) -> fo.core.collections.SampleCollection:
    """Every image sample of ``dataset``, in every group slice, with every field.

    ``dataset.select(ids)`` on a grouped dataset sees only the active slice;
    this view sees them all.

    Example::

        >>> dataset_samples(grouped).select(right_slice_ids).tag_samples("x")  # doctest: +SKIP
    """
    if dataset.media_type == fomm.GROUP:
        return dataset.select_group_slices(media_type=fomm.IMAGE)
    return dataset


def labelled_ids(dataset: fo.Dataset, label_field: str, ids: Sequence[str]) -> set[str]:
    """The samples among ``ids`` whose ``label_field`` holds a value, on the dataset.

    Example::

        >>> labelled_ids(dataset, "sliced", view.values("id"))  # doctest: +SKIP
        {'65f0...'}
    """
    if not ids or not dataset.has_field(label_field):
        return set()
    selected = dataset_samples(dataset).select(ids, ordered=False)
    return set(selected.exists(label_field).values("id"))


def refresh_schema(dataset: fo.Dataset, field: str) -> None:
    """Reloads ``dataset`` if another process added or deleted ``field`` meanwhile.

    A dataset object keeps the schema it loaded: a field another process added
    since is unknown to ``has_field``. Reloading only then leaves the user's
    in-memory samples alone in the usual case.

    Example::

        >>> refresh_schema(dataset, "sliced")  # doctest: +SKIP
    """
    doc = fodm.get_db_conn().datasets.find_one(
        {"_id": dataset._doc.id}, {"sample_fields.name": 1}
    )
    stored = {f.get("name") for f in (doc or {}).get("sample_fields") or []}
    if (field in stored) != dataset.has_field(field):
        dataset.reload()
