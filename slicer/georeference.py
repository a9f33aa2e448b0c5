"""A GeoTIFF's georeference as plain JSON: where its pixels are on the ground.

``georeference_of(page)`` reads the GeoTIFF tags of a ``tifffile`` page
(``ModelPixelScale`` + ``ModelTiepoint``, or ``ModelTransformation``, and the
GeoKeys) without decoding any pixel, and returns::

    {
        "transform": [a, b, c, d, e, f],   # or None (ground control points only)
        "crs": "EPSG:32633",               # or None when the file names none
        "raster_type": "PixelIsArea",      # or "PixelIsPoint"
        "geokeys": {...},                  # every GeoKey, codes as numbers
        "tags": {"ModelPixelScale": [...], "ModelTiepoint": [...], ...},
    }

``transform`` is the affine map from pixel corners to map coordinates in
rasterio's order: ``x = a * col + b * row + c``, ``y = d * col + e * row + f``
(``col``, ``row`` in pixels from the image's top-left corner). For
``PixelIsPoint`` rasters it is shifted by half a pixel, as GDAL does, so it
maps corners too.

Example::

    >>> to_map([0.3, 0.0, 500000.0, 0.0, -0.3, 4100000.0], 10, 20)
    (500003.0, 4099994.0)
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

import numpy as np

#: GeoKeys that name an EPSG code for the raster's coordinate system.
_CRS_KEYS = ("ProjectedCSTypeGeoKey", "GeographicTypeGeoKey")
#: EPSG codes are below this; 32767 means "user-defined".
_USER_DEFINED = 32767
#: Raw GeoTIFF tags kept as they are.
_TAGS = ("ModelPixelScale", "ModelTiepoint", "ModelTransformation")


def georeference_of(page: Any) -> dict[str, Any] | None:
    """The georeference of a ``tifffile.TiffPage`` (``None`` when it has none).

    Reads tags only: no pixel is decoded.
    """
    tags = page.geotiff_tags
    if not tags:
        return None
    geokeys = {
        str(k): _plain(v) for k, v in tags.items() if k not in _TAGS and "Key" in str(k)
    }
    raw = {k: _plain(tags[k]) for k in _TAGS if k in tags}
    point = int(geokeys.get("GTRasterTypeGeoKey", 1)) == 2
    return {
        "transform": _transform(raw, point),
        "crs": _crs(geokeys),
        "raster_type": "PixelIsPoint" if point else "PixelIsArea",
        "geokeys": geokeys,
        "tags": raw,
    }


def to_map(transform: Sequence[float], col: float, row: float) -> tuple[float, float]:
    """Map coordinates ``(x, y)`` of the pixel position ``(col, row)``."""
    a, b, c, d, e, f = transform
    return a * col + b * row + c, d * col + e * row + f


def _transform(raw: dict[str, Any], pixel_is_point: bool) -> list[float] | None:
    if "ModelTransformation" in raw:
        m = raw["ModelTransformation"]
        affine = [m[0][0], m[0][1], m[0][3], m[1][0], m[1][1], m[1][3]]
    elif "ModelTiepoint" in raw and "ModelPixelScale" in raw:
        tiepoint = np.asarray(raw["ModelTiepoint"], dtype=float).reshape(-1, 6)
        if len(tiepoint) != 1:
            return None  # ground control points: no single affine map
        i, j, _, x, y, _ = tiepoint[0]
        sx, sy = raw["ModelPixelScale"][:2]
        affine = [sx, 0.0, x - i * sx, 0.0, -sy, y + j * sy]
    else:
        return None
    a, b, c, d, e, f = (float(v) for v in affine)
    if pixel_is_point:
        # The tiepoint names a pixel's centre: move the origin to its corner.
        c, f = c - 0.5 * (a + b), f - 0.5 * (d + e)
    return [a, b, c, d, e, f]


def _crs(geokeys: dict[str, Any]) -> str | None:
    for key in _CRS_KEYS:
        code = geokeys.get(key)
        if isinstance(code, int) and 0 < code < _USER_DEFINED:
            return f"EPSG:{code}"
    return None


def _plain(value: Any) -> Any:
    """Enums -> their number, numpy values and tuples -> plain lists and numbers."""
    if isinstance(value, enum.Enum):
        return int(value.value) if isinstance(value.value, int) else str(value.value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
