"""Evaluation: baseline vs sliced runs against ground truth, overall and by object size.

- ``compare``: ``compare_runs`` (FiftyOne's COCO evaluation per run, stored under
  its eval key) and ``rerun_comparison``;
- ``results``: the metrics and the table model of a comparison;
- ``table``: tables as data and their text rendering;
- ``sizes``: COCO's size ranges and size-filtered views;
- ``views``: the recovered / lost review views;
- ``store``: eval keys, stored comparisons and their freshness.

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
