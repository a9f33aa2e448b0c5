"""The protocol every model adapter implements, and device choice."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import ConfigError
from ..predictions import Predictions


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
    - ``predict_tiles``; and, when the adapter also implements
      ``BatchedTileModel``, ``predict_batches``, which gets every batch of an
      image at once (to overlap them, e.g. two streams on a CPU).
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


def runtime_of(model: Any) -> dict[str, str | None]:
    """What runs a model's network, as a run record states it.

    Adapters say it with ``backend`` (``"torch"``, ``"openvino"``),
    ``precision`` (``"fp32"``, ``"fp16"``, ``"int8"``) and ``device``; a
    model that does not (a callable) gets ``None``.

    Example::

        >>> runtime_of(lambda tile: [])
        {'backend': None, 'precision': None, 'device': None}
    """
    return {
        name: getattr(model, name, None) for name in ("backend", "precision", "device")
    }


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
