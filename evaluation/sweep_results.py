"""What a slice-settings sweep found: one row per setting, the recommendation, and where it is stored.

Plain data (``to_dict`` / ``from_dict`` round-trip through JSON), built by
``sweep.find_slice_settings`` and stored on the dataset as a FiftyOne run
(method ``SWEEP_METHOD``), which the "Slice settings" panel reads.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import fiftyone as fo

from .store import runs_newest_first
from .table import Table, fmt, fmt_ratio

#: ``method`` of the FiftyOne runs that store sweeps.
SWEEP_METHOD = "sliced_inference.sweep"
#: Run key of a sweep when none is given.
DEFAULT_SWEEP_KEY = "si_sweep"
#: What a sweep could measure, by what it had (``SweepResult.mode``).
MODES = {
    "ground_truth": "AP50 against the ground truth",
    "agreement": "agreement (AP50) with the model on the whole image at native "
    "resolution, taken as the reference; no ground truth",
    "detections": "detections per size only: no ground truth, and the images are "
    "too large for a native whole-image reference",
}
#: The table's metric columns: ``SweepPoint.metrics`` key -> label.
METRIC_COLUMNS = {
    "AP50": "AP50",
    "AP50_small": "small",
    "AP50_medium": "medium",
    "AP50_large": "large",
    "AP50_seam": "seams",
    "recall_seam": "seam recall",
}
COUNT_COLUMNS = {
    "detections_small": "small dets",
    "detections_medium": "medium dets",
    "detections_large": "large dets",
}


@dataclass
class SweepPoint:
    """One setting of the sweep and what it measured on the sampled images.

    Attributes:
        params: the flat ``apply_sliced_model`` keywords of the setting
            (``slice_wh``, ``overlap``, ``full_image_pass``, ``merge``,
            ``merge_metric``); run it with ``apply_sliced_model(**params)``.
        tiles: tiles over the sampled images.
        overlap_px: the smallest overlap between neighbouring tiles, in pixels,
            over the sampled images (at least what was asked; often more).
        same_tiles_as: the index of an earlier point with the same tiles on
            every sampled image (its predictions were reused), else ``None``.
        seconds: inference time over the sampled images (tiles, full-image
            pass, merge), measured in this sweep.
        time_ratio: ``seconds`` / the default setting's seconds.
        metrics: AP50 overall, per size and on seams (``METRIC_COLUMNS``), or
            agreement AP50 (``mode == "agreement"``), and detections per size.
        is_default: the package's default setting.
        within_budget: ``time_ratio`` within the sweep's budget.
    """

    params: dict[str, Any]
    tiles: int
    overlap_px: int
    same_tiles_as: int | None
    seconds: float
    time_ratio: float | None
    metrics: dict[str, float | int | None]
    is_default: bool = False
    within_budget: bool = True

    def label(self) -> str:
        """``640 px, overlap 0.2, provenance, + full image``."""
        p = self.params
        merge = p["merge"] + (
            f"/{p['merge_metric']}" if p.get("merge") != "provenance" else ""
        )
        full = ", + full image" if p.get("full_image_pass") else ""
        return f"{p['slice_wh']} px, overlap {p['overlap']}, {merge}{full}"


@dataclass
class SweepResult:
    """A slice-settings sweep: every point, the recommendation and how it was chosen.

    Attributes:
        points: one ``SweepPoint`` per setting asked for (plus the default).
        recommended: index of the recommended point, or ``None``.
        criterion: the metric the recommendation maximised.
        budget: the most time allowed, as a multiple of the default's.
        mode: a key of ``MODES``: what the sweep could measure.
        reason: one sentence on the recommendation (or why there is none).
        model: the model it ran.
        gt_field: the ground truth, or ``None``.
        sample_ids: the sampled samples.
        num_objects: ground-truth objects on them (``None`` without).
        settings: the sweep's own arguments (sizes, overlaps, merges, ...).
        key: run key it is stored under.
        skipped: sampled sample id -> why its image could not be read (left
            out of the sweep).
    """

    points: list[SweepPoint]
    recommended: int | None
    criterion: str
    budget: float
    mode: str
    reason: str
    model: str
    gt_field: str | None
    sample_ids: list[str]
    num_objects: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    key: str | None = None
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def recommendation(self) -> SweepPoint | None:
        """The recommended point, if any."""
        return None if self.recommended is None else self.points[self.recommended]

    @property
    def default(self) -> SweepPoint:
        """The package's default setting."""
        return next(p for p in self.points if p.is_default)

    def table(self) -> Table:
        """Every point as a row, the recommended one marked."""
        metric_columns = (
            METRIC_COLUMNS if self.mode != "detections" else {}
        ) | COUNT_COLUMNS
        columns = {
            "mark": "note",
            "slice": "slice",
            "overlap": "overlap (px)",
            "full": "full image",
            "merge": "merge",
            "tiles": "tiles",
            "seconds": "seconds",
            "time": "time vs default",
            **metric_columns,
        }
        rows = []
        for i, point in enumerate(self.points):
            p = point.params
            mark = "recommended" if i == self.recommended else ""
            if point.is_default:
                mark = (mark + " default").strip()
            rows.append(
                {
                    "mark": mark,
                    "slice": str(p["slice_wh"]),
                    "overlap": f"{p['overlap']} ({point.overlap_px})",
                    "full": "yes" if p.get("full_image_pass") else "no",
                    "merge": p["merge"]
                    + (f"/{p['merge_metric']}" if p["merge"] != "provenance" else ""),
                    "tiles": str(point.tiles),
                    "seconds": fmt(point.seconds, 1),
                    "time": fmt_ratio(point.time_ratio)
                    + ("" if point.within_budget else " (over budget)"),
                    **{
                        k: _cell(point.metrics.get(k), k in COUNT_COLUMNS)
                        for k in metric_columns
                    },
                }
            )
        images = len(self.sample_ids)
        plural = "s" if images != 1 else ""
        note = f"{images} sampled image{plural}; {MODES[self.mode]}."
        return Table("sweep", "Slice settings sweep", columns, rows, note)

    def to_dict(self) -> dict[str, Any]:
        """The sweep as JSON-friendly data."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepResult:
        """Inverse of ``to_dict``."""
        d = dict(d)
        d["points"] = [SweepPoint(**p) for p in d["points"]]
        return cls(**d)

    def __str__(self) -> str:
        from .table import render_text

        lines = [render_text([self.table()]), self.reason]
        if self.recommendation is not None:
            lines.append(
                f"Run it: apply_sliced_model(..., **{self.recommendation.params})"
            )
        return "\n\n".join(lines)


def store_sweep(
    samples: fo.core.collections.SampleCollection, result: SweepResult, key: str
) -> None:
    """Stores ``result`` on the dataset as a FiftyOne run under ``key`` (replaced)."""
    result.key = key
    config = samples.init_run(
        method=SWEEP_METHOD,
        model=result.model,
        gt_field=result.gt_field,
        budget=result.budget,
        mode=result.mode,
    )
    samples.register_run(key, config, overwrite=True, cleanup=False)
    results = samples.init_run_results(key, sweep=result.to_dict())
    samples.save_run_results(key, results, overwrite=True)


def list_sweeps(samples: fo.core.collections.SampleCollection) -> list[str]:
    """Keys of the sweeps stored on the dataset of ``samples``, newest first."""
    return runs_newest_first(samples, SWEEP_METHOD)


def load_sweep(
    samples: fo.core.collections.SampleCollection, key: str | None = None
) -> SweepResult | None:
    """A stored sweep (the newest if ``key`` is None); ``None`` if there is none.

    Example::

        >>> sweep = load_sweep(dataset)  # doctest: +SKIP
        >>> sweep.recommendation.params  # doctest: +SKIP
        {'slice_wh': 640, 'overlap': 0.3, ...}
    """
    keys = list_sweeps(samples)
    if key is None:
        key = keys[0] if keys else None
    if key not in keys:
        return None
    stored = samples._root_dataset.load_run_results(key, cache=False, load_view=False)
    return replace(SweepResult.from_dict(stored.sweep), key=key)


def _cell(value: float | int | None, count: bool) -> str:
    if count:
        return "-" if value is None else str(int(value))
    return fmt(value)
