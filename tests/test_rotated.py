"""Rotated boxes in the engine: exact rotated IoU and NMS against shapely, the
predictions container, and an object cut by a tile edge merged back into one box."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from shapely.geometry import Polygon

from sliced_inference.slicer import (
    FULL_IMAGE,
    CallableModel,
    MergeConfig,
    Predictions,
    is_rotated,
    merge_detections,
    predict_sliced,
)
from sliced_inference.slicer.rotated import (
    NO_CLIP,
    clipped_rotated_iou,
    enclosing_rbox,
    pair_rotated_ios,
    pair_rotated_iou,
    rbox_corners,
    rbox_envelopes,
    regularize,
)
from sliced_inference.slicer.tiles import tile_boxes


def _random_rboxes(rng: np.random.Generator, n: int, extent: float = 60) -> np.ndarray:
    centres = rng.uniform(0, extent, (n, 2))
    sizes = np.exp(rng.uniform(np.log(2), np.log(40), (n, 2)))
    return np.c_[centres, sizes, rng.uniform(-np.pi, np.pi, n)]


def _shapely(rbox: np.ndarray) -> Polygon:
    return Polygon(rbox_corners(rbox[None])[0])


def test_rotated_iou_and_ios_match_shapely_on_random_pairs() -> None:
    rng = np.random.default_rng(0)
    a, b = _random_rboxes(rng, 2000), _random_rboxes(rng, 2000)
    b[:200] = a[:200]  # identical pairs
    b[200:400, :4] = a[200:400, :4]  # same box, another angle
    iou, ios = pair_rotated_iou(a, b), pair_rotated_ios(a, b)
    for i in range(len(a)):
        p, q = _shapely(a[i]), _shapely(b[i])
        inter = p.intersection(q).area
        assert iou[i] == pytest.approx(inter / p.union(q).area, abs=1e-9)
        assert ios[i] == pytest.approx(inter / min(p.area, q.area), abs=1e-9)
    assert (iou[:200] > 1 - 1e-9).all()
    assert 0.1 < (iou > 0).mean() < 0.9  # the cases cover overlaps and misses


def test_iou_of_rotated_boxes_cut_to_tiles_matches_shapely() -> None:
    rng = np.random.default_rng(1)
    a, b = _random_rboxes(rng, 500), _random_rboxes(rng, 500)
    clip_a = np.sort(rng.uniform(0, 60, (500, 2, 2)), axis=1).transpose(0, 2, 1)
    clip_a = clip_a.reshape(500, 4)[:, [0, 2, 1, 3]]
    clip_b = np.tile(NO_CLIP, (500, 1))
    ours = clipped_rotated_iou(a, b, clip_a, clip_b)
    for i in range(len(a)):
        x0, y0, x1, y1 = clip_a[i]
        region = Polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
        p, q = _shapely(a[i]).intersection(region), _shapely(b[i])
        union = p.union(q).area
        expected = p.intersection(q).area / union if union else 0.0
        assert ours[i] == pytest.approx(expected, abs=1e-9)


def _shapely_nms(rboxes, scores, class_ids, threshold: float) -> list[int]:
    """Textbook NMS per class with shapely's polygon IoU: the reference."""
    polygons = [_shapely(r) for r in rboxes]
    kept: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if all(
            class_ids[k] != class_ids[i]
            or polygons[k].intersection(polygons[i]).area
            / polygons[k].union(polygons[i]).area
            < threshold
            for k in kept
        ):
            kept.append(int(i))
    return kept


@pytest.mark.parametrize("seed", range(5))
def test_rotated_nms_keeps_what_shapely_nms_keeps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    rboxes = _random_rboxes(rng, n, extent=120)
    # Duplicates: jittered copies of some boxes, as overlapping tiles make.
    copies = rng.integers(0, n, 100)
    jitter = np.c_[
        rng.normal(0, 2, (100, 2)),
        rng.normal(0, 1.5, (100, 2)),
        rng.normal(0, 0.1, 100),
    ]
    rboxes = np.r_[rboxes, rboxes[copies] + jitter]
    rboxes[:, 2:4] = np.abs(rboxes[:, 2:4]) + 0.5
    scores = rng.permutation(len(rboxes)) / len(rboxes) + 0.001
    class_ids = rng.integers(0, 2, len(rboxes))
    preds = Predictions.from_rotated(rboxes, scores, class_ids)
    config = MergeConfig(strategy="nms", metric="iou", threshold=0.3)
    merged = merge_detections(preds, np.zeros((0, 4)), (200, 200), config)

    expected = _shapely_nms(preds.rboxes, preds.scores, preds.class_ids, 0.3)
    np.testing.assert_allclose(merged.rboxes, preds.rboxes[expected])
    assert merged.rotated and len(merged) < len(preds)


def test_predictions_carry_rotated_boxes_through_select_shift_and_concatenate() -> None:
    preds = Predictions.from_rotated(
        [[10, 10, 8, 2, 0.3], [30, 5, 4, 4, 2.0]], [0.9, 0.5], [0, 1], clip_wh=(32, 32)
    )
    assert preds.rotated and is_rotated(CallableModel(lambda t: {}, rotated=True))
    assert (preds.rboxes[:, 4] < np.pi / 2).all()  # regularized
    np.testing.assert_allclose(
        preds.boxes, rbox_envelopes(preds.rboxes).clip(0, 32), atol=1e-5
    )
    moved = preds.shifted(100, 50)
    np.testing.assert_allclose(moved.rboxes[:, :2], preds.rboxes[:, :2] + [100, 50])
    np.testing.assert_allclose(moved.rboxes[:, 2:], preds.rboxes[:, 2:])
    assert moved.select([1]).rboxes.tolist() == [moved.rboxes[1].tolist()]
    both = Predictions.concatenate([preds, moved])
    assert both.rboxes.shape == (4, 5)
    plain = Predictions.from_arrays([[0, 0, 1, 1]], [1.0], [0])
    assert not Predictions.concatenate([preds, plain]).rotated


def test_enclosing_rbox_of_two_halves_is_the_whole() -> None:
    whole = np.array([40.0, 30.0, 50.0, 6.0, 0.4])
    d = 12.5 * np.array([np.cos(0.4), np.sin(0.4)])
    halves = np.array([[*(whole[:2] - d), 25, 6, 0.4], [*(whole[:2] + d), 25, 6, 0.4]])
    np.testing.assert_allclose(
        enclosing_rbox(rbox_corners(halves)), regularize(whole)[0], atol=1e-3
    )


# --- an object cut by a tile edge -------------------------------------------------

PAINT_RGB = (250, 40, 200)


def paint(image: np.ndarray, rboxes: np.ndarray) -> None:
    """Fills rotated boxes in ``PAINT_RGB`` (in place), at 1/16 px precision."""
    for corners in rbox_corners(rboxes):
        # OpenCV puts pixel centres on integers, ours on half-integers.
        pts = np.round((corners - 0.5) * 16).astype(np.int32)
        cv2.fillPoly(image, [pts], PAINT_RGB, shift=4)


def paint_detector(tile: np.ndarray) -> dict:
    """A real detector of one colour: the minimum-area rotated box of each blob.

    Like a model on a tile, it sees only the part of an object inside the tile.
    """
    mask = (np.abs(tile.astype(int) - PAINT_RGB).sum(axis=2) < 30).astype(np.uint8)
    count, labels = cv2.connectedComponents(mask)
    rboxes = []
    for k in range(1, count):
        ys, xs = np.nonzero(labels == k)
        (cx, cy), (w, h), degrees = cv2.minAreaRect(np.c_[xs, ys].astype(np.float32))
        rboxes.append([cx + 0.5, cy + 0.5, w, h, np.deg2rad(degrees)])
    n = len(rboxes)
    return {
        "rboxes": np.array(rboxes).reshape(-1, 5),
        "scores": [0.8] * n,
        "labels": [0] * n,
    }


def test_long_rotated_object_crossing_two_tiles_comes_back_as_one_box() -> None:
    # Tiles x 0-320 and 256-576 (one row); the object spans x 114-462, so
    # neither tile sees it whole.
    image = np.full((320, 576, 3), 90, np.uint8)
    truth = np.array([288.0, 160.0, 360.0, 30.0, np.deg2rad(20)])
    paint(image, truth[None])
    model = CallableModel(paint_detector, rotated=True)
    assert len(tile_boxes((576, 320), 320, 0.2)) == 2

    tiles_alone = predict_sliced(image, model, slice_wh=320, merge=MergeConfig("none"))
    classic = predict_sliced(image, model, slice_wh=320, merge=MergeConfig("nms"))
    merged = predict_sliced(image, model, slice_wh=320)  # provenance, the default

    assert len(tiles_alone) == 2 and tiles_alone.truncated.all()
    # The two fragments overlap too little for IoU matching to see one object.
    assert len(classic) == 2
    assert len(merged) == 1
    iou = pair_rotated_iou(merged.rboxes, truth[None])[0]
    assert iou >= 0.9, iou
    assert not merged.truncated[0]  # the union reaches past both cut edges
    # With a whole-image pass, its complete box represents the object.
    with_full = predict_sliced(image, model, slice_wh=320, full_image_pass=True)
    assert len(with_full) == 1 and with_full.tile_index[0] == FULL_IMAGE
    assert pair_rotated_iou(with_full.rboxes, truth[None])[0] >= 0.95
