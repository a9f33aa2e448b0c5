"""Comparisons that neither corrupt labels nor misreport (issue 15, items 3, 8, 9 and 10).

Each test reproduces a bug the hostile probe found, on the bundled detector and
small generated scenes:

- 3: ``compare_runs`` during an ``overwrite=True`` run on the same field wrote
  evaluation attributes into labels the run had replaced, leaving label stubs;
- 8: after an overwrite run that leaves no detections, the stored comparison
  was still reported current and ``recovered_view`` still showed objects;
- 9: ``sliced-640`` and ``sliced_640`` shared one eval key, so the second
  evaluation deleted the first;
- 10: a run interrupted before its last sample was compared as if complete.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import fiftyone as fo
import pytest
from conftest import REPO_ROOT
from fiftyone import ViewField as F

import sliced_inference as si
from sliced_inference.evaluation import is_current, load_comparison
from sliced_inference.evaluation.fiftyone_evaluation import write_object_results
from sliced_inference.evaluation.objects import Images, Objects
from sliced_inference.evaluation.run_match import RunMatch
from sliced_inference.evaluation.run_state import (
    RunInProgressError,
    UnfinishedRunWarning,
)
from sliced_inference.operators.compare_panel import ComparisonPanel
from sliced_inference.sdk import sliced_run
from sliced_inference.sdk.dataset_doc import (
    record_path,
    stored_runs,
    update_dataset_doc,
    utc_now,
)
from sliced_inference.synthetic import load_fiftyone_dataset, write_dataset

#: A separate process that overwrites ``sl`` one sample per database write.
_OVERWRITE_SCRIPT = """
import sys
import fiftyone as fo
import sliced_inference as si
from sliced_inference.sdk import batch_writer

batch_writer.WRITE_BATCH_SIZE = 1
dataset = fo.load_dataset(sys.argv[1])
si.apply_sliced_model(dataset, sys.argv[2], "sl", confidence=0.9, overwrite=True)
"""


@pytest.fixture(scope="module")
def labelled(session_dir: Path, det_model_path: Path) -> fo.Dataset:
    """Five 800 px scenes, each twice (ten samples), with ``base`` and ``sl`` runs."""
    root = session_dir / "integrity-data"
    write_dataset(root, num_images=5, seed=41, min_width=800, max_width=800)
    dataset = load_fiftyone_dataset(root, name="test-integrity", overwrite=True)
    dataset.add_samples([fo.Sample(filepath=p) for p in dataset.values("filepath")])
    for sample in dataset.exists("ground_truth", False):  # the copies: same truth
        sample["ground_truth"] = dataset.match(
            F("filepath") == sample.filepath
        ).first()["ground_truth"]
        sample.save()
    dataset.compute_metadata()
    si.apply_baseline_model(dataset, str(det_model_path), "base")
    si.apply_sliced_model(dataset, str(det_model_path), "sl")
    return dataset


def _fresh_copy(dataset: fo.Dataset, name: str) -> fo.Dataset:
    """A clone with the run records (clones keep ``info``) and no evaluations."""
    return dataset.clone(name, persistent=True)


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def _stubs(dataset: fo.Dataset, field: str) -> int:
    """Labels of ``field`` without a box or a class: what a write created."""
    stub = ~F("bounding_box").exists() | ~F("label").exists()
    return dataset.filter_labels(field, stub).count(f"{field}.detections")


# ------------------------------------------------------------- 3: field being written


def test_compare_refuses_a_field_an_overwrite_run_is_writing(
    labelled: fo.Dataset, det_model_path: Path
) -> None:
    dataset = _fresh_copy(labelled, "test-integrity-writing")
    before = si.get_run_info(dataset, "sl")["run_id"]
    worker = subprocess.Popen(
        [sys.executable, "-c", _OVERWRITE_SCRIPT, dataset.name, str(det_model_path)],
        cwd=REPO_ROOT,
    )
    try:
        _wait_for(
            lambda: (
                (si.get_run_info(dataset, "sl") or {}).get("run_id") != before
                or worker.poll() is not None
            ),
            timeout=300,
            what="the overwrite run to start",
        )
        assert worker.poll() is None, "the overwrite run ended before the comparison"
        with pytest.raises(RunInProgressError, match="field 'sl' is being written"):
            si.compare_runs(dataset, "ground_truth", ["base", "sl"])
        assert not dataset.has_evaluation("si_sl")
        # wait=: the comparison starts once the run is done.
        comparison = si.compare_runs(dataset, "ground_truth", ["base", "sl"], wait=600)
    finally:
        worker.wait(timeout=600)
    assert worker.returncode == 0
    info = si.get_run_info(dataset, "sl")
    assert info["status"] == "completed" and info["run_id"] != before
    assert comparison.run("sl").unfinished is None
    assert _stubs(dataset, "sl") == 0
    assert dataset.count("sl.detections") == info["num_detections"]
    assert comparison.run("sl").overall.num_pred == info["num_detections"]
    assert dataset.count("sl.detections.si_sl") == info["num_detections"]


def test_evaluation_attributes_go_only_to_labels_that_exist(
    labelled: fo.Dataset,
) -> None:
    """Labels replaced between reading and writing get nothing; nothing is created."""
    dataset = _fresh_copy(labelled, "test-integrity-by-id")
    images = Images.load(dataset)
    gt = Objects.load(dataset, "ground_truth", images)
    match = RunMatch.compute(gt, Objects.load(dataset, "sl", images))
    # An overwrite lands meanwhile: every sample keeps one new label.
    replaced = {}
    for sample_id, dets in zip(*dataset.values(["id", "sl"]), strict=True):
        first = dets.detections[0] if dets and dets.detections else None
        keep = [] if first is None else [_copy(first)]
        replaced[sample_id] = fo.Detections(detections=keep)
    dataset.set_values("sl", replaced, key_field="id")
    count = dataset.count("sl.detections")
    write_object_results(dataset, match, "probe", images.ids)
    assert dataset.count("sl.detections") == count
    assert _stubs(dataset, "sl") == 0
    assert dataset.count("sl.detections.probe") == 0  # none of them was evaluated
    assert dataset.count("ground_truth.detections.probe") == len(gt)


def test_a_record_left_running_by_a_dead_process_does_not_block(
    labelled: fo.Dataset,
) -> None:
    dataset = _fresh_copy(labelled, "test-integrity-dead")
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(gone.stdout)
    base = record_path("sl")
    (run_id,) = stored_runs(dataset)["sl"]["runs"]
    record = f"{base}.runs.{run_id}"

    def left_running(host: str) -> None:
        # What a killed run leaves: its record at running, its claim held.
        holder = {"host": host, "pid": dead_pid, "heartbeat": utc_now()}
        update_dataset_doc(
            dataset,
            {
                "$set": {
                    f"{record}.status": "running",
                    f"{record}.host": host,
                    f"{record}.pid": dead_pid,
                    f"{base}.claim": {"run_id": run_id, "holders": {"run": holder}},
                }
            },
        )

    left_running(socket.gethostname())
    with pytest.warns(UnfinishedRunWarning, match="interrupted"):
        comparison = si.compare_runs(dataset, "ground_truth", ["base", "sl"])
    assert comparison.run("sl").unfinished.startswith("interrupted after")

    # On another machine the process cannot be checked: refused while its
    # heartbeat is fresh, unless allowed.
    left_running("another-machine")
    with pytest.raises(RunInProgressError, match="another-machine"):
        si.compare_runs(dataset, "ground_truth", ["base", "sl"])
    with pytest.warns(UnfinishedRunWarning):
        si.compare_runs(dataset, "ground_truth", ["base", "sl"], allow_running=True)


# --------------------------------------------------------------- 8: stale comparison


def test_an_overwrite_leaving_no_detections_makes_the_comparison_stale(
    labelled: fo.Dataset, det_model_path: Path
) -> None:
    dataset = _fresh_copy(labelled, "test-integrity-stale")
    comparison = si.compare_runs(dataset, "ground_truth", ["base", "sl"])
    assert is_current(dataset, load_comparison(dataset, comparison.key))
    recovered = si.recovered_view(dataset, "ground_truth", "base", "sl")
    assert recovered.count("ground_truth.detections") == comparison.run("sl").recovered

    si.apply_sliced_model(
        dataset, str(det_model_path), "sl", confidence=0.999, overwrite=True
    )
    assert dataset.count("sl.detections") == 0
    assert not is_current(dataset, load_comparison(dataset, comparison.key))
    with pytest.raises(ValueError, match="'sl' changed since it was evaluated"):
        si.recovered_view(dataset, "ground_truth", "base", "sl")

    panel, ctx = ComparisonPanel(), _panel_context(dataset, comparison.key)
    panel.on_load(ctx)
    assert ctx.panel_state["stale"]
    rendered = panel.render(ctx).to_json()["type"]["properties"]
    assert "rerun" in rendered


def test_an_edited_ground_truth_box_makes_the_comparison_stale(
    labelled: fo.Dataset,
) -> None:
    dataset = _fresh_copy(labelled, "test-integrity-edit")
    comparison = si.compare_runs(dataset, "ground_truth", ["base", "sl"])
    assert is_current(dataset, comparison)
    label_id = dataset.values("ground_truth.detections.id", unwind=True)[0]
    dataset.set_label_values(
        "ground_truth.detections.bounding_box", {label_id: [0.1, 0.1, 0.2, 0.2]}
    )
    assert not is_current(dataset, comparison)


# ------------------------------------------------------------- 9: one key per field


def test_fields_whose_names_differ_only_by_punctuation_keep_their_own_evaluations(
    labelled: fo.Dataset,
) -> None:
    dataset = _fresh_copy(labelled, "test-integrity-keys")
    dataset.clone_sample_field("sl", "sliced-640")
    dataset.clone_sample_field("sl", "sliced_640")
    dataset.filter_labels("sliced_640", F("confidence") >= 0.5).save("sliced_640")
    fields = ["base", "sliced-640", "sliced_640"]
    comparison = si.compare_runs(dataset, "ground_truth", fields)
    keys = comparison.eval_keys
    assert len(set(keys)) == 3
    for run in comparison.runs:
        info = dataset.get_evaluation_info(run.eval_key)
        assert info.config.pred_field == run.field
        assert run.overall.num_pred == dataset.count(f"{run.field}.detections")
        assert dataset.count(f"{run.field}.detections.{run.eval_key}") == (
            run.overall.num_pred
        )
    dash, underscore = comparison.run("sliced-640"), comparison.run("sliced_640")
    assert dash.overall.num_pred > underscore.overall.num_pred


def test_an_eval_key_holding_another_fields_evaluation_is_refused(
    labelled: fo.Dataset,
) -> None:
    dataset = _fresh_copy(labelled, "test-integrity-collision")
    dataset.evaluate_detections("base", gt_field="ground_truth", eval_key="si_sl")
    with pytest.raises(ValueError, match="holds an evaluation of 'base'"):
        si.compare_runs(dataset, "ground_truth", ["base", "sl"])
    info = dataset.get_evaluation_info("si_sl")
    assert info.config.pred_field == "base"  # untouched
    assert dataset.count("base.detections.si_sl") == dataset.count("base.detections")


# ------------------------------------------------------------ 10: unfinished runs


def test_an_interrupted_run_is_marked_and_warned_about(
    labelled: fo.Dataset, det_model_path: Path
) -> None:
    dataset = _fresh_copy(labelled, "test-integrity-interrupted")
    run = sliced_run(dataset, str(det_model_path), "cut")
    steps = run.iter_execute(progress_bar=False)
    for _ in range(4):  # the model loads, then three samples
        next(steps)
    steps.close()
    info = si.get_run_info(dataset, "cut")
    assert info["status"] == "interrupted"
    assert (info["samples_processed"], info["samples_total"]) == (3, len(dataset))

    with pytest.warns(UnfinishedRunWarning, match="interrupted after 3 of 10"):
        comparison = si.compare_runs(dataset, "ground_truth", ["base", "cut"])
    cut = comparison.run("cut")
    assert cut.unfinished == "interrupted after 3 of 10 images"
    assert comparison.run("base").unfinished is None
    overall, by_size, speed = comparison.tables()[:3]
    assert [row["run"] for row in overall.rows if "Δ" not in row["run"]] == [
        "base",
        "cut *",
    ]
    assert any(row["run"] == "cut *" for row in by_size.rows)
    assert [row["run"] for row in speed.rows] == ["base", "cut *"]
    text = str(comparison)
    assert "* cut: interrupted after 3 of 10 images" in text

    panel, ctx = ComparisonPanel(), _panel_context(dataset, comparison.key)
    panel.on_load(ctx)
    assert ctx.panel_state["unfinished"] == comparison.unfinished_lines()
    props = panel.render(ctx).to_json()["type"]["properties"]
    assert "unfinished_runs" in props


def _copy(detection: fo.Detection) -> fo.Detection:
    """The same object as a new label (a new id), as a rerun would write it."""
    return fo.Detection(
        label=detection.label,
        bounding_box=detection.bounding_box,
        confidence=detection.confidence,
    )


def _panel_context(dataset: fo.Dataset, key: str):
    from fiftyone.operators.executor import ExecutionContext, Executor

    return ExecutionContext(
        request_params={
            "dataset_name": dataset.name,
            "params": {"panel_id": "p", "panel_state": {"comparison_key": key}},
        },
        executor=Executor(),
    )
