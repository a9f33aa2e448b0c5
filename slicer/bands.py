"""How a raster's bands become the RGB uint8 the engine runs on.

Aerial and satellite rasters often hold more than three bands (blue, green,
red, near-infrared, ...) and more than 8 bits per sample (12-bit data in
16-bit words, floats). The documented rule:

- **Bands.** ``bands`` lists the bands to show, 1-based as GDAL and rasterio
  count them: three (red, green, blue) or one (shown as gray). Without it, the
  first three bands of a raster with three or more, else the first band.
- **Scaling** (``scaling``), per band, to ``0..255``:

  - ``"auto"`` (default): 8-bit data as stored; any other data as
    ``"percentile"``.
  - ``"percentile"``: a linear stretch between the band's 2nd and 98th
    percentiles, computed once per image from a decimated read (samples
    spread over the whole image; ``nodata`` and non-finite values left out).
    This is what GIS viewers show by default (QGIS's cumulative count cut).
  - ``"range"``: the data type's own range: ``0..65535`` for 16-bit, ``0..1``
    for floats (as a browser shows a 16-bit PNG).

Example::

    >>> raw = np.array([[[100, 4000]], [[2000, 100]]], np.uint16)
    >>> rule = BandScaling.from_samples("range", raw.reshape(-1, 2), raw.dtype)
    >>> rule.apply(raw)[..., 0].ravel().tolist()
    [0, 7]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import ImageError

#: ``scaling`` choices and what each does (the setting's help lists them).
SCALINGS = {
    "auto": "8-bit data as stored; other data stretched per band (percentile)",
    "percentile": "stretch each band between its 2nd and 98th percentiles",
    "range": "the data type's own range (0..65535 for 16-bit, 0..1 for floats)",
}
#: The percentiles of the ``"percentile"`` stretch.
PERCENTILES = (2.0, 98.0)


def select_bands(bands: Sequence[int] | None, count: int, name: str) -> tuple[int, ...]:
    """0-based indices of the bands to read, from 1-based ``bands`` (or the default).

    Raises:
        ImageError: a requested band does not exist in this raster (the message
            names the image and how many bands it has).

    Example::

        >>> select_bands(None, 4, "a.tif"), select_bands((4, 3, 2), 4, "a.tif")
        ((0, 1, 2), (3, 2, 1))
    """
    if bands is None:
        return (0, 1, 2) if count >= 3 else (0,)
    missing = [b for b in bands if not 1 <= b <= count]
    if missing:
        raise ImageError(
            f"{name} has {count} band(s); bands={tuple(bands)} asks for band(s) "
            f"{missing} (bands count from 1)"
        )
    return tuple(b - 1 for b in bands)


@dataclass(frozen=True)
class BandScaling:
    """A per-band linear map to ``0..255``: ``(value - low) * 255 / (high - low)``, clipped.

    Attributes:
        low: ``(B,)`` value shown as 0, per band.
        high: ``(B,)`` value shown as 255, per band.
        as_stored: 8-bit data passed through unchanged (``low``/``high`` unused).
    """

    low: np.ndarray
    high: np.ndarray
    as_stored: bool = False

    @classmethod
    def from_samples(
        cls,
        scaling: str,
        samples: np.ndarray,
        dtype: np.dtype,
        nodata: float | None = None,
    ) -> BandScaling:
        """The rule ``scaling`` gives for data of ``dtype`` whose sample values are ``samples``.

        Args:
            scaling: one of ``SCALINGS``.
            samples: ``(N, B)`` values of the ``B`` selected bands, from a
                decimated read of the image (only ``"percentile"`` reads them).
            dtype: the raster's data type.
            nodata: the raster's no-data value, left out of the percentiles.
        """
        if scaling not in SCALINGS:
            raise ImageError(
                f"scaling must be one of {list(SCALINGS)}, got {scaling!r}"
            )
        dtype = np.dtype(dtype)
        count = samples.shape[1]
        if dtype == np.uint8 and scaling in ("auto", "range"):
            return cls(np.zeros(count), np.full(count, 255.0), as_stored=True)
        if scaling == "range":
            return cls(np.zeros(count), np.full(count, _type_max(dtype)))
        return cls(*_percentiles(samples, dtype, nodata))

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """``(H, W, B)`` raw values -> ``(H, W, 3)`` RGB uint8 (one band becomes gray)."""
        if self.as_stored and raw.dtype == np.uint8:
            scaled = raw
        else:
            span = np.maximum(self.high - self.low, 1e-12).astype(np.float32)
            values = (raw.astype(np.float32) - self.low.astype(np.float32)) * (
                np.float32(255.0) / span
            )
            scaled = np.clip(np.nan_to_num(values, nan=0.0), 0, 255).astype(np.uint8)
        if scaled.shape[2] == 1:
            return np.repeat(scaled, 3, axis=2)
        return np.ascontiguousarray(scaled)

    def to_dict(self) -> dict[str, list[float] | bool]:
        """JSON-friendly form (for run records and tests)."""
        return {
            "low": [float(v) for v in self.low],
            "high": [float(v) for v in self.high],
            "as_stored": self.as_stored,
        }


def _type_max(dtype: np.dtype) -> float:
    if np.issubdtype(dtype, np.integer):
        return float(np.iinfo(dtype).max)
    return 1.0


def _percentiles(
    samples: np.ndarray, dtype: np.dtype, nodata: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per band, the ``PERCENTILES`` of the valid samples (the type's range if none)."""
    lows, highs = [], []
    for band in samples.T.astype(np.float64):
        valid = band[np.isfinite(band)]
        if nodata is not None:
            valid = valid[valid != nodata]
        if valid.size == 0:
            lows.append(0.0)
            highs.append(_type_max(dtype))
            continue
        low, high = np.percentile(valid, PERCENTILES)
        lows.append(float(low))
        highs.append(float(high) if high > low else float(low) + 1.0)
    return np.array(lows), np.array(highs)
