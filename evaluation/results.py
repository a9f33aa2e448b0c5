"""What a comparison found: metrics per run, overall and by size, and its tables.

Plain data (``to_dict`` / ``from_dict`` round-trip through JSON), built by
``compare.compare_runs`` and stored by ``store``. ``Comparison.tables()`` is
the one table model of a comparison: the text report, the App panel and the
demo all show its rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .sizes import COCO_SIZE_THRESHOLDS
from .table import Table, fmt, fmt_delta, fmt_ratio, render_text

#: Metrics of the by-size table and plot: attribute -> label.
SIZE_METRICS = {"mAP": "AP@[.50:.95]", "AP50": "AP@0.50", "recall": "Recall"}
_RATES = ("mAP", "AP50", "precision", "recall")
_COUNTS = ("tp", "fp", "fn")
_COUNT_COLUMNS = {"tp": "TP", "fp": "FP", "fn": "FN"}

#: The tables of every comparison, without rows: what ``tables()`` fills in.
METRICS_TABLE = Table(
    "metrics",
    "Metrics",
    {
        "run": "run",
        "iou_type": "IoU of",
        "mAP": "mAP",
        "AP50": "AP50",
        "precision": "precision",
        "recall": "recall",
        **_COUNT_COLUMNS,
    },
)
SIZE_TABLE = Table(
    "size",
    "By object size",
    {"size": "objects (GT)", "run": "run", **SIZE_METRICS, **_COUNT_COLUMNS},
)
SPEED_TABLE = Table(
    "speed",
    "Speed (inference, from the run records)",
    {
        "run": "run",
        "kind": "kind",
        "seconds": "seconds",
        "images_per_second": "images/s",
        "time_ratio": "time vs baseline",
    },
)
TABLES = (METRICS_TABLE, SIZE_TABLE, SPEED_TABLE)
#: Sliced runs on the objects their tile seams cross, and on the others.
SEAM_TABLE = Table(
    "seams",
    "At tile seams (sliced runs; ground truth crossing an interior tile edge)",
    {
        "run": "run",
        "objects": "objects (GT)",
        "AP50": "AP50",
        "recall": "recall",
        **_COUNT_COLUMNS,
        "baseline_AP50": "baseline AP50",
        "baseline_recall": "baseline recall",
    },
)


@dataclass
class Metrics:
    """Detection metrics of one run on one set of objects.

    Attributes:
        mAP: COCO mAP (IoU 0.50:0.95, averaged over classes with ground truth);
            ``None`` when there is no ground truth.
        AP50: COCO AP at IoU 0.50, averaged the same way; ``None`` likewise.
        precision: ``tp / (tp + fp)`` at the comparison IoU; ``None`` if no
            predictions.
        recall: ``tp / (tp + fn)``; ``None`` if no ground truth.
        tp: matched predictions (= matched ground-truth objects).
        fp: unmatched predictions.
        fn: unmatched ground-truth objects.
    """

    mAP: float | None
    AP50: float | None
    precision: float | None
    recall: float | None
    tp: int
    fp: int
    fn: int

    @property
    def num_gt(self) -> int:
        """Ground-truth objects evaluated (``tp + fn``)."""
        return self.tp + self.fn

    @property
    def num_pred(self) -> int:
        """Predictions evaluated (``tp + fp``)."""
        return self.tp + self.fp

    def minus(self, base: Metrics) -> dict[str, float | int | None]:
        """Each metric of this run minus the baseline's (``None`` where one is missing)."""
        return {
            name: _diff(getattr(self, name), getattr(base, name))
            for name in (*_RATES, *_COUNTS)
        }


@dataclass
class RunMetrics:
    """One prediction field of a comparison.

    Attributes:
        field: the prediction field.
        eval_key: where its evaluation is stored.
        iou_type: ``"boxes"``, ``"masks"`` or ``"polygons"`` (rotated boxes),
            the IoU the evaluation used.
        overall: metrics on all objects.
        by_size: metrics per size bucket (``small``, ``medium``, ``large``).
        run_info: the run record of the field (kind, model, settings, seconds,
            images_per_second), when inference recorded one.
        recovered: ground-truth objects this run found (TP) that the first run
            missed (FN); ``None`` for the first run.
        lost: ground-truth objects the first run found that this one missed.
        eval_timestamp: when the evaluation was stored (ISO format), to tell
            whether it changed since.
        identity: for tracked frame fields (track ids in ``index``) against
            ground truth with ids, ``IdentityScores.to_dict()`` (IDF1, ...).
        unfinished: what the run's record says is missing from its
            predictions (e.g. ``"interrupted after 18 of 20 images"``);
            ``None`` for a complete run.
        seams: for a sliced run, its metrics on the ground truth its tile
            seams cross (``seam``) and on the rest (``interior``); see
            ``evaluation.seams``.
        seams_baseline: the first run's metrics on the same two parts.
    """

    field: str
    eval_key: str
    iou_type: str
    overall: Metrics
    by_size: dict[str, Metrics]
    run_info: dict[str, Any] | None = None
    recovered: int | None = None
    lost: int | None = None
    eval_timestamp: str | None = None
    identity: dict[str, Any] | None = None
    unfinished: str | None = None
    seams: dict[str, Metrics] | None = None
    seams_baseline: dict[str, Metrics] | None = None

    @property
    def label(self) -> str:
        """The run's name in tables: the field, starred when the run is unfinished."""
        return f"{self.field} *" if self.unfinished else self.field

    @property
    def seconds(self) -> float | None:
        """Inference time of the run, from its run record."""
        return _number((self.run_info or {}).get("seconds"))

    @property
    def images_per_second(self) -> float | None:
        """Inference throughput of the run (frames of a video run), from its run record."""
        info = self.run_info or {}
        return _number(info.get("frames_per_second") or info.get("images_per_second"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunMetrics:
        """Inverse of ``asdict``."""
        d = dict(d)
        d["overall"] = Metrics(**d["overall"])
        d["by_size"] = {k: Metrics(**v) for k, v in d["by_size"].items()}
        for name in ("seams", "seams_baseline"):
            if d.get(name) is not None:
                d[name] = {k: Metrics(**v) for k, v in d[name].items()}
        return cls(**d)


@dataclass
class Comparison:
    """Metrics of several prediction runs on the same samples; the first is the baseline.

    ``str(comparison)`` is a text report; ``tables()`` gives its tables as
    data, ``to_dict()`` / ``to_json()`` the numbers.

    Attributes:
        gt_field: the ground-truth field.
        runs: one ``RunMetrics`` per prediction field, baseline first.
        iou: IoU threshold of TP / FP / FN, precision and recall.
        size_thresholds: small/medium and medium/large area boundaries (px^2).
        num_samples: samples evaluated.
        key: run key the comparison is stored under (``None`` if not stored).
        num_frames: frames evaluated, for frame fields of videos (each frame
            counts as an image); ``None`` for images.
        fingerprints: per compared field (ground truth included), the
            fingerprint of its labels when compared (``store.is_current``
            checks them).
    """

    gt_field: str
    runs: list[RunMetrics]
    iou: float = 0.5
    size_thresholds: tuple[float, float] = COCO_SIZE_THRESHOLDS
    num_samples: int = 0
    key: str | None = None
    num_frames: int | None = None
    fingerprints: dict[str, str] = field(default_factory=dict)

    @property
    def baseline(self) -> RunMetrics:
        """The first run, which the others are compared with."""
        return self.runs[0]

    def run(self, field: str) -> RunMetrics:
        """The run of prediction field ``field``."""
        for run in self.runs:
            if run.field == field:
                return run
        raise KeyError(f"no run for field {field!r}; runs: {self.fields}")

    @property
    def fields(self) -> list[str]:
        """The prediction fields, baseline first."""
        return [run.field for run in self.runs]

    @property
    def eval_keys(self) -> list[str]:
        """The evaluation key of each run, baseline first."""
        return [run.eval_key for run in self.runs]

    def differences(self) -> list[dict[str, Any]]:
        """Each run after the first minus the baseline.

        Returns:
            one dict per run after the first: ``field``, the differences of
            ``mAP``, ``AP50``, ``precision``, ``recall``, ``tp``, ``fp``, ``fn``,
            ``by_size`` (the same per bucket), ``recovered`` and ``lost``
            objects, and ``time_ratio`` (seconds of the run / seconds of the
            baseline, ``None`` without run records).
        """
        base = self.baseline
        return [
            {
                "field": run.field,
                **run.overall.minus(base.overall),
                "by_size": {
                    size: m.minus(base.by_size[size])
                    for size, m in run.by_size.items()
                    if size in base.by_size
                },
                "recovered": run.recovered,
                "lost": run.lost,
                "time_ratio": _ratio(run.seconds, base.seconds),
            }
            for run in self.runs[1:]
        ]

    def size_counts(self) -> dict[str, int]:
        """Ground-truth objects per size bucket."""
        return {size: m.num_gt for size, m in self.baseline.by_size.items()}

    @property
    def area_kind(self) -> str:
        """What an object's size is measured on: ``box area`` or, for rotated
        boxes (Polylines), ``polygon area``."""
        if self.runs and self.baseline.iou_type == "polygons":
            return "polygon area"
        return "box area"

    def heading(self) -> list[str]:
        """What was compared, on how many objects, and what the metrics mean."""
        sizes = ", ".join(f"{n} {size}" for size, n in self.size_counts().items())
        small, medium = self.size_thresholds
        return [
            f"{self.baseline.field} (baseline) vs {', '.join(self.fields[1:])} on "
            f"{self._evaluated()}; ground truth {self.gt_field!r} with "
            f"{self.baseline.overall.num_gt} objects ({sizes}).",
            f"TP / FP / FN, precision and recall at IoU {self.iou:.2f}; "
            f"mAP = COCO AP@[.50:.95]; AP50 = AP at IoU 0.50. Sizes by {self.area_kind} "
            f"in pixels: small < {_area(small)}, medium < {_area(medium)}, large "
            "the rest; each object and prediction counts in its own size only.",
            *self.unfinished_lines(),
        ]

    def unfinished_lines(self) -> list[str]:
        """One line per starred (unfinished) run: what its record says is missing."""
        return [
            f"* {run.field}: {run.unfinished}; its metrics count the objects of "
            "the images it did not process as missed."
            for run in self.runs
            if run.unfinished
        ]

    def _evaluated(self) -> str:
        if self.num_frames is None:
            return f"{self.num_samples} images"
        videos = "video" if self.num_samples == 1 else "videos"
        return f"{self.num_frames} frames of {self.num_samples} {videos}"

    def review_lines(self) -> list[str]:
        """One line per run after the first: objects recovered and lost."""
        base = self.baseline.field
        return [
            f"{run.field} vs {base}: {run.recovered} ground-truth objects recovered "
            f"(found by {run.field}, missed by {base}), {run.lost} lost"
            for run in self.runs[1:]
            if run.recovered is not None
        ]

    def identity_lines(self) -> list[str]:
        """One line per tracked run: IDF1 and its parts (see ``tracking``)."""
        return [
            f"{run.field} tracks: IDF1 {fmt(i['idf1'])} (IDP {fmt(i['idp'])}, IDR "
            f"{fmt(i['idr'])}), {i['num_pred_ids']} track ids for "
            f"{i['num_true_ids']} objects, {i['id_switches']} identity switches"
            for run in self.runs
            if (i := run.identity)
        ]

    def tables(self) -> list[Table]:
        """The comparison's tables: overall metrics, by object size, speed, and
        at tile seams when a run is sliced."""
        tables = [self._overall_table(), self._size_table(), self._speed_table()]
        seams = self._seam_table()
        return tables + [seams] if seams.rows else tables

    def to_dict(self) -> dict[str, Any]:
        """The comparison as JSON-friendly data (differences included)."""
        return {
            "gt_field": self.gt_field,
            "iou": self.iou,
            "size_thresholds": list(self.size_thresholds),
            "num_samples": self.num_samples,
            "num_frames": self.num_frames,
            "key": self.key,
            "runs": [asdict(run) for run in self.runs],
            "differences": self.differences(),
            "fingerprints": dict(self.fingerprints),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """``to_dict()`` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Comparison:
        """Rebuilds a comparison from ``to_dict()`` output."""
        return cls(
            gt_field=d["gt_field"],
            runs=[RunMetrics.from_dict(r) for r in d["runs"]],
            iou=d.get("iou", 0.5),
            size_thresholds=tuple(d.get("size_thresholds", COCO_SIZE_THRESHOLDS)),
            num_samples=d.get("num_samples", 0),
            key=d.get("key"),
            num_frames=d.get("num_frames"),
            fingerprints=dict(d.get("fingerprints") or {}),
        )

    def to_table(self) -> str:
        """The text report: heading, tables, recovered and lost, run settings."""
        key = f"Comparison {self.key!r}\n" if self.key else ""
        parts = [key + "\n".join(self.heading()), render_text(self.tables())]
        parts += ["\n".join(self.review_lines() + self.identity_lines())]
        parts += [_run_lines(self.runs)]
        return "\n\n".join(p for p in parts if p)

    def __str__(self) -> str:
        return self.to_table()

    def _delta_label(self) -> str:
        return f"  Δ vs {self.baseline.field}"

    def _overall_table(self) -> Table:
        rows = []
        for run, diff in zip(self.runs, [None, *self.differences()], strict=True):
            rows.append(
                {"run": run.label, "iou_type": run.iou_type, **_cells(run.overall)}
            )
            if diff is not None:
                rows.append({"run": self._delta_label(), **_delta_cells(diff)})
        return replace(METRICS_TABLE, rows=rows)

    def _size_table(self) -> Table:
        rows = []
        diffs = [None, *self.differences()]
        for size, count in self.size_counts().items():
            for i, (run, diff) in enumerate(zip(self.runs, diffs, strict=True)):
                m = run.by_size[size]
                label = f"{size} ({count})" if i == 0 else ""
                rows.append({"size": label, "run": run.label, **_cells(m)})
                if diff is not None:
                    cells = _delta_cells(diff["by_size"][size])
                    rows.append({"size": "", "run": self._delta_label(), **cells})
        return replace(SIZE_TABLE, rows=rows)

    def _seam_table(self) -> Table:
        rows = []
        for run in self.runs:
            for part, m in (run.seams or {}).items():
                base = (run.seams_baseline or {}).get(part)
                rows.append(
                    {
                        "run": f"{run.field}: {part}",
                        "objects": str(m.num_gt),
                        "AP50": fmt(m.AP50),
                        "recall": fmt(m.recall),
                        **{k: str(getattr(m, k)) for k in _COUNTS},
                        "baseline_AP50": fmt(base.AP50) if base else "",
                        "baseline_recall": fmt(base.recall) if base else "",
                    }
                )
        return replace(SEAM_TABLE, rows=rows)

    def _speed_table(self) -> Table:
        ratios = [1.0 if self.baseline.seconds else None]
        ratios += [d["time_ratio"] for d in self.differences()]
        rows = [
            {
                "run": run.label,
                "kind": str((run.run_info or {}).get("kind") or "not recorded"),
                "seconds": fmt(run.seconds, 1),
                "images_per_second": fmt(run.images_per_second, 2),
                "time_ratio": fmt_ratio(ratio),
            }
            for run, ratio in zip(self.runs, ratios, strict=True)
        ]
        return replace(SPEED_TABLE, rows=rows)


#: Run-record settings that say nothing about the predictions.
_HIDDEN_SETTINGS = {
    "overwrite",
    "skip_existing",
    "tags",
    "progress",
    "device",
    "shard",
    "tiles_field",
}


def describe_run(info: dict[str, Any]) -> str:
    """``kind, model file, setting=value...`` of a run record (unset values left out).

    Example::

        >>> describe_run({"kind": "sliced", "model": "m/det.pt",
        ...               "settings": {"slice_wh": [640, 640], "half": False}})
        'sliced, det.pt, slice_wh=640'
    """
    parts = [str(info["kind"])] if info.get("kind") else []
    if info.get("model"):
        parts.append(str(info["model"]).replace("\\", "/").rsplit("/", 1)[-1])
    settings = info.get("settings") or {}
    for k, v in settings.items() if isinstance(settings, dict) else ():
        if k in _HIDDEN_SETTINGS or v in ("", [], (), None, False):
            continue
        if v is True:
            parts.append(k)
        elif isinstance(v, (str, int, float, list, tuple)):
            same = isinstance(v, (list, tuple)) and len(set(map(str, v))) == 1
            parts.append(f"{k}={v[0] if same else v}")  # [640, 640] -> 640
    return ", ".join(parts)


def _run_lines(runs: list[RunMetrics]) -> str:
    lines = [
        f"  {run.field}: {describe_run(run.run_info)}" for run in runs if run.run_info
    ]
    return "Runs:\n" + "\n".join(lines) if lines else ""


def _cells(m: Metrics) -> dict[str, str]:
    return {
        **{k: fmt(getattr(m, k)) for k in _RATES},
        **{k: str(getattr(m, k)) for k in _COUNTS},
    }


def _delta_cells(diff: dict[str, Any]) -> dict[str, str]:
    return {
        **{k: fmt_delta(diff[k]) for k in _RATES},
        **{k: fmt_delta(diff[k], 0) for k in _COUNTS},
    }


def _area(pixels: float) -> str:
    root = round(pixels**0.5)
    return f"{root}^2" if root * root == pixels else f"{pixels:g}"


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None
