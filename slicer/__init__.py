"""The slicing engine: tiles, model adapters, per-tile prediction and merging.

Depends on numpy, OpenCV and (lazily) torch and the model libraries; never on
FiftyOne. Images are RGB ``HxWx3`` uint8 throughout (see ``images``); tiled
TIFFs are read window by window (see ``rasters``). Videos are read frame by
frame (``video``) and detections linked into tracks (``tracking``,
Ultralytics' trackers).

Example::

    from sliced_inference.slicer import load_model, predict_sliced

    model = load_model("models/small-objects-det.pt")
    preds = predict_sliced("large.jpg", model, slice_wh=640, overlap=0.2)
    print(len(preds), preds.labels[:5])
"""

from .errors import ConfigError, ImageError, ModelLoadError, SlicerError, VideoError
from .images import load_image, to_rgb
from .merge import MergeConfig, merge_detections
from .models import CallableModel, TileModel, is_rotated, load_model, select_device
from .models.export_cache import cache_root, clear_cache
from .options import ModelOptions, PredictOptions, SliceOptions, VideoOptions
from .predictions import FULL_IMAGE, Predictions
from .rasters import ArrayRaster, RasterSource, open_raster
from .settings import Setting, settings_of
from .sliced import (
    Unmerged,
    calibrate,
    predict_full_image,
    predict_sliced,
    predict_unmerged,
)
from .tiles import crosses_seam, overlap_pixels, seam_lines, tile_boxes
from .tracking import Tracker
from .video import VideoInfo, read_frames, video_info

__all__ = [
    "FULL_IMAGE",
    "ArrayRaster",
    "CallableModel",
    "ConfigError",
    "ImageError",
    "MergeConfig",
    "ModelLoadError",
    "ModelOptions",
    "PredictOptions",
    "Predictions",
    "RasterSource",
    "Setting",
    "SliceOptions",
    "SlicerError",
    "TileModel",
    "Tracker",
    "Unmerged",
    "VideoError",
    "VideoInfo",
    "VideoOptions",
    "cache_root",
    "calibrate",
    "clear_cache",
    "crosses_seam",
    "is_rotated",
    "load_image",
    "load_model",
    "merge_detections",
    "open_raster",
    "overlap_pixels",
    "predict_full_image",
    "predict_sliced",
    "predict_unmerged",
    "read_frames",
    "seam_lines",
    "select_device",
    "settings_of",
    "tile_boxes",
    "to_rgb",
    "video_info",
]
