"""Errors the engine raises for bad input, each with a message a user can act on."""

from __future__ import annotations


class SlicerError(Exception):
    """Base class of the engine's errors."""


class ConfigError(SlicerError, ValueError):
    """An option is out of range or of the wrong kind (slice size, overlap, ...)."""


class ImageError(SlicerError):
    """An image cannot be read or is unusable (missing, corrupt, empty, 1x1)."""


class ModelLoadError(SlicerError):
    """A model cannot be loaded from what the user gave."""


class VideoError(ImageError):
    """A video cannot be read, or ends before a frame it should hold."""
