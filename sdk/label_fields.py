"""Which label fields a run may write: the checks made before any work starts."""

from __future__ import annotations

from typing import Any

import fiftyone as fo

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
    ``overwrite`` or ``skip_existing``; a field of any other type is never
    written. ``label_type`` is ``fo.Detections``, ``fo.Polylines`` (for
    rotated-box models) or ``None`` before the model is known (either).

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
    if (
        label_field != label_field.strip()
        or "." in label_field
        or label_field.startswith(("_", "$"))
    ):
        return (
            f"{label_field!r} is not a valid field name: no dots, no leading "
            "underscore or dollar sign, no surrounding spaces"
        )
    dataset = samples._root_dataset
    if not dataset.has_field(label_field):
        return None
    kind = dataset.get_field(label_field)
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
    return None


def _field_type_name(kind: Any) -> str:
    document_type = getattr(kind, "document_type", None)
    return document_type.__name__ if document_type else type(kind).__name__
