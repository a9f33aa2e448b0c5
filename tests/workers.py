"""Delegated-operation workers that tests start: a process group each, stopped with Ctrl-C.

``fiftyone delegated launch`` runs until interrupted; its own children (the
operations' processes) share its process group, so the whole group is signalled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def start_worker(
    log: Path, command: Sequence[str] | None = None, cwd: Path | None = None
) -> subprocess.Popen:
    """Starts ``command`` (default: ``fiftyone delegated launch``) logging to ``log``."""
    if command is None:
        command = [str(Path(sys.executable).parent / "fiftyone"), "delegated", "launch"]
    with open(log, "w") as out:
        return subprocess.Popen(
            list(command),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_worker(process: subprocess.Popen, timeout: float = 20) -> None:
    """Interrupts the worker's process group (the service exits on Ctrl-C), then kills it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)
