"""Model adapters with real models: Ultralytics detect/segment, Transformers, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from sliced_inference.slicer import load_model, predict_sliced
from sliced_inference.slicer.models.transformers import TransformersModel
from sliced_inference.slicer.models.ultralytics import UltralyticsModel


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    from sliced_inference.synthetic import generate_scene

    return generate_scene(seed=1234, width=1600, height=1200).image


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def test_ultralytics_fast_path_matches_ultralytics_predict(
    det_model_path, scene
) -> None:
    from ultralytics import YOLO

    tile = np.ascontiguousarray(scene[:640, :640])
    ours = load_model(det_model_path, device="cpu").predict_tiles(
        [tile], confidence=0.25
    )[0]
    theirs = YOLO(str(det_model_path)).predict(
        tile[..., ::-1], imgsz=640, conf=0.25, verbose=False
    )[0]

    assert len(ours) > 0 and len(ours) == len(theirs.boxes)
    iou = _box_iou(ours.boxes, theirs.boxes.xyxy.numpy())
    assert (iou.max(axis=1) > 0.99).all()


def test_ultralytics_segmentation_masks_are_cropped_and_match_ultralytics(
    seg_model_path, scene
) -> None:
    from ultralytics import YOLO

    tile = np.ascontiguousarray(scene[:640, :640])
    ours = load_model(seg_model_path, device="cpu").predict_tiles(
        [tile], confidence=0.25
    )[0]
    theirs = YOLO(str(seg_model_path)).predict(
        tile[..., ::-1], imgsz=640, conf=0.25, verbose=False
    )[0]

    assert ours.has_masks and len(ours) > 0
    full = theirs.masks.data.numpy() > 0.5
    their_boxes = theirs.boxes.xyxy.numpy()
    for mask, (x0, y0, x1, y1), box in zip(
        ours.masks, ours.mask_boxes, ours.boxes, strict=True
    ):
        assert mask.shape == (y1 - y0, x1 - x0)
        match = int(np.argmax(_box_iou(box[None], their_boxes)[0]))
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


def test_imgsz_override_and_yolo_objects(det_model_path, scene) -> None:
    from ultralytics import YOLO

    model = load_model(YOLO(str(det_model_path)), device="cpu")
    assert isinstance(model, UltralyticsModel)
    preds = predict_sliced(scene, model, slice_wh=512, overlap=0.2, imgsz=800)
    assert len(preds) > 0
    assert (preds.boxes[:, 2] <= scene.shape[1]).all() and (
        preds.boxes[:, 3] <= scene.shape[0]
    ).all()


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
