"""Sliced inference for small objects in large images.

This directory is both the ``sliced_inference`` Python package and the FiftyOne
plugin ``@slicer/sliced-inference``. FiftyOne re-executes this file on nearly
every operator lookup, so it stays light: the SDK functions below are imported
on first use, and model libraries only inside the functions that need them.

Example::

    import sliced_inference as si

    si.apply_sliced_model(dataset, "models/blobs-det.pt", "sliced", slice_wh=640)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public SDK name -> module (relative to this package) that defines it.
_SDK = {
    "apply_sliced_model": ".operators.inference",
    "apply_baseline_model": ".operators.inference",
    "get_run_info": ".operators.run_records",
    "list_runs": ".operators.run_records",
    "compare_runs": ".operators.comparison",
    "recovered_view": ".operators.comparison",
    "lost_view": ".operators.comparison",
    "predict_sliced": ".slicer",
    "predict_full_image": ".slicer",
    "tile_boxes": ".slicer",
    "load_model": ".slicer",
    "Predictions": ".slicer",
    "MergeConfig": ".slicer",
}

__all__ = sorted(_SDK)


def __getattr__(name: str) -> Any:
    module = _SDK.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


def register(plugin: Any) -> None:
    """Registers the plugin's operators and panels with FiftyOne."""
    from .operators import register_plugin

    register_plugin(plugin)
