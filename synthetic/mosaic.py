"""A huge tiled BigTIFF (GeoTIFF) made of generated scenes pasted at known places.

For tests and benchmarks of images larger than memory: a flat background of
any size (40000x30000 takes seconds and a few MB, since flat tiles compress to
almost nothing) with scenes from ``generate_scene`` pasted at given pixel
positions, written tile by tile from a generator, so the image is never in
memory either. The ground truth is the scenes' own, shifted to where they sit.

Example::

    from sliced_inference.synthetic import generate_scene
    from sliced_inference.synthetic.mosaic import write_mosaic

    scenes = [(generate_scene(seed=1, width=1600, height=1200), 10300, 7100)]
    mosaic = write_mosaic("/tmp/huge.tif", scenes, 40000, 30000)
    print(mosaic.boxes.shape, mosaic.geotiff)
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .scenes import Scene

#: Grass-like flat background (RGB), one of the generator's background tones.
BACKGROUND = (112, 124, 78)
#: A UTM zone (EPSG:32633) and a 0.3 m pixel, as an aerial orthophoto has.
DEFAULT_GEOTIFF = {"epsg": 32633, "origin": (500000.0, 4100000.0), "pixel_size": 0.3}


@dataclass
class Mosaic:
    """A written mosaic and its ground truth.

    Attributes:
        path: the BigTIFF.
        width, height: its size in pixels.
        placements: ``(scene, x, y)``: each scene and its top-left corner.
        boxes: ``(N, 4)`` ``xyxy`` pixel boxes of every pasted object.
        labels: their class names.
        tile: the stored tile size in pixels.
        geotiff: the georeference written (``DEFAULT_GEOTIFF``'s keys) or None.
    """

    path: Path
    width: int
    height: int
    placements: list[tuple[Scene, int, int]]
    boxes: np.ndarray
    labels: list[str]
    tile: int
    geotiff: dict | None


def write_mosaic(
    path: str | os.PathLike,
    placements: Sequence[tuple[Scene, int, int]],
    width: int,
    height: int,
    *,
    tile: int = 512,
    background: tuple[int, int, int] = BACKGROUND,
    geotiff: dict | None = DEFAULT_GEOTIFF,
) -> Mosaic:
    """Writes a zlib-compressed, tiled BigTIFF with ``placements`` pasted on a flat background.

    Args:
        path: where to write.
        placements: ``(scene, x, y)`` with the scene's top-left corner in pixels;
            scenes must lie inside the image and not overlap.
        width, height: image size.
        tile: stored tile size (a multiple of 16).
        background: RGB of the flat background.
        geotiff: ``{"epsg", "origin", "pixel_size"}`` to write GeoTIFF tags
            (north-up, origin at the top-left corner), or None.
    """
    import tifffile

    for scene, x, y in placements:
        if x < 0 or y < 0 or x + scene.width > width or y + scene.height > height:
            raise ValueError(
                f"a {scene.width}x{scene.height} scene at {x},{y} is outside"
            )
    tifffile.imwrite(
        path,
        _tiles(placements, width, height, tile, background),
        shape=(height, width, 3),
        dtype=np.uint8,
        tile=(tile, tile),
        photometric="rgb",
        compression="zlib",
        compressionargs={"level": 1},
        bigtiff=True,
        extratags=_geotiff_tags(geotiff) if geotiff else None,
    )
    boxes = [s.boxes + np.array([x, y, x, y]) for s, x, y in placements]
    return Mosaic(
        path=Path(path),
        width=width,
        height=height,
        placements=list(placements),
        boxes=np.concatenate(boxes).reshape(-1, 4) if boxes else np.zeros((0, 4)),
        labels=[label for s, _, _ in placements for label in s.labels],
        tile=tile,
        geotiff=geotiff,
    )


def _tiles(
    placements: Sequence[tuple[Scene, int, int]],
    width: int,
    height: int,
    tile: int,
    background: tuple[int, int, int],
) -> Iterator[np.ndarray]:
    """Every stored tile in row-major order; flat ones are one shared array."""
    flat = np.empty((tile, tile, 3), np.uint8)
    flat[:] = background
    for ty in range(0, height, tile):
        for tx in range(0, width, tile):
            hits = [
                (s, x, y)
                for s, x, y in placements
                if x < tx + tile
                and tx < x + s.width
                and y < ty + tile
                and ty < y + s.height
            ]
            if not hits:
                yield flat
                continue
            block = flat.copy()
            for scene, x, y in hits:
                x0, y0 = max(x, tx), max(y, ty)
                x1 = min(x + scene.width, tx + tile)
                y1 = min(y + scene.height, ty + tile)
                block[y0 - ty : y1 - ty, x0 - tx : x1 - tx] = scene.image[
                    y0 - y : y1 - y, x0 - x : x1 - x
                ]
            yield block


def _geotiff_tags(geotiff: dict) -> list[tuple]:
    """ModelPixelScale, ModelTiepoint and GeoKeyDirectory for a north-up projected raster."""
    size = float(geotiff["pixel_size"])
    x, y = (float(v) for v in geotiff["origin"])
    keys = [
        (1024, 0, 1, 1),  # GTModelTypeGeoKey: projected
        (1025, 0, 1, 1),  # GTRasterTypeGeoKey: PixelIsArea
        (3072, 0, 1, int(geotiff["epsg"])),  # ProjectedCSTypeGeoKey
    ]
    directory = [1, 1, 0, len(keys)] + [v for key in keys for v in key]
    return [
        (33550, "d", 3, (size, size, 0.0), True),
        (33922, "d", 6, (0.0, 0.0, 0.0, x, y, 0.0), True),
        (34735, "H", len(directory), directory, True),
    ]
