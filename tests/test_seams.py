"""Seams: no accuracy lost where tiles meet, against the whole image at the same scale.

The measurement is ``bench.seams`` (the benchmark task of the same name); the
scenes put most ungrouped objects on the default grid's seams.
"""

from __future__ import annotations

import pytest
from conftest import DET_MODEL

from sliced_inference.bench.seams import SCENE_SETS, measure_seam_loss, seam_scene
from sliced_inference.slicer import load_model


@pytest.fixture(scope="module")
def det_model():
    return load_model(DET_MODEL, device="cpu")


@pytest.fixture(scope="module")
def seam_scenes(det_model):
    """Two 1600x1200 scenes with about 100 of their 200+ objects on seams."""
    return [
        seam_scene(seed, 1600, 1200, det_model.class_names, **SCENE_SETS["seams"])
        for seed in (900, 901)
    ]


def test_the_scenes_have_many_objects_on_seams(seam_scenes, det_model) -> None:
    (row,) = measure_seam_loss(seam_scenes[:1], det_model, {"defaults": {}})
    assert row.sliced["seam"].num_truth >= 100
    assert row.sliced["seam"].num_truth + row.sliced["interior"].num_truth == len(
        seam_scenes[0].truth
    )


def test_default_merge_loses_at_most_001_ap50_at_the_seams(
    seam_scenes, det_model
) -> None:
    """Measured: loss -0.011 overall and -0.013 on seam objects (sliced better);
    before the fragment rule the seam objects lost more (see docs/benchmarks.md)."""
    (row,) = measure_seam_loss(seam_scenes, det_model, {"defaults": {}})
    assert row.sliced["all"].num_truth == sum(len(s.truth) for s in seam_scenes)
    assert row.loss("all") <= 0.01
    assert row.loss("seam") <= 0.01
    assert row.sliced["seam"].recall >= row.whole["seam"].recall - 0.01


# --- seam diagnostics on FiftyOne datasets -----------------------------------------

import cv2  # noqa: E402
import fiftyone as fo  # noqa: E402
import numpy as np  # noqa: E402

import sliced_inference as si  # noqa: E402
import sliced_inference.sdk  # noqa: E402, F401
from sliced_inference.evaluation.seams import run_grid, seam_metrics  # noqa: E402
from sliced_inference.sdk.run_records import RunRecorder  # noqa: E402
from sliced_inference.slicer import ConfigError, crosses_seam, tile_boxes  # noqa: E402
from sliced_inference.synthetic import (  # noqa: E402
    load_fiftyone_dataset,
    write_dataset,
)

# The hand-made grid of test_tiles: 1000 x 800, tiles 600 x 500 overlapping by
# 200 px; seams at x = 400, 600 and y = 300, 500.
HAND_SETTINGS = {"slice_wh": [600, 500], "overlap": [200, 200]}


def _det(box, label="car", confidence=None):
    x0, y0, x1, y1 = box
    return fo.Detection(
        label=label,
        bounding_box=[x0 / 1000, y0 / 800, (x1 - x0) / 1000, (y1 - y0) / 800],
        confidence=confidence,
    )


@pytest.fixture(scope="module")
def hand_made(session_dir):
    """One 1000 x 800 image, four objects, predictions with a missed and a doubled one."""
    path = session_dir / "seams-hand-made.png"
    cv2.imwrite(str(path), np.zeros((800, 1000, 3), np.uint8))
    dataset = fo.Dataset("test-seams-hand-made", overwrite=True)
    truth = [
        [590, 100, 610, 130],  # on the seam x = 600: missed
        [590, 490, 615, 520],  # across a corner: found twice
        [380, 600, 420, 630],  # on the seam x = 400: found once
        [100, 100, 130, 130],  # interior: missed
    ]
    preds = [
        [591, 489, 615, 521],
        [589, 490, 614, 519],  # the duplicate (IoU about 0.85 with the first)
        [380, 601, 421, 630],
        [700, 700, 720, 720],  # a false positive in the interior
    ]
    dataset.add_sample(
        fo.Sample(
            filepath=str(path),
            ground_truth=fo.Detections(detections=[_det(b) for b in truth]),
            sliced=fo.Detections(
                detections=[
                    _det(b, confidence=c)
                    for b, c in zip(preds, (0.9, 0.8, 0.7, 0.6), strict=True)
                ]
            ),
        )
    )
    RunRecorder(dataset, "sliced", None, "hand").start(
        {"kind": "sliced", "settings": HAND_SETTINGS},
        {"status": "completed"},
        "replace",
    )
    return dataset


def test_the_grid_comes_from_the_run_record(hand_made) -> None:
    info = si.get_run_info(hand_made, "sliced")
    assert (
        run_grid(info, 1000, 800).tolist()
        == tile_boxes((1000, 800), (600, 500), (200, 200)).tolist()
    )
    assert run_grid({"kind": "baseline", "settings": {}}, 1000, 800) is None


def test_seam_view_shows_the_seam_objects_missed_or_found_twice(hand_made) -> None:
    def boxes(view, field):
        return [
            [
                round(v * s)
                for v, s in zip(d.bounding_box, (1000, 800, 1000, 800), strict=True)
            ]
            for d in view.first()[field].detections
        ]

    missed = si.seam_view(hand_made, "sliced", "ground_truth", kind="missed")
    assert boxes(missed, "ground_truth") == [[590, 100, 20, 30]]
    assert boxes(missed, "sliced") == []  # nothing of the run near it
    twice = si.seam_view(hand_made, "sliced", "ground_truth", kind="twice")
    assert boxes(twice, "ground_truth") == [[590, 490, 25, 30]]
    assert len(boxes(twice, "sliced")) == 2  # both detections of it
    both = si.seam_view(hand_made, "sliced", "ground_truth")
    assert len(both.first().ground_truth.detections) == 2
    with pytest.raises(ValueError, match="is no run record"):
        si.seam_view(hand_made, "ground_truth", "ground_truth")


def test_seam_metrics_split_a_stored_evaluation(hand_made) -> None:
    hand_made.evaluate_detections(
        "sliced", "ground_truth", eval_key="hand", method="coco"
    )
    parts = seam_metrics(hand_made, "ground_truth", "sliced", "hand")
    seam, interior = parts["seam"], parts["interior"]
    assert (seam.num_gt, seam.tp, seam.fn) == (3, 2, 1)
    assert seam.fp == 1  # the duplicate touches the seam corner
    assert (interior.num_gt, interior.tp, interior.fn, interior.fp) == (1, 0, 1, 1)
    assert seam.recall == pytest.approx(2 / 3) and interior.recall == 0.0
    # AP of the seam part: TP (0.9), FP (0.8), TP (0.7) of 3 objects.
    assert seam.AP50 == pytest.approx((34 * 1.0 + 33 * (2 / 3)) / 101)
    assert interior.AP50 == 0.0


@pytest.fixture(scope="module")
def compared_with_seams(session_dir, det_model_path):
    root = session_dir / "seams-data"
    write_dataset(
        root, num_images=2, seed=5, min_width=1600, max_width=1700, density=80
    )
    dataset = load_fiftyone_dataset(root, name="test-seams", overwrite=True)
    si.apply_baseline_model(dataset, str(det_model_path), "baseline")
    si.apply_sliced_model(dataset, str(det_model_path), "sliced", store_tiles=True)
    return dataset, si.compare_runs(dataset, "ground_truth", ["baseline", "sliced"])


def test_store_tiles_writes_the_grid_the_app_draws(compared_with_seams) -> None:
    dataset, _ = compared_with_seams
    assert (
        si.get_run_info(dataset, "sliced")["settings"]["tiles_field"] == "sliced_tiles"
    )
    for sample in dataset:
        w, h = sample.metadata.width, sample.metadata.height
        tiles = tile_boxes((w, h), 640, 0.2)
        lines = sample.sliced_tiles.polylines
        assert [p.tile for p in lines] == list(range(len(tiles)))
        corners = [
            [
                p.points[0][0][0] * w,
                p.points[0][0][1] * h,
                p.points[0][2][0] * w,
                p.points[0][2][1] * h,
            ]
            for p in lines
        ]
        assert np.allclose(corners, tiles)
        assert all(p.closed and not p.filled for p in lines)
    with pytest.raises(ConfigError, match="store_tiles needs a sliced run"):
        si.sdk.baseline_run(dataset, "unused.pt", "b2", store_tiles=True)
    # The grid field follows the label field's rules: nothing is overwritten.
    dataset.clone_sample_field("ground_truth", "other_tiles")
    with pytest.raises(si.sdk.LabelFieldError, match="'other_tiles'.*not Polylines"):
        si.apply_sliced_model(dataset, "unused.pt", "other", store_tiles=True)
    assert not dataset.has_field("other")


def test_compare_runs_reports_seam_and_interior_objects(compared_with_seams) -> None:
    dataset, comparison = compared_with_seams
    run = comparison.run("sliced")
    assert comparison.baseline.seams is None  # a baseline has no tiles
    on_seam = 0
    for sample in dataset:
        w, h = sample.metadata.width, sample.metadata.height
        boxes = np.array(
            [
                [x * w, y * h, (x + bw) * w, (y + bh) * h]
                for x, y, bw, bh in (
                    d.bounding_box for d in sample.ground_truth.detections
                )
            ]
        )
        on_seam += int(crosses_seam(boxes, tile_boxes((w, h), 640, 0.2), (w, h)).sum())
    assert 0 < on_seam == run.seams["seam"].num_gt
    assert run.seams["seam"].num_gt + run.seams["interior"].num_gt == run.overall.num_gt
    assert run.seams["seam"].tp + run.seams["interior"].tp == run.overall.tp
    for part in ("seam", "interior"):
        assert run.seams_baseline[part].num_gt == run.seams[part].num_gt
        assert 0.0 <= run.seams[part].AP50 <= 1.0
    # Stored and shown: the seams table survives the round trip.
    stored = si.load_comparison(dataset, comparison.key)
    assert stored.run("sliced").seams == run.seams
    seams_table = [t for t in stored.tables() if t.name == "seams"][0]
    assert [r["run"] for r in seams_table.rows] == ["sliced: seam", "sliced: interior"]
    assert "At tile seams" in str(stored)
