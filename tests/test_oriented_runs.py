"""Oriented boxes through the SDK and the comparison: Polylines fields written by
runs, checked field types, and a Polylines field round-tripping through compare_runs."""

from __future__ import annotations

from pathlib import Path

import cv2
import fiftyone as fo
import numpy as np
import pytest
from fiftyone import ViewField as F
from test_comparison import _panel_context
from test_comparison_numbers import _assert_same_stored_evaluation, _cells
from test_rotated import paint, paint_detector

import sliced_inference as si
from sliced_inference.bench.legacy_compare import legacy_compare_runs
from sliced_inference.evaluation import Comparison
from sliced_inference.evaluation.sizes import polylines_in_range, size_ranges
from sliced_inference.sdk import LabelFieldError
from sliced_inference.slicer import CallableModel
from sliced_inference.slicer.rotated import pair_rotated_iou
from sliced_inference.synthetic import (
    generate_oriented_scene,
    load_oriented_dataset,
    write_oriented_dataset,
)


@pytest.fixture(scope="module")
def oriented(session_dir: Path) -> fo.Dataset:
    """Two generated scenes of rotated objects, ground truth as filled Polylines."""
    root = session_dir / "oriented-data"
    write_oriented_dataset(root, num_images=2, seed=5, min_width=900, max_width=1100)
    return load_oriented_dataset(root, name="test-oriented", overwrite=True)


def test_generated_ground_truth_is_exact_filled_rotated_rectangles(oriented) -> None:
    sample = oriented.first()
    scene = generate_oriented_scene(
        sample.seed, sample.metadata.width, sample.metadata.height
    )
    lines = sample.ground_truth.polylines
    assert len(lines) == len(scene) > 20
    size = np.array([sample.metadata.width, sample.metadata.height])
    for line, corners, label in zip(lines, scene.polygons, scene.labels, strict=True):
        assert line.closed and line.filled and line.label == label
        np.testing.assert_allclose(
            np.sort(np.array(line.points[0]) * size, axis=0),
            np.sort(corners, axis=0),
            atol=1e-6,
        )


def _copy_field(dataset: fo.Dataset, src: str, dst: str, keep=None) -> None:
    """``src``'s polylines (optionally only ``keep(index)``) with confidences, as ``dst``."""
    values = {}
    for sample in dataset.select_fields(src):
        lines = [
            fo.Polyline(
                label=line.label,
                points=line.points,
                closed=True,
                filled=True,
                confidence=1.0 - 0.001 * k,
            )
            for k, line in enumerate(sample[src].polylines)
            if keep is None or keep(k)
        ]
        values[sample.id] = fo.Polylines(polylines=lines)
    dataset.set_values(dst, values, key_field="id")


@pytest.fixture(scope="module")
def polyline_comparison(oriented) -> Comparison:
    """Half of the ground truth vs all of it, as two prediction fields, compared."""
    _copy_field(oriented, "ground_truth", "every_other", keep=lambda k: k % 2 == 0)
    _copy_field(oriented, "ground_truth", "perfect")
    return si.compare_runs(oriented, "ground_truth", ["every_other", "perfect"])


def test_polylines_fields_round_trip_through_compare_runs(
    oriented, polyline_comparison
) -> None:
    comparison = polyline_comparison
    num_gt = oriented.count("ground_truth.polylines")

    half, perfect = comparison.run("every_other"), comparison.run("perfect")
    assert half.iou_type == perfect.iou_type == "polygons"
    assert perfect.overall.AP50 == pytest.approx(1.0)
    assert perfect.overall.tp == num_gt and perfect.overall.fp == 0
    assert half.overall.tp == oriented.count("every_other.polylines")
    assert half.overall.fn == num_gt - half.overall.tp and half.overall.fp == 0
    assert perfect.recovered == half.overall.fn and perfect.lost == 0
    # FiftyOne's own evaluation, stored under the run's key, says the same.
    results = oriented.load_evaluation_results(perfect.eval_key)
    assert perfect.overall.mAP == pytest.approx(results.mAP())
    assert oriented.sum(f"{perfect.eval_key}_tp") == num_gt
    # Sizes are polygon areas: the buckets hold what the areas say.
    for size, (low, high) in size_ranges().items():
        in_bucket = polylines_in_range(oriented, "ground_truth", low, high)
        assert perfect.by_size[size].num_gt == len(in_bucket)
        assert perfect.by_size[size].tp == len(in_bucket)
    assert sum(comparison.size_counts().values()) == num_gt
    assert "polygon area" in str(comparison)
    recovered = si.recovered_view(oriented, "ground_truth", "every_other", "perfect")
    assert recovered.count("ground_truth.polylines") == half.overall.fn


def test_the_panel_shows_a_polylines_comparison(oriented, polyline_comparison) -> None:
    comparison = polyline_comparison
    panel, ctx, _ = _panel_context(oriented, {"comparison_key": comparison.key})
    panel.on_load(ctx)
    state = ctx.panel_state
    assert state["has_comparison"] and not state["stale"]
    rows = [row for row in state["metrics_table"] if "Δ" not in row["run"]]
    assert [row["iou_type"] for row in rows] == ["polygons", "polygons"]
    assert rows[1]["AP50"] == "1.000"
    perfect = next(row for row in state["size_table"] if row["run"] == "perfect")
    assert perfect["AP50"] == f"{comparison.run('perfect').by_size['small'].AP50:.3f}"


def test_polygon_areas_are_the_rotated_boxes_areas(oriented) -> None:
    sample = oriented.first()
    scene = generate_oriented_scene(
        sample.seed, sample.metadata.width, sample.metadata.height
    )
    view = oriented.select(sample.id)
    small = set(polylines_in_range(view, "ground_truth", 0, 32**2))
    ids = [line.id for line in sample.ground_truth.polylines]
    expected = {i for i, area in zip(ids, scene.areas, strict=True) if area < 32**2}
    assert small == expected and 0 < len(small) < len(ids)


def test_compare_runs_refuses_mixed_types_and_unfilled_ground_truth(
    oriented, polyline_comparison
) -> None:
    _copy_field(oriented, "ground_truth", "again")
    oriented.add_sample_field("boxes", fo.EmbeddedDocumentField, fo.Detections)
    with pytest.raises(ValueError, match="compare boxes with boxes"):
        si.compare_runs(oriented, "ground_truth", ["again", "boxes"])
    lines = oriented.clone()
    lines.set_field("ground_truth.polylines.filled", False).save()
    with pytest.raises(ValueError, match="not filled"):
        si.compare_runs(lines, "ground_truth", ["again", "perfect"])


def _simulated_polylines(
    dataset: fo.Dataset, dst: str, *, seed: int, recall: float, jitter_px: float
) -> None:
    """Predictions from the ground truth: kept with probability ``recall``, corners
    jittered by up to ``jitter_px`` pixels, random confidences and a shifted copy
    (a poor match) for one object in three."""
    rng = np.random.default_rng(seed)
    values = {}
    for sample in dataset.select_fields(["metadata", "ground_truth"]):
        size = np.array([sample.metadata.width, sample.metadata.height])
        lines = []
        for line in sample.ground_truth.polylines:
            corners = np.array(line.points[0]) * size
            shifted = corners + 0.4 * np.ptp(corners, axis=0)
            noisy = corners + rng.uniform(-jitter_px, jitter_px, corners.shape)
            kept = [noisy] if rng.random() < recall else []
            for shape in kept + ([shifted] if rng.random() < 1 / 3 else []):
                lines.append(
                    fo.Polyline(
                        label=line.label,
                        points=[(shape / size).tolist()],
                        closed=True,
                        filled=True,
                        confidence=float(rng.uniform(0.05, 1.0)),
                    )
                )
        values[sample.id] = fo.Polylines(polylines=lines)
    dataset.set_values(dst, values, key_field="id")


@pytest.mark.parametrize("classwise", [True, False], ids=["classwise", "any-class"])
def test_polylines_numbers_equal_fiftyones_own_evaluations(
    oriented, classwise: bool
) -> None:
    """Every cell equals FiftyOne's evaluate_detections on the Polylines fields
    (overall and on each size view), and the stored evaluations are FiftyOne's."""
    dataset = oriented.clone()
    dataset.compute_metadata()
    crowd = dataset.values("ground_truth.polylines.id", unwind=True)[::12]
    dataset.set_label_values(
        "ground_truth.polylines.iscrowd", {label_id: True for label_id in crowd}
    )
    _simulated_polylines(dataset, "loose", seed=1, recall=0.6, jitter_px=4)
    _simulated_polylines(dataset, "tight", seed=2, recall=0.9, jitter_px=1.5)
    fields = ["loose", "tight"]

    new = si.compare_runs(dataset, "ground_truth", fields, classwise=classwise)
    old = legacy_compare_runs(dataset, "ground_truth", fields, classwise=classwise)

    assert _cells(new) == _cells(old)
    tight = new.run("tight")
    assert tight.iou_type == "polygons"
    assert 0 < tight.overall.mAP < 1 and tight.overall.fp > 0
    assert sum(m.tp + m.fn > 0 for m in tight.by_size.values()) >= 2
    for run, ref in zip(new.runs, old.runs, strict=True):
        _assert_same_stored_evaluation(dataset, run.eval_key, ref.eval_key)


# --- runs of an oriented-box model ------------------------------------------------


@pytest.fixture(scope="module")
def painted(tmp_path_factory) -> tuple[fo.Dataset, np.ndarray]:
    """One image with a long object crossing tile edges and a small one, both rotated."""
    truth = np.array(
        [[500.0, 300.0, 420.0, 36.0, 0.6], [150.0, 500.0, 40.0, 12.0, 2.2]]
    )
    image = np.full((700, 900, 3), 80, np.uint8)
    paint(image, truth)
    path = tmp_path_factory.mktemp("painted") / "painted.png"
    cv2.imwrite(str(path), image[..., ::-1])
    dataset = fo.Dataset()
    dataset.add_sample(fo.Sample(filepath=str(path)))
    return dataset, truth


def test_an_obb_run_writes_polylines_with_tile_truncation_and_angle(painted) -> None:
    dataset, truth = painted
    model = CallableModel(paint_detector, class_names={0: "ship"}, rotated=True)
    summary = si.apply_sliced_model(dataset, model, "obb", slice_wh=320)

    assert summary.processed == 1 and summary.num_detections == 2
    assert dataset.get_field("obb").document_type is fo.Polylines
    lines = dataset.first().obb.polylines
    assert all(
        line.closed and line.filled and len(line.points[0]) == 4 for line in lines
    )
    assert {line.label for line in lines} == {"ship"}
    assert all(0 <= line.angle < np.pi / 2 for line in lines)
    assert all(line.confidence == pytest.approx(0.8) for line in lines)
    assert {line.truncated for line in lines} == {False}
    size = np.array([900, 700])
    for line in lines:
        corners = np.array(line.points[0]) * size
        rbox = _rbox_of(corners)
        assert pair_rotated_iou(np.tile(rbox, (len(truth), 1)), truth).max() > 0.85
    assert si.get_run_info(dataset, "obb")["label_type"] == "Polylines"


def _rbox_of(corners: np.ndarray) -> np.ndarray:
    (cx, cy), (w, h), degrees = cv2.minAreaRect(corners.astype(np.float32))
    return np.array([cx, cy, w, h, np.deg2rad(degrees)])


def test_obb_runs_never_write_into_a_detections_field_and_vice_versa(painted) -> None:
    dataset, _ = painted
    obb = CallableModel(paint_detector, rotated=True)
    boxes = CallableModel(lambda tile: {"boxes": [[0, 0, 9, 9]], "scores": [0.9]})
    si.apply_sliced_model(dataset, boxes, "boxes_run")
    before = dataset.values("boxes_run.detections.id", unwind=True)
    with pytest.raises(LabelFieldError, match="not Polylines"):
        si.apply_sliced_model(dataset, obb, "boxes_run", overwrite=True)
    assert dataset.values("boxes_run.detections.id", unwind=True) == before
    si.apply_baseline_model(dataset, obb, "obb_whole")
    with pytest.raises(LabelFieldError, match="not Detections"):
        si.apply_baseline_model(dataset, boxes, "obb_whole", overwrite=True)
    assert dataset.count("obb_whole.polylines") == 2
    assert dataset.exists("obb_whole").match(F("obb_whole.polylines").length() > 0)
