"""End to end in the FiftyOne App: run sliced inference from its button, then compare.

The App server runs as a subprocess on loopback with this session's database
and plugins dir (``conftest``), on two generated images of about 1200 px.
Headless Chromium (Debian's, driven by Playwright) opens the dataset, clicks
"Run sliced inference" in the samples grid's actions, fills the form, runs it
immediately and waits for it; the new field must show in the App and hold
detections in the database. With a baseline run added by the SDK, the "Sliced
vs baseline" panel, opened from the "+" next to the Samples tab, must say there
is no comparison yet; its "Compare runs" button opens the compare form, and
once that runs the panel must show the runs with the stored numbers. Screenshots go to
``$SLICED_INFERENCE_ARTIFACTS/app`` (else a pytest temporary directory), and
every process the test started must be gone at the end.

Chromium is a system package: outside CI a missing one skips these tests (with
how to install it); in CI (``CI`` set) it fails them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import fiftyone as fo
import fiftyone.operators as foo
import pytest
from app_driver import (
    CHROMIUM_INSTALL_HINT,
    AppServer,
    chromium_candidate,
    chromium_page,
    chromium_processes,
    execute_form,
    find_chromium,
    form_input,
    open_dataset,
    open_operator,
    open_panel,
    pick_option,
    processes_matching,
    running,
    save_screenshot,
    screenshot_on_failure,
    sidebar_field,
)
from fiftyone.operators.delegated import DelegatedOperationService

import sliced_inference as si
from sliced_inference.evaluation import list_comparisons, load_comparison
from sliced_inference.evaluation.table import fmt
from sliced_inference.operators.compare_operator import PANEL_NAME
from sliced_inference.operators.compare_panel import MODEL_EVALUATION_PANEL
from sliced_inference.operators.find_settings import SWEEP_PANEL_NAME
from sliced_inference.synthetic import load_fiftyone_dataset, write_dataset

pytestmark = pytest.mark.slow

SLICED_URI = "@slicer/sliced-inference/run_sliced_inference"
SLICED_LABEL = "Run sliced inference"
PANEL_LABEL = "Sliced vs baseline"
COMPARE_LABEL = "Compare runs"  # the form's title
FIELD = "sliced_app"
SWEEP_URI = "@slicer/sliced-inference/find_slice_settings"
SWEEP_PANEL_LABEL = "Slice settings"
NUM_IMAGES = 2
#: Longest wait for an inference run started in the App (it loads the model
#: in the server process first; the 2-core CI machines are slow).
RUN_TIMEOUT_MS = 300_000


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's Chromium; missing, it fails the tests in CI and skips them elsewhere."""
    path = find_chromium()
    if path is None:
        message = (
            f"no Chromium at {chromium_candidate()} for the App tests: "
            f"{CHROMIUM_INSTALL_HINT}"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{message} (.ci/run installs it)", pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots and the server's log go."""
    root = os.environ.get("SLICED_INFERENCE_ARTIFACTS")
    path = Path(root) / "app" if root else tmp_path_factory.mktemp("app-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def app_dataset(session_dir: Path) -> Iterator[fo.Dataset]:
    """Two generated images of about 1200 px; persistent, so the server sees it."""
    root = session_dir / "app-data"
    write_dataset(root, num_images=NUM_IMAGES, seed=11, min_width=1200, max_width=1300)
    dataset = load_fiftyone_dataset(
        root, name="test-app", overwrite=True, persistent=True
    )
    yield dataset
    dataset.delete()


@pytest.fixture(scope="module")
def server(app_dataset: fo.Dataset, artifacts: Path) -> Iterator[AppServer]:
    """The App server; stopped (again, as a safety net) after the module's tests."""
    app = AppServer(log_path=artifacts / "app-server.log").start()
    yield app
    app.stop()


@pytest.fixture(scope="module")
def page(
    chromium: Path,
    server: AppServer,
    artifacts: Path,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Any]:
    """A headless Chromium page with a fresh profile."""
    capsys = request.config.pluginmanager.getplugin("capturemanager")
    with capsys.global_and_fixture_disabled():
        print(f"\n[app] screenshots and server log in {artifacts}")
    with chromium_page(chromium, tmp_path_factory.mktemp("chromium-profile")) as p:
        yield p


def test_sliced_inference_runs_from_the_app(
    page: Any,
    server: AppServer,
    app_dataset: fo.Dataset,
    det_model_path: Path,
    artifacts: Path,
) -> None:
    with screenshot_on_failure(page, artifacts / "failure-run-operator.png"):
        open_dataset(page, server, app_dataset.name, NUM_IMAGES)
        sidebar_field(page, "ground_truth").wait_for()
        assert not sidebar_field(page, FIELD).count()
        save_screenshot(page, artifacts / "01-dataset.png")

        dialog = open_operator(page, SLICED_URI, SLICED_LABEL)
        form_input(dialog, "Model").fill(str(det_model_path))
        output = form_input(dialog, "Output field")
        # The form is resolved by the plugin as it is filled: a taken field is refused.
        output.fill("ground_truth")
        problem = dialog.get_by_text("already exists", exact=False).first
        problem.wait_for()
        execute = dialog.get_by_role("button", name="Execute", exact=True)
        assert execute.is_disabled()
        output.fill(FIELD)
        problem.wait_for(state="hidden")
        form_input(dialog, "Slice size (px)").wait_for()  # the form grew: all valid
        save_screenshot(page, artifacts / "02-form.png")

        execute_form(dialog)
        page.get_by_text(
            f"{NUM_IMAGES} samples labelled in", exact=False
        ).first.wait_for(timeout=RUN_TIMEOUT_MS)
        # reload_dataset at the end of the run puts the new field in the sidebar
        sidebar_field(page, FIELD).wait_for()
        save_screenshot(page, artifacts / "03-after-run.png")
        done = page.get_by_role("button", name="Done", exact=True)
        if done.count():
            done.first.click()

    app_dataset.reload()
    assert app_dataset.has_field(FIELD), app_dataset.get_field_schema()
    assert app_dataset.get_field(FIELD).document_type is fo.Detections
    counts = [len(s[FIELD].detections) if s[FIELD] else 0 for s in app_dataset]
    assert len(counts) == NUM_IMAGES and all(n > 0 for n in counts), counts
    info = si.get_run_info(app_dataset, FIELD)
    assert (info["kind"], info["status"]) == ("sliced", "completed")
    assert info["model"] == str(det_model_path)  # the path typed in the form
    assert info["samples_processed"] == NUM_IMAGES


def test_comparison_panel_compares_and_shows_the_runs(
    page: Any,
    server: AppServer,
    app_dataset: fo.Dataset,
    det_model_path: Path,
    artifacts: Path,
) -> None:
    if not app_dataset.has_field(FIELD):
        pytest.fail("needs the App run of test_sliced_inference_runs_from_the_app")
    si.apply_baseline_model(app_dataset, str(det_model_path), "baseline")

    with screenshot_on_failure(page, artifacts / "failure-panel.png"):
        # The SDK changed the dataset behind the App's back: load it afresh.
        open_dataset(page, server, app_dataset.name, NUM_IMAGES)
        panel = open_panel(page, PANEL_NAME, PANEL_LABEL)
        panel.get_by_text("No comparison yet", exact=True).wait_for(timeout=120_000)
        panel.get_by_role("button", name="Compare runs").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_text(COMPARE_LABEL, exact=True).first.wait_for()
        pick_option(page, dialog, "Baseline predictions", "baseline")
        pick_option(page, dialog, "Compare with", FIELD)
        save_screenshot(page, artifacts / "04-compare-form.png")
        execute_form(dialog)
        # The panel reloads itself when the comparison succeeds: no page reload.
        panel.get_by_text("Metrics", exact=True).wait_for(timeout=RUN_TIMEOUT_MS)
        panel.locator(".js-plotly-plot").first.wait_for()
        # The run streamed its progress in a dialog; it ends with "Done".
        done = page.get_by_role("button", name="Done", exact=True)
        done.first.wait_for(timeout=RUN_TIMEOUT_MS)
        done.first.click()
        save_screenshot(page, artifacts / "05-comparison-panel.png")

        app_dataset.reload()  # the App's server process stored the comparison
        (key,) = list_comparisons(app_dataset)
        comparison = load_comparison(app_dataset, key)
        assert comparison.fields == ["baseline", FIELD]
        text = panel.inner_text()
        for expected in ("baseline", FIELD, "Δ vs baseline", "By object size"):
            assert expected in text, (expected, text)
        # Each run's row carries the numbers of the stored comparison.
        for run in comparison.runs:
            row = panel.get_by_role("row").filter(
                has=page.get_by_role("cell", name=run.field, exact=True)
            )
            cells = row.first.get_by_role("cell").all_inner_texts()
            assert fmt(run.overall.mAP) in cells, (run.field, cells)
            assert str(run.overall.tp) in cells, (run.field, cells)


def test_model_evaluation_opens_in_compare_mode_from_the_panel(
    page: Any, app_dataset: fo.Dataset, artifacts: Path
) -> None:
    """FiftyOne's own panel reads the evaluations compare_runs stored, both at once."""
    (key,) = list_comparisons(app_dataset)
    base, other = load_comparison(app_dataset, key).runs
    with screenshot_on_failure(page, artifacts / "failure-model-evaluation.png"):
        panel = page.locator(f'[data-cy="panel-content-{PANEL_NAME}"]')
        label = f"Model Evaluation: {base.field} vs {other.field}"
        panel.get_by_role("button", name=label).click()
        evaluation = page.locator(f'[data-cy="panel-content-{MODEL_EVALUATION_PANEL}"]')
        evaluation.wait_for(timeout=120_000)
        # Compare mode: both eval keys, and the metrics table of each.
        for text in (base.eval_key, other.eval_key):
            evaluation.get_by_text(text, exact=True).first.wait_for(timeout=120_000)
        evaluation.get_by_text("Precision", exact=False).first.wait_for()
        save_screenshot(page, artifacts / "06-model-evaluation-compare.png")
        text = evaluation.inner_text()
    assert "error" not in text.lower(), text
    results = app_dataset.load_evaluation_results(other.eval_key)
    assert results.mAP() == pytest.approx(other.overall.mAP)


def test_sweep_runs_delegated_and_its_panel_runs_the_recommendation(
    page: Any,
    server: AppServer,
    app_dataset: fo.Dataset,
    det_model_path: Path,
    artifacts: Path,
) -> None:
    """find_slice_settings queued and run by the delegated service; the panel shows
    it, and its button opens the sliced-inference form filled with the recommendation."""
    operator = foo.get_operator(SWEEP_URI)
    # Playwright's sync API runs an event loop in this thread, where FiftyOne
    # returns tasks instead of results: queue and run from a plain thread.
    queued = _in_thread(
        operator,
        app_dataset,
        str(det_model_path),
        "ground_truth",
        delegate=True,
        num_samples=1,
        slice_sizes=[320, 640],
        overlaps=[0.2],
        full_image_pass="without",
        merges=["provenance"],
    )
    assert queued.delegated
    (done,) = _in_thread(
        DelegatedOperationService().execute_queued_operations,
        operator=SWEEP_URI,
        dataset_name=app_dataset.name,
    )
    assert done.error is None, done.error
    sweep = si.load_sweep(app_dataset)
    best = sweep.recommendation.params
    output = f"sliced_{best['slice_wh']}"

    with screenshot_on_failure(page, artifacts / "failure-sweep.png"):
        open_dataset(page, server, app_dataset.name, NUM_IMAGES)
        panel = open_panel(page, SWEEP_PANEL_NAME, SWEEP_PANEL_LABEL)
        panel.get_by_text("Slice settings sweep", exact=True).wait_for(timeout=120_000)
        save_screenshot(page, artifacts / "07-sweep-panel.png")
        text = panel.inner_text()
        assert "Recommended:" in text and "AP50 against the ground truth" in text
        rows = panel.get_by_role("row").filter(has_text="provenance")
        assert rows.count() == len(sweep.points)
        panel.get_by_role(
            "button", name="Run the recommended setting on the whole dataset"
        ).click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_text(SLICED_LABEL, exact=True).first.wait_for()
        form_input(dialog, "Slice size (px)").wait_for()
        assert form_input(dialog, "Output field").input_value() == output
        assert form_input(dialog, "Slice size (px)").input_value() == str(
            best["slice_wh"]
        )
        save_screenshot(page, artifacts / "08-run-recommended-form.png")
        execute_form(dialog)
        page.get_by_text(
            f"{NUM_IMAGES} samples labelled in", exact=False
        ).first.wait_for(timeout=RUN_TIMEOUT_MS)

    app_dataset.reload()
    info = si.get_run_info(app_dataset, output)
    assert info["samples_processed"] == NUM_IMAGES  # the whole dataset
    settings = info["settings"]
    assert settings["slice_wh"] == [best["slice_wh"]] * 2
    assert settings["overlap"] == best["overlap"]
    assert settings["merge"]["strategy"] == best["merge"]


def _in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def test_every_started_process_is_stopped(page: Any, server: AppServer) -> None:
    assert chromium_processes(), "the browser should be running here"
    page.context.close()
    assert not chromium_processes()

    # The server, plus FiftyOne's database service if it started one (it
    # attaches to the one this process uses when there is one).
    procs = server.track()
    survivors = server.stop()
    assert not survivors, f"still running after one SIGTERM: {survivors}"
    assert not running(procs)
    assert not processes_matching("fiftyone.server.main", f"--port {server.port}")
