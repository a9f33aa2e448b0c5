"""The slicing engine: tiles, model adapters, per-tile prediction and merging.

Depends on numpy, OpenCV and (lazily) torch and the model libraries; never on
FiftyOne. Images are RGB ``HxWx3`` uint8 throughout (see ``images``). Videos
are read frame by frame (``video``) and detections linked into tracks
(``tracking``, Ultralytics' trackers).

Example::

    from sliced_inference.slicer import load_model, predict_sliced

    model = load_model("models/small-objects-det.pt")
    preds = predict_sliced("large.jpg", model, slice_wh=640, overlap=0.2)
    print(len(preds), preds.labels[:5])
"""

from .errors import ConfigError, ImageError, ModelLoadError, SlicerError, VideoError
from .images import load_image, to_rgb
from .merge import MergeConfig, merge_detections
from .models import CallableModel, TileModel, load_model, select_device
from .options import ModelOptions, PredictOptions, SliceOptions, VideoOptions
from .predictions import FULL_IMAGE, Predictions
from .settings import Setting, settings_of
from .sliced import predict_full_image, predict_sliced
from .tiles import overlap_pixels, tile_boxes
from .tracking import Tracker
from .video import VideoInfo, read_frames, video_info

__all__ = [
    "FULL_IMAGE",
    "CallableModel",
    "ConfigError",
    "ImageError",
    "MergeConfig",
    "ModelLoadError",
    "ModelOptions",
    "PredictOptions",
    "Predictions",
    "Setting",
    "SliceOptions",
    "SlicerError",
    "TileModel",
    "Tracker",
    "VideoError",
    "VideoInfo",
    "VideoOptions",
    "load_image",
    "load_model",
    "merge_detections",
    "overlap_pixels",
    "predict_full_image",
    "predict_sliced",
    "read_frames",
    "select_device",
    "settings_of",
    "tile_boxes",
    "to_rgb",
    "video_info",
]
