"""Sliced inference for small objects in large images.

This directory is both the ``sliced_inference`` Python package and the FiftyOne
plugin ``@slicer/sliced-inference``. FiftyOne re-executes this file on nearly
every operator lookup, so it stays light: the SDK functions below are imported
on first use, and model libraries only inside the functions that need them.

Example::

    import sliced_inference as si

    si.apply_sliced_model(dataset, "models/small-objects-det.pt", "sliced", slice_wh=640)
    print(si.compare_runs(dataset, "ground_truth", ["baseline", "sliced"]))
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

# Public name -> module (relative to this package) that defines it.
_SDK = {
    "apply_sliced_model": ".sdk",
    "apply_baseline_model": ".sdk",
    "get_run_info": ".sdk",
    "list_runs": ".sdk",
    "compare_runs": ".evaluation",
    "recovered_view": ".evaluation",
    "lost_view": ".evaluation",
    "load_comparison": ".evaluation",
    "predict_sliced": ".slicer",
    "predict_full_image": ".slicer",
    "tile_boxes": ".slicer",
    "load_model": ".slicer",
    "Predictions": ".slicer",
    "MergeConfig": ".slicer",
    "SliceOptions": ".slicer",
    "PredictOptions": ".slicer",
    "ModelOptions": ".slicer",
    "cache_root": ".slicer",
    "clear_cache": ".slicer",
}

__all__ = ["__version__", *sorted(_SDK)]


def __getattr__(name: str) -> Any:
    module = _SDK.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


def register(plugin: Any) -> None:
    """Registers the plugin's operators and panels with FiftyOne."""
    from .operators import register_plugin

    register_plugin(plugin)
