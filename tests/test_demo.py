"""The README's demo command, end to end in its reduced size (``--quick``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import fiftyone as fo
import pytest
from conftest import REPO_ROOT

from sliced_inference import demo
from sliced_inference.evaluation import load_comparison


@pytest.fixture(scope="module")
def demo_output(session_dir: Path, det_model_path: Path, seg_model_path: Path) -> str:
    """Runs ``python -m sliced_inference.demo --quick`` in-process; its stdout."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = demo.main(
            [
                "--quick",
                "--dataset",
                "test-demo",
                "--data-dir",
                str(session_dir / "demo"),
            ]
        )
    assert code == 0
    return out.getvalue()


def test_demo_prints_the_comparison_and_how_to_open_the_app(demo_output: str) -> None:
    dataset = fo.load_dataset("test-demo")
    assert dataset.persistent and len(dataset) == 2
    for key, fields in {
        "si_cmp_baseline_sliced": ["baseline", "sliced"],
        "si_cmp_seg_baseline_seg_sliced": ["seg_baseline", "seg_sliced"],
    }.items():
        comparison = load_comparison(dataset, key)
        assert comparison.fields == fields
        assert comparison.to_table() in demo_output
    assert "fo.load_dataset('test-demo')" in demo_output
    assert "fiftyone app launch test-demo" in demo_output  # the CLI, full path


def test_demo_table_shows_sliced_beating_baseline_on_small_objects(
    demo_output: str,
) -> None:
    dataset = fo.load_dataset("test-demo")
    for key in ("si_cmp_baseline_sliced", "si_cmp_seg_baseline_seg_sliced"):
        comparison = load_comparison(dataset, key)
        base, sliced = comparison.runs
        assert sliced.by_size["small"].recall > base.by_size["small"].recall
        assert sliced.by_size["small"].AP50 > base.by_size["small"].AP50
        gain = comparison.differences()[0]["by_size"]["small"]["AP50"]
        assert gain > 0 and f"{gain:+.3f}" in demo_output  # printed in the size table
    seg = load_comparison(dataset, "si_cmp_seg_baseline_seg_sliced")
    assert {run.iou_type for run in seg.runs} == {"masks"}
    assert [run.seconds is not None for run in seg.runs] == [True, True]


def test_demo_command_is_the_documented_one() -> None:
    script = REPO_ROOT / "bin" / "demo"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert "bash bin/setup" in text
    assert ".venv/bin/python -m sliced_inference.demo" in text
    assert "bash bin/demo" in (REPO_ROOT / "README.md").read_text()


def test_demo_keeps_the_ultralytics_settings_banner_quiet(tmp_path: Path) -> None:
    # A fresh config dir: Ultralytics' first import creates its settings file
    # there and, unless told to be quiet, announces it over several lines.
    env = {**os.environ, "YOLO_CONFIG_DIR": str(tmp_path)}
    env.pop("YOLO_VERBOSE", None)
    code = "from sliced_inference import demo; demo._quiet_logs(); import ultralytics"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "Ultralytics" / "settings.json").is_file()
    assert "Settings" not in result.stdout + result.stderr
