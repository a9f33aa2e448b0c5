"""Test session set-up: a database of its own, offline model hubs, the plugin on the plugins path.

The environment is set at import time, before anything imports FiftyOne, because
FiftyOne reads it once on import.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="sliced-inference-tests-"))

os.environ["FIFTYONE_DATABASE_NAME"] = f"sliced_inference_test_{uuid.uuid4().hex[:10]}"
os.environ["FIFTYONE_DATABASE_DIR"] = str(_SESSION_DIR / "db")
os.environ["FIFTYONE_DATABASE_VALIDATION"] = "false"
os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"
os.environ["FIFTYONE_SHOW_PROGRESS_BARS"] = "false"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["YOLO_OFFLINE"] = "1"
# OpenVINO exports of the bundled models go to the session's own cache.
os.environ["SLICED_INFERENCE_CACHE"] = str(_SESSION_DIR / "export-cache")

# The plugin is found the way users install it: a link in the plugins dir.
_PLUGINS_DIR = _SESSION_DIR / "plugins"
_PLUGINS_DIR.mkdir()
(_PLUGINS_DIR / "sliced-inference").symlink_to(REPO_ROOT, target_is_directory=True)
os.environ["FIFTYONE_PLUGINS_DIR"] = str(_PLUGINS_DIR)

#: The App tests (headless Chromium): a skip is easy to miss in a long run.
APP_TESTS = "test_app.py"
#: Set by ``.ci/run``: the session fails unless every App test ran and passed.
REQUIRE_APP_TESTS = "SLICED_INFERENCE_REQUIRE_APP_TESTS"
_app_results: dict[str, list[pytest.TestReport]] = {"passed": [], "skipped": []}

DET_MODEL = REPO_ROOT / "models" / "small-objects-det.pt"
SEG_MODEL = REPO_ROOT / "models" / "small-objects-seg.pt"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Notes which App tests passed and which were skipped."""
    if report.nodeid.split("::")[0].endswith(APP_TESTS):
        if report.skipped:
            _app_results["skipped"].append(report)
        elif report.passed and report.when == "call":
            _app_results["passed"].append(report)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fails the session when App tests were required but did not all run."""
    required = os.environ.get(REQUIRE_APP_TESTS)
    if required and (_app_results["skipped"] or not _app_results["passed"]):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    """Says last, after pytest's own summary, that App tests did not run."""
    skipped = _app_results["skipped"]
    required = os.environ.get(REQUIRE_APP_TESTS)
    write = config.pluginmanager.get_plugin("terminalreporter")
    if write is None or not (skipped or (required and not _app_results["passed"])):
        return
    title = (
        f"{len(skipped)} App tests SKIPPED" if skipped else "the App tests did not run"
    )
    write.write_sep("!", title, red=True, bold=True)
    reasons = {
        r.longrepr[2] if isinstance(r.longrepr, tuple) else str(r.longrepr)
        for r in skipped
    }
    for reason in sorted(reasons):
        write.write_line(f"  {reason}", red=True)
    write.write_line(
        "  The App is not tested by this run (tests/test_app.py, headless "
        "Chromium); to run it: apt-get install -y chromium chromium-driver",
        red=True,
    )
    if required:
        write.write_line(
            f"  {REQUIRE_APP_TESTS} is set (.ci/run): this run FAILS.", red=True
        )


@pytest.fixture(scope="session")
def session_dir() -> Path:
    """A temporary directory shared by the whole test session."""
    return _SESSION_DIR


@pytest.fixture(scope="session")
def det_model_path() -> Path:
    """The bundled small-object detection model."""
    assert DET_MODEL.is_file(), f"bundled model missing: {DET_MODEL}"
    return DET_MODEL


@pytest.fixture(scope="session")
def seg_model_path() -> Path:
    """The bundled small-object segmentation model."""
    assert SEG_MODEL.is_file(), f"bundled model missing: {SEG_MODEL}"
    return SEG_MODEL


@pytest.fixture(scope="session")
def tiny_detr_dir(session_dir: Path) -> Path:
    """A real (randomly initialised) DETR detector saved with ``save_pretrained``."""
    from transformers import DetrConfig, DetrForObjectDetection, DetrImageProcessor

    path = session_dir / "tiny-detr"
    if not path.exists():
        config = DetrConfig(
            use_timm_backbone=False,
            use_pretrained_backbone=False,
            backbone_config={
                "model_type": "resnet",
                "hidden_sizes": [8, 8, 16, 16],
                "embedding_size": 8,
                "depths": [1, 1, 1, 1],
                "out_features": ["stage4"],
            },
            d_model=16,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
            num_queries=20,
            id2label={0: "car", 1: "truck"},
            label2id={"car": 0, "truck": 1},
        )
        DetrForObjectDetection(config).save_pretrained(path)
        DetrImageProcessor(
            size={"shortest_edge": 128, "longest_edge": 128}
        ).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_mask2former_dir(session_dir: Path) -> Path:
    """A real (randomly initialised) Mask2Former instance segmenter, built offline."""
    import torch
    from transformers import (
        Mask2FormerConfig,
        Mask2FormerForUniversalSegmentation,
        Mask2FormerImageProcessor,
        SwinConfig,
    )

    path = session_dir / "tiny-mask2former"
    if not path.exists():
        backbone = SwinConfig(
            embed_dim=16,
            depths=[1, 1, 1, 1],
            num_heads=[1, 1, 1, 1],
            window_size=4,
            out_features=["stage1", "stage2", "stage3", "stage4"],
        )
        config = Mask2FormerConfig(
            backbone_config=backbone,
            use_pretrained_backbone=False,
            # The pixel decoder's GroupNorm has 32 groups: 32 channels at least.
            hidden_dim=32,
            feature_size=32,
            mask_feature_size=32,
            encoder_feedforward_dim=32,
            dim_feedforward=32,
            encoder_layers=1,
            decoder_layers=2,
            num_attention_heads=2,
            num_queries=10,
            id2label={0: "car", 1: "truck"},
            label2id={"car": 0, "truck": 1},
        )
        torch.manual_seed(0)  # the same random weights every session
        Mask2FormerForUniversalSegmentation(config).save_pretrained(path)
        Mask2FormerImageProcessor(
            size={"shortest_edge": 128, "longest_edge": 128}
        ).save_pretrained(path)
    return path
