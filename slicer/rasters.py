"""Where the engine's pixels come from: an image in memory, or a file read in windows.

Sliced inference only ever needs one tile at a time, so an image does not have
to be decoded whole. A ``RasterSource`` gives its size and any window of it as
RGB uint8; ``predict_sliced`` reads tiles from it as it forms batches.

- ``ArrayRaster``: an image already in memory (JPEG, PNG, small TIFFs, arrays).
- ``tiff.TiffRaster``: a TIFF read tile by tile (tiled TIFF, BigTIFF, GeoTIFF).

``open_raster(path)`` picks one: a TIFF goes through ``TiffRaster`` when
Pillow would not read it as it is (tiled, larger than Pillow's
decompression-bomb limit, more than 8 bits per sample, or bands other than
gray, RGB or RGBA); every other file keeps ``images.load_image`` and its guard.

Example::

    >>> with open_raster("scene.tif") as raster:  # doctest: +SKIP
    ...     print(raster.size, raster.read_window(0, 0, 640, 640).shape)
    (40000, 30000) (640, 640, 3)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .errors import ImageError
from .images import load_image, to_rgb

#: The first bytes of a TIFF (little or big endian) and of a BigTIFF.
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


@runtime_checkable
class RasterSource(Protocol):
    """An image the engine reads window by window.

    Attributes:
        name: what error messages call it (usually the file path).
        georeference: the GeoTIFF georeference (see ``georeference``), or None.
    """

    name: str
    georeference: dict[str, Any] | None

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        ...

    def read_window(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """Pixels ``[y0:y1, x0:x1]`` as an RGB uint8 array."""
        ...

    def whole_image(self, max_side: int) -> tuple[np.ndarray, tuple[float, float]]:
        """The image for a whole-image prediction, and ``(sx, sy)`` image pixels per pixel of it.

        An image in memory is returned as it is (the model shrinks it); a
        windowed source returns a copy shrunk to a longer side of about
        ``max_side`` (the model's input size), read without decoding it whole.
        """
        ...

    def close(self) -> None:
        """Releases the file (a no-op in memory)."""
        ...


@dataclass
class ArrayRaster:
    """An RGB image in memory as a ``RasterSource``; windows are views, never copies.

    Example::

        >>> raster = ArrayRaster(np.zeros((480, 640, 3), np.uint8))
        >>> raster.size, raster.read_window(0, 0, 64, 32).shape
        ((640, 480), (32, 64, 3))
    """

    image: np.ndarray
    name: str = "image"
    georeference: dict[str, Any] | None = None

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])

    def read_window(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """A view of ``image[y0:y1, x0:x1]``."""
        return self.image[y0:y1, x0:x1]

    def whole_image(self, max_side: int) -> tuple[np.ndarray, tuple[float, float]]:
        """The image itself at scale 1 (the model resizes it)."""
        return self.image, (1.0, 1.0)

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> ArrayRaster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class TiffHeader:
    """What a TIFF's header says, read without decoding a pixel.

    Attributes:
        width, height: size in pixels.
        bands: samples per pixel.
        dtype: the sample type (e.g. ``"uint16"``).
        tiled: stored in tiles (else strips).
        orientation: the TIFF orientation tag (1: top-left, as stored; 5-8:
            rows and columns swapped).
        windowed: ``open_raster`` reads it in windows (``TiffRaster``).
        georeference: the GeoTIFF georeference, or ``None``.
    """

    width: int
    height: int
    bands: int
    dtype: str
    tiled: bool
    orientation: int
    windowed: bool
    georeference: dict[str, Any] | None

    @property
    def shown_size(self) -> tuple[int, int]:
        """``(width, height)`` as the image is shown (orientation applied)."""
        if self.orientation in (5, 6, 7, 8):
            return self.height, self.width
        return self.width, self.height


def is_tiff(path: str | os.PathLike) -> bool:
    """Whether the file starts like a TIFF or BigTIFF (whatever its name)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(4) in _TIFF_MAGIC
    except OSError:
        return False


def read_tiff_header(path: str | os.PathLike) -> TiffHeader | None:
    """The header of a TIFF (``None`` for other files or a TIFF tifffile cannot parse).

    Example::

        >>> read_tiff_header("scene.tif").windowed  # doctest: +SKIP
        True
    """
    if not is_tiff(path):
        return None
    import tifffile
    from PIL import Image

    from .georeference import georeference_of

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            width, height = int(page.imagewidth), int(page.imagelength)
            dtype = np.dtype(page.dtype) if page.dtype is not None else None
            spp, planar = int(page.samplesperpixel), int(page.planarconfig)
            tiled = bool(page.is_tiled)
            orientation = int(page.tags.valueof(274, 1))
            georeference = georeference_of(page)
    except (tifffile.TiffFileError, OSError, ValueError, IndexError):
        return None
    limit = Image.MAX_IMAGE_PIXELS
    pillow_shows = dtype == np.uint8 and spp in (1, 3, 4) and (spp == 1 or planar == 1)
    too_big = limit is not None and width * height > limit
    windowed = (tiled and orientation == 1) or too_big or not pillow_shows
    return TiffHeader(
        width=width,
        height=height,
        bands=spp,
        dtype=str(dtype) if dtype is not None else "unknown",
        tiled=tiled,
        orientation=orientation,
        windowed=windowed,
        georeference=georeference,
    )


def open_raster(
    image: str | os.PathLike | np.ndarray | RasterSource,
    bands: Sequence[int] | None = None,
    scaling: str = "auto",
) -> RasterSource:
    """A ``RasterSource`` for a path, an array or a source (returned as is).

    Args:
        image: an image path, an ``HxW[xC]`` array (see ``images.to_rgb``) or a
            ``RasterSource``.
        bands: for rasters read in windows, the 1-based bands to show (see
            ``bands.select_bands``); other images are RGB already.
        scaling: for rasters read in windows, how bands become 8 bits
            (``bands.SCALINGS``).

    Raises:
        ImageError: the file cannot be read (the message names it).
    """
    if isinstance(image, RasterSource):
        return image
    if isinstance(image, (str, os.PathLike)):
        header = read_tiff_header(image)
        if header is not None and header.windowed:
            from .tiff import TiffRaster

            return TiffRaster(image, bands=bands, scaling=scaling)
        return ArrayRaster(load_image(image), name=str(Path(image)))
    if isinstance(image, np.ndarray):
        return ArrayRaster(to_rgb(image))
    raise ImageError(
        f"expected an image path, an array or a RasterSource; got {type(image).__name__}"
    )
