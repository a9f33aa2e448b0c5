"""The package's layers import one way: operators -> evaluation -> sdk -> slicer.

Read from the source with ``ast`` (every import, lazy ones inside functions
included), so a wrong-way import fails here before it becomes a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

#: Each layer and the package-internal layers it may import.
ALLOWED = {
    "slicer": {"slicer"},
    "sdk": {"sdk", "slicer", "_version"},
    "evaluation": {"evaluation", "sdk", "slicer"},
    "operators": {"operators", "evaluation", "sdk", "slicer"},
}
#: What the engine may never import, directly or lazily.
ENGINE_FORBIDDEN = ("fiftyone",)


def _modules(layer: str) -> list[Path]:
    return sorted((REPO_ROOT / layer).rglob("*.py"))


def _internal_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, top-level package part)`` of every import of this package in ``path``."""
    package = list(path.relative_to(REPO_ROOT).parts[:-1])  # below the root
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            up = node.level - 1  # level 1 is the module's own package
            if up > len(package):
                raise AssertionError(f"{path}: import climbs above the package")
            target = package[: len(package) - up]
            target += node.module.split(".") if node.module else []
            found.append((node.lineno, target[0] if target else "<package face>"))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for name in names:
                if name == "sliced_inference":
                    found.append((node.lineno, "<package face>"))
                elif name.startswith("sliced_inference."):
                    found.append((node.lineno, name.split(".")[1]))
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layers_import_one_way(layer: str) -> None:
    wrong = [
        f"{path.relative_to(REPO_ROOT)}:{line} imports {target}"
        for path in _modules(layer)
        for line, target in _internal_imports(path)
        if target not in ALLOWED[layer]
    ]
    assert not wrong, "\n".join(wrong)


def test_the_engine_source_never_imports_fiftyone() -> None:
    wrong = []
    for path in _modules("slicer"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            wrong += [
                f"{path.relative_to(REPO_ROOT)}:{node.lineno} imports {n}"
                for n in names
                if n.split(".")[0] in ENGINE_FORBIDDEN
            ]
    assert not wrong, "\n".join(wrong)


def test_importing_the_engine_does_not_import_fiftyone() -> None:
    _check_fresh_import(
        "import sliced_inference.slicer as s\n"
        "s.SliceOptions(); s.tile_boxes((2000, 1000))\n",
        ["fiftyone"],
    )


def test_the_package_face_stays_light() -> None:
    """FiftyOne re-runs the plugin entry on operator lookups: no heavy imports there."""
    _check_fresh_import(
        "import sliced_inference\n",
        ["torch", "ultralytics", "transformers", "fiftyone"],
    )


def _check_fresh_import(code: str, forbidden: list[str]) -> None:
    """Runs ``code`` in a new interpreter; fails if it loaded any of ``forbidden``."""
    check = (
        "import sys\n"
        f"{code}"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r})\n"
        "print(loaded)\n"
        "raise SystemExit(1 if loaded else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_root_init_imports_outside_a_package() -> None:
    """pytest imports the root ``__init__.py`` on its own in a checkout named
    ``sliced-inference`` (not an identifier): it must load there too."""
    code = (
        "import importlib.util, sys; "
        f"spec = importlib.util.spec_from_file_location('__init__', {str(REPO_ROOT / '__init__.py')!r}); "
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
        "print(callable(module.register))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
