"""Peak resident memory of one sliced prediction, each tool in its own process.

The parent (``measure``) saves nothing itself: it starts
``python -m bench.memory`` per tool on an image saved as ``.npy``, watches the
child's resident set size and stops it if it passes a cap (so a tool that would
exhaust the machine is reported as "over the cap" instead of taking the
machine down). The child loads the model and the image, warms up on one
corner of the image, records its baseline RSS, then predicts on the whole
image while a thread polls its RSS every few milliseconds; the peak is the
larger of that poll and the kernel's high-water mark (``VmHWM``), reset just
before the prediction. ``ru_maxrss`` is no use here: a child started by
fork and exec reports its parent's peak from before the exec.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024


@dataclass
class MemoryResult:
    """One tool's memory on one image (bytes; ``None`` where it did not get there).

    Attributes:
        tool: tool name.
        model_rss: RSS after loading the model.
        baseline_rss: RSS after loading the image and a warm-up run.
        peak_rss: peak RSS of the process while predicting on the whole image.
        detections: detections returned.
        seconds: time of the measured prediction.
        stopped: the child was stopped for passing the cap.
        error: what went wrong, if anything.
    """

    tool: str
    model_rss: int | None = None
    baseline_rss: int | None = None
    peak_rss: int | None = None
    detections: int | None = None
    seconds: float | None = None
    stopped: bool = False
    error: str | None = None

    @property
    def above_baseline(self) -> int | None:
        """Peak minus the loaded baseline."""
        if self.peak_rss is None or self.baseline_rss is None:
            return None
        return self.peak_rss - self.baseline_rss


def measure(
    tool: str,
    model_path: str | Path,
    image_path: str | Path,
    settings: dict,
    *,
    cap_bytes: int,
    timeout_s: float = 1800.0,
) -> MemoryResult:
    """Runs one tool on the saved image in a child process and reports its memory."""
    import psutil

    command = [
        sys.executable,
        "-m",
        "bench.memory",
        "--tool",
        tool,
        "--model",
        str(model_path),
        "--image",
        str(image_path),
        "--settings",
        json.dumps(settings),
    ]
    child = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watched = psutil.Process(child.pid)
    seen_peak, stopped, start = 0, False, time.monotonic()
    while child.poll() is None:
        try:
            seen_peak = max(seen_peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        if seen_peak > cap_bytes or time.monotonic() - start > timeout_s:
            stopped = True
            child.kill()
            break
        time.sleep(0.05)
    stdout, stderr = child.communicate()
    if stopped:
        return MemoryResult(tool, peak_rss=seen_peak, stopped=True)
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if child.returncode != 0 or not lines:
        return MemoryResult(tool, error=(stderr or stdout)[-2000:])
    return MemoryResult(**json.loads(lines[-1]))


def reset_peak_rss() -> None:
    """Resets this process's ``VmHWM`` to its current RSS (Linux; else nothing)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


def peak_rss() -> int | None:
    """This process's ``VmHWM`` in bytes since the last reset (``None`` off Linux)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _child(tool: str, model: str, image_path: str, settings: dict) -> MemoryResult:
    import numpy as np
    import psutil

    from .peers import Settings, build_tool

    me = psutil.Process()
    settings = Settings(**settings)
    runner = build_tool(tool, model, settings)
    model_rss = me.memory_info().rss
    image = np.load(image_path)
    corner = np.ascontiguousarray(image[:1200, :1200])
    settings.pin_threads()
    runner.convert(runner.run(runner.prepare(corner)))
    settings.pin_threads()
    prepared = runner.prepare(image)
    del corner
    gc.collect()
    baseline = me.memory_info().rss

    peak = [baseline]
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], me.memory_info().rss)
            time.sleep(0.003)

    watcher = threading.Thread(target=poll, daemon=True)
    reset_peak_rss()
    watcher.start()
    start = time.perf_counter()
    result = runner.run(prepared)
    seconds = time.perf_counter() - start
    done.set()
    watcher.join()
    detections = len(runner.convert(result))
    return MemoryResult(
        tool=runner.name,
        model_rss=model_rss,
        baseline_rss=baseline,
        peak_rss=max(peak[0], peak_rss() or 0),
        detections=detections,
        seconds=seconds,
    )


def main(argv: list[str] | None = None) -> None:
    """Child entry point: prints one JSON ``MemoryResult``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tool", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--settings", required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    result = _child(args.tool, args.model, args.image, json.loads(args.settings))
    print(json.dumps(dataclasses.asdict(result)), flush=True)


if __name__ == "__main__":
    main()
