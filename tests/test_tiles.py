"""Tile geometry: coverage, overlaps, shapes and counts against SAHI."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sliced_inference.slicer import ConfigError, tile_boxes
from sliced_inference.slicer.tiles import crosses_seam, overlap_pixels, seam_lines

IMAGE_SIZES = [
    (1, 1),
    (37, 2000),
    (500, 300),
    (640, 640),
    (641, 640),
    (1000, 1000),
    (1920, 1080),
    (4000, 3000),
    (8000, 600),
]
SLICES = [256, 512, (640, 480), 1024]
OVERLAPS = [0.0, 0.1, 0.2, 0.5, 0.9, 64, (0.3, 0.1)]


def _sahi_count(
    width: int, height: int, slice_wh: tuple[int, int], ratio: tuple[float, float]
) -> int:
    from sahi.slicing import get_slice_bboxes

    return len(
        get_slice_bboxes(
            height,
            width,
            slice_height=slice_wh[1],
            slice_width=slice_wh[0],
            overlap_height_ratio=ratio[1],
            overlap_width_ratio=ratio[0],
        )
    )


@pytest.mark.parametrize(
    ("image_wh", "slice_wh", "overlap"),
    itertools.product(IMAGE_SIZES, SLICES, OVERLAPS),
)
def test_tiles_cover_the_image_with_the_overlap_asked(
    image_wh, slice_wh, overlap
) -> None:
    width, height = image_wh
    slice_pair = (slice_wh, slice_wh) if isinstance(slice_wh, int) else slice_wh
    if isinstance(overlap, int) and overlap >= min(slice_pair):
        pytest.skip(
            "overlap in pixels larger than this slice is a config error, tested below"
        )
    tiles = tile_boxes(image_wh, slice_wh, overlap)
    over_w, over_h = overlap_pixels(overlap, slice_pair)

    assert tiles.dtype.kind == "i" and tiles.shape[1] == 4
    # No tile leaves the image, and all have one shape (slice, or the image side).
    assert (
        (tiles[:, :2] >= 0).all()
        and (tiles[:, 2] <= width).all()
        and (tiles[:, 3] <= height).all()
    )
    sizes = {(x1 - x0, y1 - y0) for x0, y0, x1, y1 in tiles.tolist()}
    assert sizes == {(min(slice_pair[0], width), min(slice_pair[1], height))}
    # Every pixel covered.
    cover = np.zeros((height, width), bool)
    for x0, y0, x1, y1 in tiles:
        cover[y0:y1, x0:x1] = True
    assert cover.all()
    # Neighbouring columns and rows overlap by at least the overlap asked.
    for axis, length, size, want in (
        (0, width, slice_pair[0], over_w),
        (1, height, slice_pair[1], over_h),
    ):
        starts = np.unique(tiles[:, axis])
        if len(starts) > 1:
            tile_len = min(size, length)
            assert (tile_len - np.diff(starts) >= want).all()
    # Never more tiles than SAHI makes for the same settings.
    if isinstance(overlap, float) or (
        isinstance(overlap, tuple) and isinstance(overlap[0], float)
    ):
        ratio = overlap if isinstance(overlap, tuple) else (overlap, overlap)
        assert len(tiles) <= _sahi_count(width, height, slice_pair, ratio)


def test_overlaps_are_spread_evenly_not_piled_on_the_last_tile() -> None:
    # SAHI: origins 0, 410, 488 (last overlap 434 px); ours spreads them.
    tiles = tile_boxes((1000, 512), 512, 0.2)
    assert tiles[:, 0].tolist() == [0, 244, 488]


def test_image_smaller_than_a_tile_is_one_tile() -> None:
    assert tile_boxes((300, 200), 640, 0.2).tolist() == [[0, 0, 300, 200]]


@pytest.mark.parametrize(
    ("slice_wh", "overlap", "message"),
    [
        (0, 0.2, "positive"),
        (-5, 0.2, "positive"),
        (640, 1.0, r"\[0, 1\)"),
        (640, -0.1, r"\[0, 1\)"),
        (640, 640, "must be in"),
        ((640,), 0.2, "pair"),
        (640, "big", "number"),
    ],
)
def test_bad_settings_raise_a_clear_error(slice_wh, overlap, message) -> None:
    with pytest.raises(ConfigError, match=message):
        tile_boxes((1000, 1000), slice_wh, overlap)


# --- seams: which boxes cross an interior tile edge -------------------------------

# A hand-made 2 x 2 grid on a 1000 x 800 image: x 0-600 and 400-1000, y 0-500 and
# 300-800. Interior edges: x = 400 and 600, y = 300 and 500.
GRID_WH = (1000, 800)
GRID = np.array(
    [[0, 0, 600, 500], [400, 0, 1000, 500], [0, 300, 600, 800], [400, 300, 1000, 800]]
)


def _on_seam(*boxes, margin: float = 0.0) -> list[bool]:
    return crosses_seam(np.array(boxes, float), GRID, GRID_WH, margin).tolist()


def test_the_hand_made_grid_is_the_engines() -> None:
    assert tile_boxes(GRID_WH, (600, 500), (200, 200)).tolist() == GRID.tolist()
    assert seam_lines(GRID, GRID_WH) == ([400, 600], [300, 500])


def test_an_object_across_one_edge_is_on_a_seam() -> None:
    assert _on_seam([590, 100, 610, 120]) == [True]  # across x = 600
    assert _on_seam([100, 290, 120, 310]) == [True]  # across y = 300
    assert _on_seam([100, 100, 120, 120]) == [False]  # inside one tile only
    assert _on_seam([450, 100, 550, 120]) == [False]  # inside the shared band


def test_an_object_across_a_corner_is_on_a_seam() -> None:
    assert _on_seam([590, 490, 610, 510]) == [True]  # where x = 600 meets y = 500
    assert _on_seam([390, 290, 410, 310]) == [True]


def test_an_object_exactly_on_an_edge_does_not_cross_it() -> None:
    # x1 is exclusive: [580, 600) ends on the edge x = 600, wholly in tile 0.
    assert _on_seam([580, 100, 600, 120], [600, 100, 620, 120]) == [False, False]
    assert _on_seam([100, 480, 120, 500]) == [False]
    # One pixel further and it crosses.
    assert _on_seam([580, 100, 601, 120]) == [True]
    # A detection cut at the edge touches it: it counts with a margin.
    assert _on_seam([580, 100, 600, 120], margin=2.0) == [True]


def test_the_image_border_is_not_a_seam() -> None:
    assert _on_seam([-5, 100, 10, 120], [990, 790, 1005, 805]) == [False, False]
    single = tile_boxes((500, 400), 640, 0.2)  # one tile: no seams at all
    assert not crosses_seam(np.array([[0, 0, 500, 400.0]]), single, (500, 400)).any()
