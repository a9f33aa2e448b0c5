"""The text rendering of a ``Comparison``: what the demo prints and ``str()`` returns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .comparison import Comparison, Metrics, RunMetrics

_OVERALL = ("mAP", "AP50", "precision", "recall")
_COUNTS = ("tp", "fp", "fn")
_SIZE_METRICS = ("mAP", "AP50", "recall")
#: Run-record settings that say nothing about the predictions.
_HIDDEN_SETTINGS = {"overwrite", "skip_existing", "tags", "progress", "device", "shard"}


def render_comparison(comparison: Comparison) -> str:
    """The comparison as plain-text tables: overall, by object size, recovered / lost.

    Example::

        >>> print(render_comparison(comparison))  # doctest: +SKIP
    """
    sections = [
        _heading(comparison),
        _grid(_overall_rows(comparison)),
        _size_heading(comparison),
        _grid(*_size_rows(comparison)),
        _recovered_lines(comparison),
        _run_lines(comparison),
    ]
    return "\n\n".join(s for s in sections if s)


def _heading(comparison: Comparison) -> str:
    counts = comparison.size_counts()
    sizes = ", ".join(f"{n} {size}" for size, n in counts.items())
    total = comparison.baseline.overall.num_gt
    key = f" {comparison.key!r}" if comparison.key else ""
    return (
        f"Comparison{key}: {comparison.num_samples} images, ground truth "
        f"{comparison.gt_field!r} with {total} objects ({sizes}).\n"
        f"TP / FP / FN, precision and recall at IoU {comparison.iou:.2f}; "
        "mAP = COCO AP@[.50:.95]; AP50 = AP at IoU 0.50."
    )


def _overall_rows(comparison: Comparison) -> list[list[str]]:
    header = ["run", "IoU", "mAP", "AP50", "prec.", "recall", "TP", "FP", "FN"]
    header += ["seconds", "img/s"]
    rows = [header]
    for run, diff in zip(
        comparison.runs, [None, *comparison.differences()], strict=True
    ):
        m = run.overall
        rows.append(
            [run.field, run.iou_type]
            + [fmt(getattr(m, name)) for name in _OVERALL]
            + [str(getattr(m, name)) for name in _COUNTS]
            + [fmt(run.seconds, 1), fmt(run.images_per_second, 2)]
        )
        if diff is not None:
            rows.append(
                [f"  vs {comparison.baseline.field}", ""]
                + [fmt_delta(diff[name]) for name in _OVERALL]
                + [fmt_delta(diff[name], 0) for name in _COUNTS]
                + [fmt_ratio(diff["time_ratio"]), ""]
            )
    return rows


def _size_heading(comparison: Comparison) -> str:
    small, medium = comparison.size_thresholds
    return (
        "By object size (box area in pixels: small < "
        f"{_area(small)}, medium < {_area(medium)}, large >= {_area(medium)}; "
        "each object and prediction counts in its own size only)"
    )


def _size_rows(comparison: Comparison) -> tuple[list[list[str]], list[str]]:
    sizes = list(comparison.baseline.by_size)
    counts = comparison.size_counts()
    groups = [f"{size} ({counts[size]} GT)" for size in sizes]
    rows = [["run"] + [name for _ in sizes for name in ("AP", "AP50", "recall")]]
    for run, diff in zip(
        comparison.runs, [None, *comparison.differences()], strict=True
    ):
        rows.append([run.field] + _size_cells(run, sizes))
        if diff is not None:
            rows.append(
                [f"  vs {comparison.baseline.field}"]
                + [
                    fmt_delta(diff["by_size"][size][name])
                    for size in sizes
                    for name in _SIZE_METRICS
                ]
            )
    return rows, groups


def _size_cells(run: RunMetrics, sizes: Sequence[str]) -> list[str]:
    cells = []
    for size in sizes:
        m: Metrics = run.by_size[size]
        cells += [fmt(getattr(m, name)) for name in _SIZE_METRICS]
    return cells


def _recovered_lines(comparison: Comparison) -> str:
    base = comparison.baseline.field
    return "\n".join(
        f"{run.field} vs {base}: {run.recovered} ground-truth objects recovered "
        f"(found by {run.field}, missed by {base}), {run.lost} lost"
        for run in comparison.runs[1:]
        if run.recovered is not None
    )


def _run_lines(comparison: Comparison) -> str:
    lines = [
        f"  {run.field}: {_describe(run.run_info)}"
        for run in comparison.runs
        if run.run_info
    ]
    return "Runs:\n" + "\n".join(lines) if lines else ""


def _describe(info: dict[str, Any]) -> str:
    """``kind, model file, setting=value...`` of a run record (defaults left out)."""
    parts = [str(info["kind"])] if info.get("kind") else []
    if info.get("model"):
        parts.append(str(info["model"]).replace("\\", "/").rsplit("/", 1)[-1])
    settings = info.get("settings") or {}
    if isinstance(settings, dict):
        for k, v in settings.items():
            if k in _HIDDEN_SETTINGS or v in ("", [], (), None, False):
                continue
            if v is True:
                parts.append(k)
            elif isinstance(v, (str, int, float, list, tuple)):
                parts.append(f"{k}={_setting(v)}")
    return ", ".join(parts)


def _setting(value: Any) -> str:
    if isinstance(value, (list, tuple)) and len(set(map(str, value))) == 1:
        return str(value[0])  # [640, 640] -> 640
    return str(value)


def _grid(rows: list[list[str]], groups: Sequence[str] = ()) -> str:
    """Aligned columns (first left, others right); ``groups`` label runs of
    ``len(_SIZE_METRICS)`` columns after the first on a line above."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    span = len(_SIZE_METRICS)
    for g, label in enumerate(groups):  # widen a group's last column to fit its label
        cols = range(1 + g * span, 1 + (g + 1) * span)
        room = sum(widths[c] for c in cols) + 2 * (span - 1)
        widths[cols[-1]] += max(0, len(label) - room)
    lines = []
    if groups:
        line = " " * widths[0]
        for g, label in enumerate(groups):
            cols = range(1 + g * span, 1 + (g + 1) * span)
            room = sum(widths[c] for c in cols) + 2 * (span - 1)
            line += "  " + label.center(room)
        lines.append(line.rstrip())
    for row in rows:
        cells = [
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def fmt(value: float | None, digits: int = 3) -> str:
    """A metric with ``digits`` decimals, ``-`` when missing."""
    return "-" if value is None else f"{value:.{digits}f}"


def fmt_delta(value: float | None, digits: int = 3) -> str:
    """A signed difference (an integer when ``digits`` is 0), ``-`` when missing."""
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if digits else f"{int(value):+d}"


def fmt_ratio(ratio: float | None) -> str:
    """A time ratio such as ``x4.20``, ``-`` when missing."""
    return "-" if ratio is None else f"x{ratio:.2f}"


def _area(pixels: float) -> str:
    root = round(pixels**0.5)
    return f"{root}^2" if root * root == pixels else f"{pixels:g}"
