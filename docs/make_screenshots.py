"""Re-makes the README's screenshots: the "Run sliced inference" form and the comparison panel.

It generates 4 images of about 2000 px, runs the bundled detection model on
whole images (``baseline``) and on 640 px tiles (``sliced``), compares both
with ``compare_runs``, then opens the FiftyOne App as a person does (the App
server on loopback, Debian's Chromium headless). It opens the "Run sliced
inference" form from its button above the grid, fills the output field and
saves the form (``docs/images/sliced-inference-form.png``); then it opens the
"Sliced vs baseline" panel from the "+" next to the Samples tab, widens it and
saves it (``docs/images/comparison-panel.png``). The App is driven by the same helpers as ``tests/test_app.py``
(``tests/app_driver.py``), and FiftyOne runs in the test suite's isolated
set-up (``tests/conftest.py``: a database and plugins dir of its own), so
your datasets are not touched.

Needs the project's environment (``bash bin/setup``) and Chromium
(``apt-get install -y chromium``). Takes about a minute on 2 CPU cores.

Usage::

    .venv/bin/python docs/make_screenshots.py [--out-dir docs/images]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTS_DIR = REPO_ROOT / "tests"
DEFAULT_OUT_DIR = REPO_ROOT / "docs" / "images"
PANEL_PNG = "comparison-panel.png"
FORM_PNG = "sliced-inference-form.png"
SLICED_URI = "@slicer/sliced-inference/run_sliced_inference"
SLICED_LABEL = "Run sliced inference"
#: The output field typed into the form (the README's operator example).
FORM_FIELD = "sliced_512"
DATASET = "sliced-inference-screenshots"
PANEL_NAME = "sliced_inference_comparison"
PANEL_LABEL = "Sliced vs baseline"
NUM_IMAGES = 4
#: Tall enough for the panel's summary, metrics table and plot at once.
VIEWPORT = {"width": 1400, "height": 980}
#: Where the divider between the samples grid and the panel is dragged to (px).
DIVIDER_X = 430


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The script's command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out-dir", type=Path, default=DEFAULT_OUT_DIR, help="where the PNGs go"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the generated images"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Prepares the comparison, drives the App, writes the PNG; returns an exit code."""
    args = parse_args(argv)
    out_dir = args.out_dir.resolve()
    # conftest sets FiftyOne's environment (its own database, the plugin in a
    # plugins dir) on import: it must come before anything imports FiftyOne.
    sys.path.insert(0, str(TESTS_DIR))
    import conftest
    from app_driver import (
        CHROMIUM_INSTALL_HINT,
        AppServer,
        chromium_page,
        find_chromium,
        open_dataset,
        open_panel,
        save_screenshot,
        widen_right_space,
    )

    import sliced_inference as si
    from sliced_inference.synthetic import load_fiftyone_dataset, write_dataset

    chromium = find_chromium()
    if chromium is None:
        print(f"no Chromium: {CHROMIUM_INSTALL_HINT}", file=sys.stderr)
        return 1

    work = Path(tempfile.mkdtemp(prefix="sliced-inference-screenshots-"))
    model = str(conftest.DET_MODEL)
    write_dataset(
        work / "data",
        num_images=NUM_IMAGES,
        seed=args.seed,
        min_width=1900,
        max_width=2100,
    )
    dataset = load_fiftyone_dataset(
        work / "data", name=DATASET, overwrite=True, persistent=True
    )
    try:
        si.apply_baseline_model(dataset, model, "baseline")
        si.apply_sliced_model(dataset, model, "sliced", slice_wh=640)
        print(si.compare_runs(dataset, "ground_truth", ["baseline", "sliced"]))

        server = AppServer(log_path=work / "app-server.log").start()
        try:
            with chromium_page(chromium, work / "profile", VIEWPORT) as page:
                open_dataset(page, server, DATASET, NUM_IMAGES)
                shoot_form(page, out_dir / FORM_PNG)
                panel = open_panel(page, PANEL_NAME, PANEL_LABEL)
                panel.get_by_text("Metrics", exact=True).wait_for(timeout=120_000)
                widen_right_space(page, DIVIDER_X)
                panel.locator(".js-plotly-plot").first.wait_for()
                # plotly redraws after the resize; let it settle before the shot
                page.wait_for_timeout(2000)
                save_screenshot(page, out_dir / PANEL_PNG)
        finally:
            survivors = server.stop()
        if survivors:
            print(f"killed processes the App server left: {survivors}")
    finally:
        dataset.delete()
    for name in (FORM_PNG, PANEL_PNG):
        size_kb = (out_dir / name).stat().st_size / 1024
        print(f"wrote {out_dir / name} ({size_kb:.0f} KB)")
    print(f"server log and data in {work}")
    return 0


def shoot_form(page: Any, path: Path) -> None:
    """Opens the "Run sliced inference" form, fills the output field, saves it, closes it."""
    from app_driver import form_input, open_operator  # on sys.path once main() ran

    dialog = open_operator(page, SLICED_URI, SLICED_LABEL)
    form_input(dialog, "Output field").fill(FORM_FIELD)
    # The form grows once target, model and field are valid.
    form_input(dialog, "Slice size (px)").wait_for()
    page.wait_for_timeout(1000)
    path.parent.mkdir(parents=True, exist_ok=True)
    dialog.screenshot(path=str(path))
    print(f"[app] screenshot: {path}", file=sys.stderr)
    dialog.get_by_role("button", name="Cancel", exact=True).click()
    dialog.wait_for(state="hidden")


if __name__ == "__main__":
    sys.exit(main())
