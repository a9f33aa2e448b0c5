"""The OpenVINO backend: agreement with PyTorch, the export cache, fallbacks, records.

The bundled detector and segmenter run on generated scenes through both
backends (the same tiles, pre- and post-processing); the export cache is
checked for reuse, repair and concurrent builds; OpenVINO's absence is
simulated in a fresh interpreter (``sys.modules["openvino"] = None``), the way
Python reports an optional package that is not installed.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT

import sliced_inference as si
from sliced_inference.bench.evaluate import Instances, agreement, ap50
from sliced_inference.bench.scenes import BenchImage, generate
from sliced_inference.sdk import LabelFieldError, cached_model
from sliced_inference.slicer import (
    ConfigError,
    ModelLoadError,
    ModelOptions,
    SliceOptions,
    calibrate,
    load_model,
    predict_sliced,
)
from sliced_inference.slicer.models import openvino_network
from sliced_inference.slicer.models.export_cache import CACHE_ENV, entry_problem
from sliced_inference.synthetic import load_fiftyone_dataset, write_dataset

OPTIONS = SliceOptions(slice_wh=640, overlap=0.2)


def _scenes(model_path: Path, count: int, **options: float) -> list[BenchImage]:
    names = load_model(model_path, device="cpu", backend="torch").class_names
    return [generate(4000 + i, 1600, 1200, names, **options) for i in range(count)]


def _predict(model, scenes: list[BenchImage]) -> list[Instances]:
    out = []
    for scene in scenes:
        p = predict_sliced(scene.image, model, OPTIONS)
        out.append(Instances(p.boxes, p.class_ids, p.scores, p.masks, p.mask_boxes))
    return out


@pytest.mark.parametrize("task", ["detect", "segment"])
def test_openvino_agrees_with_pytorch(
    task: str, det_model_path: Path, seg_model_path: Path
) -> None:
    path = det_model_path if task == "detect" else seg_model_path
    scenes = _scenes(path, 3) if task == "detect" else _scenes(path, 2, density=100.0)
    torch_model = load_model(path, device="cpu", backend="torch")
    ov_model = load_model(path, device="cpu", backend="openvino")
    assert (torch_model.backend, ov_model.backend) == ("torch", "openvino")
    assert ov_model.precision == "fp32"
    reference, ours = _predict(torch_model, scenes), _predict(ov_model, scenes)

    assert min(len(a) for a in reference) > 30
    close = agreement(reference, ours)
    assert close.count_change <= 0.01 and close.unpaired <= 0.01
    assert close.box_iou >= 0.99 and close.score_diff <= 0.01
    masks = task == "segment"
    assert all((o.masks is not None) == masks for o in ours)
    assert close.mask_iou >= 0.98  # 1.0 without masks
    truths = [s.truth for s in scenes]
    assert abs(ap50(truths, ours) - ap50(truths, reference)) <= 0.005
    if masks:
        mask_ap = ap50(truths, ours, use_masks=True)
        assert abs(mask_ap - ap50(truths, reference, use_masks=True)) <= 0.005


def test_second_load_reuses_the_export_and_broken_files_are_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog, det_model_path: Path
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    first = load_model(det_model_path, device="cpu")
    folder = first.network.folder
    assert folder.parent == tmp_path / "openvino"
    assert {p.suffix for p in folder.iterdir()} >= {".xml", ".bin", ".yaml", ".json"}
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}

    second = load_model(det_model_path, device="cpu")
    assert second.network.folder == folder
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps
    assert list(folder.parent.iterdir()) == [folder]  # no second entry, no leftovers

    weights = next(folder.glob("*.bin"))
    size = weights.stat().st_size
    os.truncate(weights, size // 2)
    assert "bytes, expected" in entry_problem(folder)
    with caplog.at_level(logging.WARNING):
        third = load_model(det_model_path, device="cpu")
    assert "rebuilding cache entry" in caplog.text
    assert weights.stat().st_size == size and entry_problem(folder) is None
    tile = _scenes(det_model_path, 1)[0].image[:640, :640]
    before = first.predict_tiles([tile])[0]
    after = third.predict_tiles([tile])[0]
    assert len(after) == len(before) > 0
    np.testing.assert_allclose(after.boxes, before.boxes, atol=1e-3)


_BUILD_AT_ONCE = """
import os, sys, time
from pathlib import Path
from sliced_inference.slicer.models.export_cache import cached_entry

def build(folder: Path) -> None:
    (folder / "model.bin").write_bytes(os.urandom(1 << 20))
    time.sleep(1.0)  # both workers are building now
    (folder / "model.xml").write_text(str(os.getpid()))

print(cached_entry("race", {"model": "same"}, build))
"""


def test_two_workers_building_one_entry_at_once_leave_it_whole(
    tmp_path: Path,
) -> None:
    env = {**os.environ, CACHE_ENV: str(tmp_path)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _BUILD_AT_ONCE],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=120)[0].strip() for w in workers]
    assert [w.returncode for w in workers] == [0, 0]
    assert outputs[0] == outputs[1]
    entry = Path(outputs[0])
    assert entry_problem(entry) is None
    assert int((entry / "model.xml").read_text()) in {w.pid for w in workers}
    assert list((tmp_path / "race").iterdir()) == [entry]


_WITHOUT_OPENVINO = """
import json, logging, sys
sys.modules["openvino"] = None  # as if the package were not installed
logging.basicConfig(level=logging.WARNING)
warnings = []
logging.getLogger("sliced_inference").addHandler(
    type("H", (logging.Handler,), {"emit": lambda self, r: warnings.append(r.getMessage())})()
)
import sliced_inference as si
from sliced_inference.slicer import ModelLoadError, load_model
from sliced_inference.synthetic import load_fiftyone_dataset

model = load_model(sys.argv[1], device="cpu")
again = load_model(sys.argv[1], device="cpu")
try:
    load_model(sys.argv[1], device="cpu", backend="openvino")
    error = None
except ModelLoadError as e:
    error = str(e)
dataset = load_fiftyone_dataset(sys.argv[2], name="no-openvino", overwrite=True)
si.apply_sliced_model(dataset, sys.argv[1], "sliced")
print(json.dumps({
    "backends": [model.backend, again.backend],
    "warnings": warnings,
    "error": error,
    "record": si.get_run_info(dataset, "sliced"),
}))
"""


@pytest.fixture(scope="module")
def small_dataset_dir(session_dir: Path) -> Path:
    root = session_dir / "openvino-data"
    write_dataset(root, num_images=2, seed=21, min_width=1200, max_width=1300)
    return root


def test_without_openvino_auto_falls_back_and_openvino_is_refused(
    det_model_path: Path, small_dataset_dir: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_OPENVINO, str(det_model_path)]
        + [str(small_dataset_dir)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backends"] == ["torch", "torch"]
    fallbacks = [w for w in report["warnings"] if "OpenVINO" in w]
    assert len(fallbacks) == 1 and "not installed" in fallbacks[0]
    assert "openvino package is not installed" in report["error"]
    assert _ran(report["record"]) == {
        "backend": "torch",
        "precision": "fp32",
        "device": "cpu",
    }
    assert report["record"]["settings_ignored"] == {}


def test_run_record_names_what_ran(
    det_model_path: Path, small_dataset_dir: Path
) -> None:
    dataset = load_fiftyone_dataset(small_dataset_dir, name="ov-record", overwrite=True)
    si.apply_sliced_model(dataset, str(det_model_path), "auto")
    si.apply_baseline_model(dataset, str(det_model_path), "torch", backend="torch")
    auto, torch = (si.get_run_info(dataset, f) for f in ("auto", "torch"))
    assert _ran(auto) == {
        "backend": "openvino",
        "precision": "fp32",
        "device": "cpu",
    }
    assert _ran(torch) == {"backend": "torch", "precision": "fp32", "device": "cpu"}
    assert auto["settings_ignored"] == torch["settings_ignored"] == {}
    assert (
        dataset.count("auto.detections") > 0 and dataset.count("torch.detections") > 0
    )


def test_int8_calibrates_on_the_runs_first_tiles(
    det_model_path: Path, small_dataset_dir: Path
) -> None:
    dataset = load_fiftyone_dataset(small_dataset_dir, name="ov-int8", overwrite=True)
    summary = si.apply_sliced_model(
        dataset, str(det_model_path), "int8", precision="int8", calibration_tiles=3
    )
    info = si.get_run_info(dataset, "int8")
    assert _ran(info) == {
        "backend": "openvino",
        "precision": "int8",
        "device": "cpu",
    }
    assert summary.processed == 2 and summary.num_detections > 0
    model = cached_model(
        str(det_model_path), ModelOptions(precision="int8", calibration_tiles=3)
    )
    manifest = json.loads((model.network.folder / "manifest.json").read_text())
    assert manifest["key"]["precision"] == "int8"
    assert manifest["key"]["calibration_tiles"] == 3


def test_bf16_runs_where_the_cpu_has_it_and_keeps_the_accuracy(
    det_model_path: Path, small_dataset_dir: Path
) -> None:
    native = openvino_network.cpu_has_bf16()
    expected = "bf16" if native else "fp32"  # float32 (and a warning) elsewhere
    model = load_model(det_model_path, device="cpu", precision="bf16")
    assert model.precision == expected == model.runtime.applied["precision"]
    # Eight scenes (636 objects): on three, one object more or less found
    # moves AP50 by about 0.005 either way.
    scenes = _scenes(det_model_path, 8)
    torch_model = load_model(det_model_path, device="cpu", backend="torch")
    reference, ours = _predict(torch_model, scenes), _predict(model, scenes)
    truths = [s.truth for s in scenes]
    # Not the same numbers as PyTorch (scores move by up to about 0.2 on
    # borderline objects), but the same accuracy and about as many objects.
    assert abs(ap50(truths, ours) - ap50(truths, reference)) <= 0.005
    found, before = sum(map(len, ours)), sum(map(len, reference))
    assert abs(found - before) <= 0.02 * before
    if native:
        assert agreement(reference, ours).score_diff > 0  # bfloat16 did run

    dataset = load_fiftyone_dataset(small_dataset_dir, name="ov-bf16", overwrite=True)
    si.apply_sliced_model(dataset, str(det_model_path), "bf16", precision="bf16")
    assert _ran(si.get_run_info(dataset, "bf16"))["precision"] == expected


def test_a_resume_may_change_the_backend_but_not_the_precision(
    det_model_path: Path, small_dataset_dir: Path
) -> None:
    dataset = load_fiftyone_dataset(small_dataset_dir, name="ov-resume", overwrite=True)
    path = str(det_model_path)
    si.apply_sliced_model(dataset.limit(1), path, "resumed", backend="torch")
    # Another precision makes other labels: refused, before it quantizes.
    with pytest.raises(LabelFieldError, match="precision: 'fp32' -> 'int8'"):
        si.apply_sliced_model(
            dataset,
            path,
            "resumed",
            skip_existing=True,
            precision="int8",
            calibration_tiles=2,
        )
    int8 = cached_model(path, ModelOptions(precision="int8", calibration_tiles=2))
    assert int8.needs_calibration
    # OpenVINO FP32 (auto on this CPU) makes PyTorch's labels: it may resume.
    summary = si.apply_sliced_model(dataset, path, "resumed", skip_existing=True)
    info = si.get_run_info(dataset, "resumed")
    assert summary.processed == len(dataset) - 1
    assert info["status"] == "completed" and len(info["run_ids"]) == 2
    assert not info["mixed_settings"]


def test_openvino_and_int8_refuse_what_they_cannot_run(tiny_detr_dir: Path) -> None:
    with pytest.raises(ConfigError, match="Ultralytics YOLO models only"):
        load_model(tiny_detr_dir, backend="openvino")
    with pytest.raises(ConfigError, match="int8"):
        load_model(tiny_detr_dir, precision="int8")
    with pytest.raises(ConfigError, match="backend must be one of"):
        ModelOptions(backend="tensorrt")
    with pytest.raises(ConfigError, match="OpenVINO backend"):
        ModelOptions(backend="torch", precision="int8")
    with pytest.raises(ConfigError, match="'bf16' runs on the OpenVINO backend"):
        ModelOptions(backend="torch", precision="bf16")
    with pytest.raises(ConfigError, match="'bf16' runs Ultralytics YOLO models only"):
        load_model(tiny_detr_dir, precision="bf16")


def _ran(record: dict) -> dict:
    """What a run record says ran: its backend, precision and device."""
    return {k: record["settings"][k] for k in ("backend", "precision", "device")}


def test_oriented_box_models_run_on_torch(tmp_path: Path) -> None:
    obb = REPO_ROOT / "models" / "small-objects-obb.pt"
    model = load_model(obb, device="cpu")  # backend "auto"
    assert model.runtime.applied["backend"] == "torch" and model.rotated
    scene = np.full((320, 320, 3), 90, np.uint8)
    assert predict_sliced(scene, model, slice_wh=320).rboxes.shape[1] == 5
    with pytest.raises(ModelLoadError, match="OBBModel"):
        load_model(obb, device="cpu", backend="openvino")
    with pytest.raises(ConfigError, match="int8"):
        load_model(obb, device="cpu", precision="int8")


def test_int8_calibrates_on_tiles_of_a_windowed_tiff(
    det_model_path: Path,
    tmp_path: Path,
    capfd: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tifffile

    names = load_model(det_model_path, device="cpu", backend="torch").class_names
    scene = generate(4100, 900, 700, names)
    path = tmp_path / "scene.tif"
    tifffile.imwrite(path, scene.image, tile=(256, 256), photometric="rgb")
    model = load_model(det_model_path, precision="int8", calibration_tiles=2)
    assert model.needs_calibration
    calibrate(model, [tmp_path / "unreadable.tif", path], SliceOptions(slice_wh=320))
    assert not model.needs_calibration
    # NNCF's per-op INFO lines and progress bars stay out of the user's console.
    assert "nncf" not in capfd.readouterr().out.lower()

    # The same first tiles again (a re-run): the network they made is kept,
    # without looking the quantized model up (and hashing the weights) again.
    network, lookups = model.network, []
    real = openvino_network.quantized_dir
    monkeypatch.setattr(
        openvino_network,
        "quantized_dir",
        lambda *args: lookups.append(args) or real(*args),
    )
    calibrate(model, [path], SliceOptions(slice_wh=320))
    assert model.network is network and lookups == []
    calibrate(model, [path], SliceOptions(slice_wh=320, overlap=0.5))  # other tiles
    assert len(lookups) == 1 and model.network is not network
    manifest = json.loads((model.network.folder / "manifest.json").read_text())
    assert manifest["key"]["calibration_tiles"] == 2
    assert model.runtime.applied["precision"] == "int8"
    assert len(predict_sliced(path, model, slice_wh=320)) > 0
