"""Models loaded once per process, and how a run record names a model."""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

from ..slicer import ModelOptions, TileModel, load_model
from .fiftyone_model import FiftyOneTileModel, is_fiftyone_model

#: Loaded models kept per process, by (path, modification time, options).
MODEL_CACHE_SIZE = 4

_MODEL_CACHE: OrderedDict[tuple, TileModel] = OrderedDict()


def cached_model(
    model: Any,
    options: ModelOptions | None = None,
    *,
    token: str | None = None,
) -> TileModel:
    """``load_model`` with a per-process cache for models given by path or hub id.

    Repeated operator runs in one App process reuse the loaded model. The key
    includes the file's modification time, so retrained weights at the same
    path are loaded again. Objects (``YOLO``, FiftyOne models, callables) are
    wrapped each time, never cached.

    Args:
        model: anything ``load_model`` accepts, or a FiftyOne ``Model``.
        options: how to load and run it (device, precision, ...).
        token: Hugging Face token for private hub models (never part of the key).

    Example::

        >>> a = cached_model("models/small-objects-det.pt")  # doctest: +SKIP
        >>> a is cached_model("models/small-objects-det.pt")  # doctest: +SKIP
        True
    """
    options = options or ModelOptions()
    if is_fiftyone_model(model):
        return FiftyOneTileModel(model)
    load = {**options.to_dict(), "token": token}
    if not isinstance(model, (str, Path)):
        return load_model(model, **load)
    spec = os.path.expanduser(str(model))
    mtime = os.path.getmtime(spec) if os.path.exists(spec) else None
    key = (os.path.abspath(spec) if mtime else spec, mtime, options)
    if key in _MODEL_CACHE:
        _MODEL_CACHE.move_to_end(key)
        return _MODEL_CACHE[key]
    loaded = load_model(spec, **load)
    _MODEL_CACHE[key] = loaded
    while len(_MODEL_CACHE) > MODEL_CACHE_SIZE:
        _MODEL_CACHE.popitem(last=False)
    return loaded


def clear_model_cache() -> None:
    """Forgets every cached model (frees their memory once unreferenced)."""
    _MODEL_CACHE.clear()


def absolute_model_path(model: Any) -> Any:
    """A model given by a local path, as an absolute path; anything else unchanged.

    A delegated run is executed by a worker that may have started in another
    directory, where a relative path points elsewhere: the operators store the
    absolute path when they queue a run, and run records name it too. Hub ids
    (``org/name`` with no such local path) and model objects are returned as
    they are.

    Example::

        >>> import os
        >>> absolute_model_path("models/small-objects-det.pt") == os.path.abspath(
        ...     "models/small-objects-det.pt")
        True
        >>> absolute_model_path("facebook/detr-resnet-50")
        'facebook/detr-resnet-50'
    """
    if not isinstance(model, (str, Path)):
        return model
    path = os.path.expanduser(str(model).strip())
    return os.path.abspath(path) if os.path.exists(path) else model


def describe_model(model: Any) -> str:
    """What a run record says the model was: its absolute path or hub id, else its class name.

    Example::

        >>> describe_model("facebook/detr-resnet-50")
        'facebook/detr-resnet-50'
    """
    if isinstance(model, (str, Path)):
        return str(absolute_model_path(model))
    ckpt = getattr(model, "ckpt_path", None)  # ultralytics.YOLO
    if isinstance(ckpt, str) and ckpt:
        return ckpt
    if isinstance(model, tuple) and len(model) == 2:
        name = getattr(getattr(model[0], "config", None), "_name_or_path", "")
        return name or type(model[0]).__name__
    return getattr(model, "__name__", None) or type(model).__name__
