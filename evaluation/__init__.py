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
- ``logs``: FiftyOne's evaluation log lines kept quiet (the reference path).

Imports FiftyOne and the SDK (for run records); never the App.
"""

from .compare import compare_runs, rerun_comparison
from .results import Comparison, Metrics, RunMetrics
from .store import delete_comparisons, is_current, list_comparisons, load_comparison
from .views import lost_view, recovered_view

__all__ = [
    "Comparison",
    "Metrics",
    "RunMetrics",
    "compare_runs",
    "delete_comparisons",
    "is_current",
    "list_comparisons",
    "load_comparison",
    "lost_view",
    "recovered_view",
    "rerun_comparison",
]
