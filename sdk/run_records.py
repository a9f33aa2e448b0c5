"""Records of inference runs, stored on the dataset, read back with one call.

Where: ``dataset.info["sliced_inference_runs"][label_field]``, a plain
JSON-serialisable dict. We chose ``dataset.info`` over FiftyOne's runs API
because a record must be readable by anyone (the App's dataset info, a
notebook, ``dataset.info`` in a script, the comparison panel) without our
classes installed, it follows the dataset through ``clone()``, and it is keyed
by the label field the user thinks in.

How: every write is one atomic MongoDB ``$set`` on the record's own path in
the dataset document, never a read-modify-write of the whole ``info`` dict, so
parallel shard workers (each writing ``...[label_field]["shards"][i]``) cannot
overwrite one another. The in-memory ``dataset.info`` is refreshed after each
write so a later ``dataset.save()`` does not put an old copy back.

A record holds: ``kind`` (``"sliced"`` or ``"baseline"``), ``model`` (a path,
hub id or class name; never a token), ``settings`` (every option of the run as
it ran: the device picked, ``half`` false off CUDA, ``imgsz`` unset for a
model that sizes its own input), ``settings_ignored`` (the options asked for
that the model did not apply: ``{name: {"asked": value, "reason": text}}``;
the run logs a warning for each), ``plugin_version``, ``fiftyone_version``,
``status`` (``running``, ``completed``, ``failed``, ``interrupted``),
``started_at`` / ``finished_at`` (ISO 8601, UTC), ``samples_total``,
``samples_processed``, ``samples_skipped``, ``num_errors``, ``errors`` (the
first ``MAX_STORED_ERRORS``, as ``{"sample_id", "filepath", "error"}``),
``num_detections``, ``seconds`` and ``images_per_second`` (timed after the
model loaded), ``model_load_seconds``. A sharded run also has ``num_shards``
and ``shards`` (``{"0": {...per-shard stats...}, ...}``); ``get_run_info``
adds them up.

Example::

    import sliced_inference as si

    si.apply_sliced_model(dataset, "models/small-objects-det.pt", "sliced")
    info = si.get_run_info(dataset, "sliced")
    print(info["kind"], info["seconds"], info["images_per_second"])
    print(sorted(si.list_runs(dataset)))
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from typing import Any

import fiftyone as fo
import fiftyone.core.odm as fodm

#: Key of ``dataset.info`` that holds the records, by label field.
INFO_KEY = "sliced_inference_runs"
#: Most per-sample errors kept in a record (the count is always exact).
MAX_STORED_ERRORS = 100
#: Per-run statistics summed over shards.
_SUMMED = ("samples_total", "samples_processed", "samples_skipped", "num_errors")


def utc_now() -> str:
    """The current time as an ISO 8601 string in UTC (how records store times)."""
    return datetime.now(timezone.utc).isoformat()


def get_run_info(
    samples: fo.core.collections.SampleCollection, label_field: str
) -> dict[str, Any] | None:
    """The record of the run that wrote ``label_field``, or ``None`` if there is none.

    For a sharded run the shards' statistics are added up: ``samples_*`` and
    ``num_errors`` are sums, ``seconds`` is the wall time from the first start
    to the last finish, ``images_per_second`` is processed images per wall
    second, ``status`` is ``completed`` once every shard is.

    Args:
        samples: the dataset, or any view of it.
        label_field: the label field the run wrote.

    Example::

        >>> info = get_run_info(dataset, "sliced")  # doctest: +SKIP
        >>> info["kind"], info["settings"]["slice_wh"]  # doctest: +SKIP
        ('sliced', [640, 640])
    """
    record = _stored_runs(samples._root_dataset).get(label_field)
    if record is None:
        return None
    return _combined(copy.deepcopy(record))


def list_runs(dataset: fo.core.collections.SampleCollection) -> dict[str, dict]:
    """Every recorded run of the dataset, ``{label_field: record}`` (see ``get_run_info``).

    Example::

        >>> sorted(list_runs(dataset))  # doctest: +SKIP
        ['baseline', 'sliced']
    """
    runs = _stored_runs(dataset._root_dataset)
    return {field: _combined(copy.deepcopy(rec)) for field, rec in runs.items()}


def delete_run_record(dataset: fo.Dataset, label_field: str) -> None:
    """Removes the record of ``label_field`` (e.g. after deleting the field)."""
    _update(dataset, {"$unset": {_path(label_field): ""}})


def delete_runs(
    samples: fo.core.collections.SampleCollection, delete_fields: bool = False
) -> list[str]:
    """Removes every run record of the dataset, and the fields the runs wrote if asked.

    Args:
        samples: the dataset, or any view of it (records are per dataset).
        delete_fields: also delete the label fields the recorded runs wrote.

    Returns:
        the label fields whose records were removed.

    Example::

        >>> delete_runs(dataset, delete_fields=True)  # doctest: +SKIP
        ['baseline', 'sliced']
    """
    dataset = samples._root_dataset
    fields = sorted(_stored_runs(dataset))
    for label_field in fields:
        delete_run_record(dataset, label_field)
        if not delete_fields:
            continue
        if dataset.has_field(label_field):
            dataset.delete_sample_field(label_field)
        elif dataset.has_frame_field(label_field):  # a video run's frame field
            dataset.delete_frame_field(label_field)
    return fields


class RunRecorder:
    """Writes one run's record as the run goes: started, progress, finished.

    Args:
        dataset: the dataset the run writes to.
        label_field: the field it writes.
        shard: ``(index, count)`` for one shard of a sharded run, else ``None``.
        run_id: identifies the run all shards belong to; a shard that finds a
            record of another run id starts a fresh record.
    """

    def __init__(
        self,
        dataset: fo.Dataset,
        label_field: str,
        shard: tuple[int, int] | None = None,
        run_id: str | None = None,
    ) -> None:
        self.dataset = dataset
        self.label_field = label_field
        self.shard = shard
        self.run_id = run_id
        self.path = _path(label_field)
        if shard is not None:
            self.path = f"{self.path}.shards.{int(shard[0])}"

    def start(self, common: dict[str, Any], stats: dict[str, Any]) -> None:
        """Writes the record of a starting run.

        Args:
            common: what all shards share (kind, model, settings, versions).
            stats: this run's (or shard's) own status and counts.
        """
        common = {**_jsonable(common), "run_id": self.run_id}
        stats = _jsonable(stats)
        if self.shard is None:
            _update(self.dataset, {"$set": {self.path: {**common, **stats}}})
            return
        base = _path(self.label_field)
        fresh = {**common, "num_shards": int(self.shard[1]), "shards": {}}
        # Only the first shard of a new run id resets the record (atomic).
        _update(
            self.dataset,
            {"$set": {base: fresh}},
            extra_filter={
                f"info.{INFO_KEY}.{self.label_field}.run_id": {"$ne": self.run_id}
            },
        )
        _update(self.dataset, {"$set": {self.path: stats}})

    def update(self, stats: dict[str, Any]) -> None:
        """Sets some statistics of the run (or shard), e.g. progress or the end."""
        updates = {f"{self.path}.{k}": v for k, v in _jsonable(stats).items()}
        _update(self.dataset, {"$set": updates})


def _path(label_field: str) -> str:
    if not label_field or "." in label_field or label_field.startswith("$"):
        raise ValueError(f"invalid label field name {label_field!r}")
    return f"info.{INFO_KEY}.{label_field}"


def _update(
    dataset: fo.Dataset, update: dict[str, Any], extra_filter: dict | None = None
) -> None:
    dataset = dataset._root_dataset
    datasets = fodm.get_db_conn().datasets
    # A null or missing ``info`` cannot take a nested $set: make it a dict first.
    datasets.update_one(
        {"_id": dataset._doc.id, "info": {"$not": {"$type": "object"}}},
        {"$set": {"info": {}}},
    )
    datasets.update_one({"_id": dataset._doc.id, **(extra_filter or {})}, update)
    dataset._doc.reload("info")


def _stored_runs(dataset: fo.Dataset) -> dict[str, Any]:
    doc = fodm.get_db_conn().datasets.find_one(
        {"_id": dataset._doc.id}, {f"info.{INFO_KEY}": 1}
    )
    return ((doc or {}).get("info") or {}).get(INFO_KEY) or {}


def _combined(record: dict[str, Any]) -> dict[str, Any]:
    """A sharded record with its shards' statistics added up."""
    shards = record.get("shards")
    if shards is None:
        return record
    parts = list(shards.values())
    for key in _SUMMED:
        record[key] = sum(int(p.get(key) or 0) for p in parts)
    record["errors"] = [e for p in parts for e in p.get("errors", [])][
        :MAX_STORED_ERRORS
    ]
    record["num_detections"] = sum(int(p.get("num_detections") or 0) for p in parts)
    starts = [p["started_at"] for p in parts if p.get("started_at")]
    ends = [p.get("finished_at") for p in parts]
    record["started_at"] = min(starts) if starts else None
    done = len(parts) == record.get("num_shards") and all(ends)
    record["finished_at"] = max(ends) if done else None
    statuses = {p.get("status") for p in parts}
    if done and statuses == {"completed"}:
        record["status"] = "completed"
    elif statuses & {"failed", "interrupted"}:
        record["status"] = "failed"
    else:
        record["status"] = "running"
    seconds = None
    if record["started_at"] and done:
        seconds = (
            datetime.fromisoformat(record["finished_at"])
            - datetime.fromisoformat(record["started_at"])
        ).total_seconds()
    record["seconds"] = seconds
    record["images_per_second"] = (
        record["samples_processed"] / seconds if seconds else None
    )
    return record


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON types (tuples -> lists, numpy scalars -> numbers)."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
