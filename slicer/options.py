"""Every setting of a run and its default, in one place.

- ``PredictOptions``: what any prediction takes (input size, confidence,
  classes, detections per image); a baseline run is exactly this.
- ``SliceOptions``: those plus the tiling, the full-image pass, batching and the
  merge (``MergeConfig``).
- ``ModelOptions``: how the model is loaded and run (device, backend,
  precision).

Each field is declared with ``settings.setting``, so the SDK's keywords, the
App's forms, the README's options table and the run record
(``options.to_dict()``) all read one default and one description.

Example::

    >>> options = SliceOptions(slice_wh=512, overlap=0.25)
    >>> options.slice_wh, options.merge.strategy
    ((512, 512), 'provenance')
    >>> SliceOptions.from_params({"slice_wh": 800, "merge": "nms"}).merge.strategy
    'nms'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .bands import SCALINGS
from .errors import ConfigError
from .merge import MergeConfig
from .settings import Setting, from_params, setting, settings_of
from .tiles import Overlap, SliceWH, normalize_slice_wh, overlap_pixels

#: Peak memory of one forward pass per input pixel, a little above the most
#: measured (``python -m bench.input_memory``, CPU, ``VmHWM``): the bundled
#: YOLOv8n detector 54-55, the segmenter 79-94 bytes per pixel at 1280-5120 px
#: inputs. Bigger networks need more: estimates are lower bounds for them.
BYTES_PER_INPUT_PIXEL = 100
#: Largest model input size accepted, in pixels: one square input of this size
#: is estimated at 6.25 GiB. A typo such as 25600 for 2560 would need 61 GiB.
MAX_IMGSZ = 8192
#: Input size assumed when a run leaves ``imgsz`` to the model (the usual 640).
_DEFAULT_INPUT = 640


def input_memory_bytes(width: int, height: int, batch: int = 1) -> int:
    """Estimated peak memory of one forward pass on ``batch`` inputs of ``width x height``.

    Example::

        >>> round(input_memory_bytes(2560, 2560) / 2**30, 2)
        0.61
    """
    return int(width) * int(height) * int(batch) * BYTES_PER_INPUT_PIXEL


@dataclass(frozen=True, kw_only=True)
class PredictOptions:
    """What any prediction takes: the whole-image (baseline) run is exactly this.

    Attributes:
        imgsz: model input size (longer side) in pixels.
        confidence: minimum score kept.
        classes: labels (or class ids) to keep; ``None`` keeps all.
        max_detections: most detections per image, best first.
        bands: 1-based bands of a raster read in windows shown as RGB (three)
            or gray (one); ``None`` takes the first three (see ``bands``).
        scaling: how raster bands become 8-bit (``bands.SCALINGS``).
    """

    imgsz: int | None = setting(
        None,
        label="Input size (px)",
        help="Model input size (longer side); empty uses the size the model was "
        "trained at. Raise it (e.g. 1280) for the 'higher resolution' baseline.",
        kind="int",
        minimum=32,
        maximum=MAX_IMGSZ,
    )
    confidence: float = setting(
        0.25,
        label="Confidence threshold",
        help="Detections scoring lower are dropped; lower it to pre-label "
        "more candidates for review.",
        kind="float",
        minimum=0.0,
        maximum=1.0,
    )
    classes: tuple[str | int, ...] | None = setting(
        None,
        label="Classes",
        help="Keep only these labels (or class ids); empty keeps all.",
        kind="list",
    )
    max_detections: int | None = setting(
        None,
        label="Max detections per image",
        help="Keep the best N per image; empty keeps all.",
        kind="int",
        minimum=1,
    )
    bands: tuple[int, ...] | None = setting(
        None,
        label="Bands (multi-band rasters)",
        help="Bands of a raster read in windows (tiled TIFF, BigTIFF, GeoTIFF, "
        "16-bit or multi-band TIFF) shown to the model as RGB, counted from 1 "
        "as GDAL does: three (e.g. 4, 3, 2) or one (gray). Empty takes the first "
        "three, or the only one. JPEG, PNG and 8-bit RGB images are used as "
        "they are.",
        kind="list",
    )
    scaling: str = setting(
        "auto",
        label="Band scaling",
        help="How raster bands become 8-bit: 'auto' keeps 8-bit data and "
        "stretches other data per band between its 2nd and 98th percentiles; "
        "'percentile' always stretches; 'range' uses the data type's range.",
        kind="choice",
        choices=SCALINGS,
    )

    def __post_init__(self) -> None:
        _check_input_size("imgsz", self.imgsz)
        object.__setattr__(self, "bands", _normalize_bands(self.bands))
        if self.scaling not in SCALINGS:
            raise ConfigError(
                f"scaling must be one of {', '.join(SCALINGS)}; got {self.scaling!r}"
            )
        if isinstance(self.confidence, bool) or not isinstance(
            self.confidence, (int, float, np.number)
        ):
            raise ConfigError(f"confidence must be a number, got {self.confidence!r}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ConfigError(f"confidence must be in [0, 1], got {self.confidence!r}")
        object.__setattr__(self, "classes", _normalize_classes(self.classes))
        if self.max_detections is not None and (
            not _is_int(self.max_detections) or self.max_detections < 1
        ):
            raise ConfigError(
                "max_detections must be a positive whole number or None, got "
                f"{self.max_detections!r}"
            )

    @classmethod
    def settings(cls) -> dict[str, Setting]:
        """Every setting, by its flat name (the SDK keyword and form input)."""
        found = settings_of(cls)
        if any(f.name == "merge" for f in dataclasses.fields(cls)):
            del found["merge"]
            found.update(settings_of(MergeConfig))
        return found

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, strict: bool = True) -> Any:
        """Options from flat parameters (SDK keywords, a form's values).

        ``None`` means the default. Merge settings are flat (``merge``,
        ``merge_metric``, ``merge_threshold``, ``class_agnostic``); ``merge``
        may also be a ``MergeConfig``.

        Args:
            params: flat name -> value.
            strict: raise ``TypeError`` for names that are not settings;
                ``False`` ignores them.
        """
        params = dict(params)
        if "merge" not in cls.settings():
            return from_params(cls, params, strict=strict)
        merge_names = settings_of(MergeConfig)
        merge_params = {k: params.pop(k) for k in list(params) if k in merge_names}
        strategy = merge_params.get("merge")
        if isinstance(strategy, MergeConfig):
            given = {
                k: v
                for k, v in merge_params.items()
                if k != "merge" and v is not None and v != merge_names[k].default
            }
            if given:
                raise ConfigError(
                    "pass merge settings either as a MergeConfig or as keywords, "
                    "not both"
                )
            merge = strategy
        else:
            merge = from_params(MergeConfig, merge_params)
        own = from_params(cls, params, strict=strict)
        return dataclasses.replace(own, merge=merge)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly settings (``merge`` nested), as run records store them."""
        return _plain(dataclasses.asdict(self))

    def to_params(self) -> dict[str, Any]:
        """Flat parameters that ``from_params`` turns back into these options."""
        merge_names = settings_of(MergeConfig) if hasattr(self, "merge") else {}
        return {
            name: _plain(getattr(self.merge if name in merge_names else self, s.field))
            for name, s in self.settings().items()
        }

    def peak_input_bytes(self) -> int:
        """Estimated memory of the run's largest forward pass (see ``input_memory_bytes``).

        Example::

            >>> PredictOptions(imgsz=4096).peak_input_bytes() / 2**30
            1.5625
        """
        size = self.imgsz or _DEFAULT_INPUT
        return input_memory_bytes(size, size)


@dataclass(frozen=True, kw_only=True)
class SliceOptions(PredictOptions):
    """Every setting of a sliced run, validated once when built.

    Attributes:
        slice_wh: tile size in pixels, an int or ``(width, height)``.
        overlap: ratio in ``[0, 1)`` (float or pair) or pixels (int or pair).
        imgsz: model input size for tiles; ``None`` runs each tile at its own
            resolution, so small objects are not shrunk again.
        full_image_pass: also predict on the whole image and merge, which
            helps objects larger than a tile.
        full_image_imgsz: input size of that pass; ``None`` = the model's own.
        batch_size: tiles per forward pass (all of one shape).
        confidence: minimum score kept.
        classes: labels (or ids) to keep; ``None`` keeps all.
        max_detections: most detections per image after merging (best first).
        merge: how duplicates across tiles are merged.

    Example::

        >>> SliceOptions(slice_wh=512, overlap=0.25).slice_wh
        (512, 512)
    """

    slice_wh: SliceWH = setting(
        640,
        label="Slice size (px)",
        help="Width and height of each tile. Start at the model's input size; "
        "objects should be well under a tile (see find_slice_settings).",
        kind="int",
        minimum=32,
    )
    overlap: Overlap = setting(
        0.2,
        label="Overlap",
        help="Fraction of a tile shared with its neighbour (an int is pixels). "
        "Raise it when objects are large relative to a tile.",
        kind="float",
        minimum=0.0,
        maximum=0.95,
    )
    imgsz: int | None = setting(
        None,
        label="Tile input size (px)",
        help="Model input size for each tile; empty runs tiles at their own "
        "size, so small objects are not shrunk again.",
        kind="int",
        minimum=32,
        maximum=MAX_IMGSZ,
    )
    full_image_pass: bool = setting(
        False,
        label="Add a full-image pass",
        help="Also predict on the whole image and merge: brings back objects "
        "larger than a tile.",
        kind="bool",
    )
    full_image_imgsz: int | None = setting(
        None,
        label="Full-image input size (px)",
        help="Input size of the full-image pass; empty uses the model's own.",
        kind="int",
        minimum=32,
        maximum=MAX_IMGSZ,
    )
    batch_size: int = setting(
        1,
        label="Batch size",
        help="Tiles per forward pass; a GPU gains from more (e.g. 8-32), a CPU "
        "does not.",
        kind="int",
        minimum=1,
        maximum=256,
    )
    merge: MergeConfig = setting(
        label="Merge",
        help="How duplicates across tiles are merged (see MergeConfig).",
        kind="str",
        default_factory=MergeConfig,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        slice_wh = normalize_slice_wh(self.slice_wh)
        object.__setattr__(self, "slice_wh", slice_wh)
        overlap_pixels(self.overlap, slice_wh)  # validates
        if isinstance(self.overlap, list):
            object.__setattr__(self, "overlap", tuple(self.overlap))
        if isinstance(self.merge, str):
            object.__setattr__(self, "merge", MergeConfig(strategy=self.merge))
        elif isinstance(self.merge, Mapping):
            object.__setattr__(self, "merge", MergeConfig(**self.merge))
        elif not isinstance(self.merge, MergeConfig):
            raise ConfigError(f"merge must be a strategy name, got {self.merge!r}")
        if not isinstance(self.full_image_pass, (bool, np.bool_)):
            raise ConfigError(
                f"full_image_pass must be True or False, got {self.full_image_pass!r}"
            )
        _check_input_size("full_image_imgsz", self.full_image_imgsz)
        if not _is_int(self.batch_size) or self.batch_size < 1:
            raise ConfigError(
                f"batch_size must be a positive whole number, got {self.batch_size!r}"
            )

    def peak_input_bytes(self) -> int:
        """Estimated memory of the largest forward pass: a batch of tiles, or the full pass.

        Example::

            >>> SliceOptions(slice_wh=640, batch_size=8).peak_input_bytes() / 2**20
            312.5
        """
        width, height = (self.imgsz, self.imgsz) if self.imgsz else self.slice_wh
        tiles = input_memory_bytes(width, height, self.batch_size)
        if not self.full_image_pass:
            return tiles
        full = self.full_image_imgsz or _DEFAULT_INPUT
        return max(tiles, input_memory_bytes(full, full))


#: What can run a network (``ModelOptions.backend``).
BACKENDS = {
    "auto": "OpenVINO for Ultralytics detect/segment models on a CPU, PyTorch "
    "otherwise (GPUs, oriented-box models)",
    "torch": "PyTorch, everywhere (GPU: with half precision and batched tiles)",
    "openvino": "OpenVINO on the CPU (Ultralytics detect/segment models)",
}
#: Numeric precision of the network (``ModelOptions.precision``).
PRECISIONS = {
    "fp32": "32-bit floats: the model's own accuracy, the same numbers as PyTorch",
    "bf16": "bfloat16 inside the network (OpenVINO, on CPUs with native "
    "bfloat16; 32-bit floats elsewhere): faster",
    "int8": "8-bit, quantized on the run's first tiles (OpenVINO): fastest",
}


@dataclass(frozen=True, kw_only=True)
class ModelOptions:
    """How a model is loaded and run.

    Attributes:
        device: torch device; ``None`` picks cuda, then mps, then cpu.
        half: float16 inference (CUDA only; ignored elsewhere).
        backend: ``"auto"`` (OpenVINO for Ultralytics detect/segment models
            on a CPU, else PyTorch), ``"torch"`` or ``"openvino"``.
        precision: ``"fp32"``, ``"bf16"`` (OpenVINO only, on CPUs with
            native bfloat16) or ``"int8"`` (OpenVINO only, quantized with
            NNCF on the first ``calibration_tiles`` tiles of the run).
        calibration_tiles: how many tiles calibrate an INT8 model.
        trust_remote_code: let Transformers run a hub repository's own code.
        allow_unsafe_pickle: fully unpickle ``.pt`` files (off: Ultralytics'
            ``weights_only`` safe loading).
    """

    device: str | None = setting(
        None,
        label="Device",
        help="Torch device: cpu, cuda, cuda:N or mps; empty picks cuda, then "
        "mps, then cpu.",
        kind="str",
    )
    half: bool = setting(
        False,
        label="Half precision",
        help="float16 inference on CUDA: about twice the speed on recent GPUs; "
        "ignored on CPU.",
        kind="bool",
    )
    backend: str = setting(
        "auto",
        label="Backend",
        help="What runs the network. auto: OpenVINO for Ultralytics detect and "
        "segment models on a CPU, PyTorch on a GPU and "
        "for other models (oriented boxes included).",
        kind="choice",
        choices=BACKENDS,
    )
    precision: str = setting(
        "fp32",
        label="Precision",
        help="Numbers inside the network on the OpenVINO backend. bf16 and "
        "int8 (calibrated on the first tiles of the run) are faster and move "
        "individual detections slightly; check them on your data.",
        kind="choice",
        choices=PRECISIONS,
    )
    calibration_tiles: int = setting(
        32,
        label="INT8 calibration tiles",
        help="How many tiles (the first of the run) calibrate an int8 model; "
        "more is slower to quantize and closer to your data.",
        kind="int",
        minimum=1,
        maximum=1024,
    )
    trust_remote_code: bool = setting(
        False,
        label="Trust remote code",
        help="Let Transformers run a hub repository's own Python code. Off "
        "unless you trust the repository.",
        kind="bool",
    )
    allow_unsafe_pickle: bool = setting(
        False,
        label="Allow unsafe pickle",
        help="Fully unpickle Ultralytics .pt files (legacy checkpoints that "
        "safe loading refuses). Unpickling runs any code the file holds: only "
        "for files you trust. In the App this is a plugin setting, never a "
        "form input.",
        kind="bool",
    )

    def __post_init__(self) -> None:
        for name, choices in (("backend", BACKENDS), ("precision", PRECISIONS)):
            value = getattr(self, name)
            if value not in choices:
                raise ConfigError(
                    f"{name} must be one of {', '.join(choices)}; got {value!r}"
                )
        if not _is_int(self.calibration_tiles) or self.calibration_tiles < 1:
            raise ConfigError(
                "calibration_tiles must be a positive whole number, got "
                f"{self.calibration_tiles!r}"
            )
        if self.precision != "fp32" and self.backend == "torch":
            raise ConfigError(
                f"precision {self.precision!r} runs on the OpenVINO backend: use "
                "backend='openvino' or 'auto' (on a CPU)"
            )

    @classmethod
    def settings(cls) -> dict[str, Setting]:
        """Every setting, by name."""
        return settings_of(cls)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, strict: bool = True) -> Any:
        """Options from flat parameters; ``None`` means the default."""
        return from_params(cls, params, strict=strict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly settings."""
        return _plain(dataclasses.asdict(self))


def _check_input_size(name: str, value: Any) -> None:
    """A model input size: positive, and within ``MAX_IMGSZ`` (with the memory it needs)."""
    _check_size(name, value)
    if value is not None and value > MAX_IMGSZ:
        need = input_memory_bytes(value, value) / 2**30
        limit = input_memory_bytes(MAX_IMGSZ, MAX_IMGSZ) / 2**30
        raise ConfigError(
            f"{name}={value} px is too large: an input of up to {value}x{value} px needs "
            f"about "
            f"{need:.0f} GiB of memory (estimated at {BYTES_PER_INPUT_PIXEL} bytes per "
            f"input pixel, measured with the bundled YOLOv8n models; larger models "
            f"need more). The most accepted is {MAX_IMGSZ} px (about {limit:.1f} GiB)"
        )


def _check_size(name: str, value: Any) -> None:
    if value is not None and (not _is_int(value) or value <= 0):
        raise ConfigError(
            f"{name} must be a positive whole number of pixels or None, got {value!r}"
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    )


def _normalize_classes(classes: Any) -> tuple[str | int, ...] | None:
    """``None``/empty -> ``None``; one name -> a 1-tuple; a sequence -> a tuple."""
    if classes is None:
        return None
    if isinstance(classes, (str, int, np.integer)) and not isinstance(classes, bool):
        classes = [classes]
    if not isinstance(classes, Sequence) and not isinstance(classes, (set, frozenset)):
        raise ConfigError(
            f"classes must be a label, a list of labels or None, got {classes!r}"
        )
    values = []
    for c in classes:
        if isinstance(c, bool) or not isinstance(c, (str, int, np.integer)):
            raise ConfigError(f"classes must be labels or class ids, got {c!r}")
        values.append(int(c) if isinstance(c, np.integer) else c)
    return tuple(values) or None


def _normalize_bands(bands: Any) -> tuple[int, ...] | None:
    """``None``/empty -> ``None``; one or three band numbers (from 1) -> a tuple.

    Form values arrive as text (``["4", "3", "2"]``), SDK values as numbers.
    """
    if bands is None:
        return None
    if isinstance(bands, (str, int, np.integer)) and not isinstance(bands, bool):
        bands = [bands]
    if not isinstance(bands, Sequence):
        raise ConfigError(f"bands must be a list of band numbers, got {bands!r}")
    values = []
    for band in bands:
        text = str(band).strip()
        if isinstance(band, bool) or not text.isdigit() or int(text) < 1:
            raise ConfigError(
                f"bands are band numbers counted from 1, got {band!r} in {bands!r}"
            )
        values.append(int(text))
    if len(values) not in (0, 1, 3):
        raise ConfigError(
            f"bands must name three bands (red, green, blue) or one (gray), got {bands!r}"
        )
    return tuple(values) or None


def _plain(value: Any) -> Any:
    """Tuples -> lists, numpy scalars -> Python numbers, recursively."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


#: The trackers a video run can use: name -> what it does.
TRACKERS = {
    "none": "No tracking: detections only.",
    "bytetrack": "Ultralytics' ByteTrack: motion (Kalman filter) and box overlap; "
    "fast, for a steady camera.",
    "botsort": "Ultralytics' BoT-SORT: ByteTrack plus camera-motion compensation "
    "(gmc_method), for a moving camera (drones); slower.",
}
#: Camera-motion compensation methods of BoT-SORT.
GMC_METHODS = {
    "sparseOptFlow": "Sparse optical flow (Ultralytics' default).",
    "orb": "ORB feature matching.",
    "sift": "SIFT feature matching (slow).",
    "ecc": "Enhanced correlation coefficient (slow).",
    "none": "No compensation: a steady camera.",
}


def _score_setting(default: float, *, label: str, help: str) -> Any:
    """A tracker setting that is a score or threshold in ``[0, 1]``."""
    return setting(
        default, label=label, help=help, kind="float", minimum=0.0, maximum=1.0
    )


#: The tracker settings that are scores or thresholds in [0, 1].
_TRACKER_SCORES = (
    "track_high_thresh",
    "track_low_thresh",
    "new_track_thresh",
    "match_thresh",
)


@dataclass(frozen=True, kw_only=True)
class VideoOptions:
    """Which frames of a video are labelled, and how detections become tracks.

    Frames are numbered from 1, as FiftyOne numbers them. The tracker settings
    are Ultralytics' (``bytetrack.yaml`` / ``botsort.yaml``), with the same
    defaults; they apply to the merged detections of each labelled frame.

    Attributes:
        frame_step: label every Nth frame of the range (1: every frame).
        first_frame: first frame of the range (``None``: the first).
        last_frame: last frame of the range, included (``None``: the last);
            a range beyond a video's end stops at its end.
        tracker: ``None`` (or ``"none"``), ``"bytetrack"`` or ``"botsort"``.
        track_high_thresh: score for the first association stage.
        track_low_thresh: lowest score used by the second stage.
        new_track_thresh: score a detection needs to start a track.
        track_buffer: labelled frames a lost track is kept for.
        match_thresh: association threshold (1 - IoU cost).
        gmc_method: BoT-SORT's camera-motion compensation.

    Example::

        >>> VideoOptions(frame_step=5, tracker="bytetrack").frame_numbers(23)
        range(1, 24, 5)
    """

    frame_step: int = setting(
        1,
        label="Every Nth frame",
        help="Label every Nth frame of the range (1: every frame); the others "
        "are decoded but not labelled.",
        kind="int",
        minimum=1,
    )
    first_frame: int | None = setting(
        None,
        label="First frame",
        help="First frame to label (frames are numbered from 1); empty: the first.",
        kind="int",
        minimum=1,
    )
    last_frame: int | None = setting(
        None,
        label="Last frame",
        help="Last frame to label, included; empty: the last. A range beyond a "
        "video's end stops at its end.",
        kind="int",
        minimum=1,
    )
    tracker: str | None = setting(
        None,
        label="Tracker",
        help="Link detections across frames into tracks; each detection's "
        "index is its track id, which the App draws as a trajectory.",
        kind="choice",
        choices=TRACKERS,
    )
    track_high_thresh: float = _score_setting(
        0.25,
        label="Tracker: high score",
        help="Detections scoring at least this are associated first.",
    )
    track_low_thresh: float = _score_setting(
        0.1,
        label="Tracker: low score",
        help="Detections between this and the high score are used in a second "
        "association (lower the run's confidence to this to use it).",
    )
    new_track_thresh: float = _score_setting(
        0.25,
        label="Tracker: new-track score",
        help="A detection that matches no track starts one if it scores at least this.",
    )
    track_buffer: int = setting(
        30,
        label="Tracker: frames a lost track is kept",
        help="Labelled frames a track survives without a detection (occlusion); "
        "with frame_step N, N times as many video frames.",
        kind="int",
        minimum=0,
    )
    match_thresh: float = _score_setting(
        0.8,
        label="Tracker: match threshold",
        help="Association cost limit (1 - IoU, fused with the score); raise it "
        "for fast objects that overlap little between labelled frames.",
    )
    gmc_method: str = setting(
        "sparseOptFlow",
        label="Tracker: camera-motion compensation",
        help="BoT-SORT only: how camera motion between frames is estimated.",
        kind="choice",
        choices=GMC_METHODS,
    )

    def __post_init__(self) -> None:
        if self.tracker == "none":
            object.__setattr__(self, "tracker", None)
        if self.tracker is not None and self.tracker not in TRACKERS:
            raise ConfigError(
                f"tracker must be None or one of {', '.join(TRACKERS)}; "
                f"got {self.tracker!r}"
            )
        if self.gmc_method not in GMC_METHODS:
            raise ConfigError(
                f"gmc_method must be one of {', '.join(GMC_METHODS)}; "
                f"got {self.gmc_method!r}"
            )
        if not _is_int(self.frame_step) or self.frame_step < 1:
            raise ConfigError(
                f"frame_step must be a positive whole number, got {self.frame_step!r}"
            )
        for name in ("first_frame", "last_frame"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 1):
                raise ConfigError(
                    f"{name} must be a frame number (from 1) or None, got {value!r}"
                )
        first, last = self.first_frame, self.last_frame
        if first is not None and last is not None and last < first:
            raise ConfigError(f"last_frame ({last}) is before first_frame ({first})")
        for name in _TRACKER_SCORES:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{name} must be a number, got {value!r}")
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {value!r}")
        if not _is_int(self.track_buffer) or self.track_buffer < 0:
            raise ConfigError(
                f"track_buffer must be a whole number >= 0, got {self.track_buffer!r}"
            )

    @classmethod
    def settings(cls) -> dict[str, Setting]:
        """Every setting, by name."""
        return settings_of(cls)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, strict: bool = True) -> Any:
        """Options from flat parameters; ``None`` means the default."""
        return from_params(cls, params, strict=strict)

    def frame_numbers(self, total_frames: int) -> range:
        """The frames to label in a video of ``total_frames`` frames (1-based)."""
        first = self.first_frame or 1
        last = min(self.last_frame or total_frames, total_frames)
        return range(first, last + 1, self.frame_step)

    def tracker_settings(self) -> dict[str, Any]:
        """The tracker's own settings (empty without a tracker)."""
        if self.tracker is None:
            return {}
        names = [*_TRACKER_SCORES, "track_buffer"]
        if self.tracker == "botsort":
            names.append("gmc_method")
        return {name: getattr(self, name) for name in names}

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly settings as run records store them (tracker settings
        only when a tracker runs)."""
        return {
            "frame_step": self.frame_step,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "tracker": self.tracker,
            **self.tracker_settings(),
        }
