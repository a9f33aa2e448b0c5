"""Model adapters with real models: Ultralytics detect/segment, Transformers, determinism."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sliced_inference.bench.evaluate import box_iou
from sliced_inference.slicer import (
    ConfigError,
    load_model,
    predict_full_image,
    predict_sliced,
)
from sliced_inference.slicer.models.base import settings_in_effect
from sliced_inference.slicer.models.transformers import TransformersModel
from sliced_inference.slicer.models.ultralytics import UltralyticsModel


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    from sliced_inference.synthetic import generate_scene

    return generate_scene(seed=1234, width=1600, height=1200).image


def _ours_and_ultralytics(model_path, scene: np.ndarray) -> tuple[Any, Any]:
    """Our adapter's and ``YOLO.predict``'s results on the scene's first 640-px tile."""
    from ultralytics import YOLO

    tile = np.ascontiguousarray(scene[:640, :640])
    model = load_model(model_path, device="cpu")
    ours = model.predict_tiles([tile], confidence=0.25)[0]
    theirs = YOLO(str(model_path)).predict(
        tile[..., ::-1], imgsz=640, conf=0.25, verbose=False
    )[0]
    return ours, theirs


def test_ultralytics_fast_path_matches_ultralytics_predict(
    det_model_path, scene
) -> None:
    ours, theirs = _ours_and_ultralytics(det_model_path, scene)
    assert len(ours) > 0 and len(ours) == len(theirs.boxes)
    iou = box_iou(ours.boxes, theirs.boxes.xyxy.numpy())
    assert (iou.max(axis=1) > 0.99).all()


def test_ultralytics_segmentation_masks_are_cropped_and_match_ultralytics(
    seg_model_path, scene
) -> None:
    ours, theirs = _ours_and_ultralytics(seg_model_path, scene)
    assert ours.has_masks and len(ours) > 0
    full = theirs.masks.data.numpy() > 0.5
    their_boxes = theirs.boxes.xyxy.numpy()
    for mask, (x0, y0, x1, y1), box in zip(
        ours.masks, ours.mask_boxes, ours.boxes, strict=True
    ):
        assert mask.shape == (y1 - y0, x1 - x0)
        match = int(np.argmax(box_iou(box[None], their_boxes)[0]))
        reference = full[match, y0:y1, x0:x1]
        union = (mask | reference).sum()
        assert union == 0 or (mask & reference).sum() / union > 0.9


def test_batch_size_does_not_change_results(det_model_path, scene) -> None:
    model = load_model(det_model_path, device="cpu")
    one = predict_sliced(scene, model, slice_wh=640, overlap=0.2, batch_size=1)
    many = predict_sliced(scene, model, slice_wh=640, overlap=0.2, batch_size=4)
    assert len(one) == len(many) > 0
    np.testing.assert_allclose(one.boxes, many.boxes, atol=1e-3)
    np.testing.assert_array_equal(one.class_ids, many.class_ids)
    again = predict_sliced(scene, model, slice_wh=640, overlap=0.2, batch_size=1)
    np.testing.assert_array_equal(one.boxes, again.boxes)


class _InputShapes:
    """Records the shape of the first input of every forward call of a torch module."""

    def __init__(self, module, name: str | None = None) -> None:
        self.shapes: list[tuple[int, ...]] = []
        self.name = name
        self.handle = module.register_forward_pre_hook(self._record, with_kwargs=True)

    def _record(self, module, args, kwargs) -> None:
        x = kwargs[self.name] if self.name else args[0]
        self.shapes.append(tuple(x.shape))

    def take(self) -> set[tuple[int, ...]]:
        """The shapes seen since the last call."""
        shapes, self.shapes = set(self.shapes), []
        return shapes


def test_imgsz_is_what_the_ultralytics_network_sees(det_model_path, scene) -> None:
    from ultralytics import YOLO

    # PyTorch, to hook its module (OpenVINO gets the same inputs: see test_openvino).
    model = load_model(YOLO(str(det_model_path)), device="cpu", backend="torch")
    assert isinstance(model, UltralyticsModel) and model.default_imgsz == 320
    seen = _InputShapes(model.yolo.model)

    preds = predict_sliced(scene, model, slice_wh=512, overlap=0.2)
    assert seen.take() == {(1, 3, 512, 512)}  # tiles at their own resolution
    preds = predict_sliced(scene, model, slice_wh=512, overlap=0.2, imgsz=800)
    assert seen.take() == {(1, 3, 800, 800)}
    assert len(preds) > 0
    assert (preds.boxes[:, 2] <= scene.shape[1]).all()
    assert (preds.boxes[:, 3] <= scene.shape[0]).all()
    # The baseline: the 1600x1200 image shrunk to the trained 320 px (padded
    # to the stride of 32), or to the 1280 px asked for.
    predict_full_image(scene, model)
    assert seen.take() == {(1, 3, 256, 320)}
    predict_full_image(scene, model, imgsz=1280)
    assert seen.take() == {(1, 3, 960, 1280)}
    predict_sliced(
        scene, model, slice_wh=512, full_image_pass=True, full_image_imgsz=640
    )
    assert (1, 3, 480, 640) in seen.take()


def test_imgsz_is_what_the_transformers_model_sees(tiny_detr_dir) -> None:
    model = load_model(str(tiny_detr_dir), device="cpu")
    seen = _InputShapes(model.model, "pixel_values")
    tiles = [np.zeros((300, 300, 3), np.uint8)] * 2
    model.predict_tiles(tiles)
    assert seen.take() == {(2, 3, 128, 128)}  # the processor's own size
    model.predict_tiles(tiles, imgsz=160)
    assert seen.take() == {(2, 3, 160, 160)}
    assert model.runtime.ignored == {}


def test_runtime_says_what_runs_and_what_is_ignored(det_model_path) -> None:
    model = load_model(det_model_path, device="cpu", half=True)
    assert not model.half  # float16 is CUDA only
    asked = {"imgsz": 640, "device": None, "half": True, "confidence": 0.3}
    settings, ignored = settings_in_effect(model, asked)
    assert settings == {"imgsz": 640, "device": "cpu", "half": False, "confidence": 0.3}
    assert list(ignored) == ["half"] and "CUDA" in ignored["half"]

    callback = load_model(lambda tile: {"boxes": []})
    settings, ignored = settings_in_effect(callback, asked)
    assert settings["imgsz"] is None and settings["half"] is False
    assert set(ignored) == {"imgsz", "half"}  # device=None asked for nothing
    assert settings_in_effect(callback, {"imgsz": None, "confidence": 0.3}) == (
        {"imgsz": None, "confidence": 0.3},
        {},
    )


def test_classes_by_label_or_id_and_unknown_ones(det_model_path, scene) -> None:
    model = load_model(det_model_path, device="cpu")
    every = predict_full_image(scene, model, imgsz=1280)
    cars = predict_full_image(scene, model, imgsz=1280, classes=["car"])
    by_id = predict_full_image(scene, model, imgsz=1280, classes=[1])
    assert len(every) > len(cars) > 0 and set(cars.labels) == {"car"}
    np.testing.assert_array_equal(cars.boxes, by_id.boxes)
    np.testing.assert_array_equal(
        cars.boxes, every.boxes[np.array(every.labels) == "car"]
    )
    with pytest.raises(ConfigError, match="'cars'.*plane, car, boat"):
        predict_sliced(scene, model, classes=["cars"])
    with pytest.raises(ConfigError, match="'7'|7"):
        predict_full_image(scene, model, classes=[7])
    # A callable learns its labels from its outputs: nothing to check up front.
    callback = load_model(lambda tile: {"boxes": []})
    assert len(predict_sliced(scene, callback, classes=["anything"])) == 0


def test_max_detections_keeps_the_best(det_model_path, scene) -> None:
    model = load_model(det_model_path, device="cpu")
    every = predict_sliced(scene, model, slice_wh=640)
    best = predict_sliced(scene, model, slice_wh=640, max_detections=10)
    assert len(every) > 10 and len(best) == 10
    np.testing.assert_array_equal(best.scores, np.sort(every.scores)[::-1][:10])
    base = predict_full_image(scene, model, imgsz=1280, max_detections=3)
    assert len(base) == 3 and (np.diff(base.scores) <= 0).all()


def test_transformers_detector_from_a_local_directory(tiny_detr_dir, scene) -> None:
    model = load_model(str(tiny_detr_dir), device="cpu")
    assert isinstance(model, TransformersModel)
    assert set(model.class_names.values()) >= {"car", "truck"}

    preds = predict_sliced(
        scene, model, slice_wh=640, overlap=0.2, confidence=0.0, batch_size=2
    )

    assert len(preds) > 0  # random weights, threshold 0: every query comes back
    assert (preds.boxes[:, :2] >= 0).all() and (preds.boxes[:, 2] <= 1600).all()
    assert set(preds.labels) <= set(model.class_names.values())


def test_transformers_model_and_processor_pair(tiny_detr_dir) -> None:
    from transformers import AutoImageProcessor, AutoModelForObjectDetection

    pair = (
        AutoModelForObjectDetection.from_pretrained(tiny_detr_dir),
        AutoImageProcessor.from_pretrained(tiny_detr_dir),
    )
    model = load_model(pair, device="cpu")
    out = model.predict_tiles(
        [np.zeros((200, 300, 3), np.uint8)] * 2, imgsz=160, confidence=0.0
    )
    assert len(out) == 2 and all((p.boxes[:, 2] <= 300.01).all() for p in out)


@pytest.mark.parametrize("count", [5, 6, 7])
def test_nms_reads_any_number_of_candidates_as_anchors(det_model_path, count) -> None:
    """Six candidate anchors once came back as garbage (Ultralytics read the
    (1, C, 6) block as an end-to-end model's rows): class ids like 597."""
    import torch

    model = load_model(det_model_path, backend="torch")
    classes = len(model.class_names)
    output = torch.zeros((1, 4 + classes, 50))
    for i in range(count):  # far apart, one class each, above the threshold
        output[0, :4, i] = torch.tensor([40.0 + 80 * i, 50.0, 20.0, 10.0])
        output[0, 4 + i % classes, i] = 0.9
    output[0, 4, count:] = 0.01  # the other anchors stay below it
    (det,) = model._nms(output, 0.25, (640, 640))
    assert len(det) == count
    assert sorted(det[:, 5].long().tolist()) == sorted(
        i % classes for i in range(count)
    )
    assert torch.allclose(det[:, 4], torch.full((count,), 0.9))
