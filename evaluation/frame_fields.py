"""Label fields of video collections: their frame paths, schemas and values, for the comparison.

On a video dataset, inference runs write frame fields (``frames.<field>``) and
FiftyOne evaluates them frame by frame (``evaluate_detections`` on
``frames.<field>`` matches objects within each frame). The comparison takes a
frame field by its path or by its bare name; these helpers turn one into the
other and read frame-level values as flat lists.

Example::

    >>> label_path(video_dataset, "sliced")  # doctest: +SKIP
    'frames.sliced'
    >>> run_field("frames.sliced")
    'sliced'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import fiftyone as fo
from fiftyone import ViewField as F

FRAMES_PREFIX = "frames."


def label_path(samples: fo.core.collections.SampleCollection, name: str) -> str:
    """The path FiftyOne takes for a label field: ``frames.<name>`` for a frame field.

    On a video collection a bare name is a frame field unless the samples
    themselves have a field of that name.
    """
    if samples.media_type != "video" or name.startswith(FRAMES_PREFIX):
        return name
    if samples.get_field(name) is not None:
        return name
    return FRAMES_PREFIX + name


def is_frame_path(path: str) -> bool:
    """Whether ``path`` names a frame field."""
    return path.startswith(FRAMES_PREFIX)


def run_field(path: str) -> str:
    """The field name an inference run was given (its record's key) for a label path."""
    return path[len(FRAMES_PREFIX) :] if is_frame_path(path) else path


def frame_label_fields(samples: fo.core.collections.SampleCollection) -> list[str]:
    """The ``Detections`` frame fields of a video collection, as ``frames.<field>``
    (none for images).

    Example::

        >>> frame_label_fields(video_dataset)  # doctest: +SKIP
        ['frames.ground_truth', 'frames.sliced']
    """
    if samples.media_type != "video":
        return []
    schema = samples.get_frame_field_schema(embedded_doc_type=fo.Detections) or {}
    return sorted(FRAMES_PREFIX + name for name in schema)


def schema_paths(samples: fo.core.collections.SampleCollection, path: str) -> list[str]:
    """Every flattened schema path under the label field ``path`` (frame fields too)."""
    if is_frame_path(path):
        schema = samples.get_frame_field_schema(flat=True) or {}
        paths = [FRAMES_PREFIX + p for p in schema]
    else:
        paths = list(samples.get_field_schema(flat=True))
    return [p for p in paths if p.startswith(f"{path}.")]


def object_values(
    samples: fo.core.collections.SampleCollection, paths: Sequence[str]
) -> list[list[Any]]:
    """For each path (``<field>.detections.<attribute>``), every object's value, flat.

    Objects come in the same order for every path of one field (sample, then
    frame, then object), so two columns of the same field line up.
    """
    columns = samples.values(list(paths))
    return [
        _flatten(column, depth=3 if is_frame_path(path) else 2)
        for path, column in zip(paths, columns, strict=True)
    ]


def labelled_frames(
    samples: fo.core.collections.SampleCollection, paths: Sequence[str]
) -> fo.core.collections.SampleCollection:
    """``samples`` with only the frames that have a value in every frame field of ``paths``.

    Image collections, and paths that are not frame fields, are returned as is.
    """
    names = [run_field(p) for p in paths if is_frame_path(p)]
    if samples.media_type != "video" or not names:
        return samples
    labelled = F(names[0]).exists()
    for name in names[1:]:
        labelled = labelled & F(name).exists()
    return samples.match_frames(labelled)


def _flatten(values: Any, depth: int) -> list[Any]:
    if depth == 1:
        return list(values or [])
    return [v for part in values or [] for v in _flatten(part, depth - 1)]
