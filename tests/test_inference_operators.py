"""The run_sliced_inference / run_baseline_inference operators, through FiftyOne itself.

The plugin is loaded from the plugins dir the way users install it (a link,
see ``conftest``); operators run with ``foo.execute_operator`` immediately, as
the App streams them, delegated (queued, then executed by FiftyOne's
delegated-operation service in this process) and sharded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types
import fiftyone.plugins as fop
import pytest
from bson import ObjectId
from fiftyone.operators.delegated import DelegatedOperationService
from fiftyone.operators.executor import ExecutionContext, ExecutionError

import sliced_inference as si
from sliced_inference.synthetic import load_fiftyone_dataset, write_dataset

PLUGIN = "@slicer/sliced-inference"
SLICED = f"{PLUGIN}/run_sliced_inference"
BASELINE = f"{PLUGIN}/run_baseline_inference"


@pytest.fixture(scope="module")
def dataset(session_dir: Path) -> fo.Dataset:
    """Two generated images of about 1200 px (operators are tested for plumbing)."""
    root = session_dir / "inference-operators-data"
    write_dataset(root, num_images=2, seed=5, min_width=1200, max_width=1300)
    return load_fiftyone_dataset(root, name="test-inference-operators", overwrite=True)


def _clone(dataset: fo.Dataset, name: str, persistent: bool = False) -> fo.Dataset:
    clone = dataset.select_fields("ground_truth").clone(name, persistent=persistent)
    clone.info = {}
    clone.save()
    return clone


def _form(
    uri: str, dataset: fo.Dataset, params: dict[str, Any]
) -> tuple[foo.Operator, ExecutionContext, dict[str, types.Property]]:
    """The operator, a context on ``dataset`` with ``params``, and its form's inputs."""
    ctx = ExecutionContext(
        request_params={
            "dataset_name": dataset.name,
            "view": dataset.view()._serialize(),
            "params": params,
        }
    )
    operator = foo.get_operator(uri)
    return operator, ctx, operator.resolve_input(ctx).type.properties


def test_plugin_loads_and_lists_its_operators() -> None:
    assert PLUGIN in [p.name for p in fop.list_plugins()]
    uris = {op.uri for op in foo.list_operators()}
    assert {SLICED, BASELINE} <= uris
    assert foo.get_operator(SLICED).config.allow_delegated_execution


def test_sliced_operator_called_from_python(
    dataset: fo.Dataset, det_model_path
) -> None:
    ds = _clone(dataset, "ops-python")
    op = foo.get_operator(SLICED)
    result = op(ds, str(det_model_path), "sliced", slice_wh=640, tags=["review"])
    assert result.error is None
    assert result.result["processed"] == 2 and result.result["num_errors"] == 0
    assert ds.get_field("sliced").document_type is fo.Detections
    assert ds.count("sliced.detections") == result.result["num_detections"] > 0
    assert ds.count_sample_tags() == {"review": 2}
    info = si.get_run_info(ds, "sliced")
    assert (info["kind"], info["model"]) == ("sliced", str(det_model_path))


def test_app_style_execution_streams_progress(
    dataset: fo.Dataset, det_model_path
) -> None:
    ds = _clone(dataset, "ops-app")
    # As the App calls it: its requests name the operator, and execute is a
    # generator (that FiftyOne exhausts here, so no result comes back).
    result = foo.execute_operator(
        BASELINE,
        ctx={
            "view": ds.view(),
            "operator_uri": BASELINE,
            "params": {"model": str(det_model_path), "label_field": "baseline"},
        },
    )
    assert result.error is None and result.result is None
    assert ds.exists("baseline").count() == 2
    assert si.get_run_info(ds, "baseline")["status"] == "completed"


def test_execute_operator_from_python_returns_the_summary(
    dataset: fo.Dataset, det_model_path
) -> None:
    ds = _clone(dataset, "ops-execute-operator")
    params = {"model": str(det_model_path), "label_field": "baseline"}
    result = foo.execute_operator(BASELINE, ctx={"view": ds.view(), "params": params})
    assert result.error is None
    assert result.result["processed"] == 2
    assert result.result["num_detections"] == ds.count("baseline.detections")


def test_queued_runs_carry_an_absolute_model_path(
    dataset: fo.Dataset, det_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = _clone(dataset, "ops-relative-model", persistent=True)
    monkeypatch.chdir(det_model_path.parents[1])
    relative = "models/small-objects-det.pt"
    op = foo.get_operator(SLICED)
    queued = op(ds, relative, "sliced", delegate=True)
    assert queued.result["context"]["request_params"]["params"]["model"] == str(
        det_model_path
    )
    # As the App queues it: FiftyOne's own call with request_delegation.
    raw = foo.execute_operator(
        SLICED,
        ctx={
            "view": ds.view(),
            "params": {"model": relative, "label_field": "sliced_2"},
            "request_delegation": True,
        },
    )
    assert raw.delegated
    params = raw.result["context"]["request_params"]["params"]
    assert params["model"] == str(det_model_path)
    dispatched = op(ds, relative, "sharded", num_shards=2)
    service = DelegatedOperationService()
    for op_id in dispatched.result["queued"]:
        doc = service.get(ObjectId(op_id))
        assert doc.context.request_params["params"]["model"] == str(det_model_path)
    ds.delete()


def test_queuing_on_a_non_persistent_dataset_is_refused(
    dataset: fo.Dataset, det_model_path: Path
) -> None:
    ds = _clone(dataset, "ops-not-persistent")
    op = foo.get_operator(SLICED)
    model = str(det_model_path)
    fix = "Make it persistent first \\(dataset.persistent = True\\)"
    with pytest.raises(ValueError, match=fix):
        op(ds, model, "sliced", delegate=True)
    with pytest.raises(ValueError, match=fix):
        op(ds, model, "sliced", num_shards=2)
    with pytest.raises(ExecutionError, match=fix):
        foo.execute_operator(
            SLICED,
            ctx={
                "view": ds.view(),
                "params": {"model": model, "label_field": "sliced"},
                "request_delegation": True,
            },
        )
    assert not DelegatedOperationService().list_operations(dataset_name=ds.name)
    # The App offers only "run now" there.
    operator, ctx, _ = _form(SLICED, ds, {"label_field": "x"})
    assert not operator.resolve_execution_options(ctx).allow_delegated_execution


def test_validation_errors_come_back_as_errors(
    dataset: fo.Dataset, det_model_path
) -> None:
    ds = _clone(dataset, "ops-validation")
    ds.set_values("taken", [fo.Detections()] * len(ds))
    op = foo.get_operator(SLICED)
    cases = [
        ({"model": "/no/such/model.pt"}, "No model file"),
        ({"label_field": "taken"}, "already exists"),
        ({"label_field": "ground_truth", "overwrite": True, "model": "x.txt"}, "model"),
        ({"slice_wh": 8}, "slice_wh"),
        ({"device": "gpu7"}, "Unknown device"),
    ]
    for overrides, message in cases:
        params = {"model": str(det_model_path), "label_field": "new", **overrides}
        with pytest.raises(ExecutionError, match=message):
            foo.execute_operator(SLICED, ctx={"view": ds.view(), "params": params})
    assert not ds.has_field("new")
    # The existing field was not touched, and overwrite is what unlocks it.
    assert ds.count("taken.detections") == 0
    result = op(ds, str(det_model_path), "taken", overwrite=True)
    assert result.result["processed"] == 2


def test_form_flags_existing_field_and_missing_model(dataset: fo.Dataset) -> None:
    _, _, props = _form(
        SLICED, dataset, {"label_field": "ground_truth", "model": "/nope.pt"}
    )
    assert props["label_field"].invalid
    assert "already exists" in props["label_field"].error_message
    assert props["model"].invalid and "No model file" in props["model"].error_message
    assert "slice_wh" not in props  # the form grows once target, model, field are valid

    operator, ctx, props = _form(
        BASELINE, dataset, {"label_field": "fresh", "model": "facebook/detr-resnet-50"}
    )
    assert not props["label_field"].invalid and not props["model"].invalid
    assert {"imgsz", "confidence", "tags", "num_shards"} <= set(props)
    placement = operator.resolve_placement(ctx)
    assert placement.place == types.Places.SAMPLES_GRID_SECONDARY_ACTIONS
    assert not operator.resolve_execution_options(ctx).default_choice_to_delegated


def test_large_targets_default_to_delegated(dataset: fo.Dataset) -> None:
    big = fo.Dataset(persistent=True)
    path = dataset.first().filepath
    big.add_samples([fo.Sample(filepath=path) for _ in range(51)])
    operator, ctx, _ = _form(SLICED, big, {"label_field": "x"})
    options = operator.resolve_execution_options(ctx)
    assert options.default_choice_to_delegated and options.allow_immediate_execution
    big.delete()


def test_delegated_run_is_queued_then_executed(
    dataset: fo.Dataset, seg_model_path
) -> None:
    ds = _clone(dataset, "ops-delegated", persistent=True)
    op = foo.get_operator(SLICED)
    queued = op(ds, str(seg_model_path), "seg", slice_wh=640, delegate=True)
    assert queued.delegated
    assert not ds.has_field("seg")
    service = DelegatedOperationService()
    results = service.execute_queued_operations(operator=SLICED, dataset_name=ds.name)
    assert len(results) == 1 and results[0].error is None
    assert results[0].result["processed"] == 2
    ds.reload()
    assert ds.get_field("seg").document_type is fo.Detections
    assert ds.count("seg.detections.mask") == ds.count("seg.detections") > 0
    (doc,) = service.list_operations(operator=SLICED, dataset_name=ds.name)
    assert doc.run_state == "completed"
    ds.delete()


def test_two_shards_cover_every_sample_once(
    dataset: fo.Dataset, det_model_path
) -> None:
    ds = _clone(dataset, "ops-shards", persistent=True)
    ds.add_samples([fo.Sample(filepath=p) for p in ds.values("filepath")])  # 4 samples
    op = foo.get_operator(BASELINE)
    dispatched = op(ds, str(det_model_path), "baseline", num_shards=2)
    assert len(dispatched.result["queued"]) == 2
    assert not ds.has_field("baseline")
    service = DelegatedOperationService()
    results = service.execute_queued_operations(operator=BASELINE, dataset_name=ds.name)
    assert [r.error for r in results] == [None, None]
    processed = [r.result["processed"] for r in results]
    # A sample written twice would count twice: the shards are disjoint.
    assert sum(processed) == len(ds) == 4
    ds.reload()
    assert ds.exists("baseline").count() == 4
    info = si.get_run_info(ds, "baseline")
    assert info["num_shards"] == 2 and info["status"] == "completed"
    assert info["samples_processed"] == 4
    shard_sizes = sorted(s["samples_total"] for s in info["shards"].values())
    assert sum(shard_sizes) == 4
    ds.delete()


def test_forms_offer_backend_and_precision_and_runs_record_them(
    dataset: fo.Dataset, det_model_path
) -> None:
    params = {"label_field": "fresh", "model": str(det_model_path)}
    _, _, props = _form(SLICED, dataset, params)
    assert {"backend", "precision"} <= set(props)
    assert "calibration_tiles" not in props  # only asked for int8
    assert [c.value for c in props["backend"].view.choices] == [
        "auto",
        "torch",
        "openvino",
    ]
    _, _, props = _form(BASELINE, dataset, {**params, "precision": "int8"})
    assert "calibration_tiles" in props and not props["precision"].invalid
    _, _, props = _form(SLICED, dataset, {**params, "backend": "tensorrt"})
    assert props["backend"].invalid and "backend" in props["backend"].error_message

    ds = _clone(dataset, "ops-backend")
    result = foo.get_operator(SLICED)(ds, str(det_model_path), "torch", backend="torch")
    assert result.error is None
    info = si.get_run_info(ds, "torch")
    assert info["settings"]["backend"] == "torch"
    ran = {k: info["settings"][k] for k in ("backend", "precision", "device")}
    assert ran == {"backend": "torch", "precision": "fp32", "device": "cpu"}
    assert info["settings_ignored"] == {}
    ds.delete()
