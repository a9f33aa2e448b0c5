"""Which label fields a run may write: the checks made before any work starts."""

from __future__ import annotations

from typing import Any

import fiftyone as fo


class LabelFieldError(ValueError):
    """The label field cannot be written (exists without overwrite, wrong type, bad name)."""


def check_label_field(
    samples: fo.core.collections.SampleCollection,
    label_field: str,
    overwrite: bool = False,
    skip_existing: bool = False,
) -> None:
    """Raises ``LabelFieldError`` unless ``label_field`` may be written.

    A new field is fine; an existing ``Detections`` field needs ``overwrite``
    or ``skip_existing``; a field of any other type is never written. On a
    video collection the field checked is the frame field ``frames.<label_field>``.

    Example::

        >>> check_label_field(dataset, "sliced")  # doctest: +SKIP
    """
    message = label_field_problem(samples, label_field, overwrite, skip_existing)
    if message:
        raise LabelFieldError(message)


def label_field_problem(
    samples: fo.core.collections.SampleCollection,
    label_field: str,
    overwrite: bool = False,
    skip_existing: bool = False,
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
    # A video run writes the frame field ``frames.<label_field>``.
    path = f"frames.{label_field}" if samples.media_type == "video" else label_field
    kind = dataset.get_field(path)
    if kind is None:
        return None
    if getattr(kind, "document_type", None) is not fo.Detections:
        return (
            f"Field {label_field!r} already exists and holds "
            f"{_field_type_name(kind)}, not Detections: choose another name"
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
