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
    "fp32": "32-bit floats: the model's own accuracy",
    "int8": "8-bit, quantized on the run's first tiles (OpenVINO): faster",
}


@dataclass(frozen=True, kw_only=True)
class ModelOptions:
    """How a model is loaded and run.

    Attributes:
        device: torch device; ``None`` picks cuda, then mps, then cpu.
        half: float16 inference (CUDA only; ignored elsewhere).
        backend: ``"auto"`` (OpenVINO for Ultralytics detect/segment models
            on a CPU, else PyTorch), ``"torch"`` or ``"openvino"``.
        precision: ``"fp32"`` or ``"int8"`` (OpenVINO only, quantized with
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
        "segment models on a CPU (about 3x faster there), PyTorch on a GPU and "
        "for other models (oriented boxes included).",
        kind="choice",
        choices=BACKENDS,
    )
    precision: str = setting(
        "fp32",
        label="Precision",
        help="Numbers inside the network on the OpenVINO backend. int8 is "
        "faster still, calibrated on the first tiles of the run; check its "
        "accuracy on your data.",
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
        if self.precision == "int8" and self.backend == "torch":
            raise ConfigError(
                "precision 'int8' runs on the OpenVINO backend: use "
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
