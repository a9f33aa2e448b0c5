"""Images larger than memory through the SDK: GeoTIFFs, header metadata, previews, corrupt tiles, and a 40000x30000 BigTIFF.

The fast tests label small tiled GeoTIFFs. The slow one writes a 40000x30000
tiled BigTIFF (3.4 GiB decoded) with four generated scenes pasted in, and a
copy with one corrupt tile, and labels both, with the scenes as separate
images, in a child process whose peak memory is measured (``VmHWM``). There
the bundled detector runs on every tile that is not one flat colour
(``bench.huge_image.SkipFlatTiles``): all 4602 tiles of the image are still
read, shifted and merged, but the ~4500 flat ones skip the forward pass, which
would take 3-10 minutes on a 2-core CPU. The run with the model on every tile
is the benchmark (``python -m bench.huge_image``, docs/benchmarks.md).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import fiftyone as fo
import numpy as np
import pytest
import tifffile

import sliced_inference as si
from sliced_inference.bench.huge_image import corrupt_copy, make_case, measure
from sliced_inference.slicer import CallableModel, load_model, predict_sliced
from sliced_inference.slicer.georeference import to_map
from sliced_inference.synthetic import generate_scene
from sliced_inference.synthetic.mosaic import write_mosaic


@pytest.fixture(scope="module")
def scene():
    return generate_scene(seed=31, width=1600, height=1200)


@pytest.fixture(scope="module")
def folder(session_dir: Path) -> Path:
    path = session_dir / "huge-sdk"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def geotiff(folder: Path, scene):
    """A 2400x1800 tiled GeoTIFF with a scene pasted at (500, 300)."""
    return write_mosaic(folder / "geo.tif", [(scene, 500, 300)], 2400, 1800)


def _dataset(name: str, paths: list) -> fo.Dataset:
    dataset = fo.Dataset(name)
    dataset.add_samples([fo.Sample(filepath=str(p)) for p in paths])
    return dataset


def test_a_geotiff_is_labelled_with_header_metadata_and_its_georeference(
    geotiff, scene, det_model_path: Path
) -> None:
    dataset = _dataset("huge-geotiff", [geotiff.path])
    summary = si.apply_sliced_model(dataset, str(det_model_path), "sliced")
    assert (summary.processed, summary.errors) == (1, {})
    sample = dataset.first()
    assert (sample.metadata.width, sample.metadata.height) == (2400, 1800)
    assert sample.metadata.mime_type == "image/tiff"
    geo = sample.metadata["georeference"]
    assert geo["crs"] == "EPSG:32633"
    # The same detections as the engine on the decoded array.
    array = np.full((1800, 2400, 3), (112, 124, 78), np.uint8)
    array[300:1500, 500:2100] = scene.image
    expected = predict_sliced(array, load_model(det_model_path))
    dets = sample["sliced"].detections
    assert len(dets) == len(expected) > 30
    # The README recipe: a box's corners on the map. The object the run found
    # best maps to where it lies on the ground: the scene was pasted at (500, 300).
    truth = scene.boxes + [500, 300, 500, 300]
    iou, det, (x0, y0, _, _) = max(
        ((_iou(d.bounding_box, t, 2400, 1800), d, t) for d in dets for t in truth),
        key=lambda found: found[0],
    )
    assert iou > 0.8
    bx, by, _, _ = det.bounding_box
    corner = to_map(geo["transform"], bx * 2400, by * 1800)
    assert corner == pytest.approx((500000 + 0.3 * x0, 4100000 - 0.3 * y0), abs=0.6)


def _iou(box, xyxy, width, height) -> float:
    bx, by, bw, bh = box
    a = (bx * width, by * height, (bx + bw) * width, (by + bh) * height)
    ix = max(0.0, min(a[2], xyxy[2]) - max(a[0], xyxy[0]))
    iy = max(0.0, min(a[3], xyxy[3]) - max(a[1], xyxy[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (xyxy[2] - xyxy[0]) * (xyxy[3] - xyxy[1])
    return inter / (union - inter)


def test_metadata_of_a_tiff_beyond_pillows_limit_comes_from_its_header(
    folder: Path,
) -> None:
    # 16000x12000 = 192 Mpx: past Pillow's decompression-bomb limit (179 Mpx),
    # where FiftyOne's own compute_metadata gets no size.
    path = folder / "flat.tif"
    write_mosaic(path, [], 16000, 12000, geotiff=None)
    dataset = _dataset("huge-metadata", [path])
    si.compute_metadata(dataset)
    metadata = dataset.first().metadata
    assert (metadata.width, metadata.height, metadata.num_channels) == (16000, 12000, 3)
    assert metadata.size_bytes == path.stat().st_size


def test_a_corrupt_tile_skips_that_sample_and_the_run_goes_on(
    folder: Path, geotiff, scene
) -> None:
    bad = folder / "geo-corrupt.tif"
    corrupt_copy(geotiff.path, bad, 6)  # row 1, column 1 of the 5-column tile grid
    png = folder / "scene.png"
    cv2.imwrite(str(png), scene.image[..., ::-1])
    dataset = _dataset("huge-corrupt", [png, bad, geotiff.path])
    model = CallableModel(
        lambda tile: {"boxes": [[1, 1, 9, 9]], "scores": [0.9], "labels": [0]}
    )
    summary = si.apply_sliced_model(dataset, model, "preds")
    bad_id = dataset.match({"filepath": str(bad)}).first().id
    assert summary.processed == 2 and list(summary.errors) == [bad_id]
    message = summary.errors[bad_id]
    assert str(bad) in message and "tile 6 (pixels x 512-1024, y 512-1024" in message
    info = si.get_run_info(dataset, "preds")
    assert info["errors"][0]["filepath"] == str(bad) and info["status"] == "completed"
    assert dataset.count("preds") == 2 and dataset[bad_id]["preds"] is None


def test_bands_and_scaling_reach_the_run_and_its_record(folder: Path, scene) -> None:
    # Blue, green, red, near-infrared in 16 bits; shown as red, green, blue.
    stack = (
        np.dstack([scene.image[..., ::-1], scene.image[..., 1]]).astype(np.uint16) * 256
    )
    path = folder / "four-bands.tif"
    tifffile.imwrite(
        path, stack, tile=(256, 256), photometric="minisblack", planarconfig="contig"
    )
    seen = []
    model = CallableModel(
        lambda tile: (
            seen.append(tile.copy()) or {"boxes": [], "scores": [], "labels": []}
        )
    )
    dataset = _dataset("huge-bands", [path])
    si.apply_sliced_model(
        dataset, model, "preds", slice_wh=1600, bands=(3, 2, 1), scaling="range"
    )
    # "range": 0..65535 -> 0..255.
    expected = (scene.image.astype(np.float32) * 256 * 255 / 65535).astype(np.uint8)
    np.testing.assert_array_equal(seen[0], expected)
    settings = si.get_run_info(dataset, "preds")["settings"]
    assert settings["bands"] == [3, 2, 1] and settings["scaling"] == "range"
    assert dataset.first().metadata.num_channels == 4


def test_previews_let_the_app_show_tiffs(folder: Path, geotiff, scene) -> None:
    png = folder / "small.png"
    cv2.imwrite(str(png), scene.image[:300, :400, ::-1])
    dataset = _dataset("huge-previews", [geotiff.path, png])
    errors = si.write_previews(dataset, folder / "previews", max_side=800)
    assert errors == {}
    tiff_sample, png_sample = (
        dataset.match({"filepath": str(geotiff.path)}).first(),
        dataset.match({"filepath": str(png)}).first(),
    )
    preview = cv2.imread(tiff_sample["preview_filepath"])
    assert preview.shape == (600, 800, 3)  # same aspect: relative boxes still fit
    expected = cv2.resize(
        cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR),
        (533, 400),
        interpolation=cv2.INTER_AREA,
    )
    assert np.abs(preview[100:500, 167:700].astype(int) - expected).mean() < 6
    assert png_sample["preview_filepath"] is None  # the App shows it as it is
    config = dataset.app_config
    assert config.grid_media_field == config.modal_media_field == "preview_filepath"
    assert "preview_filepath" in config.media_fields and config.media_fallback


@pytest.mark.slow
def test_a_40000x30000_bigtiff_is_labelled_in_under_2_gib_and_as_well_as_its_scenes(
    session_dir: Path, det_model_path: Path
) -> None:
    case_dir = session_dir / "huge-bigtiff"
    case = make_case(case_dir, 40000, 30000, corrupt_tile=3)
    report = measure(
        case_dir / "case.json",
        det_model_path,
        skip_flat=True,
        baseline=True,
        timeout_s=1800,
    )
    print(f"40000x30000 BigTIFF: {report}")
    # Every sample but the corrupt copy is labelled; its error names the tile.
    assert report["processed"] == 5
    assert list(report["errors"]) == [case.corrupt]
    assert (
        "tile 3 (pixels x 1536-2048, y 0-512 of the 40000x30000 image)"
        in report["errors"][case.corrupt]
    )
    # Every tile of the image went through the run.
    assert report["tiles_seen"] >= report["huge_tiles"] == 4602
    # Decoded, the image alone is 3433 MiB.
    assert report["peak_rss_mib"] < 2048
    assert report["baseline"]["peak_rss_mib"] < 2048
    meta = report["metadata"]
    assert (meta["width"], meta["height"]) == (40000, 30000)
    assert meta["georeference"]["transform"] == [
        0.3,
        0.0,
        500000.0,
        0.0,
        -0.3,
        4100000.0,
    ]
    pasted, alone = report["pasted"], report["alone"]
    assert pasted["objects"] == alone["objects"] > 250
    assert pasted["recall"] >= alone["recall"] - 0.05
    assert pasted["AP50"] >= alone["AP50"] - 0.05
    assert pasted["off_scenes"] <= 3
