"""Seam diagnostics: which ground-truth objects lie on a sliced run's tile seams, and how runs did on them.

A ground-truth object is **on a seam** of a sliced run when its box crosses an
interior edge of that run's tile grid (``slicer.tiles.crosses_seam``). The grid
follows from the image size and the run's stored options (``slice_wh`` and
``overlap`` in its run record), so any sliced field written by this plugin can
be diagnosed after the fact. A prediction counts as on a seam when its box
reaches within ``EDGE_MARGIN`` pixels of an interior edge: a detection of a cut
object ends at the edge without crossing it.

- ``seam_metrics``: recall, AP and counts on seam and interior objects, from a
  stored evaluation's per-object results (``<eval_key>`` = ``tp`` / ``fn`` /
  ``fp`` and ``<eval_key>_id``); ``compare_runs`` adds them for sliced runs.
- ``seam_view``: the seam objects a run missed, or detected twice, for review
  in the App.

Rotated-box runs (``Polylines``) get neither: see ``POLYLINES_REASON``.

Example::

    import sliced_inference as si

    si.compare_runs(dataset, "ground_truth", ["baseline", "sliced"])
    print(si.load_comparison(dataset).run("sliced").seams["seam"].recall)
    session.view = si.seam_view(dataset, "sliced", "ground_truth", kind="missed")
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import fiftyone as fo
import numpy as np
from fiftyone import ViewField as F

from ..sdk.metadata import compute_metadata
from ..sdk.run_records import get_run_info
from ..slicer.sliced import EDGE_MARGIN
from ..slicer.tiles import crosses_seam, tile_boxes
from .ap import average_precision, box_iou
from .fields import label_type_of
from .results import Metrics, RunMetrics

logger = logging.getLogger(__name__)

#: What ``seam_view`` can show.
SEAM_VIEW_KINDS = ("missed", "twice", "both")
#: Parts of ``seam_metrics``: seam objects and the others.
PARTS = ("seam", "interior")
#: Why rotated-box (``Polylines``) runs have no seam diagnostics.
POLYLINES_REASON = (
    "seam diagnostics are defined on axis-aligned boxes: a rotated box "
    "(Polylines) would be judged by its envelope, which crosses seams the "
    "object does not, and matched by box IoU where the comparison uses "
    "polygon IoU"
)


def run_grid(info: dict[str, Any] | None, width: int, height: int) -> np.ndarray | None:
    """The tile boxes a run used on a ``width x height`` image; ``None`` if not sliced.

    Example::

        >>> info = {"kind": "sliced", "settings": {"slice_wh": [640, 640], "overlap": 0.2}}
        >>> run_grid(info, 1000, 600).tolist()
        [[0, 0, 640, 600], [360, 0, 1000, 600]]
    """
    if not info or info.get("kind") != "sliced":
        return None
    settings = info.get("settings") or {}
    overlap = settings.get("overlap", 0.2)
    if isinstance(overlap, list):
        overlap = tuple(overlap)
    return tile_boxes((int(width), int(height)), settings.get("slice_wh", 640), overlap)


def sliced_run_info(
    samples: fo.core.collections.SampleCollection, field: str
) -> dict[str, Any]:
    """The run record of a sliced field; ``ValueError`` when it is not one."""
    info = get_run_info(samples, field)
    if info is None or info.get("kind") != "sliced":
        kind = "no run record" if info is None else f"a {info.get('kind')} run"
        raise ValueError(
            f"{field!r} is {kind}: seams are defined by a sliced run's tile grid "
            "(a field written by apply_sliced_model)"
        )
    return info


def seam_metrics(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    pred_field: str,
    eval_key: str,
    *,
    grid_field: str | None = None,
) -> dict[str, Metrics]:
    """Metrics of a stored evaluation on the seam objects of a grid, and on the others.

    Ground truth of each part counts with its ``tp`` / ``fn`` result; a
    prediction counts as a true positive of the part its matched object is
    in, and an unmatched one (``fp``) in the part its own box is in (COCO's
    rule for area ranges, with "on a seam" in place of an area range). AP is
    COCO's 101-point AP at the evaluation's IoU, per class, averaged over the
    classes with ground truth in the part; ``mAP`` is not computed (``None``).

    Args:
        samples: the evaluated samples.
        gt_field: the ground-truth field.
        pred_field: the evaluated prediction field.
        eval_key: the evaluation's key (per-object attributes stored).
        grid_field: the sliced run whose tile grid decides; default
            ``pred_field`` (pass a sliced field to see how another run, e.g.
            the baseline, did on the same objects).

    Returns:
        ``{"seam": Metrics, "interior": Metrics}``.
    """
    _check_boxes(samples, gt_field)
    info = sliced_run_info(samples, grid_field or pred_field)
    compute_metadata(samples)  # TIFFs from their headers, never decoded
    gt, pred = f"{gt_field}.detections", f"{pred_field}.detections"
    values = samples.values(
        [
            "metadata.width",
            "metadata.height",
            f"{gt}.id",
            f"{gt}.label",
            f"{gt}.bounding_box",
            f"{gt}.{eval_key}",
            f"{pred}.label",
            f"{pred}.bounding_box",
            f"{pred}.confidence",
            f"{pred}.{eval_key}",
            f"{pred}.{eval_key}_id",
        ]
    )
    tally = {part: _Tally() for part in PARTS}
    for row in zip(*values, strict=True):
        width, height, gt_ids, gt_labels, gt_boxes, gt_results = row[:6]
        labels, boxes, scores, results, matched_ids = row[6:]
        tiles = run_grid(info, width, height)
        seam_gt = _on_seam(gt_boxes, tiles, width, height, 0.0)
        seam_pred = _on_seam(boxes, tiles, width, height, EDGE_MARGIN)
        part_of = dict(zip(gt_ids or [], seam_gt, strict=True))
        for label, result, on_seam in zip(
            gt_labels or [], gt_results or [], seam_gt, strict=True
        ):
            tally[PARTS[not on_seam]].add_truth(label, result == "tp")
        for label, score, result, matched, on_seam in zip(
            labels or [],
            scores or [],
            results or [],
            matched_ids or [],
            seam_pred,
            strict=True,
        ):
            if result == "tp" and matched in part_of:
                tally[PARTS[not part_of[matched]]].add_prediction(label, score, True)
            elif result == "fp":
                tally[PARTS[not on_seam]].add_prediction(label, score, False)
    return {part: t.metrics() for part, t in tally.items()}


def add_seam_metrics(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    runs: Sequence[RunMetrics],
) -> None:
    """Sets ``seams`` (and ``seams_baseline``, the first run on the same objects) of each sliced run.

    Rotated-box comparisons get none (``POLYLINES_REASON``), logged.
    """
    base = runs[0]
    if label_type_of(samples, gt_field) is fo.Polylines:
        logger.info("No seam metrics for %r: %s", gt_field, POLYLINES_REASON)
        return
    for run in runs:
        if (run.run_info or {}).get("kind") != "sliced":
            continue
        run.seams = seam_metrics(samples, gt_field, run.field, run.eval_key)
        if run is not base:
            run.seams_baseline = seam_metrics(
                samples, gt_field, base.field, base.eval_key, grid_field=run.field
            )


def seam_view(
    samples: fo.core.collections.SampleCollection,
    run_field: str,
    gt_field: str = "ground_truth",
    *,
    kind: str = "both",
    iou: float = 0.5,
) -> fo.DatasetView:
    """The ground-truth objects on ``run_field``'s seams that it missed, or detected twice.

    An object is **missed** when no prediction of its class overlaps it at
    ``iou`` or more, and **detected twice** when two or more do (a duplicate
    that merging left). The view keeps the samples with such objects, only
    those objects in ``gt_field``, and only the predictions of ``run_field``
    that overlap them; other fields (e.g. the tile grid written with
    ``store_tiles=True``) are left whole.

    Args:
        samples: a dataset or view.
        run_field: a sliced run's field (its record gives the tile grid).
        gt_field: the ground-truth ``Detections`` field.
        kind: ``"missed"``, ``"twice"`` or ``"both"``.
        iou: box IoU at which a prediction finds an object.

    Example::

        >>> session.view = seam_view(dataset, "sliced", "ground_truth", kind="missed")  # doctest: +SKIP
    """
    if kind not in SEAM_VIEW_KINDS:
        raise ValueError(f"kind must be one of {SEAM_VIEW_KINDS}, got {kind!r}")
    if not 0 < iou <= 1:
        raise ValueError(f"iou must be in (0, 1], got {iou}")
    _check_boxes(samples, run_field)
    info = sliced_run_info(samples, run_field)
    compute_metadata(samples)  # TIFFs from their headers, never decoded
    gt, pred = f"{gt_field}.detections", f"{run_field}.detections"
    values = samples.values(
        [
            "metadata.width",
            "metadata.height",
            f"{gt}.id",
            f"{gt}.label",
            f"{gt}.bounding_box",
            f"{pred}.id",
            f"{pred}.label",
            f"{pred}.bounding_box",
        ]
    )
    gt_ids, pred_ids = [], []
    for width, height, ids, labels, boxes, p_ids, p_labels, p_boxes in zip(
        *values, strict=True
    ):
        tiles = run_grid(info, width, height)
        on_seam = _on_seam(boxes, tiles, width, height, 0.0)
        ious = box_iou(_pixels(boxes, width, height), _pixels(p_boxes, width, height))
        same = np.equal.outer(
            np.asarray(labels or [], dtype=object), np.asarray(p_labels or [], object)
        ).reshape(ious.shape)
        hits = ((ious >= iou) & same).sum(axis=1)
        wanted = {"missed": hits == 0, "twice": hits >= 2, "both": hits != 1}[kind]
        chosen = np.flatnonzero(on_seam & wanted)
        gt_ids += [ids[i] for i in chosen]
        near = (ious[chosen] > 0).any(axis=0) if len(chosen) else []
        pred_ids += [p_ids[j] for j in np.flatnonzero(near)]
    view = samples.filter_labels(gt_field, F("_id").is_in(_object_ids(gt_ids)))
    return view.filter_labels(
        run_field, F("_id").is_in(_object_ids(pred_ids)), only_matches=False
    )


def _check_boxes(samples: fo.core.collections.SampleCollection, field: str) -> None:
    """``ValueError`` for a ``Polylines`` field (``POLYLINES_REASON``)."""
    if label_type_of(samples, field) is fo.Polylines:
        raise ValueError(f"{field!r} holds rotated boxes: {POLYLINES_REASON}")


class _Tally:
    """Per-class truth counts and scored predictions of one part."""

    def __init__(self) -> None:
        self.truth: dict[str, int] = defaultdict(int)
        self.found = 0
        self.predictions: dict[str, list[tuple[float, bool]]] = defaultdict(list)

    def add_truth(self, label: str, found: bool) -> None:
        self.truth[label] += 1
        self.found += bool(found)

    def add_prediction(self, label: str, score: float | None, tp: bool) -> None:
        self.predictions[label].append((score if score is not None else 1.0, tp))

    def metrics(self) -> Metrics:
        n_truth = sum(self.truth.values())
        tp = sum(t for preds in self.predictions.values() for _, t in preds)
        fp = sum(not t for preds in self.predictions.values() for _, t in preds)
        per_class = []
        for label, count in self.truth.items():
            preds = self.predictions.get(label, [])
            scores = np.array([s for s, _ in preds], dtype=np.float64)
            matched = np.array([t for _, t in preds], dtype=bool)
            per_class.append(
                average_precision(scores, matched, np.zeros(len(preds), bool), count)
            )
        return Metrics(
            mAP=None,
            AP50=float(np.mean(per_class)) if per_class else None,
            precision=tp / (tp + fp) if tp + fp else None,
            recall=self.found / n_truth if n_truth else None,
            tp=self.found,
            fp=fp,
            fn=n_truth - self.found,
        )


def _pixels(
    boxes: Sequence[Sequence[float]] | None, width: int, height: int
) -> np.ndarray:
    """Relative ``[x, y, w, h]`` boxes -> ``xyxy`` pixels."""
    rel = np.asarray(boxes or [], dtype=np.float64).reshape(-1, 4)
    scale = np.array([width, height, width, height], dtype=np.float64)
    return np.concatenate([rel[:, :2], rel[:, :2] + rel[:, 2:]], axis=1) * scale


def _on_seam(
    boxes: Sequence[Sequence[float]] | None,
    tiles: np.ndarray,
    width: int,
    height: int,
    margin: float,
) -> np.ndarray:
    return crosses_seam(_pixels(boxes, width, height), tiles, (width, height), margin)


def _object_ids(ids: Sequence[str]) -> list[Any]:
    from bson import ObjectId

    return [ObjectId(i) for i in ids]
