"""Merging duplicates across tiles: ours (provenance) against the classic NMS / NMM on the failure cases, masks, candidates, how memory grows."""

from __future__ import annotations

import itertools
import tracemalloc
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import pytest

from sliced_inference.bench.merge_speed import sliced_detections
from sliced_inference.slicer import ConfigError, MergeConfig, merge_detections
from sliced_inference.slicer.candidates import (
    intersection_areas,
    overlapping_pairs,
    pair_ios,
    pair_iou,
)
from sliced_inference.slicer.masks import paste_union
from sliced_inference.slicer.predictions import FULL_IMAGE, Predictions
from sliced_inference.slicer.tiles import interior_edges, tile_boxes

NAMES = {0: "car", 1: "truck", 2: "person"}
# Two tiles side by side: x 0-512 and 388-900, sharing the band x 388-512.
IMAGE_WH = (900, 500)
TILES = tile_boxes(IMAGE_WH, 512, 0.2)

PROVENANCE = MergeConfig()
NMS_IOU = MergeConfig(strategy="nms", metric="iou")
GREEDY_IOS = MergeConfig(strategy="greedy_nmm", metric="ios")  # SAHI's default


def _preds(*rows: tuple, masks: list[np.ndarray] | None = None) -> Predictions:
    """Predictions from ``(box, score, class_id, tile_index, truncated)`` rows."""
    boxes, scores, classes, tiles, cut = zip(*rows, strict=True)
    mask_boxes = None
    if masks is not None:
        mask_boxes = np.array([np.round(b) for b in boxes], np.int32)
    return Predictions(
        boxes=np.array(boxes, np.float32),
        scores=scores,
        class_ids=classes,
        class_names=NAMES,
        masks=masks,
        mask_boxes=mask_boxes,
        tile_index=tiles,
        truncated=cut,
    )


def _merge(preds: Predictions, config: MergeConfig = PROVENANCE) -> Predictions:
    return merge_detections(preds, TILES, IMAGE_WH, config)


# --- the three failure cases of slicing.md ----------------------------------------


def case_a() -> Predictions:
    """A car at x 479-561 cut by tile 0's right edge (x 512); tile 1 sees it whole."""
    return _preds(
        ([480, 200, 512, 260], 0.85, 0, 0, True),  # the fragment, IoU 0.39 with ...
        ([479, 201, 561, 259], 0.80, 0, 1, False),  # ... the whole object
    )


def case_b() -> Predictions:
    """A small car mostly inside a big one (a car carrier), both seen by both tiles."""
    return _preds(
        ([420, 100, 500, 300], 0.90, 0, 0, False),  # big, tile 0
        ([421, 101, 500, 299], 0.88, 0, 1, False),  # big, tile 1
        ([450, 90, 480, 120], 0.70, 0, 0, False),  # small: 2/3 inside the big one
        ([451, 91, 480, 121], 0.72, 0, 1, False),
    )


def case_c() -> Predictions:
    """One object labelled car in tile 0 and truck in tile 1, IoU about 0.95."""
    return _preds(
        ([440, 300, 500, 340], 0.80, 0, 0, False),
        ([441, 301, 500, 341], 0.70, 1, 1, False),
    )


def test_case_a_fragment_next_to_the_whole_object() -> None:
    ours = _merge(case_a())
    assert ours.boxes.tolist() == [[479, 201, 561, 259]]  # the whole one, not a union
    assert ours.scores.tolist() == pytest.approx([0.85])
    assert not ours.truncated.any()

    assert len(_merge(case_a(), NMS_IOU)) == 2  # the peers' duplicate


def test_case_b_small_object_inside_a_big_one() -> None:
    ours = _merge(case_b())
    assert ours.boxes.tolist() == [[420, 100, 500, 300], [451, 91, 480, 121]]
    assert ours.scores.tolist() == pytest.approx([0.90, 0.72])

    swallowed = _merge(case_b(), GREEDY_IOS)
    assert swallowed.boxes.tolist() == [[420, 90, 500, 300]]  # the small car is gone


def test_case_c_one_object_two_labels() -> None:
    ours = _merge(case_c())
    assert ours.labels == ["car"] and len(ours) == 1

    for config in (NMS_IOU, GREEDY_IOS):
        assert sorted(_merge(case_c(), config).labels) == ["car", "truck"]


def test_a_short_or_mislabelled_fragment_joins_the_whole_object() -> None:
    """Models often box less of a cut object than its tile shows, or call half a
    truck a car: IoU with the whole object (clipped to the tile) stays under 0.5,
    but the fragment lies inside it."""
    whole = ([470, 200, 552, 260], 0.80, 1, 1, False)  # a truck seen whole by tile 1
    for fragment in (
        ([494, 205, 512, 255], 0.60, 1, 0, True),  # 18 of the 42 px tile 0 shows
        ([480, 200, 512, 260], 0.70, 0, 0, True),  # the visible part, as a car
    ):
        merged = _merge(_preds(fragment, whole))
        assert merged.boxes.tolist() == [whole[0]] and merged.labels == ["truck"]
        assert merged.scores.tolist() == pytest.approx([0.80])
    # Two complete detections are not matched by cover: a small car inside a big
    # one stays (case B), and so does a fragment that mostly sticks out.
    outside = ([500, 140, 512, 230], 0.6, 1, 0, True)  # 2/3 of it above the truck
    assert len(_merge(_preds(outside, whole))) == 2


def test_a_fragment_joins_the_cluster_its_match_joined() -> None:
    """A model may box part of an object at a tile edge as well as the whole of
    it (NMS keeps both: their IoU is low). The part matches the other tile's
    view, never its own tile's; it follows that view into its cluster."""
    whole_1 = ([391, 200, 430, 240], 0.72, 0, 1, False)  # tile 1, 3 px from its edge
    part_1 = ([389, 202, 405, 225], 0.35, 0, 1, True)  # tile 1, touching the edge
    whole_0 = ([391, 200, 430, 240], 0.70, 0, 0, False)  # tile 0 sees it whole
    merged = _merge(_preds(whole_1, part_1, whole_0))
    assert merged.boxes.tolist() == [whole_1[0]]
    assert merged.scores.tolist() == pytest.approx([0.72])


def test_distinct_classes_stay_apart_below_the_cross_class_threshold() -> None:
    preds = _preds(
        ([440, 300, 500, 340], 0.8, 0, 0, False),
        ([450, 300, 510, 340], 0.7, 2, 1, False),  # IoU 0.71: a person next to a car
    )
    assert len(_merge(preds)) == 2
    assert len(_merge(preds, MergeConfig(cross_class_threshold=0.7))) == 1


def test_detections_of_one_tile_are_never_merged_by_provenance() -> None:
    preds = _preds(
        ([100, 100, 160, 140], 0.9, 0, 0, False),  # two parked cars the model
        ([105, 102, 165, 142], 0.8, 0, 0, False),  # separated, IoU 0.75
    )
    assert len(_merge(preds)) == 2
    assert len(_merge(preds, NMS_IOU)) == 1  # the classic strategies compare them


def test_full_image_pass_preferred_for_large_objects_and_tiles_for_small_ones() -> None:
    large_tile = ([400, 50, 700, 450], 0.9, 0, 1, False)  # 400 px > 0.5 * 512
    large_full = ([398, 48, 702, 452], 0.6, 0, FULL_IMAGE, False)
    small_tile = ([450, 460, 470, 480], 0.5, 0, 1, False)
    small_full = ([449, 459, 471, 481], 0.8, 0, FULL_IMAGE, False)
    merged = _merge(_preds(large_tile, large_full, small_tile, small_full))
    got = dict(zip(merged.tile_index.tolist(), merged.boxes.tolist(), strict=True))
    assert got == {FULL_IMAGE: large_full[0], 1: small_tile[0]}
    assert merged.scores.tolist() == pytest.approx([0.9, 0.8])  # the clusters' best


def test_fragments_of_a_large_object_come_back_whole() -> None:
    preds = _preds(
        ([300, 100, 512, 300], 0.6, 0, 0, True),
        ([388, 102, 700, 298], 0.7, 0, 1, True),
    )
    merged = _merge(preds)
    assert merged.boxes.tolist() == [[300, 100, 700, 300]]
    assert merged.scores.tolist() == pytest.approx([0.7])
    assert not merged.truncated.any()  # reassembled: nothing cut remains


def test_a_lone_fragment_stays_truncated() -> None:
    merged = _merge(_preds(([300, 100, 512, 300], 0.6, 0, 0, True)))
    assert merged.truncated.tolist() == [True]


# --- masks -----------------------------------------------------------------------


def _fragments(
    canvas: np.ndarray, tiles: np.ndarray, image_wh: tuple[int, int]
) -> Predictions:
    """What a perfect segmenter returns per tile for the one object drawn on ``canvas``."""
    interior = interior_edges(tiles, image_wh)
    boxes, masks, tile_index, cut = [], [], [], []
    for t, (tx0, ty0, tx1, ty1) in enumerate(tiles):
        ys, xs = np.nonzero(canvas[ty0:ty1, tx0:tx1])
        if not len(xs):
            continue
        x0, y0, x1, y1 = (
            xs.min() + tx0,
            ys.min() + ty0,
            xs.max() + 1 + tx0,
            ys.max() + 1 + ty0,
        )
        boxes.append([x0, y0, x1, y1])
        masks.append(canvas[y0:y1, x0:x1].copy())
        tile_index.append(t)
        touches = np.array([x0 <= tx0, y0 <= ty0, x1 >= tx1, y1 >= ty1])
        cut.append(bool((touches & interior[t]).any()))
    return Predictions(
        boxes=np.array(boxes, np.float32),
        scores=np.linspace(0.6, 0.9, len(boxes)),
        class_ids=np.zeros(len(boxes), int),
        class_names=NAMES,
        masks=masks,
        mask_boxes=np.array(boxes, np.int32),
        tile_index=tile_index,
        truncated=cut,
    )


def test_an_object_spanning_four_tiles_comes_back_with_its_exact_mask() -> None:
    image_wh = (900, 900)
    tiles = tile_boxes(image_wh, 512, 0.2)  # 2 x 2 tiles, interior edges at 388 / 512
    canvas = np.zeros(image_wh[::-1], np.uint8)
    cv2.ellipse(canvas, (450, 450), (300, 170), 30, 0, 360, 1, -1)
    cv2.circle(canvas, (450, 450), 60, 0, -1)  # a hole: not a convex blob
    canvas = canvas.astype(bool)
    preds = _fragments(canvas, tiles, image_wh)
    assert len(tiles) == 4 and len(preds) == 4 and preds.truncated.all()

    merged = merge_detections(preds, tiles, image_wh)

    assert len(merged) == 1
    ys, xs = np.nonzero(canvas)
    truth = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert merged.mask_boxes[0].tolist() == truth
    assert merged.boxes[0].tolist() == truth
    pasted = np.zeros_like(canvas)
    x0, y0, x1, y1 = merged.mask_boxes[0]
    pasted[y0:y1, x0:x1] = merged.masks[0]
    np.testing.assert_array_equal(pasted, canvas)
    assert merged.scores.tolist() == pytest.approx([0.9])
    assert not merged.truncated.any()  # the whole object is back


def test_a_complete_keeper_keeps_its_own_mask() -> None:
    whole = np.ones((58, 82), bool)
    whole[:10, :10] = False
    preds = _preds(
        ([480, 200, 512, 260], 0.85, 0, 0, True),
        ([479, 201, 561, 259], 0.80, 0, 1, False),
        masks=[np.ones((60, 32), bool), whole],
    )
    merged = _merge(preds)
    assert merged.mask_boxes.tolist() == [[479, 201, 561, 259]]
    np.testing.assert_array_equal(merged.masks[0], whole)


def test_greedy_nmm_ors_masks_on_the_union_box() -> None:
    preds = _preds(
        ([10, 10, 20, 20], 0.9, 0, 0, False),
        ([15, 12, 25, 22], 0.8, 0, 1, False),
        masks=[np.ones((10, 10), bool), np.ones((10, 10), bool)],
    )
    merged = _merge(
        preds, MergeConfig(strategy="greedy_nmm", metric="ios", threshold=0.3)
    )
    assert merged.mask_boxes.tolist() == [[10, 10, 25, 22]]
    mask, box = paste_union(preds.masks, preds.mask_boxes)
    np.testing.assert_array_equal(merged.masks[0], mask)
    assert mask.sum() == 100 + 100 - 5 * 8  # the overlap counted once


# --- classic strategies ----------------------------------------------------------


def _cluster() -> Predictions:
    """Three overlapping boxes in a chain (a-b and b-c overlap, a-c do not) plus a loner."""
    return _preds(
        ([0, 0, 10, 10], 0.7, 0, 0, False),
        ([4, 0, 14, 10], 0.9, 0, 0, False),
        ([8, 0, 18, 10], 0.8, 0, 1, False),
        ([50, 50, 60, 60], 0.4, 0, 1, False),
    )


def test_nms_keeps_the_top_scoring_detection_of_a_cluster() -> None:
    merged = _merge(_cluster(), MergeConfig(strategy="nms", threshold=0.4))
    assert merged.boxes.tolist() == [[4, 0, 14, 10], [50, 50, 60, 60]]
    assert merged.scores.tolist() == pytest.approx([0.9, 0.4])


def test_greedy_nmm_unions_the_keepers_matches_with_the_max_score() -> None:
    merged = _merge(_cluster(), MergeConfig(strategy="greedy_nmm", threshold=0.4))
    assert merged.boxes.tolist() == [[0, 0, 18, 10], [50, 50, 60, 60]]
    assert merged.scores.tolist() == pytest.approx([0.9, 0.4])


def test_greedy_nmm_matches_against_the_keepers_own_box_and_nmm_is_transitive() -> None:
    chain = _preds(
        ([0, 0, 10, 10], 0.9, 0, 0, False),
        ([4, 0, 14, 10], 0.8, 0, 0, False),  # IoU 0.43 with the first and the third
        ([8, 0, 18, 10], 0.7, 0, 1, False),  # IoU 0.11 with the first
    )
    greedy = _merge(chain, MergeConfig(strategy="greedy_nmm", threshold=0.4))
    assert greedy.boxes.tolist() == [[0, 0, 14, 10], [8, 0, 18, 10]]
    nmm = _merge(chain, MergeConfig(strategy="nmm", threshold=0.4))
    assert nmm.boxes.tolist() == [[0, 0, 18, 10]]
    assert nmm.scores.tolist() == pytest.approx([0.9])


def test_classic_strategies_are_per_class_unless_class_agnostic() -> None:
    preds = _preds(
        ([0, 0, 10, 10], 0.9, 0, 0, False),
        ([1, 0, 11, 10], 0.8, 1, 1, False),
    )
    for strategy in ("nms", "nmm", "greedy_nmm"):
        assert len(_merge(preds, MergeConfig(strategy=strategy))) == 2
        agnostic = _merge(preds, MergeConfig(strategy=strategy, class_agnostic=True))
        assert agnostic.labels == ["car"]


def test_none_keeps_everything_by_decreasing_score() -> None:
    merged = _merge(_cluster(), MergeConfig(strategy="none"))
    assert merged.scores.tolist() == pytest.approx([0.9, 0.8, 0.7, 0.4])


def test_empty_and_single_predictions() -> None:
    for strategy in ("provenance", "nms", "nmm", "greedy_nmm", "none"):
        config = MergeConfig(strategy=strategy)
        assert (
            len(merge_detections(Predictions.empty(NAMES), TILES, IMAGE_WH, config))
            == 0
        )
        assert len(_merge(case_a().select([1]), config)) == 1


@pytest.mark.parametrize("metric", ["iou", "ios"])
@pytest.mark.parametrize("class_agnostic", [False, True])
def test_nms_and_greedy_nmm_form_the_same_clusters_as_sahi(
    metric: str, class_agnostic: bool
) -> None:
    combine = pytest.importorskip("sahi.postprocess.combine")
    rng = np.random.default_rng(7)
    xy = rng.uniform(0, 300, (400, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 60, xy.shape)], 1).astype(
        np.float32
    )
    scores = rng.uniform(0.1, 1, 400).astype(np.float32)
    classes = rng.integers(0, 3, 400)
    preds = Predictions(boxes=boxes, scores=scores, class_ids=classes)
    table = np.concatenate([boxes, scores[:, None], classes[:, None]], axis=1)
    kwargs = {"match_metric": metric.upper(), "match_threshold": 0.5}
    prefix = "" if class_agnostic else "batched_"

    def ours(strategy: str) -> list[tuple]:
        config = MergeConfig(strategy, metric, class_agnostic=class_agnostic)
        merged = merge_detections(preds, np.zeros((0, 4)), (600, 600), config)
        return sorted(map(tuple, merged.boxes.tolist()))

    keep = getattr(combine, prefix + "nms")(table, **kwargs)
    assert ours("nms") == sorted(map(tuple, boxes[keep].tolist()))
    clusters = getattr(combine, prefix + "greedy_nmm")(table, **kwargs)
    unions = [
        tuple(np.concatenate([boxes[m, :2].min(0), boxes[m, 2:].max(0)]).tolist())
        for m in ([k, *rest] for k, rest in clusters.items())
    ]
    assert ours("greedy_nmm") == sorted(unions)
    assert len(unions) < 380  # the boxes really did cluster


# --- candidates ------------------------------------------------------------------


def _random_boxes(rng: np.random.Generator, n: int, extent: float = 1000) -> np.ndarray:
    xy = rng.uniform(0, extent, (n, 2))
    wh = rng.uniform(0, 80, (n, 2)) * rng.choice([0.0, 1.0], (n, 2), p=[0.05, 0.95])
    boxes = np.concatenate([xy, xy + wh], axis=1)
    return np.round(boxes) if n % 2 else boxes  # integers exercise touching edges


@pytest.mark.parametrize("seed", range(6))
def test_overlapping_pairs_match_a_brute_force_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    boxes = _random_boxes(rng, 300 + seed)
    first, second = overlapping_pairs(boxes)

    i, j = np.triu_indices(len(boxes), k=1)
    inter_w = np.minimum(boxes[i, 2], boxes[j, 2]) - np.maximum(
        boxes[i, 0], boxes[j, 0]
    )
    inter_h = np.minimum(boxes[i, 3], boxes[j, 3]) - np.maximum(
        boxes[i, 1], boxes[j, 1]
    )
    hit = (inter_w > 0) & (inter_h > 0)
    assert list(zip(first.tolist(), second.tolist(), strict=True)) == list(
        zip(i[hit].tolist(), j[hit].tolist(), strict=True)
    )
    assert (intersection_areas(boxes[first], boxes[second]) > 0).all()


def test_overlapping_pairs_of_rows_and_columns() -> None:
    # Every box in one column overlaps on x: the sweep picks the y axis instead.
    column = np.array([[0, y, 10, y + 8] for y in range(0, 5000, 10)], float)
    first, second = overlapping_pairs(column)
    assert len(first) == 0
    assert len(overlapping_pairs(column[:, [1, 0, 3, 2]])[0]) == 0


def test_candidate_pairs_grow_far_below_quadratically() -> None:
    # Measured: 11 MiB traced at the peak for 5000 boxes on 4000 px, 74 MiB
    # for 20000 at the same density (6.9x; the sweep examines O(N^1.5) pairs).
    # A dense N x N float64 matrix would be 16x: 191 MiB, then 3052 MiB.
    rng = np.random.default_rng(0)
    peaks, pairs = {}, {}
    for n, extent in ((5000, 4000), (20000, 8000)):
        boxes = _random_boxes(rng, n, extent=extent)
        (first, second), peaks[n] = _traced_peak_mb(
            lambda b=boxes: overlapping_pairs(b)
        )
        assert (first < second).all()
        pairs[n] = len(first)
    assert pairs[5000] > 1000 and pairs[20000] > 3 * pairs[5000]
    assert peaks[20000] < 10 * peaks[5000], peaks
    assert peaks[20000] < 20000**2 * 8 / 1024**2 / 10, peaks


def test_merge_memory_grows_far_below_quadratically() -> None:
    # Measured: 12 MiB traced at the peak merging 5588 detections (4000x3000),
    # 100 MiB for 22710 (8000x6000): 8.1x for 4x the detections, from the
    # O(N^1.5) candidate sweep. A dense N x N matrix would be 16x (3.9 GiB).
    peaks = {}
    for image_wh in ((4000, 3000), (8000, 6000)):
        preds, tiles, image_wh, objects = sliced_detections(0, image_wh)
        merged, peaks[len(preds)] = _traced_peak_mb(
            lambda p=preds, t=tiles, wh=image_wh: merge_detections(p, t, wh)
        )
        assert len(merged) == len(objects)
    small, large = sorted(peaks)
    assert large > 3.5 * small
    assert peaks[large] < 12 * peaks[small], peaks
    assert peaks[large] < large**2 * 8 / 1024**2 / 10, peaks


def test_pairwise_metrics() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 2, 2]], float)
    b = np.array([[5, 0, 15, 10], [2, 2, 4, 4], [5, 5, 6, 6]], float)
    assert intersection_areas(a, b).tolist() == [50, 4, 0]
    assert pair_iou(a, b).tolist() == pytest.approx([1 / 3, 0.04, 0])
    assert pair_ios(a, b).tolist() == pytest.approx([0.5, 1.0, 0])


# --- a large scene: speed, correctness, determinism ------------------------------


def _traced_peak_mb(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()`` and the peak of the memory traced while it ran, in MiB.

    numpy reports its arrays to ``tracemalloc``, so a dense ``N x N`` matrix
    shows; the figure depends on the code and the data, not on the machine's
    load, unlike a timing.
    """
    tracemalloc.start()
    try:
        return fn(), tracemalloc.get_traced_memory()[1] / 1024**2
    finally:
        tracemalloc.stop()


def test_5000_detections_merge_into_one_per_object() -> None:
    # The speed is measured by `python -m bench.merge_speed` (bench/analysis.md).
    preds, tiles, image_wh, objects = sliced_detections()
    assert len(preds) >= 5000 and preds.truncated.sum() > 500
    merged = merge_detections(preds, tiles, image_wh)
    assert len(merged) == len(objects)
    assert not merged.truncated.any()
    # Each object lies inside its own 60 px grid cell: pair boxes by cell.
    cells = (_centres(merged.boxes) - 20) // 60
    truth = (_centres(objects) - 20) // 60
    by_cell = {tuple(c): i for i, c in enumerate(truth.astype(int).tolist())}
    matched = [by_cell[tuple(c)] for c in cells.astype(int).tolist()]
    assert sorted(matched) == list(range(len(objects)))
    iou = pair_iou(merged.boxes, objects[matched])
    assert iou.min() > 0.7  # detections carry 0.5 px of noise on 12-40 px boxes


def _centres(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, :2] + boxes[:, 2:]) / 2


@pytest.mark.parametrize("strategy", ["provenance", "nms", "nmm", "greedy_nmm", "none"])
def test_shuffling_the_input_gives_the_same_output(strategy: str) -> None:
    preds, tiles, image_wh, _ = sliced_detections(seed=1)
    preds = preds.select(np.arange(800))
    preds.masks = [np.full((3, 4), i % 2 == 0) for i in range(len(preds))]
    preds.mask_boxes = np.tile([0, 0, 4, 3], (len(preds), 1)).astype(np.int32)
    preds.scores = np.round(preds.scores, 1)  # plenty of ties
    config = MergeConfig(strategy=strategy, metric="ios")
    reference = merge_detections(preds, tiles, image_wh, config)
    for seed in range(3):
        shuffled = preds.select(np.random.default_rng(seed).permutation(len(preds)))
        result = merge_detections(shuffled, tiles, image_wh, config)
        for name in (
            "boxes",
            "scores",
            "class_ids",
            "tile_index",
            "truncated",
            "mask_boxes",
        ):
            np.testing.assert_array_equal(
                getattr(result, name), getattr(reference, name)
            )
        for a, b in zip(result.masks, reference.masks, strict=True):
            np.testing.assert_array_equal(a, b)


# --- configuration ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "wbf"}, "'provenance', 'nms', 'greedy_nmm', 'nmm', 'none'"),
        ({"metric": "giou"}, "'iou', 'ios'"),
        ({"threshold": 0.0}, r"threshold must be in \(0, 1\]"),
        ({"threshold": 1.5}, "threshold"),
        ({"threshold": "high"}, "threshold"),
        ({"cross_class_threshold": -1}, "cross_class_threshold"),
        ({"large_object_size": 0}, "large_object_size"),
        ({"class_agnostic": "yes"}, "class_agnostic"),
    ],
)
def test_bad_configs_raise_config_errors_naming_the_valid_choices(
    kwargs: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        MergeConfig(**kwargs)


def test_names_are_case_insensitive_as_in_sahi() -> None:
    config = MergeConfig(strategy="GREEDY_NMM", metric="IOS")
    assert (config.strategy, config.metric) == ("greedy_nmm", "ios")


def test_tile_indices_must_name_tiles() -> None:
    preds = _preds(([0, 0, 10, 10], 0.9, 0, 7, False))
    with pytest.raises(ValueError, match="tile_index 7"):
        _merge(preds)


def test_every_strategy_pair_is_exercised() -> None:
    # Each strategy against each metric runs on the failure cases without error.
    for strategy, metric in itertools.product(
        ("provenance", "nms", "nmm", "greedy_nmm", "none"), ("iou", "ios")
    ):
        for case in (case_a, case_b, case_c):
            merged = _merge(case(), MergeConfig(strategy=strategy, metric=metric))
            assert 1 <= len(merged) <= len(case())
