"""Wall-clock timing of several tools on the same input, interleaved.

Each tool gets its warm-up first; then the timed runs go round-robin, with the
starting tool rotated every round, so a burst of load from elsewhere on the
machine is spread over the tools instead of landing on one of them.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Timing:
    """Timed runs of one tool on one input, in seconds."""

    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")

    @property
    def spread(self) -> float:
        """(max - min) / median: how noisy the runs were."""
        if len(self.seconds) < 2:
            return 0.0
        return (max(self.seconds) - min(self.seconds)) / self.median


def time_interleaved(
    calls: dict[str, Callable[[], Any]],
    *,
    repeats: int = 3,
    warmup: int = 1,
    before: Callable[[], None] | None = None,
) -> tuple[dict[str, Timing], dict[str, Any]]:
    """Times each call ``repeats`` times after ``warmup`` untimed calls.

    Args:
        calls: name -> call to time.
        repeats: timed runs per call.
        warmup: untimed runs per call first.
        before: run (untimed) before every call, e.g. to pin the thread count.

    Returns:
        the timings and each call's last result.
    """
    before = before or (lambda: None)
    names = list(calls)
    last: dict[str, Any] = {}
    for name in names:
        for _ in range(warmup):
            before()
            last[name] = calls[name]()
    timings = {name: Timing() for name in names}
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            last.pop(name, None)
            gc.collect()
            before()
            start = time.perf_counter()
            result = calls[name]()
            timings[name].seconds.append(time.perf_counter() - start)
            last[name] = result
    return timings, last
