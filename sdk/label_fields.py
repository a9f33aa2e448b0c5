"""Which label fields a run may write: the checks made before any work starts."""

from __future__ import annotations

from typing import Any

import fiftyone as fo
import fiftyone.core.odm.utils as fodu

#: The label lists a run can write: ``Detections``, or ``Polylines`` for
#: rotated-box (OBB) models.
WRITABLE_TYPES = (fo.Detections, fo.Polylines)


class LabelFieldError(ValueError):
    """The label field cannot be written (exists without overwrite, wrong type, bad name)."""


def check_label_field(
    samples: fo.core.collections.SampleCollection,
    label_field: str,
    overwrite: bool = False,
    skip_existing: bool = False,
    label_type: type | None = None,
) -> None:
    """Raises ``LabelFieldError`` unless ``label_field`` may be written.

    A new field is fine; an existing field of ``label_type`` needs
    ``overwrite`` or ``skip_existing`` (not both); a field of any other type
    is never written, nor is a field that stored evaluations use as ground
    truth overwritten. ``label_type`` is ``fo.Detections``, ``fo.Polylines``
    (for rotated-box models) or ``None`` before the model is known (either).
    On a video collection the field checked is the frame field
    ``frames.<label_field>``.

    Example::

        >>> check_label_field(dataset, "sliced")  # doctest: +SKIP
        >>> check_label_field(dataset, "obb", label_type=fo.Polylines)  # doctest: +SKIP
    """
    message = label_field_problem(
        samples, label_field, overwrite, skip_existing, label_type
    )
    if message:
        raise LabelFieldError(message)


def label_field_problem(
    samples: fo.core.collections.SampleCollection,
    label_field: str,
    overwrite: bool = False,
    skip_existing: bool = False,
    label_type: type | None = None,
) -> str | None:
    """Why ``label_field`` cannot be written, or ``None`` if it can (see ``check_label_field``).

    Example::

        >>> label_field_problem(dataset, "a.b")  # doctest: +SKIP
        "'a.b' is not a valid field name: ..."
    """
    if not isinstance(label_field, str) or not label_field.strip():
        return "Give the name of the field to write the detections to"
    name_problem = field_name_problem(label_field)
    if name_problem:
        return name_problem
    if overwrite and skip_existing:
        return (
            "Choose either overwrite (replace the field's labels) or skip_existing "
            "(keep them and label only empty samples), not both"
        )
    dataset = samples._root_dataset
    # A video run writes the frame field ``frames.<label_field>``.
    path = f"frames.{label_field}" if samples.media_type == "video" else label_field
    kind = dataset.get_field(path)
    if kind is None:
        return None
    allowed = WRITABLE_TYPES if label_type is None else (label_type,)
    if getattr(kind, "document_type", None) not in allowed:
        wanted = " or ".join(t.__name__ for t in allowed)
        return (
            f"Field {label_field!r} already exists and holds "
            f"{_field_type_name(kind)}, not {wanted}: choose another name"
        )
    if not overwrite and not skip_existing:
        return (
            f"Field {label_field!r} already exists: choose another name, replace "
            "it (overwrite=True; 'Overwrite' in the App), or label only the "
            "samples where it is empty (skip_existing=True)"
        )
    evaluations = evaluations_with_ground_truth(dataset, path)
    if overwrite and evaluations:
        return (
            f"Field {label_field!r} is the ground truth of stored evaluation(s) "
            f"{', '.join(evaluations)}: overwriting it would replace ground truth "
            "with predictions. Write to another field, or delete those "
            "evaluations first (dataset.delete_evaluation(key))"
        )
    return None


def field_name_problem(label_field: str) -> str | None:
    """Why FiftyOne (or this plugin) would refuse ``label_field`` as a new field name.

    FiftyOne's own rules (``fiftyone.core.odm.utils.validate_field_name``: no
    ``$``, no leading ``_``, ...) are checked here, before any work, rather than
    by the first write after the whole inference; the plugin adds top-level
    fields only (no dots) and no surrounding spaces or null characters.

    Example::

        >>> field_name_problem("score$v2")
        "'score$v2' is not a valid field name: Field names cannot contain '$'"
        >>> field_name_problem("sliced_640") is None
        True
    """
    if label_field != label_field.strip() or "." in label_field or "\0" in label_field:
        return (
            f"{label_field!r} is not a valid field name: no dots, null "
            "characters or surrounding spaces"
        )
    try:
        fodu.validate_field_name(label_field, media_type="image")
    except ValueError as error:
        reason = str(error).rsplit(". ", 1)[-1]
        return f"{label_field!r} is not a valid field name: {reason}"
    return None


def evaluations_with_ground_truth(dataset: fo.Dataset, label_field: str) -> list[str]:
    """Eval keys of the stored evaluations that use ``label_field`` as ground truth.

    Example::

        >>> evaluations_with_ground_truth(dataset, "ground_truth")  # doctest: +SKIP
        ['si_sliced', 'si_baseline']
    """
    keys = []
    for key in dataset.list_evaluations():
        config = dataset.get_evaluation_info(key).config
        if getattr(config, "gt_field", None) == label_field:
            keys.append(key)
    return keys


def _field_type_name(kind: Any) -> str:
    document_type = getattr(kind, "document_type", None)
    return document_type.__name__ if document_type else type(kind).__name__
