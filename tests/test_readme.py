"""The README is what is tested: its blocks run top to bottom, its table and messages are true.

- ``test_readme_runs_top_to_bottom`` runs the README with ``readme_runner``
  (see its docstring for which blocks run and how they are marked) in a fresh
  process: ``HOME`` is an empty temporary directory (so ``~/...`` lands there
  and FiftyOne's plugins dir does not exist yet, as on a fresh machine), the
  database is a new one on this session's MongoDB, and ``PATH`` starts with this
  interpreter's directory, as an activated virtual environment's does. Its
  delegated runs are queued from the repository root with a relative model
  path and completed by a worker started in another directory.
- The options table must be what ``docs/options_table.py`` renders from the
  settings' declarations.
- Every message under "Troubleshooting" is produced here, and must read as the
  README shows it.
- The package docstring's example runs.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import fiftyone as fo
import fiftyone.operators as foo
import pytest
from conftest import REPO_ROOT

import sliced_inference as si
from sliced_inference.sdk import LabelFieldError
from sliced_inference.synthetic import load_fiftyone_dataset, write_dataset

sys.path.insert(0, str(REPO_ROOT / "tests"))
import readme_runner  # noqa: E402

README = REPO_ROOT / "README.md"
SLICED = "@slicer/sliced-inference/run_sliced_inference"
COMPARE = "@slicer/sliced-inference/compare_runs"
#: Python blocks the README may leave out (what needs a GPU or a browser).
#: Keep it small: a block that cannot run here is a block no test checks.
MAX_SKIPPED_PYTHON_BLOCKS = 3


def _load_options_table():
    spec = importlib.util.spec_from_file_location(
        "options_table", REPO_ROOT / "docs" / "options_table.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_readme_runs_top_to_bottom(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "FIFTYONE_DATABASE_NAME": os.environ["FIFTYONE_DATABASE_NAME"] + "_readme",
    }
    env.pop("FIFTYONE_PLUGINS_DIR")  # the README links the plugin itself
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tests" / "readme_runner.py"), str(README)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    print(result.stdout[-6000:])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-8000:]
    blocks = readme_runner.parse_blocks(README.read_text())
    ran = readme_runner.to_run(blocks)
    assert result.stdout.count("  ok in ") == len(ran)
    assert "  worker ran from " in result.stdout  # a delegated run completed there
    # The README's link step made the plugins dir and the README removed the link.
    plugins_dir = home / "fiftyone" / "__plugins__"
    assert plugins_dir.is_dir() and not (plugins_dir / "sliced-inference").exists()


def test_every_block_is_run_or_skipped_on_purpose() -> None:
    blocks = readme_runner.parse_blocks(README.read_text())
    assert not readme_runner.marker_problems(blocks)
    skipped = [b for b in blocks if b.language == "python" and b.marker == "skip"]
    assert len(skipped) <= MAX_SKIPPED_PYTHON_BLOCKS, [
        f"{b.where}: {b.reason}" for b in skipped
    ]
    languages = {b.language for b in readme_runner.to_run(blocks)}
    assert languages == {"python", "bash"}


def test_markers_decide_what_runs() -> None:
    text = "\n".join(
        [
            "```python",
            "a = 1",
            "```",
            "<!-- readme-test: skip needs a GPU -->",
            "```python",
            "b = 2",
            "```",
            "```bash",
            "rm -rf /",
            "```",
            "<!-- readme-test: run -->",
            "```bash",
            "ls",
            "```",
            "```text",
            "output",
            "```",
        ]
    )
    blocks = readme_runner.parse_blocks(text)
    assert [(b.language, b.marker, b.line) for b in blocks] == [
        ("python", "", 2),
        ("python", "skip", 6),
        ("bash", "", 9),
        ("bash", "run", 13),
        ("text", "", 16),
    ]
    assert [b.code for b in readme_runner.to_run(blocks)] == ["a = 1\n", "ls\n"]
    (problem,) = readme_runner.marker_problems(blocks)
    assert problem.startswith("README.md:9: bash block without a marker")


def test_options_table_matches_the_settings() -> None:
    options_table = _load_options_table()
    table = options_table.readme_table(README.read_text())
    assert table is not None, "README.md lost its options-table markers"
    assert table == options_table.render_options_table(), (
        "the README's options table is out of date: run "
        "`python docs/options_table.py --write`"
    )
    for name, setting in si.SliceOptions.settings().items():
        assert f"| `{name}` | {setting.label} | `{setting.default!r}` |" in table


# ----------------------------------------------------------------- troubleshooting


def troubleshooting_messages(text: str) -> list[str]:
    """The messages the README's Troubleshooting section lists (its headings' code)."""
    section = text.split("## Troubleshooting", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^#### `(.+)`$", section, flags=re.MULTILINE)


@pytest.fixture(scope="module")
def small_dataset(session_dir: Path) -> fo.Dataset:
    """One generated image of about 700 px with ground truth."""
    root = session_dir / "readme-troubleshooting"
    write_dataset(root, num_images=1, seed=9, min_width=700, max_width=700)
    return load_fiftyone_dataset(root, name="readme-troubleshooting", overwrite=True)


def _error(call: Callable[[], object], kind: type[Exception] = Exception) -> str:
    with pytest.raises(kind) as error:
        call()
    return str(error.value)


def _plugin_missing() -> str:
    """What FiftyOne says in a process whose plugins dir lacks the plugin."""
    env = {**os.environ, "FIFTYONE_PLUGINS_DIR": str(REPO_ROOT / "docs" / "images")}
    code = f"import fiftyone.operators as foo; foo.get_operator({SLICED!r})"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    return result.stderr


def _no_cuda(model: Path) -> str:
    """What asking for CUDA says where torch sees no GPU (hidden here if there is one)."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    code = (
        "from sliced_inference.slicer import load_model; "
        f"load_model({str(model)!r}, device='cuda')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    return result.stderr


def _truncated_video_error(folder: Path, model: str) -> str:
    """What a run reports for a video cut off before the 10 frames its header announces."""
    from sliced_inference.synthetic.video import write_cut_video

    path = write_cut_video(folder / "cut.avi")
    videos = fo.Dataset()
    videos.add_sample(fo.Sample(filepath=str(path)))
    try:
        return str(si.apply_sliced_model(videos, model, "preds").errors)
    finally:
        videos.delete()


def test_troubleshooting_messages_are_produced(
    small_dataset: fo.Dataset,
    det_model_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ds = small_dataset.clone("readme-troubleshooting-copy")
    model = str(det_model_path)
    op = foo.get_operator(SLICED)
    ds.set_values("sliced", [fo.Detections()] * len(ds))
    missing = ds.clone("readme-missing-image")
    missing.add_sample(fo.Sample(filepath=str(tmp_path / "gone.jpg")))
    predictions = ds.select_fields().clone("readme-no-ground-truth")
    for name in ("baseline", "sliced"):
        predictions.set_values(name, [fo.Detections()] * len(predictions))

    def relative_model_elsewhere() -> str:
        monkeypatch.chdir(tmp_path)
        try:
            return _error(lambda: op(ds, "models/small-objects-det.pt", "new"))
        finally:
            monkeypatch.undo()

    produce = {
        "Field 'sliced' already exists": lambda: _error(
            lambda: si.apply_sliced_model(ds, model, "sliced"), LabelFieldError
        ),
        "No model file at models/small-objects-det.pt": relative_model_elsewhere,
        "is not persistent, so it is deleted when this process exits": lambda: _error(
            lambda: op(ds, model, "queued", delegate=True), ValueError
        ),
        "no ground-truth field 'ground_truth'; Detections fields on this dataset:": (
            lambda: _error(
                lambda: foo.get_operator(COMPARE)(
                    predictions, "ground_truth", ["baseline", "sliced"]
                ),
                ValueError,
            )
        ),
        f"Operator '{SLICED}' not found": _plugin_missing,
        "device 'cuda' asked for, but CUDA is not available": lambda: _no_cuda(
            det_model_path
        ),
        "image file not found": lambda: str(
            si.apply_sliced_model(missing, model, "preds").errors
        ),
        "truncated, corrupt or frames missing": lambda: _truncated_video_error(
            tmp_path, model
        ),
    }
    listed = troubleshooting_messages(README.read_text())
    assert sorted(listed) == sorted(produce), "each README message needs a producer"
    for message in listed:
        produced = produce[message]()
        assert message in produced, (message, produced)
    assert (
        "no ground-truth field 'ground_truth'; Detections fields on this dataset: baseline, sliced"
        in produce[
            "no ground-truth field 'ground_truth'; Detections fields on this dataset:"
        ]()
    )
    for dataset in (ds, missing, predictions):
        dataset.delete()


def test_package_docstring_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = si.__doc__.split("::", 1)[1].split("\n\n", 1)[1]
    example = example.split("\nThe README", 1)[0]
    code = re.sub(r"^    ", "", example, flags=re.MULTILINE)
    assert "/tmp/si-example" in code and "models/small-objects-det.pt" in code
    monkeypatch.chdir(REPO_ROOT)  # where the example says it runs
    namespace: dict = {}
    exec(code.replace("/tmp/si-example", str(tmp_path / "si-example")), namespace)
    dataset = namespace["dataset"]
    assert dataset.count("sliced.detections") > 0
    assert "si_sliced" in dataset.list_evaluations()
    dataset.delete()
