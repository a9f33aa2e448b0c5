"""What a careless or hostile user can do to a run, and what must hold anyway.

Each numbered case of the probe (issue 15) is reproduced as it was found and
must now be refused before anything runs, or leave every label and record
right: a crafted ``.pt`` never runs its code, absurd input sizes are refused
with a memory estimate, views never hide what exists, records keep every
run, two writers never share a field, names FiftyOne would reject are refused
up front, and tags reach every group slice. Real database, bundled models.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import fiftyone as fo
import fiftyone.operators as foo
import numpy as np
import pytest
import torch
from conftest import REPO_ROOT
from fiftyone import ViewField as F
from fiftyone.operators.executor import ExecutionError

import sliced_inference as si
from sliced_inference.operators import plugin_settings
from sliced_inference.sdk import (
    FieldInUseError,
    LabelFieldError,
    baseline_run,
    batch_writer,
    field_writer,
    sliced_run,
)
from sliced_inference.sdk.dataset_doc import stored_runs
from sliced_inference.slicer import CallableModel, ConfigError, ModelLoadError
from sliced_inference.slicer.models.ultralytics import load_yolo
from sliced_inference.synthetic import load_fiftyone_dataset, write_dataset

SLICED = "@slicer/sliced-inference/run_sliced_inference"
BASELINE = "@slicer/sliced-inference/run_baseline_inference"


@pytest.fixture(scope="module")
def images(session_dir: Path) -> fo.Dataset:
    """Four small generated scenes (about 640 px) with ground truth."""
    root = session_dir / "hostile-data"
    write_dataset(root, num_images=4, seed=15, min_width=600, max_width=680)
    return load_fiftyone_dataset(root, name="hostile-images", overwrite=True)


def _copy(dataset: fo.Dataset, name: str) -> fo.Dataset:
    copy = dataset.select_fields("ground_truth").clone(name)
    copy.info = {}
    copy.save()
    return copy


class CountingModel(CallableModel):
    """One box at each tile's centre, labelled ``label``; counts the tiles it saw."""

    def __init__(self, label: str = "thing") -> None:
        self.calls = 0

        def fn(tile: np.ndarray) -> dict:
            self.calls += 1
            h, w = tile.shape[:2]
            return {
                "boxes": [[w / 2 - 8, h / 2 - 5, w / 2 + 8, h / 2 + 5]],
                "scores": [0.9],
                "labels": [0],
            }

        super().__init__(fn, class_names={0: label})


def _nothing_recorded(dataset: fo.Dataset, field: str) -> bool:
    dataset.reload()
    return not dataset.has_field(field) and si.get_run_info(dataset, field) is None


# ---------------------------------------------------------------- 1. security


#: The payload a crafted checkpoint carries: it writes a marker file.
class _WritesAFile:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


@pytest.fixture()
def crafted_pt(tmp_path: Path) -> tuple[Path, Path]:
    """``evil.pt``, whose unpickling would write ``marker``; and ``marker``."""
    marker = tmp_path / "payload-ran.txt"
    path = tmp_path / "evil.pt"
    torch.save({"model": _WritesAFile(marker)}, path)
    return path, marker


@pytest.fixture()
def legacy_pt(tmp_path: Path, det_model_path: Path) -> Path:
    """The bundled detector saved with one extra, harmless Python object.

    Safe loading refuses it (``argparse.Namespace`` is not a model class);
    full unpickling loads it: a stand-in for a legacy checkpoint.
    """
    import argparse

    checkpoint = torch.load(det_model_path, weights_only=False)
    checkpoint["notes"] = argparse.Namespace(reviewed=3)
    path = tmp_path / "legacy.pt"
    torch.save(checkpoint, path)
    return path


def test_a_crafted_pt_never_runs_its_code(
    images: fo.Dataset, crafted_pt: tuple[Path, Path]
) -> None:
    path, marker = crafted_pt
    with pytest.raises(ModelLoadError, match="safe loading refused it.*exec"):
        si.apply_sliced_model(images, str(path), "evil")
    assert not marker.exists()
    # From the App: the same file typed in the form.
    params = {"model": str(path), "label_field": "evil"}
    with pytest.raises(ExecutionError, match="safe loading refused"):
        foo.execute_operator(SLICED, ctx={"view": images.view(), "params": params})
    assert not marker.exists()
    assert _nothing_recorded(images, "evil")


def test_bundled_models_load_safely_and_legacy_ones_need_the_opt_in(
    seg_model_path: Path, legacy_pt: Path
) -> None:
    assert load_yolo(seg_model_path).task == "segment"
    with pytest.raises(ModelLoadError, match="argparse.Namespace.*allow_unsafe_pickle"):
        load_yolo(legacy_pt)
    assert load_yolo(legacy_pt, allow_unsafe_pickle=True).task == "detect"


def test_app_opt_in_is_the_administrators_setting_only(
    images: fo.Dataset, legacy_pt: Path, monkeypatch
) -> None:
    ds = _copy(images, "hostile-opt-in").limit(1)
    params = {
        "model": str(legacy_pt),
        "label_field": "legacy",
        "allow_unsafe_pickle": True,  # sent by a user: ignored
        "stream_progress": False,
    }
    with pytest.raises(ExecutionError, match="safe loading refused"):
        foo.execute_operator(SLICED, ctx={"view": ds, "params": params})
    op = foo.get_operator(SLICED)
    with pytest.raises(TypeError, match="allow_unsafe_pickle"):
        op(ds, str(legacy_pt), "legacy", allow_unsafe_pickle=True)
    settings = {"allow_unsafe_pickle": True}
    monkeypatch.setitem(fo.app_config.plugins, plugin_settings.PLUGIN_NAME, settings)
    result = foo.execute_operator(SLICED, ctx={"view": ds, "params": params})
    assert result.error is None and result.result is not None
    assert si.get_run_info(ds, "legacy")["settings"]["allow_unsafe_pickle"] is True


def test_model_directories_allowlist_for_app_runs(
    images: fo.Dataset, det_model_path: Path, tmp_path: Path, monkeypatch
) -> None:
    ds = _copy(images, "hostile-allowlist").limit(1)
    allowed, elsewhere = tmp_path / "allowed", tmp_path / "elsewhere"
    allowed.mkdir()
    elsewhere.mkdir()
    shutil.copy(det_model_path, allowed / "det.pt")
    shutil.copy(det_model_path, elsewhere / "det.pt")
    (allowed / "link.pt").symlink_to(elsewhere / "det.pt")
    monkeypatch.setenv(plugin_settings.MODEL_DIRS_ENV, str(allowed))

    def run(model: str, field: str):
        params = {"model": model, "label_field": field, "stream_progress": False}
        return foo.execute_operator(BASELINE, ctx={"view": ds, "params": params})

    for model in (
        str(elsewhere / "det.pt"),
        str(allowed / "link.pt"),  # a link out of the directory
        str(allowed / ".." / "elsewhere" / "det.pt"),
        "facebook/detr-resnet-50",  # hub ids are not allowed either
    ):
        with pytest.raises(ExecutionError, match="This server runs only models in"):
            run(model, "outside")
    assert _nothing_recorded(ds._dataset, "outside")
    # The form says so next to the model input.
    ctx = _context(ds, {"model": str(elsewhere / "det.pt"), "label_field": "x"})
    props = foo.get_operator(BASELINE).resolve_input(ctx).type.properties
    assert props["model"].invalid and "outside them" in props["model"].error_message
    assert run(str(allowed / "det.pt"), "inside").result["processed"] == 1
    assert run(str(det_model_path), "bundled").result["processed"] == 1
    # The SDK is not restricted (a Python caller already runs code of their own).
    si.apply_baseline_model(ds, str(elsewhere / "det.pt"), "sdk")
    # The App config's setting wins over the environment.
    monkeypatch.setitem(
        fo.app_config.plugins,
        plugin_settings.PLUGIN_NAME,
        {"model_dirs": [str(elsewhere)]},
    )
    assert run(str(elsewhere / "det.pt"), "configured").result["processed"] == 1


# ------------------------------------------------------------ 2. input size


def test_an_absurd_imgsz_is_refused_with_its_memory_estimate(
    images: fo.Dataset, det_model_path: Path
) -> None:
    ds = _copy(images, "hostile-imgsz").limit(1)
    with pytest.raises(ConfigError, match=r"imgsz=25600 px is too large.*61 GiB"):
        si.apply_baseline_model(ds, str(det_model_path), "huge", imgsz=25600)
    for keyword in ("imgsz", "full_image_imgsz"):
        with pytest.raises(ConfigError, match=f"{keyword}=9000 px"):
            si.apply_sliced_model(ds, str(det_model_path), "huge", **{keyword: 9000})
    assert _nothing_recorded(ds._dataset, "huge")
    op = foo.get_operator(BASELINE)
    # (The plugin runs its own copy of the package: its ConfigError is another
    # class object, a ValueError all the same.)
    with pytest.raises(ValueError, match="GiB"):
        op(ds, str(det_model_path), "huge", imgsz=25600)
    # The form shows the bound and the estimate next to the input.
    ctx = _context(
        ds, {"model": str(det_model_path), "label_field": "b", "imgsz": 25600}
    )
    props = op.resolve_input(ctx).type.properties
    assert props["imgsz"].invalid and "61 GiB" in props["imgsz"].error_message
    assert props["imgsz"].type.max == 8192


def test_large_inputs_run_delegated_never_in_the_app_server(
    images: fo.Dataset, det_model_path: Path
) -> None:
    op = foo.get_operator(BASELINE)
    base = {"model": str(det_model_path), "label_field": "b"}
    small = op.resolve_execution_options(_context(images, {**base, "imgsz": 2560}))
    assert small.allow_immediate_execution
    large = op.resolve_execution_options(_context(images, {**base, "imgsz": 6000}))
    assert not large.allow_immediate_execution and large.allow_delegated_execution
    sliced = foo.get_operator(SLICED)
    batch = {**base, "slice_wh": 640, "batch_size": 128}
    assert not sliced.resolve_execution_options(
        _context(images, batch)
    ).allow_immediate_execution


def _context(dataset: fo.core.collections.SampleCollection, params: dict):
    from fiftyone.operators.executor import ExecutionContext

    return ExecutionContext(
        request_params={
            "dataset_name": dataset._root_dataset.name,
            "view": dataset.view()._serialize(),
            "params": params,
        }
    )


# ------------------------------------------------ 4, 5, 12. views and slices


@pytest.mark.parametrize(
    "hide",
    [lambda d: d.exclude_fields("sl"), lambda d: d.select_fields("ground_truth")],
)
def test_skip_existing_decides_on_the_dataset_not_the_view(
    images: fo.Dataset, det_model_path: Path, hide
) -> None:
    ds = _copy(images, "hostile-projection")
    si.apply_sliced_model(ds, str(det_model_path), "sl")
    before = ds.values("sl.detections.id", unwind=True)
    assert before
    summary = si.apply_sliced_model(
        hide(ds), str(det_model_path), "sl", skip_existing=True
    )
    assert (summary.processed, summary.skipped) == (0, len(ds))
    assert ds.values("sl.detections.id", unwind=True) == before
    ds.delete()


def test_patches_views_are_refused_before_inference(images: fo.Dataset) -> None:
    ds = _copy(images, "hostile-patches")
    model = CountingModel()
    patches = ds.to_patches("ground_truth").limit(5)
    with pytest.raises(ConfigError, match="patches view"):
        si.apply_sliced_model(patches, model, "pp")
    assert model.calls == 0  # it used to run the whole image once per patch
    assert _nothing_recorded(ds, "pp")
    # In the App, with the patches view as the target, the form stops there.
    ctx = _context(patches, {"label_field": "pp", "view_target": "CURRENT_VIEW"})
    props = foo.get_operator(SLICED).resolve_input(ctx).type.properties
    assert "patches view" in props["target_problem"].view.label
    assert "slice_wh" not in props
    ds.delete()


def test_frames_views_are_refused_before_inference(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5, (96, 64))
    for i in range(5):
        writer.write(np.full((64, 96, 3), 40 * i, np.uint8))
    writer.release()
    video = fo.Dataset("hostile-video")
    video.add_sample(
        fo.Sample(
            filepath=str(path),
            metadata=fo.VideoMetadata(
                frame_width=96, frame_height=64, frame_rate=5.0, total_frame_count=5
            ),
        )
    )
    frames = video.to_frames(sample_frames=False)
    assert frames.media_type == "image"  # what let it through before
    model = CountingModel()
    with pytest.raises(ConfigError, match="frames view"):
        si.apply_sliced_model(frames, model, "pp")
    assert model.calls == 0
    assert _nothing_recorded(video, "pp")
    video.delete()


def test_tags_reach_samples_of_a_group_slice_that_is_not_active(
    images: fo.Dataset,
) -> None:
    grouped = fo.Dataset("hostile-groups")
    grouped.add_group_field("group", default="left")
    samples = []
    for filepath in images.values("filepath")[:2]:
        group = fo.Group()
        samples.append(fo.Sample(filepath=filepath, group=group.element("left")))
        samples.append(fo.Sample(filepath=filepath, group=group.element("right")))
    grouped.add_samples(samples)
    right = grouped.select_group_slices("right")
    summary = si.apply_sliced_model(right, CountingModel(), "preds", tags=["review"])
    assert summary.processed == 2
    assert right.count_sample_tags() == {"review": 2}
    assert right.exists("preds").count() == 2
    left = grouped.select_group_slices("left")
    assert left.count_sample_tags() == {} and left.exists("preds").count() == 0
    # skip_existing sees the right slice's labels too.
    again = si.apply_sliced_model(right, CountingModel(), "preds", skip_existing=True)
    assert (again.processed, again.skipped) == (0, 2)
    grouped.delete()


# ------------------------------------------------------- 6. runs and records


def test_a_run_that_labels_nothing_does_not_replace_the_fields_record(
    images: fo.Dataset, det_model_path: Path, seg_model_path: Path
) -> None:
    ds = _copy(images, "hostile-history")
    si.apply_sliced_model(ds, str(det_model_path), "sl")
    first = si.get_run_info(ds, "sl")
    rerun = si.apply_sliced_model(
        ds, str(seg_model_path), "sl", slice_wh=1024, skip_existing=True
    )
    assert rerun.processed == 0
    info = si.get_run_info(ds, "sl")
    assert info["run_id"] == first["run_id"] and info["model"] == str(det_model_path)
    assert info["settings"]["slice_wh"] == [640, 640] and info["seconds"] > 0
    history = si.get_run_history(ds, "sl")
    assert [r["model"] for r in history] == [str(det_model_path), str(seg_model_path)]
    assert [r["labels_in_field"] for r in history] == [True, False]
    assert history[1]["samples_processed"] == 0 and info["num_runs"] == 2
    # An overwrite starts the field over; the history keeps the older runs.
    si.apply_sliced_model(ds, CountingModel(), "sl", overwrite=True)
    assert si.get_run_info(ds, "sl")["run_ids"] == [
        si.get_run_history(ds, "sl")[2]["run_id"]
    ]
    assert len(si.get_run_history(ds, "sl")) == 3
    ds.delete()


def test_a_resume_with_other_settings_is_refused_unless_asked(
    images: fo.Dataset,
) -> None:
    ds = _copy(images, "hostile-resume")
    steps = sliced_run(ds, CountingModel("car"), "preds").iter_execute()
    next(steps), next(steps)  # model loaded, one sample done
    steps.close()  # interrupted after 1 of 4
    first = ds.values("preds.detections.id", unwind=True)
    other = CountingModel("truck")
    with pytest.raises(LabelFieldError, match="other settings.*slice_wh"):
        si.apply_sliced_model(ds, other, "preds", skip_existing=True, slice_wh=320)
    assert ds.values("preds.detections.id", unwind=True) == first
    # Same settings: the resume completes, and the record adds both runs up.
    si.apply_sliced_model(ds, other, "preds", skip_existing=True)
    info = si.get_run_info(ds, "preds")
    assert info["status"] == "completed" and len(info["run_ids"]) == 2
    assert (info["samples_total"], info["samples_processed"]) == (4, 4)
    assert not info["mixed_settings"]
    # Asked for: mixing is allowed, and the record says so.
    si.apply_sliced_model(ds.limit(2), other, "mixed")
    si.apply_sliced_model(
        ds, other, "mixed", skip_existing=True, slice_wh=320, allow_mixed_settings=True
    )
    info = si.get_run_info(ds, "mixed")
    assert info["mixed_settings"] and info["samples_processed"] == 4
    ds.delete()


#: A second process that labels a field, one sample per write.
_WRITER = """
import sys
import fiftyone as fo
import sliced_inference as si
from sliced_inference.sdk import batch_writer

batch_writer.WRITE_BATCH_SIZE = 1
dataset = fo.load_dataset(sys.argv[1])
si.apply_sliced_model(dataset, sys.argv[2], "race", run_id="writer_a")
"""


def test_two_processes_never_write_one_field(
    images: fo.Dataset, det_model_path: Path
) -> None:
    ds = _copy(images, "hostile-race")
    ds.add_samples([fo.Sample(filepath=p) for p in ds.values("filepath") * 2])
    # Checked while the field is new, as a second process would be.
    late = sliced_run(ds, str(det_model_path), "race", run_id="writer_b")
    worker = subprocess.Popen(
        [sys.executable, "-c", _WRITER, ds.name, str(det_model_path)], cwd=REPO_ROOT
    )
    try:
        deadline = time.monotonic() + 180
        while not (stored_runs(ds).get("race") or {}).get("claim"):
            assert worker.poll() is None, "the writer ended before it claimed the field"
            assert time.monotonic() < deadline, "the writer never claimed the field"
            time.sleep(0.05)
        assert field_writer(ds, "race") == "writer_a"  # what a comparison checks
        with pytest.raises(FieldInUseError, match="writer_a"):
            late.execute()
        with pytest.raises(FieldInUseError, match="writer_a"):
            si.apply_sliced_model(ds, str(det_model_path), "race", overwrite=True)
        assert worker.wait(timeout=300) == 0
    finally:
        worker.kill()
        worker.wait(timeout=30)
    # Once it is done, the late run finds a field that exists (checked again
    # under the claim), not an empty one.
    with pytest.raises(LabelFieldError, match="already exists"):
        late.execute()
    ds.reload()
    info = si.get_run_info(ds, "race")
    assert info["run_id"] == "writer_a" and info["status"] == "completed"
    assert info["samples_processed"] == len(ds) == ds.exists("race").count()
    assert [r["run_id"] for r in si.get_run_history(ds, "race")] == ["writer_a"]
    assert "claim" not in stored_runs(ds)["race"]
    assert field_writer(ds, "race") is None
    ds.delete()


# ------------------------------------------------- 7. names and failed writes


def test_a_name_fiftyone_rejects_is_refused_before_inference(
    images: fo.Dataset,
) -> None:
    model = CountingModel()
    for name, reason in (
        ("score$v2", r"cannot contain '\$'"),
        ("_private", "cannot start with '_'"),
        ("a.b", "no dots"),
    ):
        with pytest.raises(LabelFieldError, match=reason):
            si.apply_sliced_model(images, model, name)
    assert model.calls == 0
    assert si.list_runs(images) == {}


def test_the_record_ends_even_when_the_last_write_fails(
    images: fo.Dataset, monkeypatch
) -> None:
    ds = _copy(images, "hostile-write-failure")

    def failing_flush(self) -> None:
        if self.labels:
            raise RuntimeError("the database refused the write")

    monkeypatch.setattr(batch_writer.BatchWriter, "flush", failing_flush)
    with pytest.raises(RuntimeError, match="refused the write"):
        si.apply_sliced_model(ds, CountingModel(), "preds")
    info = si.get_run_info(ds, "preds")
    assert info["status"] == "failed" and "refused the write" in info["failure"]
    assert info["finished_at"] is not None
    monkeypatch.undo()
    # The claim was given back: the next run may write the field.
    summary = si.apply_sliced_model(ds, CountingModel(), "preds", overwrite=True)
    assert summary.processed == len(ds)
    ds.delete()


# ---------------------------------------------------------- 11. input checks


def test_sdk_inputs_are_checked_like_the_forms(
    images: fo.Dataset, det_model_path: Path
) -> None:
    ds = _copy(images, "hostile-inputs").limit(1)
    model = str(det_model_path)
    one = si.apply_baseline_model(ds, model, "one", classes="car", confidence=0.05)
    listed = si.apply_baseline_model(
        ds, model, "listed", classes=["car"], confidence=0.05
    )
    assert one.num_detections == listed.num_detections > 0
    assert set(ds.distinct("one.detections.label")) == {"car"}
    with pytest.raises(ConfigError, match="'cra'.*its labels: plane, car"):
        si.apply_baseline_model(ds, model, "unknown", classes=["cra"])
    with pytest.raises(ConfigError, match="slice"):
        si.apply_sliced_model(ds, model, "bad", slice_wh="64")
    with pytest.raises(ConfigError, match="max_detections"):
        si.apply_sliced_model(ds, model, "bad", max_detections="3")
    op = foo.get_operator(SLICED)
    with pytest.raises(ValueError, match="max_detections"):
        op(ds, model, "bad", max_detections=2.5)
    params = {"model": model, "label_field": "bad", "max_detections": 2.5}
    with pytest.raises(ExecutionError, match="max_detections"):
        foo.execute_operator(SLICED, ctx={"view": ds, "params": params})
    for field in ("unknown", "bad"):
        assert _nothing_recorded(ds._dataset, field)


# ------------------------------------------------------------- decisions


def test_overwrite_never_replaces_ground_truth_of_stored_evaluations(
    images: fo.Dataset,
) -> None:
    ds = _copy(images, "hostile-gt")
    si.apply_sliced_model(ds, CountingModel(), "preds")
    ds.evaluate_detections("preds", gt_field="ground_truth", eval_key="ev")
    truth = ds.values("ground_truth.detections.id", unwind=True)
    with pytest.raises(LabelFieldError, match="ground truth of stored evaluation.*ev"):
        si.apply_sliced_model(ds, CountingModel(), "ground_truth", overwrite=True)
    assert ds.values("ground_truth.detections.id", unwind=True) == truth
    # Overwriting the predictions that were evaluated is the usual loop.
    si.apply_sliced_model(ds, CountingModel(), "preds", overwrite=True)
    ds.delete()


def test_overwrite_keeps_the_labels_of_an_image_it_cannot_read(
    images: fo.Dataset, tmp_path: Path
) -> None:
    ds = _copy(images, "hostile-unreadable")
    si.apply_sliced_model(ds, CountingModel("old"), "preds")
    sample = ds.first()
    kept = [d.id for d in sample["preds"].detections]
    moved = tmp_path / "away.jpg"
    shutil.copy(sample.filepath, moved)
    sample.filepath = str(tmp_path / "gone.jpg")  # unreadable right now
    sample.save()
    summary = si.apply_sliced_model(ds, CountingModel("new"), "preds", overwrite=True)
    assert summary.processed == len(ds) - 1
    assert "previous labels were kept" in summary.errors[sample.id]
    sample.reload()
    assert [d.id for d in sample["preds"].detections] == kept
    info = si.get_run_info(ds, "preds")
    assert info["previous_labels_kept"] == 1 and info["num_errors"] == 1
    ds.delete()


def test_overwrite_and_skip_existing_together_are_refused(images: fo.Dataset) -> None:
    with pytest.raises(LabelFieldError, match="not both"):
        si.apply_sliced_model(
            images, CountingModel(), "x", overwrite=True, skip_existing=True
        )


def test_an_empty_view_records_nothing(images: fo.Dataset) -> None:
    model = CountingModel()
    summary = si.apply_sliced_model(images.limit(0), model, "nothing")
    assert summary.processed == 0 and model.calls == 0
    assert _nothing_recorded(images, "nothing")
    run = baseline_run(images.match(F("filepath") == "none"), model, "nothing")
    assert run.execute().processed == 0
    assert _nothing_recorded(images, "nothing")
