"""Sliced inference for small objects in large images.

This directory is both the ``sliced_inference`` Python package and the FiftyOne
plugin ``@slicer/sliced-inference``. FiftyOne re-executes this file on nearly
every operator lookup, so it stays light: the SDK functions below are imported
on first use, and model libraries only inside the functions that need them.

Example (from the repository root, where ``models/`` holds the bundled models)::

    import sliced_inference as si
    from sliced_inference.synthetic import load_fiftyone_dataset, write_dataset

    # Two generated images of 1600-2000 px with ground truth (a COCO folder).
    write_dataset("/tmp/si-example", num_images=2, max_width=2000)
    dataset = load_fiftyone_dataset("/tmp/si-example", name="si-example", overwrite=True)

    model = "models/small-objects-det.pt"
    si.apply_baseline_model(dataset, model, "baseline")
    si.apply_sliced_model(dataset, model, "sliced", slice_wh=640)
    print(si.compare_runs(dataset, "ground_truth", ["baseline", "sliced"]))

The README has the whole tour: the App's operators and panel, delegated runs,
every option and its default.
"""

from __future__ import annotations

import importlib
from typing import Any

# pytest imports this file on its own, outside any package, when the
# checkout's folder name is not an identifier (e.g. "sliced-inference", the
# repository's name): then there is nothing to import it from.
if __package__:
    from ._version import __version__

# Public name -> module (relative to this package) that defines it.
_SDK = {
    "apply_sliced_model": ".sdk",
    "apply_baseline_model": ".sdk",
    "get_run_info": ".sdk",
    "get_run_history": ".sdk",
    "list_runs": ".sdk",
    "delete_runs": ".sdk",
    "compute_metadata": ".sdk",
    "write_previews": ".sdk",
    "compare_runs": ".evaluation",
    "recovered_view": ".evaluation",
    "lost_view": ".evaluation",
    "load_comparison": ".evaluation",
    "delete_comparisons": ".evaluation",
    "seam_view": ".evaluation",
    "find_slice_settings": ".evaluation",
    "load_sweep": ".evaluation",
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
