"""Rasters read in windows: tiled TIFFs give the same pixels and detections as arrays, never decoded whole.

Every file here is a real TIFF written with ``tifffile`` and read back through
``open_raster``: tiled and striped, interleaved and planar, 8- and 16-bit,
JPEG- and zlib-compressed, with pyramids, GeoTIFF tags and a corrupt tile.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

from sliced_inference.bench.huge_image import corrupt_copy
from sliced_inference.slicer import (
    ConfigError,
    ImageError,
    Predictions,
    SliceOptions,
    load_model,
    predict_full_image,
    predict_sliced,
)
from sliced_inference.slicer import tiff as tiff_module
from sliced_inference.slicer.bands import PERCENTILES, BandScaling
from sliced_inference.slicer.georeference import to_map
from sliced_inference.slicer.models.base import bounded_map
from sliced_inference.slicer.rasters import (
    ArrayRaster,
    open_raster,
    read_tiff_header,
)
from sliced_inference.slicer.tiff import TiffRaster
from sliced_inference.synthetic import generate_scene
from sliced_inference.synthetic.mosaic import write_mosaic


@pytest.fixture(scope="module")
def scene():
    return generate_scene(seed=21, width=1600, height=1200)


def _random_windows(width: int, height: int, count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        x0, y0 = int(rng.integers(0, width - 1)), int(rng.integers(0, height - 1))
        x1 = int(rng.integers(x0 + 1, min(width, x0 + 700) + 1))
        y1 = int(rng.integers(y0 + 1, min(height, y0 + 700) + 1))
        yield x0, y0, x1, y1


@pytest.mark.parametrize(
    "layout",
    [
        {"tile": (256, 256)},
        {"tile": (256, 512), "compression": "zlib"},
        {"tile": (128, 128), "planarconfig": "separate"},
    ],
)
def test_tiled_windows_are_the_stored_pixels(tmp_path: Path, scene, layout) -> None:
    path = tmp_path / "scene.tif"
    if layout.get("planarconfig") == "separate":
        tifffile.imwrite(
            path, np.moveaxis(scene.image, 2, 0), photometric="rgb", **layout
        )
    else:
        tifffile.imwrite(path, scene.image, photometric="rgb", **layout)
    header = read_tiff_header(path)
    assert (
        header.tiled
        and header.windowed
        and (header.width, header.height) == (1600, 1200)
    )
    with open_raster(path) as raster:
        assert isinstance(raster, TiffRaster) and raster.size == (1600, 1200)
        for x0, y0, x1, y1 in _random_windows(1600, 1200, 40):
            window = raster.read_window(x0, y0, x1, y1)
            assert window.dtype == np.uint8 and window.flags.c_contiguous
            np.testing.assert_array_equal(window, scene.image[y0:y1, x0:x1])


def test_jpeg_tiles_decode_close_to_the_original(tmp_path: Path, scene) -> None:
    path = tmp_path / "jpeg.tif"
    tifffile.imwrite(
        path, scene.image, tile=(256, 256), compression="jpeg", photometric="rgb"
    )
    with open_raster(path) as raster:
        window = raster.read_window(300, 200, 940, 840).astype(int)
    assert np.abs(window - scene.image[200:840, 300:940]).mean() < 4


def test_which_tiffs_are_read_in_windows(tmp_path: Path, scene) -> None:
    """Small 8-bit striped TIFFs keep Pillow's path; 16-bit, multi-band and tiled ones do not."""
    striped = tmp_path / "striped.tif"
    tifffile.imwrite(striped, scene.image, photometric="rgb", rowsperstrip=64)
    deep = tmp_path / "deep.tif"
    tifffile.imwrite(deep, scene.image[..., 0].astype(np.uint16) * 200, rowsperstrip=16)
    five = tmp_path / "five.tif"
    tifffile.imwrite(
        five,
        np.dstack([scene.image] * 2)[..., :5],
        photometric="minisblack",
        planarconfig="contig",
    )
    assert not read_tiff_header(striped).windowed
    raster = open_raster(striped)
    assert isinstance(raster, ArrayRaster)
    np.testing.assert_array_equal(raster.image, scene.image)
    assert read_tiff_header(deep).windowed and read_tiff_header(five).windowed
    with open_raster(deep, scaling="range") as raster:  # strips, read by window
        window = raster.read_window(10, 33, 650, 673)
    expected = (
        scene.image[33:673, 10:650, 0].astype(np.float32) * 200 * 255 / 65535
    ).astype(np.uint8)
    np.testing.assert_array_equal(window[..., 0], expected)
    assert (window[..., 0] == window[..., 2]).all()  # one band is shown as gray
    assert read_tiff_header(tmp_path / "missing.tif") is None


def test_bands_pick_and_scale_per_the_documented_rule(tmp_path: Path, scene) -> None:
    # Four 12-bit bands stored in 16 bits, planar: blue, green, red, near-infrared.
    rgb = scene.image.astype(np.uint16) * 16
    stack = np.stack([rgb[..., 2], rgb[..., 1], rgb[..., 0], rgb[..., 1] // 2])
    path = tmp_path / "multi.tif"
    tifffile.imwrite(
        path, stack, tile=(256, 256), planarconfig="separate", photometric="minisblack"
    )
    with open_raster(path, bands=(3, 2, 1), scaling="range") as raster:
        shown = raster.read_window(0, 0, 1600, 1200)
    expected = (scene.image.astype(np.float32) * 16 * 255 / 65535).astype(np.uint8)
    np.testing.assert_array_equal(shown, expected)
    # The default stretch: per band, 2nd..98th percentile of a decimated read -> 0..255.
    with open_raster(path, bands=(3, 2, 1)) as raster:
        rule = raster.scaling
        shown = raster.read_window(0, 0, 1600, 1200)
    for i, band in enumerate((2, 1, 0)):
        low, high = np.percentile(stack[band], PERCENTILES)
        assert abs(rule.low[i] - low) <= 0.02 * (high - low)
        assert abs(rule.high[i] - high) <= 0.02 * (high - low)
    assert shown.max() == 255 and shown.min() == 0
    # Default bands: the first three; a missing band names the file and its band count.
    with open_raster(path) as raster:
        assert raster.bands == (0, 1, 2)
    with pytest.raises(ImageError, match=r"multi.tif has 4 band.*\[5\]"):
        open_raster(path, bands=(5, 3, 2))


def test_band_settings_are_checked_once() -> None:
    assert SliceOptions(bands=["4", "3", "2"]).bands == (4, 3, 2)
    assert SliceOptions(bands=2).bands == (2,)
    assert SliceOptions().to_dict()["scaling"] == "auto"
    for bad in ([1, 2], [0, 1, 2], ["red"], [True, 2, 3]):
        with pytest.raises(ConfigError, match="band"):
            SliceOptions(bands=bad)
    with pytest.raises(ConfigError, match="scaling"):
        SliceOptions(scaling="log")
    eight = BandScaling.from_samples("auto", np.zeros((3, 3), np.uint8), np.uint8)
    assert eight.as_stored


def test_sliced_prediction_reads_the_tiff_like_the_array(
    tmp_path: Path, scene, det_model_path: Path
) -> None:
    path = tmp_path / "scene.tif"
    tifffile.imwrite(
        path, scene.image, tile=(512, 512), compression="zlib", photometric="rgb"
    )
    model = load_model(det_model_path)
    from_array = predict_sliced(scene.image, model)
    from_tiff = predict_sliced(path, model)
    assert len(from_array) > 30
    np.testing.assert_array_equal(from_tiff.boxes, from_array.boxes)
    np.testing.assert_array_equal(from_tiff.class_ids, from_array.class_ids)


def test_whole_image_is_block_averaged_or_read_from_the_pyramid(
    tmp_path: Path, scene
) -> None:
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, scene.image, tile=(256, 256), photometric="rgb")
    with open_raster(path) as raster:
        small, (sx, sy) = raster.whole_image(800)
    expected = cv2.resize(scene.image, (800, 600), interpolation=cv2.INTER_AREA)
    assert small.shape == (600, 800, 3) and (sx, sy) == (2.0, 2.0)
    assert np.abs(small.astype(int) - expected).max() <= 1
    # With a pyramid, the smallest level at least as long as asked is read:
    # its pixels (here a marker, not a reduction) prove it.
    marker = np.full((600, 800, 3), 7, np.uint8)
    pyramid = tmp_path / "pyramid.tif"
    with tifffile.TiffWriter(pyramid) as writer:
        writer.write(scene.image, tile=(256, 256), photometric="rgb", subifds=2)
        writer.write(marker, tile=(256, 256), photometric="rgb", subfiletype=1)
        writer.write(
            marker[::2, ::2], tile=(256, 256), photometric="rgb", subfiletype=1
        )
    with open_raster(pyramid) as raster:
        assert len(raster.levels) == 3 and raster.size == (1600, 1200)
        small, scale = raster.whole_image(640)
        np.testing.assert_array_equal(
            raster.read_window(0, 0, 9, 9), scene.image[:9, :9]
        )
    assert small.shape == (480, 640, 3) and (small == 7).all() and scale == (2.5, 2.5)


def test_baseline_on_a_raster_maps_boxes_back_to_full_resolution(
    tmp_path: Path, det_model_path: Path
) -> None:
    big = generate_scene(seed=5, width=640, height=480, num_large=3, density=0)
    image = cv2.resize(big.image, (3200, 2400), interpolation=cv2.INTER_NEAREST)
    path = tmp_path / "big.tif"
    tifffile.imwrite(
        path, image, tile=(512, 512), photometric="rgb", compression="zlib"
    )
    model = load_model(det_model_path)
    on_array = predict_full_image(image, model)
    on_tiff = predict_full_image(path, model)
    assert len(on_array) >= 1
    # Read shrunk (block means) instead of shrunk by the model: the same objects,
    # boxes within a few full-resolution pixels.
    assert len(on_tiff) == len(on_array)
    assert np.abs(on_tiff.boxes - on_array.boxes).max() < 12


def test_scaled_predictions_keep_masks_on_their_boxes() -> None:
    mask = np.zeros((4, 6), bool)
    mask[1:3, 2:5] = True
    preds = Predictions(
        boxes=[[10, 20, 16, 24]],
        scores=[0.9],
        class_ids=[0],
        masks=[mask],
        mask_boxes=[[10, 20, 16, 24]],
    )
    scaled = preds.scaled(5.0, 2.5)
    np.testing.assert_allclose(scaled.boxes, [[50, 50, 80, 60]])
    assert scaled.mask_boxes.tolist() == [[50, 50, 80, 60]]
    assert (
        scaled.masks[0].shape == (10, 30)
        and scaled.masks[0].sum() == mask.sum() * 5 * 2.5
    )


def test_geotiff_georeference_maps_pixels_to_the_ground(tmp_path: Path, scene) -> None:
    mosaic = write_mosaic(tmp_path / "geo.tif", [(scene, 100, 50)], 2048, 1536)
    header = read_tiff_header(mosaic.path)
    geo = header.georeference
    assert geo["crs"] == "EPSG:32633" and geo["raster_type"] == "PixelIsArea"
    assert geo["transform"] == [0.3, 0.0, 500000.0, 0.0, -0.3, 4100000.0]
    assert to_map(geo["transform"], 1000, 2000) == pytest.approx((500300.0, 4099400.0))
    with open_raster(mosaic.path) as raster:
        assert raster.georeference == geo
        np.testing.assert_array_equal(
            raster.read_window(100, 50, 1700, 1250), scene.image
        )
    # PixelIsPoint: the tiepoint is a pixel's centre; the transform maps corners.
    point = tmp_path / "point.tif"
    keys = [1, 1, 0, 2, 1024, 0, 1, 1, 1025, 0, 1, 2]
    tifffile.imwrite(
        point,
        scene.image,
        tile=(256, 256),
        photometric="rgb",
        extratags=[
            (33550, "d", 3, (2.0, 2.0, 0.0), True),
            (33922, "d", 6, (0.0, 0.0, 0.0, 100.0, 200.0, 0.0), True),
            (34735, "H", len(keys), keys, True),
        ],
    )
    geo = read_tiff_header(point).georeference
    assert geo["raster_type"] == "PixelIsPoint" and geo["crs"] is None
    assert to_map(geo["transform"], 0.5, 0.5) == pytest.approx((100.0, 200.0))


def test_a_corrupt_tile_is_an_image_error_naming_it(tmp_path: Path, scene) -> None:
    path = tmp_path / "good.tif"
    tifffile.imwrite(
        path, scene.image, tile=(256, 256), compression="zlib", photometric="rgb"
    )
    bad = tmp_path / "bad.tif"
    corrupt_copy(path, bad, 8)  # row 1, column 1 of a 7-column grid
    with open_raster(bad) as raster:
        np.testing.assert_array_equal(
            raster.read_window(0, 0, 256, 256), scene.image[:256, :256]
        )
        with pytest.raises(
            ImageError,
            match=r"bad.tif: cannot decode tile 8 \(pixels x 256-512, y 256-512",
        ):
            raster.read_window(200, 200, 400, 400)
    with pytest.raises(ImageError, match="tile 8"):
        predict_sliced(
            bad, lambda tile: {"boxes": [], "scores": [], "labels": []}, slice_wh=320
        )


def test_files_that_cannot_be_windowed_fail_clearly(
    tmp_path: Path, scene, monkeypatch
) -> None:
    rotated = tmp_path / "rotated.tif"
    tifffile.imwrite(
        rotated,
        scene.image.astype(np.uint16),
        tile=(256, 256),
        photometric="rgb",
        extratags=[(274, "H", 1, 6, True)],
    )
    with pytest.raises(ImageError, match="orientation 6"):
        open_raster(rotated)
    one_strip = tmp_path / "one-strip.tif"
    tifffile.imwrite(one_strip, scene.image.astype(np.uint16), photometric="rgb")
    monkeypatch.setattr(tiff_module, "MAX_CHUNK_BYTES", 1024 * 1024)
    with pytest.raises(ImageError, match="too large to read in windows; save it tiled"):
        open_raster(one_strip)


def test_the_model_pulls_tiles_only_a_few_batches_ahead() -> None:
    from concurrent.futures import ThreadPoolExecutor

    pulled = []

    def items():
        for i in range(50):
            pulled.append(i)
            yield i

    with ThreadPoolExecutor(2) as pool:
        results = bounded_map(pool, lambda i: (i, len(pulled)), items(), ahead=3)
        for i, seen in results:
            # When item i is done, at most `ahead` items past it were read.
            assert seen <= i + 3
    assert pulled == list(range(50))
