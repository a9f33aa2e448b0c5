"""compare_runs' one match gives FiftyOne's numbers, and FiftyOne's own evaluation is stored.

Reference: the path compare_runs replaced (``bench.legacy_compare``: FiftyOne's
``evaluate_detections`` per run, plus one per object-size view). On generated
scenes with simulated predictions, boxes and masks, with an empty prediction
field, a sample without ground truth, crowd objects and class-agnostic
matching, every cell of the comparison's tables and the recovered / lost counts
must be the same, and the evaluation stored under each eval key must be the one
FiftyOne stores (results, per-object attributes, per-sample counts).
"""

from __future__ import annotations

from pathlib import Path

import fiftyone as fo
import numpy as np
import pytest

import sliced_inference as si
from sliced_inference.bench.compare import simulate_predictions
from sliced_inference.bench.legacy_compare import legacy_compare_runs
from sliced_inference.evaluation import Comparison
from sliced_inference.evaluation.fields import label_list_path
from sliced_inference.evaluation.ious import PolygonCache
from sliced_inference.evaluation.objects import Images, Objects
from sliced_inference.synthetic import load_fiftyone_dataset, write_dataset

BOX_FIELDS = ["weak", "strong", "boxes_only", "empty"]
MASK_FIELDS = ["weak", "strong", "empty"]


@pytest.fixture(scope="module")
def scenes(session_dir: Path) -> fo.Dataset:
    """Three generated scenes, four prediction fields, one sample without ground truth."""
    root = session_dir / "numbers-data"
    write_dataset(root, num_images=3, seed=5, min_width=1200, max_width=1600)
    dataset = load_fiftyone_dataset(root, name="test-numbers", overwrite=True)
    no_truth = fo.Sample(filepath=dataset.first().filepath)
    dataset.add_sample(no_truth)  # a sample without ground truth (predictions come)
    dataset.compute_metadata()
    # A few crowd objects: FiftyOne lets a crowd take several predictions.
    crowd = dataset.values("ground_truth.detections.id", unwind=True)[::15]
    dataset.set_label_values(
        "ground_truth.detections.iscrowd", {label_id: 1 for label_id in crowd}
    )
    simulate_predictions(dataset, "weak", seed=1, recall=0.4, false_positives=0.5)
    simulate_predictions(dataset, "strong", seed=2, recall=0.9, jitter_px=3)
    simulate_predictions(dataset, "boxes_only", seed=3, recall=0.7, masks=False)
    dataset.add_sample_field("empty", fo.EmbeddedDocumentField, fo.Detections)
    # Predictions on the sample without ground truth: false positives only.
    first = dataset.first()
    no_truth = dataset[no_truth.id]
    no_truth["weak"] = first["weak"]
    no_truth["strong"] = first["strong"]
    no_truth.save()
    return dataset


def _cells(comparison: Comparison) -> list:
    overall, by_size, _ = comparison.tables()[:3]
    return [overall.rows, by_size.rows, comparison.review_lines()]


@pytest.mark.parametrize(
    ("fields", "use_masks", "classwise"),
    [
        (BOX_FIELDS, False, True),
        (MASK_FIELDS, True, True),
        (BOX_FIELDS, False, False),
    ],
    ids=["boxes", "masks", "boxes-any-class"],
)
def test_every_cell_equals_the_four_evaluations_path(
    scenes: fo.Dataset, fields: list[str], use_masks: bool, classwise: bool
) -> None:
    new = si.compare_runs(
        scenes, "ground_truth", fields, use_masks=use_masks, classwise=classwise
    )
    old = legacy_compare_runs(
        scenes, "ground_truth", fields, use_masks=use_masks, classwise=classwise
    )
    assert _cells(new) == _cells(old)
    # Not a vacuous match: real numbers, each size bucket populated.
    strong = new.run("strong")
    assert 0 < strong.overall.mAP < 1 and strong.overall.fp > 0
    assert all(m.tp + m.fn > 0 for m in strong.by_size.values())
    assert new.run("empty").overall.tp == 0 and new.run("empty").overall.recall == 0
    assert {run.iou_type for run in new.runs} == {"masks" if use_masks else "boxes"}

    for run, ref in zip(new.runs, old.runs, strict=True):
        _assert_same_stored_evaluation(scenes, run.eval_key, ref.eval_key)


def _assert_same_stored_evaluation(dataset: fo.Dataset, key: str, ref: str) -> None:
    """What FiftyOne stored under ``ref`` is what compare_runs stored under ``key``."""
    ours, theirs = (dataset.get_evaluation_info(k).config for k in (key, ref))
    assert ours.method == theirs.method == "coco"
    for name in ("pred_field", "gt_field", "iou", "classwise", "use_masks"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert (ours.compute_mAP, ours.max_preds, ours.iou_threshs) == (
        theirs.compute_mAP,
        theirs.max_preds,
        theirs.iou_threshs,
    )
    a = dataset.load_evaluation_results(key)
    b = dataset.load_evaluation_results(ref)
    assert a.mAP() == pytest.approx(b.mAP(), abs=1e-12)
    np.testing.assert_allclose(a.precision, b.precision, atol=1e-12)
    np.testing.assert_allclose(a.recall_sweep, b.recall_sweep, atol=1e-12)
    assert list(a.classes) == list(b.classes)
    assert _matches(a) == _matches(b)
    pred_field = ours.pred_field
    for name in (ours.gt_field, pred_field):
        path = label_list_path(dataset, name)
        for suffix in ("", "_id", "_iou"):
            mine = dataset.values(f"{path}.{key}{suffix}")
            reference = dataset.values(f"{path}.{ref}{suffix}")
            assert mine == reference, (name, suffix)
    for suffix in ("_tp", "_fp", "_fn"):
        assert dataset.values(key + suffix) == dataset.values(ref + suffix), suffix
    # The App's views of an evaluation work on it.
    patches = dataset.to_evaluation_patches(key)
    assert patches.count_values("type") == dataset.to_evaluation_patches(
        ref
    ).count_values("type")
    assert len(dataset.load_evaluation_view(key)) == len(dataset)


def _matches(results) -> list[str]:
    """The results' matches, as sortable text, in a canonical order."""
    columns = (results.ytrue_ids, results.ypred_ids, results.ytrue, results.ypred)
    return sorted(map(repr, zip(*columns, strict=True)))


def test_mask_polygons_are_converted_once_per_ground_truth_object(
    scenes: fo.Dataset,
) -> None:
    """The ground truth of several mask runs is converted once (cached by label id)."""
    images = Images.load(scenes)
    gt = Objects.load(scenes, "ground_truth", images, masks=True)
    cache = PolygonCache(1.0)
    ids = np.arange(len(gt))
    first, areas = cache.polygons(gt, ids)
    again, _ = cache.polygons(gt, ids)
    assert all(a is b for a, b in zip(first, again, strict=True))
    assert (areas > 0).all()
