"""The SDK: sliced and baseline inference over FiftyOne datasets, label writing, run records.

- ``inference``: ``apply_sliced_model`` / ``apply_baseline_model``, the public calls;
- ``run``: the run loop (read, predict, write, record) and its summary;
- ``video``: the same on the frames of videos (``frames.<field>``), with
  tracking; ``frame_writer`` writes frame labels in batches;
- ``batch_writer``, ``label_fields``, ``shards``, ``model_cache``: its parts;
- ``labels``: engine ``Predictions`` <-> FiftyOne ``Detections``;
- ``fiftyone_model``: any FiftyOne ``Model`` as an engine ``TileModel``;
- ``run_records``: what each run stored on the dataset.

Imports FiftyOne and the engine (``slicer``); never the evaluation or the App.
"""

from .inference import (
    apply_baseline_model,
    apply_sliced_model,
    baseline_run,
    sliced_run,
)
from .label_fields import LabelFieldError, check_label_field, label_field_problem
from .model_cache import absolute_model_path, cached_model, clear_model_cache
from .run import InferenceRun, InferenceSummary
from .run_records import delete_runs, get_run_info, list_runs
from .shards import shard_of, shard_view, shard_views
from .video import VideoRun, VideoSummary

__all__ = [
    "InferenceRun",
    "InferenceSummary",
    "LabelFieldError",
    "absolute_model_path",
    "VideoRun",
    "VideoSummary",
    "apply_baseline_model",
    "apply_sliced_model",
    "baseline_run",
    "cached_model",
    "check_label_field",
    "clear_model_cache",
    "delete_runs",
    "get_run_info",
    "label_field_problem",
    "list_runs",
    "shard_of",
    "shard_view",
    "shard_views",
    "sliced_run",
]
