"""The label fields a comparison evaluates: ``Detections``, or ``Polylines`` of rotated boxes.

Oriented-box (OBB) runs write closed, filled 4-point ``fo.Polylines``;
FiftyOne's ``evaluate_detections`` matches those by polygon IoU when the
ground-truth polygons are ``filled``. Everything else in a comparison only
needs to know where a field keeps its list of objects (``detections`` or
``polylines``).
"""

from __future__ import annotations

import fiftyone as fo

#: Label list types a comparison can evaluate.
EVALUATED_TYPES = (fo.Detections, fo.Polylines)


def label_type_of(
    samples: fo.core.collections.SampleCollection, field_name: str
) -> type | None:
    """The label list type of ``field_name`` (``None`` if missing or not a label list).

    Example::

        >>> label_type_of(dataset, "ground_truth")  # doctest: +SKIP
        <class 'fiftyone.core.labels.Detections'>
    """
    kind = samples.get_field(field_name)
    document_type = getattr(kind, "document_type", None)
    return document_type if document_type in EVALUATED_TYPES else None


def label_list_path(
    samples: fo.core.collections.SampleCollection, field_name: str
) -> str:
    """Where ``field_name`` keeps its objects, e.g. ``"sliced.detections"`` or ``"obb.polylines"``.

    Example::

        >>> label_list_path(dataset, "sliced")  # doctest: +SKIP
        'sliced.detections'
    """
    if label_type_of(samples, field_name) is fo.Polylines:
        return f"{field_name}.polylines"
    return f"{field_name}.detections"


def evaluated_fields(samples: fo.core.collections.SampleCollection) -> list[str]:
    """Names of the ``Detections`` and ``Polylines`` fields of ``samples``, sorted.

    Example::

        >>> evaluated_fields(dataset)  # doctest: +SKIP
        ['baseline', 'ground_truth', 'sliced']
    """
    schema = samples.get_field_schema(embedded_doc_type=list(EVALUATED_TYPES))
    return sorted(schema)


def unfilled_polygons(
    samples: fo.core.collections.SampleCollection, field_name: str
) -> int:
    """How many polylines of ``field_name`` are not ``filled`` (FiftyOne scores those
    as lines, not by polygon IoU)."""
    if label_type_of(samples, field_name) is not fo.Polylines:
        return 0
    filled = samples.values(f"{field_name}.polylines.filled", unwind=True)
    return sum(not value for value in filled)
