"""The sliced pipeline end to end with a real (rule-based) detector: shifts, merging, masks, bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from sliced_inference.slicer import (
    CallableModel,
    ConfigError,
    ImageError,
    ModelLoadError,
    load_model,
    predict_full_image,
    predict_sliced,
    tile_boxes,
)
from sliced_inference.slicer.images import load_image, to_rgb


def blob_detector(tile: np.ndarray) -> dict:
    """Finds bright blobs: each connected component of pixels > 128 is a detection with its mask."""
    gray = tile.max(axis=2) if tile.ndim == 3 else tile
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        (gray > 128).astype(np.uint8), connectivity=8
    )
    boxes = [[x, y, x + w, y + h] for x, y, w, h, _ in stats[1:]]
    masks = (
        np.stack([labels == i for i in range(1, count)])
        if count > 1
        else np.zeros((0, *gray.shape), bool)
    )
    return {
        "boxes": np.array(boxes, np.float32).reshape(-1, 4),
        "scores": np.full(count - 1, 0.9),
        "labels": np.zeros(count - 1, int),
        "masks": masks,
    }


def _scene(
    width: int = 1500, height: int = 1100
) -> tuple[np.ndarray, list[list[int]], np.ndarray]:
    """Dark image with squares (some cut by tile edges) and one big ellipse spanning four tiles."""
    image = np.zeros((height, width, 3), np.uint8)
    squares = [
        [100, 100, 130, 125],
        [500, 300, 540, 350],
        [620, 600, 660, 640],
        [1200, 900, 1260, 960],
        [1450, 50, 1490, 90],
    ]
    for x0, y0, x1, y1 in squares:
        image[y0:y1, x0:x1] = 255
    ellipse = np.zeros((height, width), np.uint8)
    cv2.ellipse(ellipse, (760, 560), (330, 210), 20, 0, 360, 255, -1)
    image[ellipse > 0] = 255
    return image, squares, ellipse > 0


def test_tile_detections_are_shifted_back_and_duplicates_merged() -> None:
    image, squares, ellipse = _scene()
    # The ellipse swallows two of the squares; keep only the squares that stay separate.
    separate = [s for s in squares if not ellipse[s[1] : s[3], s[0] : s[2]].any()]
    model = CallableModel(blob_detector, class_names={0: "blob"})

    preds = predict_sliced(image, model, slice_wh=512, overlap=0.25)

    assert (
        len(tile_boxes((1500, 1100), 512, 0.25)) > 4
    )  # the objects really were sliced
    boxes = sorted(preds.boxes.round().astype(int).tolist())
    for square in separate:
        assert square in boxes, f"{square} not found exactly once in {boxes}"
    assert (
        len(preds) == len(separate) + 1
    )  # plus the ellipse, merged from its fragments


def test_an_object_spanning_four_tiles_comes_back_with_its_exact_mask() -> None:
    image, _, ellipse = _scene()
    ys, xs = np.nonzero(ellipse)
    truth_box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]

    preds = predict_sliced(
        image, CallableModel(blob_detector), slice_wh=512, overlap=0.25
    )

    big = int(np.argmax(preds.areas))
    x0, y0, x1, y1 = preds.mask_boxes[big]
    assert [x0, y0, x1, y1] == truth_box
    tiles = tile_boxes((1500, 1100), 512, 0.25)
    spans = (
        (tiles[:, 0] < x1)
        & (tiles[:, 2] > x0)
        & (tiles[:, 1] < y1)
        & (tiles[:, 3] > y0)
    )
    assert spans.sum() >= 4
    np.testing.assert_array_equal(preds.masks[big], ellipse[y0:y1, x0:x1])


def test_full_image_pass_and_bgr_callbacks() -> None:
    image, squares, _ = _scene()
    image[..., 2] = 0  # RGB with no blue: in BGR order the first channel is all zero
    seen = []

    def bgr_callback(tile: np.ndarray) -> dict:
        seen.append(tile[..., 0].max())
        return blob_detector(tile)

    preds = predict_sliced(
        image,
        CallableModel(bgr_callback, channels="bgr"),
        slice_wh=512,
        overlap=0.25,
        full_image_pass=True,
    )
    assert max(seen) == 0  # the callback got BGR tiles
    assert (preds.tile_index == -1).any()
    full = predict_full_image(image, CallableModel(blob_detector))
    assert (full.tile_index == -1).all() and len(full) >= 4


def test_conversions_of_unusual_images() -> None:
    gray16 = np.zeros((600, 700), np.uint16)
    gray16[100:140, 200:260] = 60000
    rgba = np.zeros((600, 700, 4), np.uint8)
    rgba[100:140, 200:260, :3] = 255
    for image in (gray16, rgba, gray16.astype(np.float32) / 65535):
        preds = predict_sliced(
            image, CallableModel(blob_detector), slice_wh=320, overlap=0.2
        )
        assert preds.boxes.round().astype(int).tolist() == [[200, 100, 260, 140]]
    assert to_rgb(gray16).dtype == np.uint8


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"overlap": 1.0}, ConfigError, "overlap"),
        ({"overlap": -0.2}, ConfigError, "overlap"),
        ({"slice_wh": 0}, ConfigError, "positive"),
        ({"confidence": 1.5}, ConfigError, "confidence"),
        ({"batch_size": 0}, ConfigError, "batch_size"),
        ({"merge": "bogus"}, ConfigError, "strategy"),
    ],
)
def test_bad_options_raise_clear_errors(kwargs, error, message) -> None:
    with pytest.raises(error, match=message):
        predict_sliced(
            np.zeros((100, 100, 3), np.uint8), CallableModel(blob_detector), **kwargs
        )


def test_bad_images_raise_clear_errors(tmp_path) -> None:
    with pytest.raises(ImageError, match="1x1"):
        predict_sliced(np.zeros((1, 1, 3), np.uint8), CallableModel(blob_detector))
    with pytest.raises(ImageError):
        to_rgb(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "missing.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(tmp_path / "empty.jpg")
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(ImageError, match="not an image"):
        load_image(tmp_path / "text.jpg")
    good = np.random.default_rng(0).integers(0, 255, (300, 400, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "good.jpg"), good)
    data = (tmp_path / "good.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated"):
        load_image(tmp_path / "truncated.jpg")


def test_missing_models_raise_clear_errors(tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        load_model(tmp_path / "nope.pt")
    with pytest.raises(ModelLoadError, match="not found"):
        load_model(str(tmp_path / "no-such-dir"))
    (tmp_path / "fake.pt").write_text("not a model")
    with pytest.raises(ModelLoadError, match="not an Ultralytics model"):
        load_model(tmp_path / "fake.pt")
    with pytest.raises(ModelLoadError, match="cannot use"):
        load_model(42)
