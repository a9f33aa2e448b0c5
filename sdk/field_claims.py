"""One writer per label field: a run claims its field before it reads or writes it.

Two processes that label the same field at once would interleave two runs'
labels and leave a record naming only one of them. So a run first claims the
field in the dataset document (``...[label_field]["claim"]``), with one
atomic, conditional MongoDB update: it succeeds only if no other run holds the
claim. Shards of one run share its run id and so share the claim.

A claim names its holders (host, process id, last heartbeat); a background
thread renews the heartbeat every ``HEARTBEAT_S`` seconds. A claim is free
again once its run ends, or once every holder is gone: a process on this host
that no longer exists, or a heartbeat older than ``CLAIM_TIMEOUT_S`` (another
host). A run that takes over a dead run's claim marks that run ``interrupted``
in its record.

Example::

    claim = FieldClaim(dataset, "sliced", run_id)
    claim.acquire()  # FieldInUseError if another live run holds the field
    try:
        ...  # write the field
    finally:
        claim.release()
"""

from __future__ import annotations

import os
import socket
import threading
from datetime import datetime
from typing import Any

import fiftyone as fo

from .dataset_doc import record_path, stored_runs, update_dataset_doc, utc_now
from .label_fields import LabelFieldError

#: Seconds between two heartbeats of a claim.
HEARTBEAT_S = 30.0
#: A claim whose holders were silent this long is free (processes on other hosts).
CLAIM_TIMEOUT_S = 300.0


class FieldInUseError(LabelFieldError):
    """Another run is writing the label field now."""


class FieldClaim:
    """A run's claim on one label field (see the module's docstring).

    Args:
        dataset: the dataset written to.
        label_field: the field claimed.
        run_id: the run's id (shared by its shards).
        shard: ``(index, count)`` for a shard, else ``None``.
    """

    def __init__(
        self,
        dataset: fo.Dataset,
        label_field: str,
        run_id: str,
        shard: tuple[int, int] | None = None,
    ) -> None:
        self.dataset = dataset
        self.label_field = label_field
        self.run_id = run_id
        self.holder = "run" if shard is None else str(int(shard[0]))
        self.path = f"{record_path(label_field)}.claim"
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        """Takes the claim, or raises ``FieldInUseError`` naming the run that holds it."""
        for _ in range(5):  # another run may take or free it between read and write
            current = self._current()
            if current is None:
                taken = self._write(
                    {"$set": {self.path: self._new_claim()}},
                    {self.path: {"$exists": False}},
                )
            elif current.get("run_id") == self.run_id:
                taken = self._write(
                    {"$set": {f"{self.path}.holders.{self.holder}": _me()}},
                    {f"{self.path}.run_id": self.run_id},
                )
            elif not claim_is_live(current):
                taken = self._write(
                    {"$set": {self.path: self._new_claim()}},
                    {f"{self.path}.run_id": current.get("run_id")},
                )
                if taken:
                    self._mark_interrupted(current)
            else:
                raise FieldInUseError(_busy_message(self.label_field, current))
            if taken:
                self._start_heartbeat()
                return
        raise FieldInUseError(
            f"Field {self.label_field!r} is being claimed by other runs right now: "
            "try again"
        )

    def release(self) -> None:
        """Gives up this holder's share of the claim (and the claim, if it was the last)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=HEARTBEAT_S)
        mine = {f"{self.path}.run_id": self.run_id}
        self._write({"$unset": {f"{self.path}.holders.{self.holder}": ""}}, mine)
        self._write({"$unset": {self.path: ""}}, {**mine, f"{self.path}.holders": {}})
        # A run refused before it recorded anything leaves no empty entry behind.
        base = record_path(self.label_field)
        self._write(
            {"$unset": {base: ""}},
            {
                f"{base}.runs": {"$exists": False},
                f"{base}.kind": {"$exists": False},
                f"{base}.claim": {"$exists": False},
            },
        )

    def _current(self) -> dict[str, Any] | None:
        entry = stored_runs(self.dataset).get(self.label_field) or {}
        return entry.get("claim") or None

    def _new_claim(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "holders": {self.holder: _me()}}

    def _write(self, update: dict[str, Any], condition: dict[str, Any]) -> bool:
        """One conditional update; whether the condition held."""
        return update_dataset_doc(self.dataset, update, condition).matched_count > 0

    def _mark_interrupted(self, dead: dict[str, Any]) -> None:
        """The runs of a dead claim never ended: say so in their records."""
        base = f"{record_path(self.label_field)}.runs.{dead.get('run_id')}"
        note = f"the process stopped without finishing; found gone by run {self.run_id}"
        for holder in (dead.get("holders") or {}) or {"run": None}:
            path = base if holder == "run" else f"{base}.shards.{holder}"
            update_dataset_doc(
                self.dataset,
                {"$set": {f"{path}.status": "interrupted", f"{path}.failure": note}},
                {f"{path}.status": "running"},
            )

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._beat, name=f"claim-{self.label_field}", daemon=True
        )
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            alive = update_dataset_doc(
                self.dataset,
                {"$set": {f"{self.path}.holders.{self.holder}.heartbeat": utc_now()}},
                {f"{self.path}.run_id": self.run_id},
                reload=False,  # this thread must not touch the dataset object
            )
            if alive.matched_count == 0:
                self.lost = True  # another run judged this one dead and took over
                return


def field_writer(dataset: fo.Dataset, label_field: str) -> str | None:
    """The run id of the live run writing ``label_field`` now, or ``None``.

    What a reader that must not see a half-written field (e.g. a comparison)
    checks first.

    Example::

        >>> field_writer(dataset, "sliced") is None  # doctest: +SKIP
        True
    """
    entry = stored_runs(dataset._root_dataset).get(label_field) or {}
    claim = entry.get("claim")
    return claim.get("run_id") if claim_is_live(claim) else None


def _me() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "heartbeat": utc_now()}


def claim_is_live(claim: dict[str, Any] | None) -> bool:
    """Whether a stored claim still has a holder that is alive (see the module's docstring).

    Example::

        >>> claim_is_live(None)
        False
    """
    holders = list(((claim or {}).get("holders") or {}).values())
    return not all(_holder_is_dead(h) for h in holders)


def _holder_is_dead(holder: dict[str, Any]) -> bool:
    if holder.get("host") == socket.gethostname():
        return not _process_exists(int(holder.get("pid") or 0))
    beat = holder.get("heartbeat")
    if not beat:
        return True
    age = datetime.fromisoformat(utc_now()) - datetime.fromisoformat(beat)
    return age.total_seconds() > CLAIM_TIMEOUT_S


def _process_exists(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def _busy_message(label_field: str, claim: dict[str, Any]) -> str:
    holders = claim.get("holders") or {}
    where = "; ".join(
        f"{h.get('host')} pid {h.get('pid')}, last seen {h.get('heartbeat')}"
        for h in holders.values()
    )
    return (
        f"Field {label_field!r} is being written by another run "
        f"({claim.get('run_id')}: {where or 'no holder'}). Wait for it to end, or "
        "write to another field. A run whose process died frees the field at "
        f"once on its own host, or after {CLAIM_TIMEOUT_S:.0f} s without a heartbeat."
    )
