"""Model adapters: everything the engine can slice with, behind one ``TileModel`` protocol.

``load_model`` is the one entry point; the model libraries are imported only
when a model of theirs is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError, ModelLoadError
from ..options import ModelOptions
from .base import (
    BatchedTileModel,
    Runtime,
    TileModel,
    input_scale,
    is_rotated,
    select_device,
)
from .callable_model import CallableModel, predictions_from_output

__all__ = [
    "BatchedTileModel",
    "CallableModel",
    "Runtime",
    "TileModel",
    "input_scale",
    "is_rotated",
    "load_model",
    "select_device",
    "predictions_from_output",
]


def load_model(
    model: Any,
    *,
    device: str | None = None,
    half: bool = False,
    backend: str = "auto",
    precision: str = "fp32",
    calibration_tiles: int = 32,
    trust_remote_code: bool = False,
    allow_unsafe_pickle: bool = False,
    token: str | None = None,
) -> TileModel:
    """Turns what the user has into a ``TileModel``.

    Args:
        model: any of
            - a ``TileModel`` (returned as is);
            - an Ultralytics ``.pt``/``.yaml``/... path (loaded safely, see
              ``load_yolo``) or a ``YOLO`` object;
            - a Transformers local directory or hub id, a ``(model, processor)``
              pair;
            - a callable ``tile -> detections`` (see ``CallableModel``).
        device: torch device; ``None`` picks cuda, mps or cpu.
        half: float16 inference (GPU only).
        backend: ``"auto"`` runs Ultralytics detect/segment models on
            OpenVINO on a CPU (exported once into a cache, see
            ``export_cache``) and everything else on PyTorch; ``"torch"`` or
            ``"openvino"`` force one (OpenVINO: Ultralytics models on the CPU).
            Oriented-box models run on PyTorch (``"auto"`` picks it). The
            model's ``runtime`` says what runs.
        precision: ``"fp32"``, or on OpenVINO ``"bf16"`` (where the CPU has
            native bfloat16) or ``"int8"`` (quantized with NNCF on the first
            ``calibration_tiles`` tiles it sees).
        calibration_tiles: how many tiles calibrate an INT8 model.
        trust_remote_code: let Transformers run a repository's own code (off
            unless you turn it on).
        allow_unsafe_pickle: fully unpickle Ultralytics ``.pt`` files that
            safe loading refuses (runs any code they hold: trusted files only).
        token: Hugging Face token for private hub models (else ``HF_TOKEN``).

    Example::

        >>> model = load_model("models/small-objects-det.pt", device="cpu")
        >>> sorted(model.class_names)[:1]
        [0]
    """
    options = ModelOptions(
        device=device,
        half=half,
        backend=backend,
        precision=precision,
        calibration_tiles=calibration_tiles,
        trust_remote_code=trust_remote_code,
        allow_unsafe_pickle=allow_unsafe_pickle,
    )
    if isinstance(model, TileModel):
        return model
    if isinstance(model, (str, Path)):
        return _load_path(model, options, token)
    if _is_yolo(model):
        return _ultralytics(model, options)
    _torch_only(options, type(model).__name__)
    if isinstance(model, tuple) and len(model) == 2:
        from .transformers import TransformersModel

        return TransformersModel(model[0], model[1], device=device, half=half)
    if callable(model) and not hasattr(model, "config"):
        return CallableModel(model)
    raise ModelLoadError(
        f"cannot use a {type(model).__name__} as a model: pass a path, a YOLO object, "
        "a (transformers model, processor) pair or a callable tile -> detections"
    )


def _load_path(spec: str | Path, options: ModelOptions, token: str | None) -> TileModel:
    from .ultralytics import ULTRALYTICS_SUFFIXES

    path = Path(spec)
    if not str(spec).strip():
        raise ModelLoadError("no model given (empty path)")
    if path.suffix.lower() in ULTRALYTICS_SUFFIXES:
        from .ultralytics import load_yolo

        yolo = load_yolo(path, allow_unsafe_pickle=options.allow_unsafe_pickle)
        return _ultralytics(yolo, options)
    if path.is_dir() or (not path.exists() and str(spec).count("/") == 1):
        from .transformers import TransformersModel, load_transformers

        _torch_only(options, "Transformers model")
        net, processor = load_transformers(
            spec, trust_remote_code=options.trust_remote_code, token=token
        )
        return TransformersModel(
            net, processor, device=options.device, half=options.half
        )
    if path.exists():
        raise ModelLoadError(
            f"{path} is not a model this plugin knows: use an Ultralytics file "
            f"({', '.join(ULTRALYTICS_SUFFIXES)}) or a Transformers model directory"
        )
    raise ModelLoadError(
        f"model not found: {spec!r} is neither a local file or directory nor a "
        "Hugging Face hub id (org/name)"
    )


def _ultralytics(yolo: Any, options: ModelOptions) -> TileModel:
    from .ultralytics import UltralyticsModel

    return UltralyticsModel(
        yolo,
        device=options.device,
        half=options.half,
        backend=options.backend,
        precision=options.precision,
        calibration_tiles=options.calibration_tiles,
    )


def _torch_only(options: ModelOptions, what: str) -> None:
    """Explicit OpenVINO, bf16 or INT8 asked for a model that only runs on PyTorch: say so."""
    if options.backend == "openvino" or options.precision != "fp32":
        asked = (
            "backend 'openvino'"
            if options.backend == "openvino"
            else f"precision {options.precision!r}"
        )
        raise ConfigError(
            f"{asked} runs Ultralytics YOLO models only; a {what} runs on "
            "PyTorch (use backend 'auto' or 'torch' and precision 'fp32')"
        )


def _is_yolo(model: Any) -> bool:
    """Duck-typed ``ultralytics.YOLO`` check that does not import ultralytics."""
    return type(model).__module__.startswith("ultralytics") and hasattr(model, "task")
