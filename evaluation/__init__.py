"""Evaluation: baseline vs sliced runs against ground truth, overall and by object size.

- ``compare``: ``compare_runs`` (one match per run, stored as FiftyOne's COCO
  evaluation under its eval key), ``iter_compare_runs`` (with progress) and
  ``rerun_comparison``;
- ``objects``: the compared objects, read once as flat arrays;
- ``ious``: their IoUs (FiftyOne's box and polygon mask IoU), computed once;
- ``matching``: COCO's greedy matching on those arrays;
- ``run_match``: one run matched once, and every metric derived from it;
- ``pr_curves``: COCO precision-recall arrays from matches;
- ``fiftyone_evaluation``: a match stored as FiftyOne's own evaluation, its
  per-object results written in bulk by label id;
- ``run_state``: fields an inference run is still writing, unfinished runs;
- ``fingerprint``: what a compared field looked like, to tell a stale comparison;
- ``results``: the metrics and the table model of a comparison;
- ``table``: tables as data and their text rendering;
- ``sizes``: COCO's size ranges and size-filtered views;
- ``views``: the recovered / lost review views;
- ``store``: eval keys, stored comparisons, their freshness and clean-up;
- ``logs``: FiftyOne's evaluation log lines kept quiet (the reference path);
- ``seams``: which objects lie on a sliced run's tile seams, and how runs did
  on them (``seam_view``);
- ``sweep``: ``find_slice_settings``, which tries slice settings on a sample and
  recommends one; ``sweep_results``: its table, storage and loading;
- ``ap``: COCO AP50 of predictions held in memory (numpy only).

Imports FiftyOne and the SDK (for run records); never the App. Names are
imported on first use, so ``evaluation.ap`` loads without FiftyOne (the
benchmarks' child processes use it).
"""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> submodule that defines it.
_EXPORTS = {
    "Comparison": ".results",
    "Metrics": ".results",
    "RunMetrics": ".results",
    "compare_runs": ".compare",
    "delete_comparisons": ".store",
    "rerun_comparison": ".compare",
    "is_current": ".store",
    "list_comparisons": ".store",
    "load_comparison": ".store",
    "lost_view": ".views",
    "recovered_view": ".views",
    "seam_view": ".seams",
    "seam_metrics": ".seams",
    "find_slice_settings": ".sweep",
    "SweepResult": ".sweep_results",
    "list_sweeps": ".sweep_results",
    "load_sweep": ".sweep_results",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
