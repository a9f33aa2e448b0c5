"""Runs the README's code blocks top to bottom, as a new user would.

``tests/test_readme.py`` starts this script in a fresh process; it can also be
run by hand (``.venv/bin/python tests/readme_runner.py``, with a throw-away
``HOME``: the README's blocks write under ``~``).

What runs (a marker is an HTML comment on the line just before a block's
opening fence; GitHub does not show it):

- every ```` ```python ```` block, in order, in this one process and one
  namespace (a later block sees the names an earlier one made), from the
  repository root; ``<!-- readme-test: skip REASON -->`` leaves one out (only
  for what cannot run here, e.g. a GPU or a browser; the reason is required);
- a ```` ```bash ```` block only when marked:
  ``<!-- readme-test: run -->`` runs it with ``bash -euo pipefail`` from the
  repository root at its place in the order;
  ``<!-- readme-test: worker -->`` runs it as a delegated-operation worker
  would be run: from another directory, until no delegated operation is queued
  or running, then stops it with Ctrl-C and fails if any operation failed;
  ``<!-- readme-test: skip REASON -->`` leaves it out. An unmarked bash
  block is an error, so every shell command is either run or skipped on purpose.
- other blocks (``text``, ``console``, ...) are output, never run.

Substitution: none in the text. The caller sets ``HOME`` to a fresh
temporary directory, so ``~/...`` in the README lands there and FiftyOne's
plugins dir (``~/fiftyone/__plugins__``) does not exist yet, as on a fresh
machine; ``PATH`` starts with this interpreter's directory, as an activated
virtual environment's does.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from workers import start_worker, stop_worker

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
#: What a marker may say before a block.
MARKERS = ("run", "worker", "skip")
_FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[^`\n]*)$")
_MARKER = re.compile(
    r"^\s*<!--\s*readme-test:\s*(?P<what>\w+)\s*(?P<reason>.*?)\s*-->\s*$"
)
#: Longest wait for queued delegated operations once a worker runs.
WORKER_TIMEOUT_S = 900


@dataclass(frozen=True)
class Block:
    """A fenced code block of the README.

    Attributes:
        language: the fence's language (``python``, ``bash``, ``text``, ...).
        code: its text, dedented.
        line: the README line of its first code line (1-based).
        marker: ``run``, ``worker``, ``skip`` or ``""`` (no marker).
        reason: the text after ``skip``.
    """

    language: str
    code: str
    line: int
    marker: str = ""
    reason: str = ""

    @property
    def where(self) -> str:
        return f"README.md:{self.line}"


def parse_blocks(text: str) -> list[Block]:
    """Every fenced block of ``text``, with the marker on the line before it.

    Example::

        >>> blocks = parse_blocks("<!-- readme-test: run -->\\n```bash\\nls\\n```\\n")
        >>> blocks[0].language, blocks[0].code, blocks[0].marker, blocks[0].line
        ('bash', 'ls\\n', 'run', 3)
    """
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        start = i + 1
        end = start
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        previous = next((ln for ln in reversed(lines[:i]) if ln.strip()), "")
        marker = _MARKER.match(previous)
        blocks.append(
            Block(
                language=opening["info"].strip().split(" ")[0].lower(),
                code=textwrap.dedent("\n".join(lines[start:end]) + "\n"),
                line=start + 1,
                marker=marker["what"] if marker else "",
                reason=marker["reason"] if marker else "",
            )
        )
        i = end + 1
    return blocks


def marker_problems(blocks: list[Block]) -> list[str]:
    """What is wrong with the blocks' markers (an unmarked bash block, a skip without reason)."""
    problems = []
    for block in blocks:
        if block.marker and block.marker not in MARKERS:
            problems.append(f"{block.where}: unknown marker {block.marker!r}")
        if block.marker == "skip" and not block.reason:
            problems.append(f"{block.where}: a skip needs a reason")
        if block.language == "bash" and not block.marker:
            problems.append(
                f"{block.where}: bash block without a marker: add "
                "<!-- readme-test: run --> or <!-- readme-test: skip REASON -->"
            )
        if block.language == "python" and block.marker in ("run", "worker"):
            problems.append(f"{block.where}: python blocks always run")
    return problems


def to_run(blocks: list[Block]) -> list[Block]:
    """The blocks that run, in order."""
    return [
        b
        for b in blocks
        if (b.language == "python" and b.marker != "skip")
        or (b.language == "bash" and b.marker in ("run", "worker"))
    ]


def run_python(block: Block, namespace: dict) -> None:
    """Runs a python block in ``namespace``; tracebacks point at README lines."""
    source = "\n" * (block.line - 1) + block.code
    exec(compile(source, str(README), "exec"), namespace)


def run_bash(block: Block) -> None:
    """Runs a bash block from the repository root; raises if it fails."""
    subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.code], cwd=REPO_ROOT, check=True
    )


def run_worker(block: Block) -> None:
    """Runs a worker block from another directory until the queue is empty.

    Raises:
        RuntimeError: an operation failed, or the queue did not empty in time.
    """
    from fiftyone.operators.delegated import DelegatedOperationService

    elsewhere = Path(tempfile.mkdtemp(prefix="readme-worker-"))
    log = elsewhere / "worker.log"
    service = DelegatedOperationService()
    worker = start_worker(log, ["bash", "-c", block.code], cwd=elsewhere)
    try:
        deadline = time.monotonic() + WORKER_TIMEOUT_S
        while _pending(service):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker stopped or timed out:\n{_tail(log)}")
            time.sleep(0.5)
    finally:
        stop_worker(worker, timeout=30)
    failed = [
        f"{op.label}: {op.run_state} {getattr(op.result, 'error', '')}"
        for op in service.list_operations()
        if op.run_state != "completed"
    ]
    if failed:
        raise RuntimeError(
            f"delegated operations did not complete: {failed}\n{_tail(log)}"
        )
    print(f"  worker ran from {elsewhere}")


def main(argv: list[str] | None = None) -> int:
    """Runs the README; returns 0 when every block that runs succeeded."""
    path = Path((argv or sys.argv[1:] or [str(README)])[0])
    blocks = parse_blocks(path.read_text())
    problems = marker_problems(blocks)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    os.chdir(REPO_ROOT)
    sys.path.insert(0, str(REPO_ROOT))  # as `python` started in the repository root
    namespace: dict = {"__name__": "__main__"}
    for block in to_run(blocks):
        started = time.perf_counter()
        print(
            f"{block.where} ({block.language}{' ' + block.marker if block.marker else ''})",
            flush=True,
        )
        try:
            if block.language == "python":
                run_python(block, namespace)
            elif block.marker == "worker":
                run_worker(block)
            else:
                run_bash(block)
        except BaseException:
            traceback.print_exc()
            print(f"FAILED at {block.where}:\n{block.code}", file=sys.stderr)
            return 1
        print(f"  ok in {time.perf_counter() - started:.1f} s", flush=True)
    return 0


def _pending(service) -> bool:
    return any(
        op.run_state in ("queued", "scheduled", "running")
        for op in service.list_operations()
    )


def _tail(log: Path, num_chars: int = 4000) -> str:
    return log.read_text()[-num_chars:]


if __name__ == "__main__":
    sys.exit(main())
