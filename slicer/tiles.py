"""Where tiles go: the tile grid of an image for a slice size and overlap."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .errors import ConfigError

SliceWH = int | tuple[int, int] | Sequence[int]
Overlap = float | int | tuple[float, float] | tuple[int, int] | Sequence[float]


def normalize_slice_wh(slice_wh: SliceWH) -> tuple[int, int]:
    """``640`` or ``(640, 480)`` -> ``(640, 480)``, validated (each side > 0)."""
    if _is_int(slice_wh):
        pair = (int(slice_wh), int(slice_wh))
    elif (
        isinstance(slice_wh, Sequence)
        and not isinstance(slice_wh, str)
        and len(slice_wh) == 2
        and all(_is_int(v) for v in slice_wh)
    ):
        pair = (int(slice_wh[0]), int(slice_wh[1]))
    else:
        raise ConfigError(
            "slice_wh must be a whole number of pixels or a (width, height) pair "
            f"of them, got {slice_wh!r}"
        )
    if min(pair) <= 0:
        raise ConfigError(f"slice size must be positive, got {pair[0]}x{pair[1]}")
    return pair


def overlap_pixels(overlap: Overlap, slice_wh: tuple[int, int]) -> tuple[int, int]:
    """Overlap as whole pixels per axis.

    A float (or pair of floats) is a ratio of the slice size in ``[0, 1)``,
    converted as SAHI does (``int(ratio * slice)``); an int (or pair of ints) is
    pixels in ``[0, slice)``.

    Example::

        >>> overlap_pixels(0.2, (640, 640))
        (128, 128)
        >>> overlap_pixels((100, 50), (640, 480))
        (100, 50)
    """
    values = overlap if isinstance(overlap, Sequence) else (overlap, overlap)
    if len(values) != 2:
        raise ConfigError(f"overlap must be a number or a pair, got {overlap!r}")
    result = []
    for value, size, axis in zip(values, slice_wh, ("width", "height"), strict=True):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise ConfigError(f"overlap must be a number, got {value!r}")
        if isinstance(value, (float, np.floating)):
            if not 0.0 <= value < 1.0:
                raise ConfigError(
                    f"overlap ratio must be in [0, 1), got {value} ({axis}); "
                    "pass an int for an overlap in pixels"
                )
            pixels = int(value * size)
        else:
            pixels = int(value)
            if not 0 <= pixels < size:
                raise ConfigError(
                    f"overlap of {pixels} px must be in [0, {size}) for a slice {axis} "
                    f"of {size} px"
                )
        result.append(pixels)
    return result[0], result[1]


def tile_origins(length: int, size: int, overlap: int) -> np.ndarray:
    """Start offsets of the tiles along one axis.

    Uses the fewest tiles of ``size`` that cover ``length`` with neighbouring
    overlaps of at least ``overlap`` (the same count as SAHI), spread evenly so
    that no overlap is much larger than the others and no tile is a sliver.

    Example::

        >>> tile_origins(1000, 512, 102).tolist()
        [0, 244, 488]
    """
    if length <= size:
        return np.zeros(1, dtype=np.int64)
    count = math.ceil((length - overlap) / (size - overlap))
    # Rounding an even spacing keeps every step <= size - overlap, since that
    # bound is a whole number and the exact step does not exceed it.
    return np.round(np.linspace(0, length - size, count)).astype(np.int64)


def tile_boxes(
    image_wh: tuple[int, int], slice_wh: SliceWH = 640, overlap: Overlap = 0.2
) -> np.ndarray:
    """The tiles of an image as an int ``(N, 4)`` array of ``xyxy`` pixel boxes.

    Every pixel is covered, neighbouring tiles overlap by at least ``overlap``,
    no tile leaves the image and all tiles have one shape (``slice_wh``, or the
    image's side where the image is smaller than a slice), laid out row-major.

    Args:
        image_wh: image ``(width, height)`` in pixels.
        slice_wh: tile size, an int or ``(width, height)``.
        overlap: ratio in ``[0, 1)`` (float or pair) or pixels (int or pair).

    Example::

        >>> tile_boxes((900, 500), 512, 0.2).tolist()
        [[0, 0, 512, 500], [388, 0, 900, 500]]
    """
    width, height = int(image_wh[0]), int(image_wh[1])
    if width <= 0 or height <= 0:
        raise ConfigError(f"image size must be positive, got {width}x{height}")
    slice_w, slice_h = normalize_slice_wh(slice_wh)
    over_w, over_h = overlap_pixels(overlap, (slice_w, slice_h))
    tile_w, tile_h = min(slice_w, width), min(slice_h, height)
    xs = tile_origins(width, tile_w, over_w)
    ys = tile_origins(height, tile_h, over_h)
    y0, x0 = (a.ravel() for a in np.meshgrid(ys, xs, indexing="ij"))
    return np.stack([x0, y0, x0 + tile_w, y0 + tile_h], axis=1).astype(np.int64)


def interior_edges(tiles: np.ndarray, image_wh: tuple[int, int]) -> np.ndarray:
    """Which sides of each tile lie inside the image: bool ``(N, 4)`` (left, top, right, bottom).

    A detection touching an interior side may be a fragment of an object that
    continues into the neighbouring tile.
    """
    width, height = image_wh
    return np.stack(
        [tiles[:, 0] > 0, tiles[:, 1] > 0, tiles[:, 2] < width, tiles[:, 3] < height],
        axis=1,
    )


def seam_lines(
    tiles: np.ndarray, image_wh: tuple[int, int]
) -> tuple[list[int], list[int]]:
    """Where the grid's interior tile edges lie: ``(xs, ys)``, sorted.

    Example::

        >>> seam_lines(tile_boxes((1000, 500), 600, 0.2), (1000, 500))
        ([400, 600], [])
    """
    tiles = np.asarray(tiles).reshape(-1, 4)
    inside = interior_edges(tiles, image_wh)
    xs = {int(v) for v in tiles[inside[:, 0], 0]} | {
        int(v) for v in tiles[inside[:, 2], 2]
    }
    ys = {int(v) for v in tiles[inside[:, 1], 1]} | {
        int(v) for v in tiles[inside[:, 3], 3]
    }
    return sorted(xs), sorted(ys)


def crosses_seam(
    boxes: np.ndarray,
    tiles: np.ndarray,
    image_wh: tuple[int, int],
    margin: float = 0.0,
) -> np.ndarray:
    """Which ``xyxy`` pixel boxes cross an interior edge of the tile grid (a seam).

    A box crosses a tile's interior side when that side's line passes strictly
    through it (``x0 < edge < x1``) and the box overlaps the side's extent
    along it. A box whose side lies exactly on an edge does not cross it:
    with exclusive ``x1`` / ``y1`` ends, such a box lies wholly on one side.
    The image border is not a seam.

    Args:
        boxes: ``(N, 4)`` ``xyxy`` pixels (``x1``, ``y1`` exclusive).
        tiles: ``(T, 4)`` ``xyxy`` tile boxes, e.g. from ``tile_boxes``.
        image_wh: image ``(width, height)``.
        margin: boxes grown by this many pixels first, so that a box ending
            within ``margin`` of an edge counts too (a detection cut by a
            tile ends at the edge without crossing it).

    Returns:
        ``(N,)`` bool.

    Example::

        >>> tiles = tile_boxes((1000, 500), 600, 0.2)  # x 0-600 and 400-1000
        >>> crosses_seam(np.array([[590, 10, 610, 30], [100, 10, 120, 30],
        ...                        [580, 10, 600, 30]]), tiles, (1000, 500)).tolist()
        [True, False, False]
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    boxes = boxes + np.array([-margin, -margin, margin, margin])
    tiles = np.asarray(tiles, dtype=np.float64).reshape(-1, 4)
    crossed = np.zeros(len(boxes), dtype=bool)
    if not len(boxes) or not len(tiles):
        return crossed
    inside = interior_edges(tiles, image_wh)
    for side, (along, across) in enumerate(((0, 1), (1, 0), (0, 1), (1, 0))):
        # Sides 0 and 2 are vertical lines at x (spanning the tile's y range);
        # sides 1 and 3 horizontal lines at y.
        edges = tiles[inside[:, side]]
        if not len(edges):
            continue
        at = np.unique(edges[:, side])
        for line in at:
            span = edges[edges[:, side] == line]
            through = (boxes[:, along] < line) & (line < boxes[:, along + 2])
            overlaps = (boxes[:, across, None] < span[None, :, across + 2]) & (
                boxes[:, across + 2, None] > span[None, :, across]
            )
            crossed |= through & overlaps.any(axis=1)
    return crossed


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    )
