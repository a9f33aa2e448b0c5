"""Tables as data: columns with labels and rows of formatted cells.

A comparison builds its tables once (``Comparison.tables()``); the text report
(``render_text``), the App panel (a ``TableView`` per table) and the demo only
lay out those rows, so a number is formatted in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Table:
    """A titled table of text cells.

    Attributes:
        name: a short identifier (the panel's state key is ``<name>_table``).
        title: the table's heading.
        columns: column key -> label, in order; every row has these keys.
        rows: one dict of formatted cells per row.
        note: a line printed under the title (what the numbers mean).

    Example::

        >>> t = Table("speed", "Speed", {"run": "run", "s": "seconds"},
        ...           [{"run": "sliced", "s": "12.0"}])
        >>> print(render_text([t]))
        Speed
        run     seconds
        sliced     12.0
    """

    name: str
    title: str
    columns: dict[str, str]
    rows: list[dict[str, str]] = field(default_factory=list)
    note: str = ""


def render_text(tables: Sequence[Table]) -> str:
    """Tables as aligned plain text: the first column left, the others right."""
    return "\n\n".join(_render_one(table) for table in tables)


def _render_one(table: Table) -> str:
    keys = list(table.columns)
    grid = [list(table.columns.values())] + [
        [row.get(k, "") for k in keys] for row in table.rows
    ]
    widths = [max(len(line[i]) for line in grid) for i in range(len(keys))]
    lines = [table.title] + ([table.note] if table.note else [])
    for line in grid:
        cells = [
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def fmt(value: float | None, digits: int = 3) -> str:
    """A metric with ``digits`` decimals, ``-`` when missing.

    Example::

        >>> fmt(0.12345), fmt(None)
        ('0.123', '-')
    """
    return "-" if value is None else f"{value:.{digits}f}"


def fmt_delta(value: float | None, digits: int = 3) -> str:
    """A signed difference (an integer when ``digits`` is 0), ``-`` when missing.

    Example::

        >>> fmt_delta(0.5), fmt_delta(-3, 0)
        ('+0.500', '-3')
    """
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if digits else f"{int(value):+d}"


def fmt_ratio(ratio: float | None) -> str:
    """A time ratio such as ``4.20x``, ``-`` when missing.

    Example::

        >>> fmt_ratio(4.2)
        '4.20x'
    """
    return "-" if ratio is None else f"{ratio:.2f}x"
