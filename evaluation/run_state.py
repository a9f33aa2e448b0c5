"""Which compared fields an inference run is still writing, and which runs did not finish.

A comparison reads a field's labels and writes evaluation attributes into them.
While a run (``overwrite=True`` or a resume) is writing that field, the
comparison would count half a run, so ``compare_runs`` refuses it
(``RunInProgressError``) or waits for it. A run's record says ``running`` while a
live process holds the field's claim (``sdk.field_claims``); a record whose
process died reads as ``interrupted`` (at once on the same machine, after the
claim's heartbeat timeout on another), and ``allow_running=True`` lets the
user say a run is dead sooner.

A run that was interrupted, failed or skipped unreadable images has no
predictions on some samples: ``unfinished_note`` says so, and the comparison
marks it in its tables and warns (``UnfinishedRunWarning``).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import fiftyone as fo

from ..sdk.run_records import get_run_info

#: Seconds between two looks at the run records while waiting.
_POLL_SECONDS = 1.0


class RunInProgressError(RuntimeError):
    """A compared field is being written by an inference run."""


class UnfinishedRunWarning(UserWarning):
    """A compared run did not process every sample."""


def runs_in_progress(
    samples: fo.core.collections.SampleCollection, fields: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """``{field: run record}`` of the fields a live run is writing now.

    A ``running`` record (or shard) counts unless its process is known to be
    gone.
    """
    busy = {}
    for name in fields:
        record = get_run_info(samples, name)
        if record and _live_parts(record):
            busy[name] = record
    return busy


def wait_for_runs(
    samples: fo.core.collections.SampleCollection,
    fields: Sequence[str],
    *,
    wait: float = 0.0,
    allow_running: bool = False,
) -> None:
    """Returns once no live run writes ``fields``; waits up to ``wait`` seconds.

    Raises:
        RunInProgressError: a run still writes one of the fields after
            ``wait`` seconds (unless ``allow_running``, which warns instead).
    """
    deadline = time.monotonic() + max(0.0, wait)
    while True:
        busy = runs_in_progress(samples, fields)
        if not busy:
            return
        message = "; ".join(describe_running(f, r) for f, r in busy.items())
        if allow_running:
            warnings.warn(
                f"comparing fields that runs are writing: {message}",
                UnfinishedRunWarning,
                stacklevel=3,
            )
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise RunInProgressError(
                f"{message}. Comparing now would count half a run. Wait for it "
                "(compare_runs(..., wait=SECONDS)), or, if that process is dead "
                "on another machine, pass allow_running=True."
            )
        time.sleep(min(_POLL_SECONDS, left))


def describe_running(field: str, record: dict[str, Any]) -> str:
    """One line naming the run writing ``field``: id, start, progress, process."""
    parts = _live_parts(record) or [record]
    where = ", ".join(
        f"process {p.get('pid')} on {p.get('host')}" for p in parts if p.get("pid")
    )
    updated = _age(max((p.get("updated_at") or "" for p in parts), default=""))
    return (
        f"field {field!r} is being written by a {record.get('kind') or 'inference'} "
        f"run (run id {record.get('run_id')}, started {record.get('started_at')}, "
        f"{record.get('samples_processed', 0)} of {record.get('samples_total', '?')} "
        f"samples done"
        + (f", last update {updated}" if updated else "")
        + (f", {where}" if where else "")
        + ")"
    )


def unfinished_note(record: dict[str, Any] | None) -> str | None:
    """What a run's record says is missing from its predictions; ``None`` if nothing.

    Example::

        >>> unfinished_note({"status": "interrupted", "samples_total": 20,
        ...                  "samples_processed": 18})
        'interrupted after 18 of 20 images'
        >>> unfinished_note({"status": "completed", "samples_total": 20,
        ...                  "samples_processed": 20, "num_errors": 0}) is None
        True
    """
    if not record or not record.get("status"):
        return None
    status = record["status"]
    total = record.get("samples_total")
    done = record.get("samples_processed")
    errors = int(record.get("num_errors") or 0)
    if status == "completed":
        return f"{errors} of {total} images unreadable" if errors else None
    if status == "running":
        status = "still running" if _live_parts(record) else "stopped (process gone)"
    return f"{status} after {done} of {total} images"


def warn_unfinished(notes: dict[str, str]) -> None:
    """One ``UnfinishedRunWarning`` listing the unfinished runs of a comparison."""
    if notes:
        listed = "; ".join(f"{field}: {note}" for field, note in notes.items())
        warnings.warn(
            f"compared runs that did not process every image ({listed}); their "
            "metrics count the missing images' objects as missed",
            UnfinishedRunWarning,
            stacklevel=3,
        )


def _live_parts(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The record's (or its shards') ``running`` parts (records read dead ones as interrupted)."""
    shards = record.get("shards")
    parts = list(shards.values()) if isinstance(shards, dict) and shards else [record]
    return [p for p in parts if p.get("status") == "running"]


def _age(iso: str) -> str:
    if not iso:
        return ""
    try:
        then = datetime.fromisoformat(iso)
    except ValueError:
        return ""
    seconds = (datetime.now(timezone.utc) - then).total_seconds()
    return f"{seconds:.0f} s ago"
