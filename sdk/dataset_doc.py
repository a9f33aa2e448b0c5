"""The dataset document's ``info`` entry that holds run records, written atomically.

Every write is one MongoDB update on its own path in the dataset document,
never a read-modify-write of the whole ``info`` dict, so parallel processes
cannot overwrite one another (see ``run_records`` and ``field_claims``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import fiftyone as fo
import fiftyone.core.odm as fodm
from pymongo.results import UpdateResult

#: Key of ``dataset.info`` that holds the records, by label field.
INFO_KEY = "sliced_inference_runs"


def utc_now() -> str:
    """The current time as an ISO 8601 string in UTC (how records store times)."""
    return datetime.now(timezone.utc).isoformat()


def record_path(label_field: str) -> str:
    """The dotted path of ``label_field``'s records in the dataset document."""
    if not label_field or "." in label_field or label_field.startswith("$"):
        raise ValueError(f"invalid label field name {label_field!r}")
    return f"info.{INFO_KEY}.{label_field}"


def update_dataset_doc(
    dataset: fo.Dataset,
    update: dict[str, Any],
    extra_filter: dict | None = None,
    *,
    reload: bool = True,
) -> UpdateResult:
    """One atomic update of the dataset's document (``extra_filter`` guards it).

    ``reload`` refreshes the in-memory ``dataset.info`` afterwards (not from
    another thread than the one using ``dataset``).
    """
    dataset = dataset._root_dataset
    datasets = fodm.get_db_conn().datasets
    # A null or missing ``info`` cannot take a nested $set: make it a dict first.
    datasets.update_one(
        {"_id": dataset._doc.id, "info": {"$not": {"$type": "object"}}},
        {"$set": {"info": {}}},
    )
    result = datasets.update_one(
        {"_id": dataset._doc.id, **(extra_filter or {})}, update
    )
    if reload:
        dataset._doc.reload("info")
    return result


def stored_runs(dataset: fo.Dataset) -> dict[str, Any]:
    """The raw stored entries of every field, as in the database now."""
    doc = fodm.get_db_conn().datasets.find_one(
        {"_id": dataset._root_dataset._doc.id}, {f"info.{INFO_KEY}": 1}
    )
    return ((doc or {}).get("info") or {}).get(INFO_KEY) or {}
