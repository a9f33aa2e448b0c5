"""compare_runs, the review views, the compare_runs operator and the comparison panel.

One small generated dataset, with baseline and sliced predictions of the bundled
detection model, is compared once per module; the tests check the stored
evaluations against FiftyOne's own results, the per-size bookkeeping, the views,
the operator through ``foo.execute_operator`` and the panel with a real
``ExecutionContext``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import fiftyone as fo
import fiftyone.operators as foo
import numpy as np
import pytest
from fiftyone import ViewField as F
from fiftyone.operators.executor import ExecutionContext, ExecutionError, Executor

import sliced_inference as si
from sliced_inference.evaluation import (
    Comparison,
    is_current,
    list_comparisons,
    load_comparison,
)
from sliced_inference.evaluation.sizes import size_ranges
from sliced_inference.evaluation.store import default_comparison_key
from sliced_inference.operators.compare_operator import PANEL_NAME
from sliced_inference.operators.compare_panel import (
    MODEL_EVALUATION_PANEL,
    ComparisonPanel,
)
from sliced_inference.synthetic import load_fiftyone_dataset, write_dataset

OPERATOR_URI = "@slicer/sliced-inference/compare_runs"
FIELDS = ["baseline", "sliced", "sliced_confident"]


@pytest.fixture(scope="module")
def compared(session_dir: Path, det_model_path: Path) -> tuple[fo.Dataset, Comparison]:
    """Two generated images, baseline and sliced detections, and their comparison."""
    root = session_dir / "comparison-data"
    write_dataset(root, num_images=2, seed=3, min_width=1600, max_width=1900)
    dataset = load_fiftyone_dataset(root, name="test-comparison", overwrite=True)
    si.apply_baseline_model(dataset, str(det_model_path), "baseline")
    si.apply_sliced_model(dataset, str(det_model_path), "sliced", slice_wh=640)
    # A third "run" with other settings: the sliced output above a higher threshold.
    dataset.clone_sample_field("sliced", "sliced_confident")
    dataset.filter_labels("sliced_confident", F("confidence") >= 0.5).save(
        "sliced_confident"
    )
    return dataset, si.compare_runs(dataset, "ground_truth", FIELDS)


def test_evaluations_are_stored_and_agree_with_fiftyone(compared) -> None:
    dataset, comparison = compared
    assert comparison.fields == FIELDS
    for run in comparison.runs:
        assert run.eval_key == f"si_{run.field}"
        assert run.eval_key in dataset.list_evaluations()
        info = dataset.get_evaluation_info(run.eval_key)
        assert info.config.method == "coco" and info.config.compute_mAP
        assert info.config.max_preds == 1000
        assert info.config.use_masks is False  # the detection model has no masks
        results = dataset.load_evaluation_results(run.eval_key)
        assert run.overall.mAP == pytest.approx(results.mAP())
        assert run.overall.tp == dataset.sum(f"{run.eval_key}_tp")
        assert run.overall.fp == dataset.sum(f"{run.eval_key}_fp")
        assert run.overall.fn == dataset.sum(f"{run.eval_key}_fn")
        assert run.overall.num_gt == dataset.count("ground_truth.detections")
        assert run.overall.num_pred == dataset.count(f"{run.field}.detections")
        assert run.overall.recall == pytest.approx(run.overall.tp / run.overall.num_gt)


def test_per_size_counts_add_up(compared) -> None:
    dataset, comparison = compared
    gt_sizes = _size_of_each_object(dataset, "ground_truth")
    assert sum(comparison.size_counts().values()) == len(gt_sizes)
    for run in comparison.runs:
        pred_sizes = _size_of_each_object(dataset, run.field)
        for size, m in run.by_size.items():
            assert m.tp + m.fn == gt_sizes.count(size), (run.field, size)
            assert m.tp + m.fp == pred_sizes.count(size), (run.field, size)


def test_per_size_map_is_a_real_evaluation_of_that_size(compared) -> None:
    """The small-object mAP equals an evaluation of exactly the small labels."""
    dataset, comparison = compared
    low, high = size_ranges()["small"]
    ids = [
        label_id
        for name in ("ground_truth", "sliced")
        for label_id, area in _areas(dataset, name)
        if low <= area < high
    ]
    view = dataset.select_labels(ids=ids, fields=["ground_truth", "sliced"])
    results = view.evaluate_detections(
        "sliced", gt_field="ground_truth", compute_mAP=True, max_preds=1000
    )
    small = comparison.run("sliced").by_size["small"]
    assert small.mAP == pytest.approx(results.mAP())
    assert small.mAP != pytest.approx(comparison.run("sliced").overall.mAP)


def test_sliced_finds_more_small_objects(compared) -> None:
    _, comparison = compared
    base, sliced = comparison.run("baseline"), comparison.run("sliced")
    assert sliced.by_size["small"].recall > base.by_size["small"].recall
    assert sliced.recovered > sliced.lost


def test_differences_and_serialisation(compared) -> None:
    dataset, comparison = compared
    diffs = comparison.differences()
    assert [d["field"] for d in diffs] == FIELDS[1:]
    sliced = comparison.run("sliced")
    assert diffs[0]["AP50"] == pytest.approx(
        sliced.overall.AP50 - comparison.baseline.overall.AP50
    )
    assert diffs[0]["by_size"]["small"]["tp"] == (
        sliced.by_size["small"].tp - comparison.baseline.by_size["small"].tp
    )
    data = comparison.to_dict()
    assert Comparison.from_dict(data).to_dict() == data
    assert '"differences"' in comparison.to_json()
    table = str(comparison)
    for name in FIELDS:
        assert name in table
    assert "Δ vs baseline" in table and "small (" in table
    assert list_comparisons(dataset)[0] == comparison.key
    assert load_comparison(dataset).to_dict() == data


def test_recovered_and_lost_views(compared) -> None:
    dataset, comparison = compared
    sliced = comparison.run("sliced")
    recovered = si.recovered_view(dataset, "ground_truth", "baseline", "sliced")
    lost = si.lost_view(dataset, "ground_truth", "baseline", "sliced")
    assert recovered.count("ground_truth.detections") == sliced.recovered > 0
    assert lost.count("ground_truth.detections") == sliced.lost
    assert set(recovered.distinct("ground_truth.detections.si_baseline")) == {"fn"}
    assert set(recovered.distinct("ground_truth.detections.si_sliced")) == {"tp"}
    # the sliced predictions shown are exactly the matches of the recovered objects
    gt_ids = set(recovered.values("ground_truth.detections.id", unwind=True))
    matched = recovered.values("sliced.detections.si_sliced_id", unwind=True)
    assert set(matched) == gt_ids and len(matched) == len(gt_ids)


def test_three_runs_compare_in_one_table(compared) -> None:
    _, comparison = compared
    confident = comparison.run("sliced_confident")
    sliced = comparison.run("sliced")
    assert confident.overall.num_pred <= sliced.overall.num_pred
    assert confident.lost is not None and confident.recovered is not None
    rows = [line for line in str(comparison).splitlines() if "Δ vs baseline" in line]
    assert len(rows) == 2 * (1 + 3)  # two runs: overall and per size (3 sizes)


def test_panel_loads_and_renders_the_stored_comparison(compared) -> None:
    dataset, comparison = compared
    if not is_current(dataset, comparison):  # only when tests run out of file order
        comparison = si.compare_runs(dataset, "ground_truth", FIELDS)
    panel, ctx, executor = _panel_context(dataset, {"comparison_key": comparison.key})
    panel.on_load(ctx)
    state = ctx.panel_state
    assert state["has_comparison"] and not state["stale"]
    runs = [row["run"] for row in state["metrics_table"]]
    assert [r for r in runs if "Δ" not in r] == FIELDS and len(runs) == 5
    assert state["metrics_table"][0]["mAP"] == f"{comparison.baseline.overall.mAP:.3f}"
    assert state["size_table"][1]["run"] == "sliced"
    assert state["size_table"][1]["AP50"] == (
        f"{comparison.run('sliced').by_size['small'].AP50:.3f}"
    )
    assert [row["run"] for row in state["speed_table"]] == FIELDS

    traces = _patched_data(executor)["ap_by_size"]
    assert [t["name"] for t in traces] == FIELDS
    assert traces[1]["y"][1] == pytest.approx(
        comparison.run("sliced").by_size["small"].mAP, abs=1e-4
    )
    assert traces[0]["x"][0] == "all" and len(traces[0]["x"]) == 4

    rendered = panel.render(ctx).to_json()
    props = rendered["type"]["properties"]
    for name in ("metrics_table", "size_table", "speed_table", "ap_by_size", "review"):
        assert name in props
    assert props["ap_by_size"]["view"]["name"] == "PlotlyView"

    panel.select_metric(_with_value(ctx, "recall"))
    traces = _patched_data(executor)["ap_by_size"]
    assert traces[1]["y"][0] == pytest.approx(
        comparison.run("sliced").overall.recall, abs=1e-4
    )


def test_panel_buttons_load_views_and_model_evaluation(compared) -> None:
    dataset, _ = compared
    key = default_comparison_key(FIELDS)
    panel, ctx, executor = _panel_context(dataset, {"comparison_key": key})
    panel.on_load(ctx)
    assert ctx.panel_state["focus_field"] == "sliced_confident"  # the last run
    panel.select_focus(_with_value(ctx, "sliced"))
    panel.show_recovered(ctx)
    view = _triggered(executor, "set_view")[-1]["view"]
    expected = si.recovered_view(dataset, "ground_truth", "baseline", "sliced")
    assert _stages(view) == _stages(expected._serialize())

    panel.select_focus(_with_value(ctx, "sliced_confident"))
    panel.show_lost(ctx)
    view = _triggered(executor, "set_view")[-1]["view"]
    expected = si.lost_view(dataset, "ground_truth", "baseline", "sliced_confident")
    assert _stages(view) == _stages(expected._serialize())

    panel.open_model_evaluation(ctx)
    spaces = _triggered(executor, "set_spaces")[-1]["spaces"]
    ours, evaluation = spaces["children"][1]["children"]
    assert evaluation["type"] == MODEL_EVALUATION_PANEL
    state = evaluation["state"]["state"]["view"]
    assert (state["key"], state["compareKey"]) == ("si_baseline", "si_sliced_confident")
    assert state["page"] == "evaluation" and state["init"]
    assert state["id"] == str(dataset._doc.evaluations["si_baseline"].id)
    assert ours["state"]["state"]["focus_field"] == "sliced_confident"


def test_operator_runs_through_execute_operator(compared) -> None:
    dataset, _ = compared
    result = foo.execute_operator(
        OPERATOR_URI,
        ctx={
            "dataset": dataset,
            "params": {
                "gt_field": "ground_truth",
                "baseline_field": "baseline",
                "compare_fields": ["sliced"],
            },
        },
    )
    assert result.error is None
    assert result.result["eval_keys"] == ["si_baseline", "si_sliced"]
    assert result.result["comparison_key"] in list_comparisons(dataset)
    assert "sliced" in result.result["table"]
    opened = _triggered(result.executor, "open_panel")
    assert opened and opened[-1]["name"] == PANEL_NAME
    assert list_comparisons(dataset)[0] == result.result["comparison_key"]  # it shows

    # the documented SDK-style call builds the same request (queued here, not
    # rerun); a queued run needs a dataset that outlives this process
    compare = foo.get_operator(OPERATOR_URI)
    fields = ["baseline", "sliced", "sliced_confident"]
    with pytest.raises(ValueError, match="not persistent.*dataset.persistent = True"):
        compare(dataset, "ground_truth", fields, delegate=True)
    dataset.persistent = True
    try:
        queued = compare(dataset, "ground_truth", fields, delegate=True)
    finally:
        dataset.persistent = False
    assert queued.error is None and queued.delegated
    params = queued.result["context"]["request_params"]["params"]
    assert params["baseline_field"] == "baseline"
    assert params["compare_fields"] == ["sliced", "sliced_confident"]


def test_operator_errors_name_the_field_and_the_choices(compared) -> None:
    dataset, _ = compared
    compare = foo.get_operator(OPERATOR_URI)
    listed = "baseline, ground_truth, sliced, sliced_confident"
    with pytest.raises(ValueError) as error:
        compare(dataset, "gt", ["baseline", "sliced"])
    assert str(error.value) == (
        f"no ground-truth field 'gt'; Detections fields on this dataset: {listed}"
    )
    with pytest.raises(ValueError, match="not a prediction field other than the "):
        compare(dataset, "ground_truth", ["baseline", "baseline"])
    # The same words come back from FiftyOne's own call, where the form refuses
    # them, instead of "Invalid enum value".
    params = {"gt_field": "gt", "baseline_field": "baseline", "compare_fields": ["x"]}
    with pytest.raises(ExecutionError) as error:
        foo.execute_operator(OPERATOR_URI, ctx={"dataset": dataset, "params": params})
    assert (
        f"no ground-truth field 'gt'; Detections fields on this dataset: {listed}"
        in str(error.value)
    )
    assert "enum" not in str(error.value)
    # A dataset without enough fields says which it has and what to do.
    bare = fo.Dataset()
    bare.add_sample(fo.Sample(filepath=dataset.first().filepath))
    params = {
        "gt_field": "ground_truth",
        "baseline_field": "a",
        "compare_fields": ["b"],
    }
    with pytest.raises(ExecutionError, match="Detections fields on this dataset: none"):
        foo.execute_operator(OPERATOR_URI, ctx={"dataset": bare, "params": params})
    bare.delete()


def test_operator_form_offers_detection_fields(compared) -> None:
    dataset, _ = compared
    operator = foo.get_operator(OPERATOR_URI)
    ctx = ExecutionContext(
        request_params={
            "dataset_name": dataset.name,
            "params": {"gt_field": "ground_truth", "baseline_field": "baseline"},
        }
    )
    props = operator.resolve_input(ctx).type.properties
    assert props["gt_field"].type.values == sorted(["ground_truth", *FIELDS])
    choices = [c.value for c in props["compare_fields"].view.choices]
    assert choices == ["sliced", "sliced_confident"]
    assert "iou" not in props  # the options appear once the fields are chosen

    ctx.params["compare_fields"] = ["ground_truth"]
    props = operator.resolve_input(ctx).type.properties
    assert props["compare_fields"].invalid


def test_panel_notices_changed_evaluations_and_reruns(compared) -> None:
    dataset, _ = compared
    comparison = load_comparison(
        dataset, default_comparison_key(["baseline", "sliced"])
    )
    if comparison is None or not is_current(dataset, comparison):
        comparison = si.compare_runs(dataset, "ground_truth", ["baseline", "sliced"])
    dataset.evaluate_detections(
        "sliced", gt_field="ground_truth", eval_key="si_sliced", iou=0.3
    )
    panel, ctx, _ = _panel_context(dataset, {"comparison_key": comparison.key})
    panel.on_load(ctx)
    assert ctx.panel_state["stale"]
    assert "rerun" in panel.render(ctx).to_json()["type"]["properties"]
    panel.rerun(ctx)
    assert not ctx.panel_state["stale"]
    assert is_current(dataset, load_comparison(dataset, comparison.key))


def test_panel_without_comparisons_says_what_to_do() -> None:
    dataset = fo.Dataset()
    dataset.add_sample(fo.Sample(filepath="/nonexistent/image.jpg"))
    panel, ctx, _ = _panel_context(dataset, {})
    panel.on_load(ctx)
    assert ctx.panel_state["has_comparison"] is False
    props = panel.render(ctx).to_json()["type"]["properties"]
    assert "No comparison yet" in props["empty"]["default"]
    actions = props["empty_actions"]["type"]["properties"]
    assert set(actions) == {"compare", "refresh"}
    # "Compare runs" prompts the operator and reloads the panel when it succeeds.
    panel, ctx, executor = _panel_context(dataset, {})
    panel.prompt_compare(ctx)
    (prompt,) = _triggered(executor, "prompt_user_for_operation")
    assert prompt["operator_uri"] == OPERATOR_URI
    assert prompt["on_success"].endswith("#refresh")


def _panel_context(
    dataset: fo.Dataset, state: dict[str, Any]
) -> tuple[ComparisonPanel, ExecutionContext, Executor]:
    executor = Executor()
    ctx = ExecutionContext(
        request_params={
            "dataset_name": dataset.name,
            "params": {"panel_id": "test-panel", "panel_state": dict(state)},
        },
        executor=executor,
    )
    return ComparisonPanel(), ctx, executor


def _stages(serialized: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """View stages without their random ``_uuid``."""
    return [{k: v for k, v in stage.items() if k != "_uuid"} for stage in serialized]


def _with_value(ctx: ExecutionContext, value: Any) -> ExecutionContext:
    ctx.params["value"] = value
    return ctx


def _triggered(executor: Executor, operator: str) -> list[dict[str, Any]]:
    return [
        r.to_json()["params"]
        for r in executor._requests
        if r.to_json()["operator_uri"] == operator
    ]


def _patched_data(executor: Executor) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for params in _triggered(executor, "patch_panel_data"):
        data.update(params["data"])
    return data


def _areas(dataset: fo.Dataset, field_name: str) -> list[tuple[str, float]]:
    """(label id, box area in pixels) of every object of a field."""
    out = []
    for sample in dataset.select_fields(field_name):
        width, height = sample.metadata.width, sample.metadata.height
        for det in sample[field_name].detections:
            _, _, w, h = det.bounding_box
            out.append((det.id, w * width * h * height))
    return out


def _size_of_each_object(dataset: fo.Dataset, field_name: str) -> list[str]:
    ranges = size_ranges()
    return [
        next(size for size, (low, high) in ranges.items() if low <= area < high)
        for _, area in _areas(dataset, field_name)
    ]


def test_size_ranges_cover_all_areas() -> None:
    ranges = size_ranges((100, 400))
    assert ranges == {"small": (0, 100), "medium": (100, 400), "large": (400, np.inf)}


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def labelled_copy(compared) -> fo.Dataset:
    """One sample of the compared dataset whose two "runs" are copies of its ground truth."""
    dataset, _ = compared
    copy = dataset.limit(1).select_fields("ground_truth").clone("test-comparison-copy")
    copy.info = {}  # no run records of the original's runs
    copy.save()
    for name in ("run_a", "run_b"):
        copy.clone_sample_field("ground_truth", name)
        counts = copy.values(F(f"{name}.detections").length())
        copy.set_values(f"{name}.detections.confidence", [[0.9] * n for n in counts])
    yield copy
    copy.delete()


def test_comparison_hides_fiftyone_evaluation_lines(labelled_copy) -> None:
    records = _Records()
    logger = logging.getLogger("fiftyone.utils.eval")
    logger.addHandler(records)
    try:
        labelled_copy.evaluate_detections("run_a", gt_field="ground_truth")
        assert "Evaluating detections..." in records.messages  # what it hides
        records.messages.clear()
        comparison = si.compare_runs(labelled_copy, "ground_truth", ["run_a", "run_b"])
    finally:
        logger.removeHandler(records)
    assert records.messages == []
    assert logger.level == logging.NOTSET  # restored
    assert comparison.runs[1].overall.recall == 1.0


def test_clean_up_deletes_comparisons_evaluations_and_run_records(
    labelled_copy, det_model_path: Path
) -> None:
    dataset = labelled_copy
    si.apply_baseline_model(dataset.limit(1), str(det_model_path), "baseline")
    si.compare_runs(dataset, "ground_truth", ["run_a", "run_b"])
    dataset.evaluate_detections("run_a", gt_field="ground_truth", eval_key="mine")
    deleted = si.delete_comparisons(dataset)
    assert sorted(deleted) == ["si_cmp_run_a_run_b", "si_run_a", "si_run_b"]
    assert dataset.list_evaluations() == ["mine"]  # the user's own stays
    assert list_comparisons(dataset) == []
    assert si.delete_runs(dataset) == ["baseline"]
    assert si.list_runs(dataset) == {} and dataset.has_field("baseline")
    si.apply_baseline_model(
        dataset.limit(1), str(det_model_path), "baseline", overwrite=True
    )
    assert si.delete_runs(dataset, delete_fields=True) == ["baseline"]
    assert not dataset.has_field("baseline")
