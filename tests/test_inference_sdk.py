"""The inference SDK: apply_sliced_model / apply_baseline_model, labels, records, shards.

One small generated dataset (3 images of about 1600 px) is labelled by the
bundled detection and segmentation models once per module; the other tests use
instant callable models on clones, so the file stays fast on a 2-core CPU.
"""

from __future__ import annotations

import logging
from pathlib import Path

import fiftyone as fo
import fiftyone.core.models as fom
import numpy as np
import pytest

import sliced_inference as si
from sliced_inference.sdk import (
    LabelFieldError,
    cached_model,
    shard_of,
    shard_views,
    sliced_run,
)
from sliced_inference.sdk.fiftyone_model import FiftyOneTileModel
from sliced_inference.sdk.labels import predictions_from_detections, to_detections
from sliced_inference.slicer import (
    CallableModel,
    ConfigError,
    ModelLoadError,
    ModelOptions,
    Predictions,
)
from sliced_inference.synthetic import (
    generate_scene,
    load_fiftyone_dataset,
    write_dataset,
)


@pytest.fixture(scope="module")
def dataset(session_dir: Path) -> fo.Dataset:
    """Three generated images with many small objects and exact ground truth."""
    root = session_dir / "inference-sdk-data"
    write_dataset(root, num_images=3, seed=11, min_width=1600, max_width=1700)
    return load_fiftyone_dataset(root, name="test-inference-sdk", overwrite=True)


@pytest.fixture(scope="module")
def labelled(dataset: fo.Dataset, det_model_path: Path):
    """Baseline and sliced runs of the bundled detector (written once)."""
    summaries = {
        "baseline": si.apply_baseline_model(dataset, str(det_model_path), "baseline"),
        "sliced": si.apply_sliced_model(
            dataset, str(det_model_path), "sliced", slice_wh=640, overlap=0.2
        ),
    }
    return dataset, summaries


@pytest.fixture(scope="module")
def segmented(dataset: fo.Dataset, seg_model_path: Path) -> fo.Dataset:
    """Sliced runs of the bundled segmentation model (written once)."""
    si.apply_sliced_model(dataset, str(seg_model_path), "seg_sliced", slice_wh=640)
    return dataset


def _center_model(with_masks: bool = False) -> CallableModel:
    """One detection at the centre of every tile (instant, deterministic)."""

    def fn(tile: np.ndarray) -> dict:
        h, w = tile.shape[:2]
        out = {
            "boxes": [[w / 2 - 8, h / 2 - 5, w / 2 + 8, h / 2 + 5]],
            "scores": [0.9],
            "labels": [0],
        }
        if with_masks:
            mask = np.zeros((h, w), bool)
            mask[h // 2 - 5 : h // 2 + 5, w // 2 - 8 : w // 2 + 8] = True
            out["masks"] = [mask]
        return out

    return CallableModel(fn, class_names={0: "thing"})


def _clone(dataset: fo.Dataset, name: str) -> fo.Dataset:
    clone = dataset.select_fields("ground_truth").clone(name)
    clone.info = {}
    clone.save()
    return clone


def test_fields_are_detections_with_review_attributes(labelled) -> None:
    dataset, summaries = labelled
    for field in ("baseline", "sliced"):
        assert dataset.get_field(field).document_type is fo.Detections
        assert summaries[field].processed == len(dataset) == 3
        assert not summaries[field].errors
        boxes = np.array(
            [
                b
                for boxes in dataset.values(f"{field}.detections.bounding_box")
                for b in boxes
            ]
        )
        assert len(boxes) > 0
        assert boxes.min() >= 0.0
        assert (boxes[:, 0] + boxes[:, 2]).max() <= 1.0 + 1e-9
        assert (boxes[:, 1] + boxes[:, 3]).max() <= 1.0 + 1e-9
        assert None not in dataset.values(f"{field}.detections.confidence", unwind=True)
        assert set(dataset.distinct(f"{field}.detections.truncated")) <= {True, False}
    assert dataset.distinct("baseline.detections.tile") == [-1]
    assert min(dataset.distinct("sliced.detections.tile")) >= 0


def test_sliced_finds_more_small_objects_than_baseline(labelled) -> None:
    dataset, _ = labelled
    tp = {}
    for field in ("baseline", "sliced"):
        dataset.evaluate_detections(
            field, gt_field="ground_truth", eval_key=f"eval_{field}", iou=0.5
        )
        tp[field] = dataset.sum(f"eval_{field}_tp")
    assert tp["sliced"] > tp["baseline"], tp


def test_masks_cover_exactly_their_integer_box(segmented: fo.Dataset) -> None:
    dataset = segmented
    assert dataset.get_field("seg_sliced").document_type is fo.Detections
    checked = 0
    for sample in dataset.select_fields("seg_sliced"):
        width, height = sample.metadata.width, sample.metadata.height
        for det in sample.seg_sliced.detections:
            x, y, w, h = det.bounding_box
            x0, y0 = round(x * width), round(y * height)
            x1, y1 = round((x + w) * width), round((y + h) * height)
            assert det.mask.dtype == bool
            assert det.mask.shape == (y1 - y0, x1 - x0)
            assert abs(x0 - x * width) < 1e-6 and abs(x1 - (x + w) * width) < 1e-6
            checked += 1
    assert checked > 0
    # FiftyOne's mask IoU lines the masks up with the ground truth.
    results = dataset.evaluate_detections(
        "seg_sliced", gt_field="ground_truth", eval_key="eval_seg", use_masks=True
    )
    assert results.metrics()["recall"] > 0.3


def test_run_is_recorded_and_listed(labelled, det_model_path: Path) -> None:
    dataset, summaries = labelled
    info = si.get_run_info(dataset.limit(1), "sliced")
    assert info["kind"] == "sliced"
    assert info["model"] == str(det_model_path)
    assert info["status"] == "completed"
    assert info["settings"]["slice_wh"] == [640, 640]
    assert info["settings"]["merge"]["strategy"] == "provenance"
    assert info["plugin_version"] == si.__version__
    assert info["samples_processed"] == 3 and info["num_errors"] == 0
    assert info["seconds"] > 0 and info["images_per_second"] > 0
    assert info["started_at"] < info["finished_at"]
    assert si.get_run_info(dataset, "baseline")["kind"] == "baseline"
    assert {"baseline", "sliced"} <= set(si.list_runs(dataset))
    assert si.get_run_info(dataset, "no_such_field") is None
    assert summaries["sliced"].to_dict()["processed"] == 3


def test_existing_field_is_untouched_without_overwrite(dataset: fo.Dataset) -> None:
    ds = _clone(dataset, "sdk-overwrite")
    model = _center_model()
    si.apply_sliced_model(ds, model, "preds")
    before = ds.values("preds.detections.id", unwind=True)
    with pytest.raises(LabelFieldError, match="already exists"):
        si.apply_sliced_model(ds, model, "preds", slice_wh=320)
    assert ds.values("preds.detections.id", unwind=True) == before
    assert si.get_run_info(ds, "preds")["settings"]["slice_wh"] == [640, 640]
    si.apply_sliced_model(ds, model, "preds", slice_wh=320, overwrite=True)
    assert set(ds.values("preds.detections.id", unwind=True)).isdisjoint(before)
    assert si.get_run_info(ds, "preds")["settings"]["slice_wh"] == [320, 320]
    ds.set_values("note", ["x"] * len(ds))
    with pytest.raises(LabelFieldError, match="not Detections"):
        si.apply_baseline_model(ds, model, "note", overwrite=True)


def test_bad_options_fail_before_any_work(dataset: fo.Dataset) -> None:
    model = _center_model()
    for options in (
        {"slice_wh": 0},
        {"overlap": 1.5},
        {"confidence": 2.0},
        {"merge": "bogus"},
        {"batch_size": 0},
    ):
        with pytest.raises(ConfigError):
            si.apply_sliced_model(dataset, model, "never", **options)
    with pytest.raises(ConfigError):
        si.apply_baseline_model(dataset, model, "never", imgsz=-5)
    with pytest.raises(ModelLoadError):
        si.apply_sliced_model(dataset, "/no/such/model.pt", "never")
    with pytest.raises(LabelFieldError):
        si.apply_sliced_model(dataset, model, "bad.name")
    assert not dataset.has_field("never")
    assert si.get_run_info(dataset, "never") is None


def test_skip_existing_resumes_and_tags(dataset: fo.Dataset) -> None:
    ds = _clone(dataset, "sdk-resume")
    model = _center_model()
    first = ds.limit(1)
    si.apply_sliced_model(first, model, "preds")
    kept = first.values("preds.detections.id", unwind=True)
    summary = si.apply_sliced_model(
        ds, model, "preds", skip_existing=True, tags=["prelabelled"]
    )
    assert (summary.processed, summary.skipped) == (2, 1)
    assert ds.exists("preds").count() == 3
    assert first.values("preds.detections.id", unwind=True) == kept
    assert ds.count_sample_tags() == {"prelabelled": 2}
    info = si.get_run_info(ds, "preds")
    assert info["samples_skipped"] == 1 and info["settings"]["tags"] == ["prelabelled"]


def test_unreadable_images_are_skipped_and_reported(
    dataset: fo.Dataset, session_dir: Path, caplog
) -> None:
    # Ultralytics patches PIL.Image.open (an unknown format then fails with an
    # ImportError of its optional HEIF plugin): the run must survive that too.
    import ultralytics.utils.patches  # noqa: F401

    ds = _clone(dataset, "sdk-unreadable")
    corrupt = session_dir / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    text = session_dir / "text.jpg"
    text.write_text("not an image at all")
    bad = [
        fo.Sample(filepath=str(session_dir / "missing.jpg")),
        fo.Sample(filepath=str(corrupt)),
        fo.Sample(filepath=str(text)),
    ]
    bad_ids = ds.add_samples(bad)
    with caplog.at_level("WARNING"):
        summary = si.apply_sliced_model(ds, _center_model(), "preds")
    assert summary.processed == 3
    assert set(summary.errors) == set(bad_ids)
    for sample_id, sample in zip(bad_ids, bad, strict=True):
        assert Path(sample.filepath).name in summary.errors[sample_id]
    assert "3 of 6 samples skipped" in caplog.text
    assert ds.exists("preds").count() == 3
    assert ds.select(bad_ids).exists("preds").count() == 0
    info = si.get_run_info(ds, "preds")
    assert info["num_errors"] == 3 and info["status"] == "completed"
    assert {e["filepath"] for e in info["errors"]} == {s.filepath for s in bad}


def test_missing_metadata_is_computed(dataset: fo.Dataset) -> None:
    ds = _clone(dataset, "sdk-metadata")
    ds.set_values("metadata", [None] * len(ds))
    si.apply_baseline_model(ds, _center_model(), "preds")
    assert ds.exists("metadata").count() == 3
    assert ds.values("metadata.width") == dataset.values("metadata.width")


def test_interrupted_run_keeps_finished_samples(dataset: fo.Dataset) -> None:
    ds = _clone(dataset, "sdk-interrupt")
    run = sliced_run(ds, _center_model(), "preds")
    steps = run.iter_execute()
    assert next(steps)[0] == 0.0  # model loaded
    fraction, _ = next(steps)  # first sample done
    steps.close()  # the user stops the run
    assert fraction == pytest.approx(1 / 3)
    assert ds.exists("preds").count() == 1
    assert si.get_run_info(ds, "preds")["status"] == "interrupted"


def test_progress_callback_and_model_cache(
    dataset: fo.Dataset, det_model_path: Path
) -> None:
    ds = _clone(dataset, "sdk-progress")
    seen = []
    si.apply_baseline_model(
        ds, _center_model(), "preds", progress=lambda f, label: seen.append(f)
    )
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    model = cached_model(str(det_model_path), ModelOptions(device="cpu"))
    assert cached_model(str(det_model_path), ModelOptions(device="cpu")) is model


def test_shard_views_are_disjoint_stable_and_complete(dataset: fo.Dataset) -> None:
    views = shard_views(dataset, 2)
    ids = [set(v.values("id")) for v in views]
    assert ids[0].isdisjoint(ids[1])
    assert ids[0] | ids[1] == set(dataset.values("id"))
    assert [set(v.values("id")) for v in shard_views(dataset, 2)] == ids
    assert all(shard_of(i, 2) == 0 for i in ids[0])
    ds = _clone(dataset, "sdk-shards")
    for index in range(2):
        si.apply_sliced_model(
            ds,
            _center_model(),
            "preds",
            shard=(index, 2),
            run_id="r1",
            skip_existing=index > 0,
        )
    assert ds.exists("preds").count() == 3
    info = si.get_run_info(ds, "preds")
    assert info["num_shards"] == 2 and info["samples_processed"] == 3
    assert info["status"] == "completed"


def test_fiftyone_model_runs_on_tiles(session_dir: Path, det_model_path: Path) -> None:
    import fiftyone.utils.ultralytics as fouu
    from PIL import Image
    from ultralytics import YOLO

    # A small, dense scene at the model's own input size, saved losslessly.
    scene = generate_scene(seed=4, width=400, height=320, density=400, num_large=0)
    path = session_dir / "small-scene.png"
    Image.fromarray(scene.image).save(path)
    ds = fo.Dataset()
    ds.add_sample(fo.Sample(filepath=str(path)))
    fo_model = fouu.convert_ultralytics_model(YOLO(str(det_model_path)))
    # One tile as large as the image: the adapter must give what FiftyOne's
    # own apply_model gives on the whole image, box for box.
    ds.apply_model(fo_model, "fo_full")
    summary = si.apply_sliced_model(
        ds, fo_model, "fo_tiles", slice_wh=1024, merge="none", confidence=0.0
    )
    assert summary.processed == 1
    assert si.get_run_info(ds, "fo_tiles")["model"] == type(fo_model).__name__
    full = sorted(ds.first().fo_full.detections, key=lambda d: d.bounding_box)
    tiles = sorted(ds.first().fo_tiles.detections, key=lambda d: d.bounding_box)
    assert len(full) == len(tiles) == summary.num_detections > 0
    np.testing.assert_allclose(
        [d.bounding_box for d in tiles], [d.bounding_box for d in full], atol=1e-4
    )
    assert [d.label for d in tiles] == [d.label for d in full]
    ds.delete()


class _FixedModel(fom.Model):
    """A FiftyOne model returning one detection with a mask, relative to its input."""

    media_type = "image"
    ragged_batches = False
    transforms = None
    preprocess = False

    def predict(self, arg: np.ndarray) -> fo.Detections:
        return fo.Detections(
            detections=[
                fo.Detection(
                    label="car",
                    bounding_box=[0.25, 0.5, 0.5, 0.25],
                    confidence=0.7,
                    mask=np.ones((4, 8), bool),
                ),
                fo.Detection(
                    label="truck",
                    bounding_box=[0, 0, 0.1, 0.1],
                    confidence=0.1,
                    mask=np.ones((2, 2), bool),
                ),
            ]
        )


def test_fiftyone_tile_model_converts_to_tile_pixels() -> None:
    model = FiftyOneTileModel(_FixedModel())
    (preds,) = model.predict_tiles([np.zeros((200, 400, 3), np.uint8)], confidence=0.5)
    assert preds.labels == ["car"]
    assert preds.boxes.tolist() == [[100.0, 100.0, 300.0, 150.0]]
    assert preds.mask_boxes.tolist() == [[100, 100, 300, 150]]
    assert preds.masks[0].shape == (50, 200) and preds.masks[0].all()
    assert model.class_names == {0: "car", 1: "truck"}
    with pytest.raises(ModelLoadError):
        FiftyOneTileModel(object())


def test_to_detections_clips_masks_and_boxes_to_the_image() -> None:
    mask = np.ones((10, 20), bool)
    preds = Predictions(
        boxes=[[90.4, 5.2, 109.6, 14.8], [10, 10, 20, 20]],
        scores=[0.9, 0.8],
        class_ids=[0, 1],
        class_names={0: "car"},
        masks=[mask, np.ones((10, 10), bool)],
        mask_boxes=[[90, 5, 110, 15], [10, 10, 20, 20]],
        tile_index=[3, -1],
        truncated=[True, False],
    )
    dets = to_detections(preds, 100, 50).detections
    assert [d.label for d in dets] == ["car", "1"]
    assert dets[0].bounding_box == [0.9, 0.1, 0.1, 0.2]
    assert dets[0].mask.shape == (10, 10)
    assert (dets[0].tile, dets[0].truncated) == (3, True)
    assert dets[1].tile == -1
    back = predictions_from_detections(
        fo.Detections(detections=dets), 100, 50, {"car": 0}
    )
    np.testing.assert_allclose(back.boxes[1], [10, 10, 20, 20], atol=1e-4)
    assert back.mask_boxes.tolist()[0] == [90, 5, 100, 15]


def test_a_missing_video_is_reported_not_fatal() -> None:
    ds = fo.Dataset()
    ds.add_sample(fo.Sample(filepath="/tmp/no-such-video.mp4"))
    summary = si.apply_sliced_model(ds, _center_model(), "preds")
    assert summary.processed == 0
    assert "not found" in next(iter(summary.errors.values()))
    assert si.get_run_info(ds, "preds")["num_errors"] == 1
    ds.delete()


def test_sliced_run_options_reach_the_engine(dataset: fo.Dataset) -> None:
    ds = _clone(dataset, "sdk-options").limit(1)
    tiles_seen = []

    def fn(tile: np.ndarray) -> dict:
        tiles_seen.append(tile.shape[:2])
        return {"boxes": [[1, 1, 9, 9]], "scores": [0.3], "labels": [0]}

    summary = si.apply_sliced_model(
        ds, CallableModel(fn), "preds", slice_wh=512, overlap=0.0, confidence=0.5
    )
    assert set(tiles_seen) == {(512, 512)}
    assert summary.num_detections == 0  # all below the confidence threshold


def test_transformers_model_directory(dataset: fo.Dataset, tiny_detr_dir: Path) -> None:
    ds = _clone(dataset, "sdk-transformers").limit(1)
    summary = si.apply_sliced_model(
        ds, str(tiny_detr_dir), "detr", slice_wh=640, confidence=0.0
    )
    assert summary.processed == 1 and summary.num_detections > 0
    assert set(ds.distinct("detr.detections.label")) <= {"car", "truck"}
    assert si.get_run_info(ds, "detr")["model"] == str(tiny_detr_dir)


def _boxes(detections: fo.Detections | None) -> list[tuple[float, ...]]:
    return sorted(
        tuple(d.bounding_box) for d in (detections or fo.Detections()).detections
    )


def test_classes_by_label_and_by_id_keep_only_those(
    labelled, det_model_path: Path
) -> None:
    dataset, _ = labelled
    one = dataset.limit(1)
    si.apply_sliced_model(one, str(det_model_path), "cars", classes=["car"])
    si.apply_sliced_model(one, str(det_model_path), "cars_by_id", classes=[1])
    sample = one.first()
    cars = _boxes(sample.cars)
    assert cars and {d.label for d in sample.cars.detections} == {"car"}
    assert cars == _boxes(sample.cars_by_id)
    # The same cars as in the run that kept every class (filtering comes
    # before the merge, so a car merged into another class there could
    # come back here; none does in this image).
    every = {
        tuple(d.bounding_box) for d in sample.sliced.detections if d.label == "car"
    }
    assert len(every & set(cars)) >= 0.95 * len(every) > 0
    assert si.get_run_info(one, "cars_by_id")["settings"]["classes"] == [1]

    with pytest.raises(ConfigError, match="'cars'.*plane, car, boat"):
        si.apply_sliced_model(one, str(det_model_path), "typo", classes=["cars"])
    assert not dataset.has_field("typo") and si.get_run_info(dataset, "typo") is None


def test_max_detections_keeps_the_best_of_each_image(
    labelled, det_model_path: Path
) -> None:
    dataset, _ = labelled
    si.apply_sliced_model(dataset, str(det_model_path), "best5", max_detections=5)
    every = dataset.values("sliced.detections.confidence")
    best = dataset.values("best5.detections.confidence")
    for all_scores, kept in zip(every, best, strict=True):
        assert len(all_scores) > 5
        assert sorted(kept, reverse=True) == sorted(all_scores, reverse=True)[:5]


def test_imgsz_is_what_the_network_sees(
    dataset: fo.Dataset, det_model_path: Path
) -> None:
    ds = _clone(dataset, "sdk-imgsz").limit(1)
    # The model the runs load (the per-process cache hands it back to them).
    # On PyTorch, to hook its module (OpenVINO gets the same inputs).
    torch = ModelOptions(backend="torch")
    network = cached_model(str(det_model_path), torch).yolo.model
    seen = []
    hook = network.register_forward_pre_hook(
        lambda module, args: seen.append(max(args[0].shape[2:]))
    )
    try:
        run = {"model": str(det_model_path), "backend": "torch"}
        si.apply_baseline_model(ds, label_field="own_size", **run)
        si.apply_baseline_model(ds, label_field="big", imgsz=1280, **run)
        si.apply_sliced_model(ds, label_field="tiles", slice_wh=512, **run)
        tiles = len(seen) - 2
        si.apply_sliced_model(
            ds, label_field="tiles_800", slice_wh=512, imgsz=800, **run
        )
    finally:
        hook.remove()
    assert seen[:2] == [320, 1280]  # the trained size, then the one asked for
    assert seen[2:] == [512] * tiles + [800] * tiles
    assert ds.count("big.detections") > ds.count("own_size.detections")
    assert si.get_run_info(ds, "big")["settings"]["imgsz"] == 1280
    assert si.get_run_info(ds, "tiles_800")["settings_ignored"] == {}


def test_ignored_settings_warn_once_and_the_record_says_what_ran(
    dataset: fo.Dataset, det_model_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ds = _clone(dataset, "sdk-ignored").limit(1)
    with caplog.at_level(logging.WARNING):
        si.apply_baseline_model(ds, str(det_model_path), "half", half=True)
    warnings = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
    assert warnings == [
        "half: half=True is ignored: float16 runs on CUDA only; this model runs on cpu"
    ]
    info = si.get_run_info(ds, "half")
    assert info["settings"]["half"] is False and info["settings"]["device"] == "cpu"
    assert info["settings_ignored"] == {
        "half": {"asked": True, "reason": warnings[0].split("ignored: ")[1]}
    }

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        si.apply_sliced_model(ds, _center_model(), "callable", imgsz=1280, device="cpu")
    warned = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
    assert (
        len(warned) == 2 and "imgsz=1280" in warned[0] and "device='cpu'" in warned[1]
    )
    info = si.get_run_info(ds, "callable")
    assert info["settings"]["imgsz"] is None and info["settings"]["device"] is None
    assert set(info["settings_ignored"]) == {"imgsz", "device"}
    assert info["settings_ignored"]["imgsz"]["asked"] == 1280


def test_fiftyone_zoo_style_model_slices_like_the_direct_path(
    dataset: fo.Dataset, det_model_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import fiftyone.utils.ultralytics as fouu
    from ultralytics import YOLO

    from sliced_inference.bench.evaluate import box_iou

    ds = _clone(dataset, "sdk-fo-model").limit(1)
    fo_model = fouu.convert_ultralytics_model(YOLO(str(det_model_path)))
    # 320-px tiles: the wrapper resizes its input to the trained 320 px, and
    # the direct path runs tiles at their own size, so both see the same input.
    with caplog.at_level(logging.WARNING):
        summary = si.apply_sliced_model(ds, fo_model, "via_fo", slice_wh=320, imgsz=320)
    si.apply_sliced_model(ds, str(det_model_path), "direct", slice_wh=320)

    assert summary.processed == 1 and summary.num_detections > 20
    info = si.get_run_info(ds, "via_fo")
    assert info["model_class"] == "FiftyOneTileModel"
    assert info["settings"]["imgsz"] is None and info["settings"]["device"] == "cpu"
    assert set(info["settings_ignored"]) == {"imgsz"}
    assert "own transforms size its input" in caplog.text
    via_fo, direct = ds.first().via_fo.detections, ds.first().direct.detections
    width, height = ds.first().metadata.width, ds.first().metadata.height

    def xyxy(dets: list[fo.Detection]) -> np.ndarray:
        b = np.array([d.bounding_box for d in dets]) * [width, height, width, height]
        return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)

    iou = box_iou(xyxy(direct), xyxy(via_fo))
    same_label = np.array([d.label for d in direct])[:, None] == np.array(
        [d.label for d in via_fo]
    )
    matched = ((iou >= 0.9) & same_label).any(axis=1)
    assert abs(len(via_fo) - len(direct)) <= 0.02 * len(direct)
    # Measured: 102 detections each way, every one matched (IoU >= 0.9).
    assert matched.mean() >= 0.95, f"{matched.mean():.2f} of {len(direct)} matched"


def test_transformers_instance_segmentation_writes_cropped_masks(
    dataset: fo.Dataset, tiny_mask2former_dir: Path
) -> None:
    ds = _clone(dataset, "sdk-mask2former").limit(1)
    summary = si.apply_sliced_model(
        ds, str(tiny_mask2former_dir), "m2f", slice_wh=640, confidence=0.0
    )
    assert cached_model(str(tiny_mask2former_dir)).segments
    sample = ds.first()
    width, height = sample.metadata.width, sample.metadata.height
    dets = sample.m2f.detections
    assert summary.num_detections == len(dets) > 0
    assert {d.label for d in dets} <= {"car", "truck"}
    assert min(d.tile for d in dets) >= 0
    for det in dets:
        x, y, w, h = det.bounding_box
        x0, y0 = round(x * width), round(y * height)
        x1, y1 = round((x + w) * width), round((y + h) * height)
        assert det.mask.dtype == bool and det.mask.shape == (y1 - y0, x1 - x0)
        # Cropped to the box of its own pixels: every side of the box is hit.
        mask = det.mask
        assert (
            mask[0].any() and mask[-1].any() and mask[:, 0].any() and mask[:, -1].any()
        )
    assert si.get_run_info(ds, "m2f")["model_class"] == "TransformersModel"
