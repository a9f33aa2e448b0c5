"""The synthetic data generator: determinism, label correctness, COCO and FiftyOne export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sliced_inference.synthetic import (
    CLASSES,
    ORIENTED_CLASSES,
    coco_rle,
    decode_coco_rle,
    draw_sprite,
    generate_oriented_scene,
    generate_scene,
    scene_size,
    write_dataset,
    write_oriented_dataset,
)
from sliced_inference.synthetic.cli import main as cli_main


@pytest.fixture(scope="module")
def scenes() -> list:
    return [generate_scene(seed, 1600, 1200) for seed in (1, 2, 3)]


def test_same_seed_gives_identical_scene() -> None:
    a = generate_scene(42, 1000, 700)
    b = generate_scene(42, 1000, 700)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.boxes, b.boxes)
    assert a.labels == b.labels
    assert all(np.array_equal(x, y) for x, y in zip(a.masks, b.masks, strict=True))


def test_different_seeds_give_different_scenes() -> None:
    a = generate_scene(1, 1000, 700)
    b = generate_scene(2, 1000, 700)
    assert not np.array_equal(a.image, b.image)
    assert len(a.boxes) != len(b.boxes) or not np.array_equal(a.boxes, b.boxes)


def test_image_format(scenes) -> None:
    for scene in scenes:
        assert scene.image.shape == (1200, 1600, 3)
        assert scene.image.dtype == np.uint8
        # A varied background, not a flat colour.
        assert scene.image.std() > 5


def test_masks_are_tight_and_fill_their_boxes(scenes) -> None:
    for scene in scenes:
        assert scene.boxes.dtype == np.int64 and scene.boxes.shape == (len(scene), 4)
        assert len(scene.masks) == len(scene.labels) == len(scene)
        x0, y0, x1, y1 = scene.boxes.T
        assert (x0 >= 0).all() and (y0 >= 0).all()
        assert (x1 <= scene.width).all() and (y1 <= scene.height).all()
        assert (x1 > x0).all() and (y1 > y0).all()
        for box, mask in zip(scene.boxes, scene.masks, strict=True):
            assert mask.dtype == bool
            assert mask.shape == (box[3] - box[1], box[2] - box[0])
            # Tight: every edge row and column of the box holds object pixels.
            assert mask[0].any() and mask[-1].any()
            assert mask[:, 0].any() and mask[:, -1].any()


def test_masks_are_visible_pixels_and_never_overlap(scenes) -> None:
    # Occlusion: each pixel belongs to at most one object.
    for scene in scenes:
        owner = np.zeros((scene.height, scene.width), np.int32)
        for box, mask in zip(scene.boxes, scene.masks, strict=True):
            region = owner[box[1] : box[3], box[0] : box[2]]
            assert not (region[mask] > 0).any()
            region[mask] = 1


def test_classes_sizes_overlaps_and_borders(scenes) -> None:
    labels = {label for s in scenes for label in s.labels}
    assert len(CLASSES) >= 4 and labels == set(CLASSES)
    boxes = np.concatenate([s.boxes for s in scenes])
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    assert np.mean(sides <= 48) > 0.8, "most objects are small"
    assert (sides >= 200).sum() >= len(scenes), "a few objects are large"
    assert np.mean(sides >= 8) > 0.9
    touching = 0
    cut = 0
    for s in scenes:
        b = s.boxes
        lt = np.maximum(b[:, None, :2], b[None, :, :2])
        rb = np.minimum(b[:, None, 2:], b[None, :, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
        touching += int((inter > 0).sum() - len(b)) // 2
        cut += int(
            (
                (b[:, :2] == 0).any(1) | (b[:, 2] == s.width) | (b[:, 3] == s.height)
            ).sum()
        )
    assert touching >= 10, "some objects touch or overlap"
    assert cut >= 3, "some objects are cut by the image border"


def test_scene_size_range() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        w, h = scene_size(rng, 1600, 4000)
        assert 1600 <= w <= 4000 and 0.5 * w <= h <= w


def test_sprites_are_centred_for_every_class() -> None:
    rng = np.random.default_rng(0)
    for label in CLASSES:
        for length in (8, 30, 250):
            sprite = draw_sprite(label, length, 0.7, rng)
            assert sprite.mask.shape == sprite.rgb.shape[:2]
            assert sprite.mask[sprite.size // 2, sprite.size // 2]
            ys, xs = np.nonzero(sprite.mask)
            extent = max(xs.max() - xs.min(), ys.max() - ys.min()) + 1
            assert 0.6 * length <= extent <= 1.2 * length + 2
    with pytest.raises(ValueError):
        draw_sprite("submarine", 10, 0.0, rng)


def test_coco_rle_round_trip(scenes) -> None:
    scene = scenes[0]
    total = scene.width * scene.height
    for box, mask in zip(scene.boxes[:50], scene.masks[:50], strict=True):
        rle = coco_rle(mask, box, scene.width, scene.height)
        assert sum(rle["counts"]) == total and rle["size"] == [
            scene.height,
            scene.width,
        ]
        assert np.array_equal(decode_coco_rle(rle, box), mask)
    # Against a dense column-major encoding of a tiny image.
    mask = np.array([[True, False], [True, True]])
    full = np.zeros((3, 4), bool)
    full[1:3, 2:4] = mask
    flat = full.ravel(order="F").astype(int)
    dense = [len(list(g)) for g in np.split(flat, np.flatnonzero(np.diff(flat)) + 1)]
    assert coco_rle(mask, (2, 1, 4, 3), 4, 3)["counts"] == dense


def test_write_dataset_coco_json(tmp_path: Path) -> None:
    path = write_dataset(tmp_path, num_images=2, seed=5, min_width=800, max_width=1000)
    coco = json.loads(path.read_text())
    assert [c["name"] for c in coco["categories"]] == list(CLASSES)
    image_ids = {img["id"] for img in coco["images"]}
    assert len(image_ids) == 2
    ann_ids = [a["id"] for a in coco["annotations"]]
    assert len(ann_ids) == len(set(ann_ids)) > 20
    category_ids = {c["id"] for c in coco["categories"]}
    for img in coco["images"]:
        assert (tmp_path / img["file_name"]).is_file()
        assert 800 <= img["width"] <= 1000
    for ann in coco["annotations"]:
        assert ann["image_id"] in image_ids and ann["category_id"] in category_ids
        x, y, w, h = ann["bbox"]
        mask = decode_coco_rle(ann["segmentation"], (x, y, x + w, y + h))
        assert mask.shape == (h, w) and int(mask.sum()) == ann["area"] > 0
    # The same seed writes the same labels.
    again = write_dataset(
        tmp_path / "again", num_images=2, seed=5, min_width=800, max_width=1000
    )
    assert json.loads(again.read_text())["annotations"] == coco["annotations"]


def test_cli_writes_dataset(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    args = [
        str(out),
        "-n",
        "1",
        "--seed",
        "3",
        "--min-width",
        "640",
        "--max-width",
        "640",
    ]
    assert cli_main(args + ["--format", "png"]) == 0
    coco = json.loads((out / "coco.json").read_text())
    assert coco["images"][0]["width"] == 640
    assert coco["images"][0]["file_name"].endswith(".png")


def test_load_fiftyone_dataset(tmp_path: Path) -> None:
    from sliced_inference.synthetic import load_fiftyone_dataset

    write_dataset(tmp_path, num_images=2, seed=9, min_width=800, max_width=900)
    coco = json.loads((tmp_path / "coco.json").read_text())
    dataset = load_fiftyone_dataset(tmp_path, name="synthetic-test", overwrite=True)
    try:
        assert len(dataset) == 2
        assert dataset.count("ground_truth.detections") == len(coco["annotations"])
        assert dataset.default_classes == list(CLASSES)
        for sample in dataset:
            width, height = sample.metadata.width, sample.metadata.height
            for det in sample.ground_truth.detections:
                x, y, w, h = det.bounding_box
                x0, y0 = round(x * width), round(y * height)
                pw, ph = round(w * width), round(h * height)
                assert det.mask.shape == (ph, pw)
                assert det.mask.dtype == bool and det.mask.any()
                assert 0 <= x0 and x0 + pw <= width and 0 <= y0 and y0 + ph <= height
                assert det.label in CLASSES
        with pytest.raises(ValueError):
            load_fiftyone_dataset(tmp_path, name="synthetic-test")
    finally:
        dataset.delete()


# --- rotated objects (oriented scenes) --------------------------------------------


def test_oriented_scenes_are_deterministic_and_objects_lie_apart_inside() -> None:
    from shapely.geometry import Polygon

    a = generate_oriented_scene(7, 1400, 1000)
    b = generate_oriented_scene(7, 1400, 1000)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.rboxes, b.rboxes)
    assert not np.array_equal(a.image, generate_oriented_scene(8, 1400, 1000).image)
    corners = a.polygons
    assert corners.min() >= 1 and (corners.max(axis=(0, 1)) <= [1399, 999]).all()
    polygons = [Polygon(c) for c in corners]
    for i, p in enumerate(polygons):  # refused placements: no two objects touch
        assert not any(p.intersects(q) for q in polygons[i + 1 :])
    assert set(a.labels) == set(ORIENTED_CLASSES)
    aspect = a.rboxes[:, 2] / a.rboxes[:, 3]
    assert aspect.min() >= 1.0 and np.median(aspect) > 2
    assert (a.areas < 32**2).mean() > 0.8  # mostly small objects


def test_oriented_objects_are_drawn_where_their_boxes_say(tmp_path: Path) -> None:
    scene = generate_oriented_scene(3, 900, 700)
    for rbox in scene.rboxes[:20]:
        cx, cy, length, wide, angle = rbox
        inside = np.array([cx, cy]) + 0.3 * length * np.array(
            [np.cos(angle), np.sin(angle)]
        )
        outside = np.array([cx, cy]) + (0.5 * wide + 3) * np.array(
            [-np.sin(angle), np.cos(angle)]
        )
        ix, iy = (int(v) for v in inside)
        ox, oy = (int(v) for v in outside)
        colour_gap = np.abs(
            scene.image[iy, ix].astype(int) - scene.image[oy, ox].astype(int)
        ).sum()
        assert colour_gap > 40, rbox
    path = write_oriented_dataset(tmp_path, 1, 3, min_width=640, max_width=640)
    record = json.loads(path.read_text())
    assert record["classes"] == list(ORIENTED_CLASSES)
    assert {a["label"] for a in record["annotations"]} <= set(ORIENTED_CLASSES)
    assert cli_main([str(tmp_path / "cli"), "-n", "1", "--oriented"]) == 0
    assert (tmp_path / "cli" / "oriented.json").exists()
