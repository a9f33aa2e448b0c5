"""The protocol every model adapter implements, what a loaded model really runs with, and device choice."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from ..errors import ConfigError
from ..predictions import Predictions

T = TypeVar("T")
R = TypeVar("R")


@runtime_checkable
class TileModel(Protocol):
    """A detector that predicts on a batch of same-shaped tiles.

    Tiles are ``HxWx3`` uint8 arrays in **RGB** order (the engine converts every
    image to RGB once, when it is loaded). Each returned ``Predictions`` is in
    that tile's pixel coordinates; the engine shifts it into the image.

    What the engine reads:

    - ``class_names``: class id -> label;
    - ``default_imgsz``: the input size of a whole-image pass when none is
      given (the size the model was trained at), or ``None`` when the model
      sizes its own input;
    - ``segments``: whether predictions carry instance masks;
    - ``rotated`` (optional, ``False`` when absent): whether predictions
      carry rotated boxes (``Predictions.rboxes``, oriented-box models); read
      with ``is_rotated``;
    - ``predict_tiles``; and, when the adapter also implements
      ``BatchedTileModel``, ``predict_batches``, which gets every batch of an
      image at once (to overlap them, e.g. two streams on a CPU);
    - optionally ``runtime``, a ``Runtime``: what the loaded model really runs
      with (device, precision) and which settings it does not apply. Run
      records store those values, not the ones asked for (see
      ``settings_in_effect``); without it, every setting counts as applied;
    - optionally ``learns_classes``: ``True`` when ``class_names`` grows as
      labels show up in the outputs, so asked-for classes cannot be checked
      against it up front (``sliced.check_classes``).
    """

    #: class id -> label
    class_names: dict[int, str]
    #: input size of a whole-image pass, or None (the model sizes its input)
    default_imgsz: int | None
    #: whether predictions carry instance masks
    segments: bool

    def predict_tiles(
        self,
        tiles: Sequence[np.ndarray],
        *,
        imgsz: int | None = None,
        confidence: float = 0.25,
    ) -> list[Predictions]:
        """Predicts on each tile; ``imgsz`` overrides the model's input size."""
        ...


@runtime_checkable
class BatchedTileModel(TileModel, Protocol):
    """A ``TileModel`` that also takes an image's batches all at once."""

    def predict_batches(
        self,
        batches: Iterable[Sequence[np.ndarray]],
        *,
        imgsz: int | None = None,
        confidence: float = 0.25,
    ) -> Iterator[list[Predictions]]:
        """``predict_tiles`` on each batch, yielded in order."""
        ...


#: Settings that size the model's input; a model that sizes its own ignores both.
INPUT_SIZE_SETTINGS = ("imgsz", "full_image_imgsz")


@dataclass(frozen=True)
class Runtime:
    """What a loaded model really runs with, as opposed to what was asked for.

    Attributes:
        applied: setting name -> the value in effect, e.g. ``{"device": "cpu",
            "half": False}`` for a model asked for ``device=None, half=True``
            on a machine without CUDA.
        ignored: setting name -> why this model does not apply it, e.g.
            ``{"imgsz": "the callable sizes its own input"}``.

    Example::

        >>> Runtime({"device": "cpu"}, {"half": "float16 needs CUDA"}).applied
        {'device': 'cpu'}
    """

    applied: dict[str, Any] = field(default_factory=dict)
    ignored: dict[str, str] = field(default_factory=dict)


def settings_in_effect(
    model: Any, asked: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The settings a run really used, and those asked for that the model ignores.

    A setting counts as asked for when its value is neither ``None`` nor
    ``False`` (every such setting defaults to one of those: "the model's own").
    An ignored one is recorded as ``None`` (or ``False``), the value that ran.

    Args:
        model: a ``TileModel``, optionally with a ``runtime`` (``Runtime``).
        asked: setting name -> value asked for (e.g. ``options.to_dict()``).

    Returns:
        ``(settings, ignored)``: ``asked`` with the values in effect, and
        setting name -> why it was not applied, for the ones asked for.

    Example::

        >>> class Model:
        ...     runtime = Runtime(ignored={"imgsz": "it sizes its own input"})
        >>> settings_in_effect(Model(), {"imgsz": 1280, "confidence": 0.5})
        ({'imgsz': None, 'confidence': 0.5}, {'imgsz': 'it sizes its own input'})
    """
    runtime = getattr(model, "runtime", None) or Runtime()
    settings = dict(asked)
    settings.update({k: v for k, v in runtime.applied.items() if k in asked})
    ignored = {}
    for name, reason in runtime.ignored.items():
        value = asked.get(name)
        if value is None or value is False or runtime.applied.get(name) == value:
            continue
        ignored[name] = reason
        if name not in runtime.applied:
            settings[name] = False if isinstance(value, bool) else None
    return settings, ignored


def torch_runtime(
    device: str, half: bool, ignored: Mapping[str, str] | None = None
) -> Runtime:
    """The ``Runtime`` of a torch model on ``device``: float16 only on CUDA.

    Args:
        device: the device the model was placed on (``select_device``).
        half: whether float16 was asked for.
        ignored: other settings the model does not apply, and why.

    Example::

        >>> torch_runtime("cpu", True).applied
        {'device': 'cpu', 'half': False}
    """
    runs_half = half and device.startswith("cuda")
    reasons = dict(ignored or {})
    if half and not runs_half:
        reasons["half"] = f"float16 runs on CUDA only; this model runs on {device}"
    return Runtime({"device": device, "half": runs_half}, reasons)


def is_rotated(model: TileModel) -> bool:
    """Whether ``model`` predicts rotated boxes (its optional ``rotated`` flag).

    Example::

        >>> is_rotated(object())
        False
    """
    return bool(getattr(model, "rotated", False))


def select_device(device: str | None = None) -> str:
    """The torch device to run on: ``device`` if given, else cuda, mps or cpu.

    Example::

        >>> select_device("cpu")
        'cpu'
    """
    import torch

    if device:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} asked for, but CUDA is not available")
        return device
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def input_scale(tile_hw: tuple[int, int], imgsz: int | None) -> float:
    """Scale from tile pixels to model input pixels (1 when the tile runs as is).

    ``imgsz`` is the model input's longer side; ``None`` runs each tile at its
    own resolution, which keeps small objects as large as they are.
    """
    if imgsz is None:
        return 1.0
    if imgsz <= 0:
        raise ConfigError(f"imgsz must be positive, got {imgsz}")
    return imgsz / max(tile_hw)


def bounded_map(
    pool: Executor, fn: Callable[[T], R], items: Iterable[T], ahead: int
) -> Iterator[R]:
    """``pool.map(fn, items)`` in order, pulling at most ``ahead`` items before their results.

    ``Executor.map`` takes its whole input at once; the input here is an
    image's tiles read from a file as they are asked for, which must not all
    be in memory together.
    """
    pending: deque[Any] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()
