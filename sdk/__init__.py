"""The SDK: sliced and baseline inference over FiftyOne datasets, label writing, run records.

- ``inference``: ``apply_sliced_model`` / ``apply_baseline_model``, the public calls;
- ``run``: the run loop (read, predict, write, record) and its summary;
- ``video``: the same on the frames of videos (``frames.<field>``), with
  tracking; ``frame_writer`` writes frame labels in batches;
- ``batch_writer``, ``label_fields``, ``label_runs``, ``sample_scope``,
  ``field_claims``, ``shards``, ``model_cache``: its parts;
- ``labels``: engine ``Predictions`` <-> FiftyOne ``Detections``;
- ``fiftyone_model``: any FiftyOne ``Model`` as an engine ``TileModel``;
- ``run_records``: what each run stored on the dataset;
- ``metadata``: image metadata from file headers (TIFFs of any size, georeference);
- ``previews``: low-resolution previews for images the App cannot show.

Imports FiftyOne and the engine (``slicer``); never the evaluation or the App.
"""

from .field_claims import FieldInUseError, field_writer
from .inference import (
    apply_baseline_model,
    apply_sliced_model,
    baseline_run,
    sliced_run,
)
from .label_fields import LabelFieldError, check_label_field, label_field_problem
from .metadata import compute_metadata, image_metadata
from .model_cache import absolute_model_path, cached_model, clear_model_cache
from .previews import write_previews
from .run import InferenceRun, InferenceSummary, tiles_field
from .run_records import delete_runs, get_run_history, get_run_info, list_runs
from .shards import shard_of, shard_view, shard_views
from .video import VideoRun, VideoSummary

__all__ = [
    "FieldInUseError",
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
    "compute_metadata",
    "delete_runs",
    "field_writer",
    "get_run_history",
    "get_run_info",
    "image_metadata",
    "label_field_problem",
    "list_runs",
    "shard_of",
    "shard_view",
    "shard_views",
    "sliced_run",
    "tiles_field",
    "write_previews",
]
