"""A directory cache of exported models, safe for several processes at once.

Each entry is a directory named by a digest of what it was built from (for an
OpenVINO export: the weights' content hash, task, input shape, precision and
the library versions). An entry is built in a temporary directory beside it
and renamed into place in one step, so a reader never sees half an entry, and
two workers building the same entry at once each finish their own copy and
one rename wins. Every entry ends with a manifest of its files' sizes and
SHA-256 digests: an entry that fails the check (a truncated or missing file,
an interrupted build from an older version) is rebuilt, with a warning.

The cache lives in ``~/.cache/sliced-inference/`` unless the
``SLICED_INFERENCE_CACHE`` environment variable names another directory.
Deleting the directory (or any entry in it) is always safe: entries are
rebuilt when next needed.

Example::

    >>> def build(folder):
    ...     (folder / "answer.txt").write_text("42")
    >>> entry = cached_entry("demo", {"question": "everything"}, build)  # doctest: +SKIP
    >>> (entry / "answer.txt").read_text()  # doctest: +SKIP
    '42'
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: Environment variable that moves the cache.
CACHE_ENV = "SLICED_INFERENCE_CACHE"
#: The manifest written last into every complete entry.
MANIFEST = "manifest.json"
_CHUNK = 1 << 20


def cache_root() -> Path:
    """Where exported models are kept: ``$SLICED_INFERENCE_CACHE`` or ``~/.cache/sliced-inference``."""
    configured = os.environ.get(CACHE_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "sliced-inference"


def entry_digest(key: Mapping[str, Any]) -> str:
    """A short, stable name for an entry from what it was built from (JSON values)."""
    text = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def cached_entry(
    kind: str, key: Mapping[str, Any], build: Callable[[Path], None], suffix: str = ""
) -> Path:
    """The complete cache entry for ``key``, built with ``build(folder)`` if needed.

    Args:
        kind: a sub-folder of the cache (e.g. ``"openvino"``).
        key: what the entry is made from; recorded in its manifest.
        build: fills an empty folder with the entry's files.
        suffix: appended to the entry's name (tools that recognise a format by
            its folder name need it, e.g. Ultralytics' ``_openvino_model``).

    Returns:
        the entry's directory (complete and checked).
    """
    final = cache_root() / kind / (entry_digest(key) + suffix)
    problem = entry_problem(final)
    if problem is None:
        return final
    if final.exists():
        logger.warning("rebuilding cache entry %s: %s", final, problem)
        _discard(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    building = final.parent / f".{final.name}.{uuid.uuid4().hex}.tmp"
    building.mkdir()
    try:
        build(building)
        write_manifest(building, key)
        try:
            os.rename(building, final)  # atomic; fails if another worker won
        except OSError:
            if entry_problem(final) is not None:
                raise
            _discard(building)
    except BaseException:
        _discard(building)
        raise
    return final


def write_manifest(folder: Path, key: Mapping[str, Any]) -> None:
    """Records the size and digest of every file in ``folder`` (written last)."""
    files = {
        str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": _digest(p)}
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    text = json.dumps({"key": key, "files": files}, indent=1, default=str)
    (folder / MANIFEST).write_text(text)


def entry_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a complete entry, or ``None`` when it is."""
    manifest = folder / MANIFEST
    if not folder.is_dir():
        return "missing"
    try:
        files = json.loads(manifest.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return "no readable manifest (an interrupted build?)"
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != expected["size"]:
            return (
                f"{name} has {path.stat().st_size} bytes, expected {expected['size']}"
            )
        if _digest(path) != expected["sha256"]:
            return f"{name} does not match its recorded digest"
    return None


def clear_cache() -> None:
    """Deletes every cached export (they are rebuilt when next needed)."""
    _discard(cache_root())


def _discard(path: Path) -> None:
    """Removes ``path`` without disturbing a reader: renamed away first, then deleted."""
    if not path.exists():
        return
    trash = path.with_name(f".{path.name}.{uuid.uuid4().hex}.trash")
    try:
        os.rename(path, trash)
    except OSError:
        trash = path
    shutil.rmtree(trash, ignore_errors=True)


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()
