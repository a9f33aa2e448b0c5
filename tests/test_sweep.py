"""find_slice_settings: the sweep, its recommendation, storage, and its operator run delegated."""

from __future__ import annotations

from pathlib import Path

import fiftyone as fo
import fiftyone.operators as foo
import numpy as np
import pytest
from fiftyone.operators.delegated import DelegatedOperationService

import sliced_inference as si
from sliced_inference.evaluation.sweep import candidate_slice_sizes, parse_merge
from sliced_inference.evaluation.sweep_results import list_sweeps
from sliced_inference.operators.sweep_panel import recommended_run_params
from sliced_inference.slicer import ConfigError
from sliced_inference.synthetic import load_fiftyone_dataset, write_dataset

FIND_URI = "@slicer/sliced-inference/find_slice_settings"
#: A small sweep: 2 sizes x 2 merges x (no full pass) = 4 points, the default among them.
SMALL = dict(
    slice_sizes=(320, 640),
    overlaps=(0.2,),
    full_image_pass=(False,),
    merges=("provenance", "nms/iou"),
)


@pytest.fixture(scope="module")
def dataset(session_dir: Path) -> fo.Dataset:
    """Three generated images of about 1100 px."""
    root = session_dir / "sweep-data"
    write_dataset(root, num_images=3, seed=8, min_width=1000, max_width=1200)
    return load_fiftyone_dataset(root, name="test-sweep", overwrite=True)


@pytest.fixture(scope="module")
def sweep(dataset: fo.Dataset, det_model_path: Path):
    return si.find_slice_settings(
        dataset, str(det_model_path), "ground_truth", num_samples=2, **SMALL
    )


def test_the_sweep_returns_every_point_asked_for(sweep, dataset) -> None:
    asked = {
        (size, merge["merge"], merge["merge_metric"])
        for size in SMALL["slice_sizes"]
        for merge in map(parse_merge, SMALL["merges"])
    }
    got = {
        (p.params["slice_wh"], p.params["merge"], p.params["merge_metric"])
        for p in sweep.points
    }
    assert got == asked and len(sweep.points) == len(asked)
    assert sum(p.is_default for p in sweep.points) == 1
    assert sweep.default.params == {
        "slice_wh": 640,
        "overlap": 0.2,
        "full_image_pass": False,
        "merge": "provenance",
        "merge_metric": "iou",
    }
    assert sweep.mode == "ground_truth" and len(sweep.sample_ids) == 2
    sampled = dataset.select(sweep.sample_ids)
    assert sweep.num_objects == sampled.count("ground_truth.detections")
    for point in sweep.points:
        assert point.seconds > 0 and point.tiles > 0
        for key in ("AP50", "AP50_small", "AP50_seam", "recall_seam"):
            assert 0.0 <= point.metrics[key] <= 1.0, (key, point.metrics)
        assert point.metrics["detections_small"] > 0
    # Merges of one tile grid reuse its predictions: same tiles, same detections before merging.
    by_size = {}
    for point in sweep.points:
        by_size.setdefault(point.params["slice_wh"], set()).add(point.tiles)
    assert all(len(tiles) == 1 for tiles in by_size.values())


def test_the_recommendation_is_the_best_within_the_budget(sweep) -> None:
    default = sweep.default
    assert default.time_ratio == pytest.approx(1.0)
    inside = [p for p in sweep.points if p.time_ratio <= sweep.budget]
    assert all(p.within_budget == (p in inside) for p in sweep.points)
    best = max(p.metrics[sweep.criterion] for p in inside)
    assert sweep.criterion == "AP50_small"
    assert sweep.recommendation in inside
    assert sweep.recommendation.metrics[sweep.criterion] == best
    assert "Recommended" in sweep.reason and "recommended" in str(sweep)


def test_a_tighter_budget_never_recommends_a_slower_setting(
    dataset, det_model_path
) -> None:
    tight = si.find_slice_settings(
        dataset,
        str(det_model_path),
        "ground_truth",
        num_samples=1,
        time_budget=1.0,
        key="si_sweep_tight",
        **SMALL,
    )
    assert tight.recommendation.time_ratio <= 1.0
    assert {p.within_budget for p in tight.points} == {
        p.time_ratio <= 1.0 for p in tight.points
    }


def test_the_sweep_is_stored_and_writes_no_label_field(sweep, dataset) -> None:
    assert "si_sweep" in list_sweeps(dataset)
    stored = si.load_sweep(dataset, "si_sweep")
    assert stored.to_dict() == sweep.to_dict()
    assert set(dataset.get_field_schema()) == {
        "id",
        "filepath",
        "tags",
        "metadata",
        "created_at",
        "last_modified_at",
        "ground_truth",
        "seed",
    }
    table = stored.table()
    assert len(table.rows) == len(stored.points)
    assert [r["mark"] for r in table.rows].count("recommended") + [
        r["mark"] for r in table.rows
    ].count("recommended default") == 1
    params = recommended_run_params(stored)
    assert params["view_target"] == "DATASET"
    assert params["slice_wh"] == stored.recommendation.params["slice_wh"]


def test_without_ground_truth_it_says_what_it_measured(dataset, det_model_path) -> None:
    agreement = si.find_slice_settings(
        dataset, str(det_model_path), num_samples=1, key="si_sweep_agreement", **SMALL
    )
    assert agreement.mode == "agreement" and agreement.gt_field is None
    assert "native resolution" in agreement.table().note
    assert agreement.recommendation is not None
    assert all(0.0 <= p.metrics["AP50"] <= 1.0 for p in agreement.points)
    counts_only = si.find_slice_settings(
        dataset,
        str(det_model_path),
        num_samples=1,
        native_max_pixels=1000,
        key="si_sweep_counts",
        **SMALL,
    )
    assert counts_only.mode == "detections" and counts_only.recommendation is None
    assert "AP50" not in counts_only.points[0].metrics
    assert counts_only.points[0].metrics["detections_small"] > 0
    assert "No recommendation" in counts_only.reason


def test_an_unreadable_image_is_left_out_not_the_sweep(
    dataset, det_model_path, session_dir
) -> None:
    broken = session_dir / "sweep-broken.jpg"
    broken.write_bytes(b"not an image")
    (bad_id,) = dataset.add_samples(
        [fo.Sample(filepath=str(broken), ground_truth=dataset.first().ground_truth)]
    )
    try:
        view = dataset.select([bad_id, dataset.first().id])
        sweep = si.find_slice_settings(
            view, str(det_model_path), "ground_truth", key="si_sweep_broken", **SMALL
        )
        assert list(sweep.skipped) == [bad_id]
        assert sweep.sample_ids == [dataset.first().id]
        assert sweep.recommendation is not None
    finally:
        dataset.delete_samples(bad_id)


def test_slice_sizes_follow_the_model_and_the_objects() -> None:
    assert candidate_slice_sizes(320, np.array([10.0, 20, 30]), 4000) == [
        320,
        480,
        640,
        960,
        1280,
    ]
    # Objects of 200 px: tiles under 4 x 200 px would cut most of them.
    assert candidate_slice_sizes(320, np.array([200.0] * 10), 4000) == [640, 960, 1280]
    # Never larger than the images (the default slice size always stays).
    assert candidate_slice_sizes(320, None, 700) == [320, 480, 640]


def test_bad_arguments_fail_before_any_inference(dataset, det_model_path) -> None:
    with pytest.raises(ValueError, match="time_budget"):
        si.find_slice_settings(dataset, str(det_model_path), time_budget=0.5)
    with pytest.raises(ValueError, match="not a Detections field"):
        si.find_slice_settings(dataset, str(det_model_path), "seed")
    with pytest.raises(ConfigError, match="unknown merge strategy"):
        si.find_slice_settings(dataset, str(det_model_path), merges=("median",))


def test_the_operator_runs_delegated(dataset, det_model_path) -> None:
    operator = foo.get_operator(FIND_URI)
    assert operator.config.allow_delegated_execution
    assert operator.config.default_choice_to_delegated
    queued = operator(
        dataset,
        str(det_model_path),
        "ground_truth",
        delegate=True,
        num_samples=1,
        sweep_key="si_sweep_operator",
        **{k: list(v) for k, v in SMALL.items() if k != "full_image_pass"},
        full_image_pass="without",
    )
    assert queued.delegated
    assert "si_sweep_operator" not in list_sweeps(dataset)
    service = DelegatedOperationService()
    (result,) = service.execute_queued_operations(
        operator=FIND_URI, dataset_name=dataset.name
    )
    assert result.error is None, result.error
    assert result.result["sweep_key"] == "si_sweep_operator"
    stored = si.load_sweep(dataset, "si_sweep_operator")
    assert len(stored.points) == 4
    assert result.result["recommended"] == stored.recommendation.params
