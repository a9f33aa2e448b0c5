"""The README's table of options, generated from their declarations (``slicer/options.py``).

Every setting is declared once with its default, label and help
(``settings.setting``); this script renders them as the markdown table the
README shows between ``<!-- options-table:start -->`` and
``<!-- options-table:end -->``. ``tests/test_readme.py`` fails when the
README's copy differs from what this renders, so a changed default or help
text cannot drift from the docs.

Usage::

    python docs/options_table.py            # print the table
    python docs/options_table.py --write    # put it into README.md
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from sliced_inference.operators.forms import FILTERING, MERGING, SLICING
from sliced_inference.slicer import (
    ModelOptions,
    PredictOptions,
    SliceOptions,
    VideoOptions,
)
from sliced_inference.slicer.settings import Setting

README = Path(__file__).resolve().parents[1] / "README.md"
START = "<!-- options-table:start -->"
END = "<!-- options-table:end -->"
_BLOCK = re.compile(re.escape(START) + r"\n(.*?)" + re.escape(END), re.DOTALL)


def render_options_table() -> str:
    """The markdown of every option: sliced runs, then what baseline runs take.

    Example::

        >>> "| `overlap` | Overlap | `0.2` |" in render_options_table()
        True
    """
    sliced = SliceOptions.settings()
    model = ModelOptions.settings()
    # In the order the App's form shows them; any others after.
    shown = [n for n in (*SLICING, *MERGING, *FILTERING, "batch_size") if n in sliced]
    ordered = [*shown, *(n for n in sliced if n not in shown)]
    lines = [
        "| keyword | in the App | default | what it does, when to change it |",
        "|---|---|---|---|",
        *(_row(sliced[n]) for n in ordered),
        *(_row(s) for s in model.values()),
    ]
    baseline = PredictOptions.settings()
    names = ", ".join(f"`{name}`" for name in [*baseline, *model])
    lines += [
        "",
        f"`apply_baseline_model` and *Run baseline inference* take {names}; "
        f"there `imgsz` is the whole image's input size: {_cell(baseline['imgsz'].help)}",
        "",
        "On video datasets both also take these (the App's forms show them for "
        "videos only; the tracker settings once a tracker is chosen):",
        "",
        "| keyword | in the App | default | what it does, when to change it |",
        "|---|---|---|---|",
        *(_row(s) for s in VideoOptions.settings().values()),
    ]
    return "\n".join(lines) + "\n"


def readme_table(text: str) -> str | None:
    """The table between the markers of ``text`` (the README), or ``None``."""
    found = _BLOCK.search(text)
    return found.group(1) if found else None


def write_readme(path: Path = README) -> bool:
    """Puts the rendered table between the README's markers; True if it changed."""
    text = path.read_text()
    if readme_table(text) is None:
        raise ValueError(f"{path} has no {START} ... {END} block")
    new = _BLOCK.sub(lambda _: f"{START}\n{render_options_table()}{END}", text)
    if new != text:
        path.write_text(new)
    return new != text


def _row(setting: Setting) -> str:
    cells = [
        f"`{setting.name}`",
        _cell(setting.label),
        f"`{setting.default!r}`",
        _cell(setting.help + _choices(setting.choices)),
    ]
    return "| " + " | ".join(cells) + " |"


def _choices(choices: Mapping[str, str] | None) -> str:
    if not choices:
        return ""
    return " Choices: " + "; ".join(f"`{k}`: {v}" for k, v in choices.items()) + "."


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def main(argv: Sequence[str] | None = None) -> int:
    """Prints the table, or writes it into the README with ``--write``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update README.md")
    args = parser.parse_args(argv)
    if args.write:
        changed = write_readme()
        print(f"{README}: {'updated' if changed else 'already up to date'}")
    else:
        print(render_options_table(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
