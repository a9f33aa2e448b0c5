"""Fingerprints of compared label fields, to tell whether a stored comparison is still current.

A comparison is stale when a field it compared changed: an ``overwrite=True``
run (new label ids), a resume (more labels), deleted or edited labels (ids,
classes, boxes), or another run record. The fingerprint of a field hashes its
samples' ids, its label ids, classes and boxes (and polylines' points) in
order, and the identity of its run record (run id, status, finish time, samples processed). It is taken
from the objects ``compare_runs`` reads anyway, and read again (one
``values()`` call per field) when the panel asks ``is_current``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import fiftyone as fo
import numpy as np

from ..sdk.run_records import get_run_info
from .objects import Images, Objects

#: Run-record entries that identify a run and how far it got.
_RECORD_KEYS = ("run_id", "status", "finished_at", "samples_processed")


def fingerprint(
    images: Images, objects: Objects, run_record: dict[str, Any] | None
) -> str:
    """The fingerprint of one field read as ``objects`` over ``images``.

    Example::

        >>> images = Images.load(dataset)  # doctest: +SKIP
        >>> fingerprint(images, Objects.load(dataset, "sliced", images), None)  # doctest: +SKIP
        '3f1c...'
    """
    digest = hashlib.sha1()
    digest.update("\0".join(images.ids).encode())
    digest.update(np.diff(objects.bounds).astype(np.int64).tobytes())
    digest.update(b"".join(i.binary for i in objects.ids))
    digest.update("\0".join(str(label) for label in objects.labels).encode())
    digest.update(np.ascontiguousarray(objects.boxes, dtype=np.float64).tobytes())
    if objects.is_polylines:
        # A rotated box can turn inside the same envelope.
        digest.update(json.dumps(objects.points).encode())
    record = {k: (run_record or {}).get(k) for k in _RECORD_KEYS}
    digest.update(json.dumps(record, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def current_fingerprints(
    samples: fo.core.collections.SampleCollection, fields: Sequence[str]
) -> dict[str, str]:
    """The fingerprint of each of ``fields`` on ``samples`` now (missing fields left out)."""
    images = Images.load(samples)
    prints = {}
    for name in fields:
        if samples.get_field(name) is None:
            continue
        objects = Objects.load(samples, name, images)
        prints[name] = fingerprint(images, objects, get_run_info(samples, name))
    return prints
