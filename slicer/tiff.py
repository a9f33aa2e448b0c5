"""A TIFF read window by window: only the tiles (or strips) a window covers are decoded.

``TiffRaster`` opens a tiled TIFF, BigTIFF or GeoTIFF with ``tifffile`` and
reads the stored tiles of a window straight from the file
(``dataoffsets`` / ``databytecounts`` and ``TiffPage.decode``, no zarr), so
memory holds a window and a small cache of decoded tiles, never the image.
Striped (untiled) TIFFs read the same way, strip by strip.

A small cache keeps decoded tiles while windows may still need them: windows
come in row-major order, so it holds the rows of tiles that the current row
of overlapping windows covers, drops rows once reading has moved below them,
and never holds more than ``MAX_CACHE_BYTES``.

Example::

    >>> with TiffRaster("scene.tif") as raster:  # doctest: +SKIP
    ...     raster.size, raster.read_window(0, 0, 640, 640).shape
    ((40000, 30000), (640, 640, 3))
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from .bands import BandScaling, select_bands
from .errors import ImageError
from .georeference import georeference_of

#: Upper bound of the decoded-tile cache.
MAX_CACHE_BYTES = 512 * 1024 * 1024
#: Larger stored blocks (e.g. a whole image in one strip) cannot be read in windows.
MAX_CHUNK_BYTES = 256 * 1024 * 1024
#: Tiles sampled (evenly over the image) for the percentile stretch.
STRETCH_SAMPLE_TILES = 64
#: Each sampled tile contributes at most this many values per band.
_SAMPLES_PER_TILE = 4096
#: TIFF photometric interpretations handled specially.
_MINISWHITE, _PALETTE = 0, 3


class TiffLevel:
    """One stored image of the file (full resolution or a pyramid level) as a grid of chunks.

    Attributes:
        page: the ``tifffile.TiffPage``.
        width, height: size in pixels.
        chunk_w, chunk_h: size of a tile (for strips: image width, rows per strip).
        chunk_bytes: decoded size of one chunk of one plane.
        cols, rows: chunks per row and per column.
        planes: separately stored sample planes (1 for interleaved data).
    """

    def __init__(self, page: Any) -> None:
        self.page = page
        self.width, self.height = int(page.imagewidth), int(page.imagelength)
        if page.is_tiled:
            self.chunk_w, self.chunk_h = int(page.tilewidth), int(page.tilelength)
        else:
            self.chunk_w, self.chunk_h = self.width, int(page.rowsperstrip)
        self.chunk_h = min(self.chunk_h, self.height)
        self.cols = math.ceil(self.width / self.chunk_w)
        self.rows = math.ceil(self.height / self.chunk_h)
        self.planes = page.samplesperpixel if page.planarconfig == 2 else 1
        samples = page.samplesperpixel // self.planes
        self.chunk_bytes = self.chunk_w * self.chunk_h * samples * page.dtype.itemsize

    def chunk_index(self, plane: int, row: int, col: int) -> int:
        """Position of a chunk in the page's offset and byte-count tables."""
        return (plane * self.rows + row) * self.cols + col


class TiffRaster:
    """A TIFF whose windows are read and converted to RGB on demand (a ``RasterSource``).

    Args:
        path: the file.
        bands: 1-based bands to show (see ``bands.select_bands``).
        scaling: how bands are scaled to 8 bits (``bands.SCALINGS``).

    Raises:
        ImageError: the file is not a TIFF tifffile can read, has an
            orientation other than top-left, or lacks a requested band.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        bands: Sequence[int] | None = None,
        scaling: str = "auto",
    ) -> None:
        import tifffile

        self.name = str(path)
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._cache_bytes = 0
        self._top_rows: dict[int, int] = {}
        self._rows_spanned = 1
        try:
            self._tif = tifffile.TiffFile(path)
        except (tifffile.TiffFileError, OSError, ValueError) as error:
            raise ImageError(f"cannot read TIFF {self.name}: {error}") from error
        try:
            self._set_up(bands, scaling)
        except BaseException:
            self._tif.close()
            raise

    def _set_up(self, bands: Sequence[int] | None, scaling: str) -> None:
        """Checks the file can be read in windows; picks its bands and scaling."""
        try:
            pages = [level.keyframe for level in self._tif.series[0].levels]
        except (IndexError, ValueError) as error:
            raise ImageError(f"cannot read TIFF {self.name}: {error}") from error
        page = pages[0]
        if page.dtype is None or page.imagedepth != 1:
            raise ImageError(
                f"{self.name}: unsupported TIFF data (volumetric, or a sample "
                "format tifffile cannot read)"
            )
        self.levels = [
            TiffLevel(p) for p in pages if p.imagedepth == 1 and p.dtype is not None
        ]
        chunk_bytes = self.levels[0].chunk_bytes
        if chunk_bytes > MAX_CHUNK_BYTES:
            raise ImageError(
                f"{self.name} stores its pixels in blocks of {chunk_bytes / 2**20:.0f} "
                "MiB, too large to read in windows; save it tiled (e.g. "
                "gdal_translate -co TILED=YES, or tifffile's tile=(512, 512))"
            )
        orientation = page.tags.valueof(274, 1)
        if orientation != 1:
            raise ImageError(
                f"{self.name}: TIFF orientation {orientation} is not supported for "
                "windowed reading (only top-left, 1)"
            )
        self.dtype = np.dtype(page.dtype)
        self.band_count = int(page.samplesperpixel)
        self.nodata = page.nodata if page.tags.get(42113) is not None else None
        self._photometric = int(page.photometric)
        self._colormap = page.colormap if self._photometric == _PALETTE else None
        if self._colormap is not None:
            bands = None  # a palette image is one band of indices
        self.bands = select_bands(bands, self.band_count, self.name)
        first = self.bands[0]
        ascending = self.bands == tuple(range(first, first + len(self.bands)))
        # A slice copies at memory speed; a list of bands gathers them one by one.
        self._band_index = (
            slice(first, first + len(self.bands)) if ascending else list(self.bands)
        )
        self.georeference = georeference_of(page)
        self.scaling = self._scaling_rule(scaling)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels (full resolution)."""
        return self.levels[0].width, self.levels[0].height

    def read_window(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """Pixels ``[y0:y1, x0:x1]`` as RGB uint8; only the chunks they cover are decoded.

        Raises:
            ImageError: a chunk cannot be read or decoded; the message names the
                file, the chunk and the pixels it covers.
        """
        return self._to_rgb(self._read_raw(self.levels[0], x0, y0, x1, y1))

    def whole_image(self, max_side: int) -> tuple[np.ndarray, tuple[float, float]]:
        """The image shrunk to a longer side of ``max_side``, and its scale.

        Reads the smallest pyramid level at least ``max_side`` long when the
        file has one (else full resolution), averaging blocks of ``f x f``
        pixels one band of rows at a time (memory holds a band, never the
        image), then resizes the result (at most twice too large) to
        ``max_side``. Returns the RGB image and ``(sx, sy)``, full-resolution
        pixels per pixel of it.
        """
        level = self._level_for(max_side)
        factor = max(1, max(level.width, level.height) // max_side)
        # A side shorter than the factor keeps one pixel (very thin images).
        fx, fy = min(factor, level.width), min(factor, level.height)
        out_w, out_h = level.width // fx, level.height // fy
        image = np.empty((out_h, out_w, 3), np.uint8)
        rows_per_band = fy * max(1, math.ceil(level.chunk_h / fy))
        for y in range(0, out_h * fy, rows_per_band):
            y1 = min(y + rows_per_band, out_h * fy)
            band = self._to_rgb(self._read_raw(level, 0, y, out_w * fx, y1))
            # INTER_AREA at a whole factor is the mean of each fx x fy block.
            image[y // fy : y1 // fy] = cv2.resize(
                band, (out_w, (y1 - y) // fy), interpolation=cv2.INTER_AREA
            ).reshape(-1, out_w, 3)
        shrink = max_side / max(out_w, out_h)
        if shrink < 1:
            size = (max(1, round(out_w * shrink)), max(1, round(out_h * shrink)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        full_w, full_h = self.size
        return image, (full_w / image.shape[1], full_h / image.shape[0])

    def close(self) -> None:
        """Closes the file and drops the cache."""
        self._cache.clear()
        self._cache_bytes = 0
        self._tif.close()

    def __enter__(self) -> TiffRaster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _level_for(self, max_side: int) -> TiffLevel:
        """The smallest level whose longer side is still at least ``max_side``."""
        usable = [lv for lv in self.levels if max(lv.width, lv.height) >= max_side]
        return usable[-1] if usable else self.levels[0]

    def _read_raw(
        self, level: TiffLevel, x0: int, y0: int, x1: int, y1: int
    ) -> np.ndarray:
        """``(y1 - y0, x1 - x0, len(bands))`` values of the selected bands, as stored."""
        if not (0 <= x0 < x1 <= level.width and 0 <= y0 < y1 <= level.height):
            raise ImageError(
                f"{self.name}: window x {x0}-{x1}, y {y0}-{y1} is outside the "
                f"{level.width}x{level.height} image"
            )
        top, bottom = y0 // level.chunk_h, (y1 - 1) // level.chunk_h
        self._forget_rows_above(level, top)
        self._rows_spanned = max(self._rows_spanned, bottom - top + 1)
        out = np.empty((y1 - y0, x1 - x0, len(self.bands)), self.dtype)
        for row in range(top, bottom + 1):
            cy = row * level.chunk_h
            for col in range(x0 // level.chunk_w, (x1 - 1) // level.chunk_w + 1):
                cx = col * level.chunk_w
                ys = slice(max(y0, cy) - cy, min(y1, cy + level.chunk_h) - cy)
                xs = slice(max(x0, cx) - cx, min(x1, cx + level.chunk_w) - cx)
                target = out[
                    ys.start + cy - y0 : ys.stop + cy - y0,
                    xs.start + cx - x0 : xs.stop + cx - x0,
                ]
                self._copy_chunk(level, row, col, ys, xs, target)
        return out

    def _copy_chunk(
        self,
        level: TiffLevel,
        row: int,
        col: int,
        ys: slice,
        xs: slice,
        target: np.ndarray,
    ) -> None:
        """Copies the selected bands of part of one chunk into ``target``."""
        if level.planes == 1:
            chunk = self._chunk(level, level.chunk_index(0, row, col))
            target[...] = chunk[ys, xs, self._band_index]
            return
        for i, band in enumerate(self.bands):
            chunk = self._chunk(level, level.chunk_index(band, row, col))
            target[..., i] = chunk[ys, xs, 0]

    def _forget_rows_above(self, level: TiffLevel, top: int) -> None:
        """Drops cached chunks of rows above ``top`` once reading has moved below them.

        Windows come in row-major order, so those rows are done; dropping them
        first keeps the two rows a row of overlapping windows needs, where a
        plain LRU would evict chunks just before they are used again.
        """
        if self._top_rows.get(id(level)) == top:
            return
        self._top_rows[id(level)] = top
        first_below = top * level.cols
        for key in [k for k in self._cache if k[0] == id(level)]:
            if key[1] % (level.rows * level.cols) < first_below:
                self._cache_bytes -= self._cache.pop(key).nbytes

    def _chunk(self, level: TiffLevel, index: int) -> np.ndarray:
        """One decoded chunk, ``(chunk_h, chunk_w, samples)``, from the cache or the file."""
        key = (id(level), index)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        chunk = self._decode_chunk(level, index)
        self._cache[key] = chunk
        self._cache_bytes += chunk.nbytes
        # The rows of chunks one window spans, across the image: a row of
        # windows revisits all of them.
        rows = self._rows_spanned * level.cols + 2
        budget = min(MAX_CACHE_BYTES, rows * level.planes * chunk.nbytes)
        while self._cache_bytes > budget and len(self._cache) > 1:
            _, dropped = self._cache.popitem(last=False)
            self._cache_bytes -= dropped.nbytes
        return chunk

    def _decode_chunk(self, level: TiffLevel, index: int) -> np.ndarray:
        page = level.page
        try:
            offset, count = page.dataoffsets[index], page.databytecounts[index]
            data = None
            if count:
                handle = self._tif.filehandle
                handle.seek(offset)
                data = handle.read(count)
            decoded, _, shape = page.decode(
                data, index, jpegtables=page.jpegtables, _fullsize=True
            )
        except Exception as error:  # zlib, imagecodecs and tifffile errors alike
            raise ImageError(
                f"{self.name}: cannot decode {_chunk_name(level, index)}: "
                f"{type(error).__name__}: {error}"
            ) from error
        if decoded is None:  # a sparse (empty) chunk: the no-data value
            decoded = np.full(shape, self.nodata or 0, self.dtype)
        return decoded[0]

    def _scaling_rule(self, scaling: str) -> BandScaling:
        """The band scaling for this image (samples read only for a stretch)."""
        needs_samples = scaling == "percentile" or (
            scaling == "auto" and self.dtype != np.uint8 and self._colormap is None
        )
        samples = (
            self._stretch_samples()
            if needs_samples
            else np.zeros((0, len(self.bands)), self.dtype)
        )
        if self._colormap is not None:
            return BandScaling.from_samples(scaling, samples, np.uint8, None)
        return BandScaling.from_samples(scaling, samples, self.dtype, self.nodata)

    def _stretch_samples(self) -> np.ndarray:
        """Values of the selected bands from chunks spread evenly over the image.

        Sampled from the smallest pyramid level (the full image when there is
        none), so a decimated view of the whole image sets the stretch.
        """
        level = self.levels[-1]
        total = level.rows * level.cols
        picks = np.unique(
            np.linspace(0, total - 1, min(STRETCH_SAMPLE_TILES, total)).astype(int)
        )
        # One stride for every chunk, so partial edge chunks are not over-weighted.
        stride = max(1, math.isqrt(level.chunk_w * level.chunk_h // _SAMPLES_PER_TILE))
        parts = []
        for pick in picks:
            row, col = divmod(int(pick), level.cols)
            x0, y0 = col * level.chunk_w, row * level.chunk_h
            x1 = min(x0 + level.chunk_w, level.width)
            y1 = min(y0 + level.chunk_h, level.height)
            values = self._read_raw(level, x0, y0, x1, y1)[::stride, ::stride]
            parts.append(values.reshape(-1, len(self.bands)))
        self._cache.clear()
        self._cache_bytes = 0
        self._top_rows.clear()
        return np.concatenate(parts)

    def _to_rgb(self, raw: np.ndarray) -> np.ndarray:
        if self._colormap is not None:
            mapped = self._colormap[:, raw[..., 0].astype(np.intp)]
            return (np.moveaxis(mapped, 0, -1) >> 8).astype(np.uint8)
        if self._photometric == _MINISWHITE and np.issubdtype(self.dtype, np.integer):
            raw = np.iinfo(self.dtype).max - raw
        return self.scaling.apply(raw)


def _chunk_name(level: TiffLevel, index: int) -> str:
    """``tile 17 (pixels x 512-1024, y 0-512 of the 4000x3000 image)``, for errors."""
    row, col = divmod(index % (level.rows * level.cols), level.cols)
    x0, y0 = col * level.chunk_w, row * level.chunk_h
    x1, y1 = min(x0 + level.chunk_w, level.width), min(y0 + level.chunk_h, level.height)
    kind = "tile" if level.page.is_tiled else "strip"
    return (
        f"{kind} {index} (pixels x {x0}-{x1}, y {y0}-{y1} of the "
        f"{level.width}x{level.height} image)"
    )
