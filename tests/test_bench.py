"""The benchmark runs end to end (a tiny version), and its AP50 evaluator is right.

Not a timed test: ``--quick`` runs one small image once, to prove the command
works; the numbers are in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import DET_MODEL, REPO_ROOT

from sliced_inference.bench.evaluate import SMALL_AREA, Instances, ap50


def _truth(boxes, classes, masks=None):
    boxes = np.asarray(boxes, float)
    mask_boxes = None if masks is None else boxes.astype(int)
    return Instances(boxes, classes, None, masks, mask_boxes)


def test_ap50_perfect_missing_and_false_positives() -> None:
    truth = _truth([[0, 0, 10, 10], [20, 20, 60, 60]], [0, 0])
    perfect = Instances(truth.boxes, [0, 0], [0.9, 0.8])
    assert ap50([truth], [perfect]) == pytest.approx(1.0)
    # One of two found: recall stops at 0.5 -> AP = 51 of 101 recall points.
    half = Instances(truth.boxes[:1], [0], [0.9])
    assert ap50([truth], [half]) == pytest.approx(51 / 101)
    # A false positive ranked first: precision 1/2 then 2/3; the interpolated
    # (monotone) precision is 2/3 at every recall.
    noisy = Instances([[100, 100, 110, 110], *truth.boxes], [0, 0, 0], [0.99, 0.9, 0.8])
    assert ap50([truth], [noisy]) == pytest.approx(2 / 3)
    # Wrong class: nothing matches.
    assert ap50([truth], [Instances(truth.boxes, [1, 1], [0.9, 0.8])]) == 0.0


def test_ap50_small_objects_ignore_the_large_ones() -> None:
    truth = _truth([[0, 0, 10, 10], [20, 20, 60, 60]], [0, 0])
    # Only the large object is found: small AP is 0, and the large match is ignored.
    found = Instances(truth.boxes[1:], [0], [0.9])
    assert ap50([truth], [found], area_range=(0, SMALL_AREA)) == 0.0
    assert np.isnan(
        ap50([_truth([[0, 0, 50, 50]], [0])], [found], area_range=(0, SMALL_AREA))
    )


def test_mask_ap50_uses_mask_overlap() -> None:
    full = np.ones((10, 10), bool)
    truth = _truth([[0, 0, 10, 10]], [0], [full])
    same = Instances([[0, 0, 10, 10]], [0], [0.9], [full], [[0, 0, 10, 10]])
    assert ap50([truth], [same], use_masks=True) == pytest.approx(1.0)
    # Same box, but the mask covers a third of it: box AP 1, mask AP 0.
    third = np.zeros((10, 10), bool)
    third[:, :3] = True
    thin = Instances([[0, 0, 10, 10]], [0], [0.9], [third], [[0, 0, 10, 10]])
    assert ap50([truth], [thin]) == pytest.approx(1.0)
    assert ap50([truth], [thin], use_masks=True) == 0.0


@pytest.mark.skipif(not DET_MODEL.is_file(), reason="bundled detection model missing")
def test_quick_benchmark_writes_a_report(tmp_path) -> None:
    pytest.importorskip("sahi")
    pytest.importorskip("supervision")
    out = tmp_path / "bench.md"
    docs = (REPO_ROOT / "docs" / "benchmarks.md").stat().st_mtime_ns
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--skip", "seg"]
        + ["--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = out.read_text()
    for heading in ("## Targets", "## Detection", "## GPU", "forward only"):
        assert heading in text
    assert "load during the run" in text and "CPU flags" in text
    raw = json.loads(out.with_suffix(".json").read_text())
    detection = raw["sections"][0]
    assert detection["task"] == "detection"
    rows = set(detection["runs"][0]["seconds"])
    assert {"ours", "ours-1stream", "ours-torch", "sdk", "sahi"} <= rows
    assert {"sahi-default", "sahi-openvino", "supervision", "forward only"} <= rows
    assert all(a["box_all"] == a["box_all"] for a in detection["accuracy"])  # not NaN
    # The docs are regenerated on purpose only (--docs), never by default.
    assert (REPO_ROOT / "docs" / "benchmarks.md").stat().st_mtime_ns == docs


def test_benchmark_wants_to_be_told_where_to_write() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "--out" in result.stderr
