"""Records of inference runs, stored on the dataset, read back with one call.

Where: ``dataset.info["sliced_inference_runs"][label_field]``, plain JSON. We
chose ``dataset.info`` over FiftyOne's runs API because a record must be
readable by anyone (the App's dataset info, a notebook, a script, the
comparison panel) without our classes installed, it follows the dataset
through ``clone()``, and it is keyed by the label field the user thinks in.

Per field it holds:

- ``runs``: every run that wrote (or tried to write) the field, by run id:
  the field's history. A new run never overwrites an older run's record.
- ``label_runs``: the ids of the runs whose labels the field holds now,
  oldest first: the run that created or overwrote it, then the runs that
  resumed it (``skip_existing``) and labelled something.
- ``claim``: the run writing the field now (see ``field_claims``).

``get_run_info`` returns the record of the runs that produced the current
labels (``label_runs`` added up); ``get_run_history`` returns every run.

How: every write is one atomic MongoDB update on its own path in the dataset
document, never a read-modify-write of the whole ``info`` dict, so parallel
shard workers (each writing ``...runs.<run_id>.shards.<i>``) cannot overwrite
one another. The in-memory ``dataset.info`` is refreshed after each write so a
later ``dataset.save()`` does not put an old copy back.

A run's record holds: ``run_id``, ``kind`` (``"sliced"`` or ``"baseline"``),
``model`` (a path, hub id or class name; never a token), ``settings`` (every
option of the run as it ran: the device picked, ``half`` false off CUDA,
``backend`` and ``precision`` that ran, e.g. ``backend: "torch"`` where
``"auto"`` picked PyTorch or fell back to it, ``imgsz`` unset for a model
that sizes its own input), ``settings_ignored``
(the options asked for that the model did not apply: ``{name: {"asked":
value, "reason": text}}``; the run logs a warning for each),
``plugin_version``, ``fiftyone_version``, ``status``
(``running``, ``completed``, ``failed``, ``interrupted``), ``failure``,
``started_at`` / ``finished_at`` (ISO 8601, UTC), ``updated_at`` (the
record's last write), ``host`` and ``pid`` (the process writing it),
``samples_total`` (samples
it set out to label), ``samples_processed``, ``samples_skipped`` (already
labelled, ``skip_existing``), ``num_errors``, ``errors`` (the first
``MAX_STORED_ERRORS``, as ``{"sample_id", "filepath", "error"}``),
``previous_labels_kept`` (samples an ``overwrite`` run could not read, which
keep their previous labels), ``num_detections``, ``seconds`` and
``images_per_second`` (timed after the model loaded), ``model_load_seconds``.
A sharded run also has ``num_shards`` and ``shards`` (``{"0": {...}, ...}``),
added up when read.

Example::

    import sliced_inference as si

    si.apply_sliced_model(dataset, "models/small-objects-det.pt", "sliced")
    info = si.get_run_info(dataset, "sliced")
    print(info["kind"], info["seconds"], info["images_per_second"])
    print([run["status"] for run in si.get_run_history(dataset, "sliced")])
"""

from __future__ import annotations

import copy
import json
import os
import socket
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import fiftyone as fo

from .dataset_doc import record_path, stored_runs, update_dataset_doc, utc_now
from .field_claims import claim_is_live

#: Most per-sample errors kept in a record (the count is always exact).
MAX_STORED_ERRORS = 100
#: Most runs kept in a field's history (the runs behind its labels are always kept).
MAX_RUNS_KEPT = 50
#: Per-run statistics summed over shards.
_SUMMED = (
    "samples_total",
    "samples_processed",
    "samples_skipped",
    "num_errors",
    "previous_labels_kept",
    "num_detections",
)
#: Settings of a run that do not change its labels: a resume may differ in them.
RUN_FLAGS = (
    "overwrite",
    "skip_existing",
    "allow_mixed_settings",
    "tags",
    "device",
    # OpenVINO FP32 and PyTorch give the same labels (tests/test_openvino.py):
    # a GPU worker may resume a CPU run. ``precision`` is what changes them.
    "backend",
    "allow_unsafe_pickle",
)


def get_run_info(
    samples: fo.core.collections.SampleCollection, label_field: str
) -> dict[str, Any] | None:
    """The record of the run(s) whose labels ``label_field`` holds, or ``None``.

    One run (the usual case) gives its own record. When the field was resumed
    (``skip_existing``), the runs that labelled it are added up: ``run_ids``
    lists them oldest first; ``run_id``, ``status``, ``settings``,
    ``finished_at``, ``samples_skipped``, ``num_errors`` and ``errors`` are the
    latest run's (what is still missing after it); ``samples_total`` is the
    latest run's target (the samples it found labelled plus those it set out
    to label) and ``samples_processed`` those labelled after it;
    ``num_detections`` and ``seconds`` are sums, and ``images_per_second`` is
    the samples the runs labelled per second they took. ``mixed_settings`` is
    True when those runs differ in model
    or prediction settings (allowed only with ``allow_mixed_settings`` or a
    partial ``overwrite``). A run that labelled nothing (e.g. a
    ``skip_existing`` re-run on a complete field) is only in the history
    (``get_run_history``); ``num_runs`` counts the history.

    For a sharded run the shards are added up: ``samples_*`` and ``num_errors``
    are sums, ``seconds`` is the wall time from the first start to the last
    finish, ``status`` is ``completed`` once every shard is.

    Args:
        samples: the dataset, or any view of it.
        label_field: the label field the run wrote.

    Example::

        >>> info = get_run_info(dataset, "sliced")  # doctest: +SKIP
        >>> info["kind"], info["settings"]["slice_wh"]  # doctest: +SKIP
        ('sliced', [640, 640])
    """
    entry = stored_field_entry(samples._root_dataset, label_field)
    if entry is None:
        return None
    runs = {rid: combined_shards(rec) for rid, rec in entry["runs"].items()}
    labelled = [runs[rid] for rid in entry["label_runs"] if rid in runs]
    if not labelled:
        return None
    record = _sequential(labelled)
    record["num_runs"] = len(runs)
    return record


def get_run_history(
    samples: fo.core.collections.SampleCollection, label_field: str
) -> list[dict[str, Any]]:
    """Every recorded run on ``label_field``, oldest first, each with ``labels_in_field``.

    Includes the runs whose labels were later overwritten and the runs that
    labelled nothing (up to ``MAX_RUNS_KEPT``).

    Example::

        >>> [(r["run_id"], r["status"]) for r in get_run_history(dataset, "sliced")]  # doctest: +SKIP
        [('3f2a...', 'interrupted'), ('9c1b...', 'completed')]
    """
    entry = stored_field_entry(samples._root_dataset, label_field)
    if entry is None:
        return []
    history = []
    for rid, rec in entry["runs"].items():
        run = combined_shards(rec)
        run["labels_in_field"] = rid in entry["label_runs"]
        history.append(run)
    return sorted(history, key=lambda r: r.get("started_at") or "")


def list_runs(dataset: fo.core.collections.SampleCollection) -> dict[str, dict]:
    """``{label_field: get_run_info(...)}`` for every field with recorded labels.

    Example::

        >>> sorted(list_runs(dataset))  # doctest: +SKIP
        ['baseline', 'sliced']
    """
    found = {}
    for field in stored_runs(dataset._root_dataset):
        info = get_run_info(dataset, field)
        if info is not None:
            found[field] = info
    return found


def delete_run_record(dataset: fo.Dataset, label_field: str) -> None:
    """Removes every record of ``label_field`` (e.g. after deleting the field)."""
    update_dataset_doc(dataset, {"$unset": {record_path(label_field): ""}})


def prediction_settings(record: Mapping[str, Any]) -> dict[str, Any]:
    """What decides a run's labels: kind, model and settings but the ``RUN_FLAGS``.

    Two runs with equal prediction settings make the same labels, so one may
    resume the other.

    Example::

        >>> prediction_settings({"kind": "sliced", "model": "m.pt", "settings": {"tags": ["a"], "overlap": 0.2}})
        {'kind': 'sliced', 'model': 'm.pt', 'settings': {'overlap': 0.2}}
    """
    settings = {
        k: v for k, v in (record.get("settings") or {}).items() if k not in RUN_FLAGS
    }
    return {
        "kind": record.get("kind"),
        "model": record.get("model"),
        "settings": settings,
    }


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
    fields = sorted(stored_runs(dataset))
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
        run_id: identifies the run; all shards of a run share it.
    """

    def __init__(
        self,
        dataset: fo.Dataset,
        label_field: str,
        shard: tuple[int, int] | None,
        run_id: str,
    ) -> None:
        self.dataset = dataset
        self.label_field = label_field
        self.shard = shard
        self.run_id = run_id
        self.run_path = f"{record_path(label_field)}.runs.{run_id}"
        self.path = self.run_path
        if shard is not None:
            self.path = f"{self.run_path}.shards.{int(shard[0])}"

    def start(self, common: dict[str, Any], stats: dict[str, Any], labels: str) -> None:
        """Writes the record of a starting run, and its place in ``label_runs``.

        Args:
            common: what all shards share (kind, model, settings, versions).
            stats: this run's (or shard's) own status and counts.
            labels: ``"replace"`` (the run created or overwrote the field: its
                labels are now the field's), ``"add"`` (it adds labels to the
                field's) or ``"none"`` (it labels nothing).
        """
        common = {**_jsonable(common), "run_id": self.run_id}
        stats = {**_jsonable(stats), **_writer(), "updated_at": utc_now()}
        self._upgrade_legacy_entry()
        if self.shard is None:
            update_dataset_doc(self.dataset, {"$set": {self.path: {**common, **stats}}})
        else:
            fresh = {**common, "num_shards": int(self.shard[1]), "shards": {}}
            # Only the first shard to start creates the run's record (atomic).
            update_dataset_doc(
                self.dataset,
                {"$set": {self.run_path: fresh}},
                extra_filter={self.run_path: {"$exists": False}},
            )
            update_dataset_doc(self.dataset, {"$set": {self.path: stats}})
        label_runs = f"{record_path(self.label_field)}.label_runs"
        if labels == "replace":
            update_dataset_doc(self.dataset, {"$set": {label_runs: [self.run_id]}})
        elif labels == "add":
            update_dataset_doc(self.dataset, {"$addToSet": {label_runs: self.run_id}})
        self._prune()

    def update(self, stats: dict[str, Any]) -> None:
        """Sets some statistics of the run (or shard), e.g. progress or the end."""
        stats = {**_jsonable(stats), "updated_at": utc_now()}
        updates = {f"{self.path}.{k}": v for k, v in stats.items()}
        update_dataset_doc(self.dataset, {"$set": updates})

    def _upgrade_legacy_entry(self) -> None:
        """Moves a record of an older plugin version (one run, at the top) into ``runs``."""
        base = record_path(self.label_field)
        raw = stored_runs(self.dataset).get(self.label_field) or {}
        if "runs" in raw or "kind" not in raw:
            return
        legacy = {k: v for k, v in raw.items() if k != "claim"}
        rid = legacy.get("run_id") or "legacy"
        entry = {"runs": {rid: legacy}, "label_runs": [rid]}
        if raw.get("claim"):
            entry["claim"] = raw["claim"]
        update_dataset_doc(
            self.dataset,
            {"$set": {base: entry}},
            extra_filter={f"{base}.runs": {"$exists": False}},
        )

    def _prune(self) -> None:
        """Forgets the oldest runs beyond ``MAX_RUNS_KEPT`` that no label comes from."""
        entry = stored_field_entry(self.dataset, self.label_field)
        if entry is None or len(entry["runs"]) <= MAX_RUNS_KEPT:
            return
        old = sorted(
            (rec.get("started_at") or "", rid)
            for rid, rec in entry["runs"].items()
            if rid not in entry["label_runs"] and rid != self.run_id
        )
        extra = len(entry["runs"]) - MAX_RUNS_KEPT
        base = record_path(self.label_field)
        unset = {f"{base}.runs.{rid}": "" for _, rid in old[:extra]}
        if unset:
            update_dataset_doc(self.dataset, {"$unset": unset})


def stored_field_entry(dataset: fo.Dataset, label_field: str) -> dict[str, Any] | None:
    """``{"runs", "label_runs", "claim"}`` of a field, or ``None`` with no run recorded.

    A record written by plugin versions before run histories (one run, at the
    field's top level) reads as a history of that one run. A run (or shard)
    still marked ``running`` that no live process holds the field for reads
    as ``interrupted``: its process ended without recording it.
    """
    entry = copy.deepcopy(stored_runs(dataset).get(label_field))
    if not entry:
        return None
    if "runs" not in entry and "kind" in entry:
        rid = entry.get("run_id") or "legacy"
        entry = {"runs": {rid: entry}, "label_runs": [rid], "claim": entry.get("claim")}
    if not entry.get("runs"):
        return None
    claim = entry.get("claim")
    for rid, record in entry["runs"].items():
        live = claim_is_live(claim) and claim.get("run_id") == rid
        holders = (claim.get("holders") or {}) if live else {}
        parts = record.get("shards")
        if parts is None:
            _mark_if_gone(record, "run" in holders)
        for index, part in (parts or {}).items():
            _mark_if_gone(part, str(index) in holders)
    return {
        "runs": entry["runs"],
        "label_runs": list(entry.get("label_runs") or []),
        "claim": claim,
    }


def _writer() -> dict[str, Any]:
    """The process writing a record, named in it for the user (liveness is the claim's)."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _mark_if_gone(record: dict[str, Any], held: bool) -> None:
    if record.get("status") == "running" and not held:
        record["status"] = "interrupted"
        record["failure"] = record.get("failure") or (
            "the process stopped without finishing (no live process holds the field)"
        )


def combined_shards(record: dict[str, Any]) -> dict[str, Any]:
    """A run's record, with a sharded run's shard statistics added up."""
    record = copy.deepcopy(record)
    shards = record.get("shards")
    if shards is None:
        return record
    parts = list(shards.values())
    for key in _SUMMED:
        record[key] = sum(int(p.get(key) or 0) for p in parts)
    record["errors"] = [e for p in parts for e in p.get("errors", [])][
        :MAX_STORED_ERRORS
    ]
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
    failures = [p["failure"] for p in parts if p.get("failure")]
    record["failure"] = failures[0] if failures else None
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


def _sequential(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Runs that labelled one field one after another (a run and its resumes), added up."""
    latest = runs[-1]
    record = copy.deepcopy(latest)
    record["run_ids"] = [r.get("run_id") for r in runs]
    record["mixed_settings"] = any(
        prediction_settings(r) != prediction_settings(latest) for r in runs
    )
    if len(runs) == 1:
        return record
    # The latest run found what the earlier ones labelled (its skipped
    # samples): counting from it stays right when a killed run's record lags
    # behind the labels it wrote.
    found = int(latest.get("samples_skipped") or 0)
    record["samples_total"] = found + int(latest.get("samples_total") or 0)
    record["samples_processed"] = found + int(latest.get("samples_processed") or 0)
    record["started_at"] = runs[0].get("started_at")
    record["num_detections"] = sum(int(r.get("num_detections") or 0) for r in runs)
    # Speed: what the runs themselves labelled, in the time they took.
    labelled = sum(int(r.get("samples_processed") or 0) for r in runs)
    seconds = sum(float(r.get("seconds") or 0.0) for r in runs)
    record["seconds"] = seconds or None
    record["images_per_second"] = labelled / seconds if seconds else None
    if record["mixed_settings"]:
        record["models"] = sorted({str(r.get("model")) for r in runs})
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
