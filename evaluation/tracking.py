"""Identity scores of tracked predictions against ground truth with true track ids (IDF1).

IDF1 (Ristani et al., 2016, "Performance Measures and a Data Set for
Multi-Target, Multi-Camera Tracking") asks how long each true object keeps one
predicted identity. A ground-truth object and a predicted track *co-occur* in a
frame when their boxes overlap with IoU >= ``iou``; true and predicted
identities are then paired one to one (a minimum-cost assignment) so that the
pairs co-occur in as many frames as possible. Those frames are the identity
true positives (IDTP), and

    IDF1 = 2 IDTP / (ground-truth boxes + predicted boxes)

Only tracked boxes are the tracker's output: predicted boxes without a track
id are left out (and counted in ``num_untracked``). Only frames that were
predicted are scored: with ``frame_step`` N, the other frames are left out.

Example::

    >>> gt = [FrameTracks(np.array([[0, 0, 10, 10]]), np.array([1]))] * 3
    >>> pred = [FrameTracks(np.array([[0, 0, 10, 10]]), np.array([7]))] * 3
    >>> identity_scores(gt, pred).idf1
    1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import fiftyone as fo
import numpy as np
from scipy.optimize import linear_sum_assignment

#: IoU at which a prediction and a ground-truth box count as the same object.
DEFAULT_IOU = 0.5


@dataclass
class FrameTracks:
    """The boxes of one frame and their track ids.

    Attributes:
        boxes: ``(N, 4)`` ``xyxy`` boxes (any unit, the same for truth and
            predictions; FiftyOne's relative boxes work).
        track_ids: ``(N,)`` ids; ``-1`` for a box without one.
    """

    boxes: np.ndarray
    track_ids: np.ndarray

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        self.track_ids = np.asarray(self.track_ids, dtype=np.int64).reshape(-1)


@dataclass(frozen=True)
class IdentityScores:
    """IDF1 and its parts.

    Attributes:
        idf1: ``2 IDTP / (num_gt + num_pred)``; ``None`` with no boxes at all.
        idp: identity precision ``IDTP / num_pred``.
        idr: identity recall ``IDTP / num_gt``.
        idtp: frames in which a true object carries its paired predicted id.
        num_gt: ground-truth boxes in the scored frames.
        num_pred: tracked predicted boxes in the scored frames.
        num_untracked: predicted boxes without a track id (not scored).
        num_frames: frames scored.
        num_true_ids: distinct ground-truth identities.
        num_pred_ids: distinct predicted track ids.
        id_switches: times a true object's co-occurring predicted id differs
            from the one it had the last time it co-occurred with any.
    """

    idf1: float | None
    idp: float | None
    idr: float | None
    idtp: int
    num_gt: int
    num_pred: int
    num_untracked: int
    num_frames: int
    num_true_ids: int
    num_pred_ids: int
    id_switches: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy."""
        return asdict(self)


def identity_scores(
    gt_frames: Sequence[FrameTracks],
    pred_frames: Sequence[FrameTracks],
    iou: float = DEFAULT_IOU,
) -> IdentityScores:
    """IDF1 of predicted tracks against true tracks, frame by frame (see the module).

    Args:
        gt_frames: the ground truth of each scored frame.
        pred_frames: the predictions of the same frames, in the same order.
        iou: the co-occurrence threshold.
    """
    if len(gt_frames) != len(pred_frames):
        raise ValueError(
            f"{len(gt_frames)} ground-truth frames but {len(pred_frames)} predicted"
        )
    pairs: dict[tuple[int, int], int] = {}
    last_id: dict[int, int] = {}
    switches = 0
    num_gt = num_pred = num_untracked = 0
    true_ids: set[int] = set()
    pred_ids: set[int] = set()
    for gt, pred in zip(gt_frames, pred_frames, strict=True):
        num_gt += len(gt.boxes)
        tracked = pred.track_ids >= 0
        num_pred += int(tracked.sum())
        num_untracked += int((~tracked).sum())
        true_ids.update(gt.track_ids.tolist())
        pred_ids.update(pred.track_ids[tracked].tolist())
        overlaps = _box_iou(gt.boxes, pred.boxes[tracked]) >= iou
        ids = pred.track_ids[tracked]
        for g, p in zip(*np.nonzero(overlaps), strict=True):
            key = (int(gt.track_ids[g]), int(ids[p]))
            pairs[key] = pairs.get(key, 0) + 1
        switches += _count_switches(gt.track_ids, ids, overlaps, last_id)
    idtp = _best_pairing(pairs)
    total = num_gt + num_pred
    return IdentityScores(
        idf1=2 * idtp / total if total else None,
        idp=idtp / num_pred if num_pred else None,
        idr=idtp / num_gt if num_gt else None,
        idtp=idtp,
        num_gt=num_gt,
        num_pred=num_pred,
        num_untracked=num_untracked,
        num_frames=len(gt_frames),
        num_true_ids=len(true_ids),
        num_pred_ids=len(pred_ids),
        id_switches=switches,
    )


def collection_identity_scores(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    pred_field: str,
    iou: float = DEFAULT_IOU,
) -> IdentityScores:
    """IDF1 of a video collection's frame field against its ground truth.

    Track ids are ``fo.Detection.index`` on both sides (FiftyOne's convention,
    which the App draws as trajectories). Frames where ``pred_field`` has no
    value (not predicted, e.g. skipped by ``frame_step``) are left out; each
    video's ids are its own.

    Args:
        samples: a video dataset or view.
        gt_field: frame field of the ground truth, with or without ``frames.``.
        pred_field: frame field of the tracked predictions.
        iou: co-occurrence threshold.

    Example::

        >>> scores = collection_identity_scores(dataset, "ground_truth", "tracked")  # doctest: +SKIP
        >>> scores.idf1  # doctest: +SKIP
        0.83
    """
    gt_field, pred_field = _frame_path(gt_field), _frame_path(pred_field)
    gt_values, pred_values = samples.values(
        [f"{gt_field}.detections", f"{pred_field}.detections"]
    )
    gt_frames, pred_frames = [], []
    for video, (gt_video, pred_video) in enumerate(
        zip(gt_values, pred_values, strict=True)
    ):
        for gt, pred in zip(gt_video or [], pred_video or [], strict=True):
            if pred is None:
                continue
            # Ids are per video: offset them so two videos never share one.
            gt_frames.append(_frame_tracks(gt or [], video))
            pred_frames.append(_frame_tracks(pred, video))
    return identity_scores(gt_frames, pred_frames, iou)


def _frame_path(field_name: str) -> str:
    return field_name if field_name.startswith("frames.") else f"frames.{field_name}"


def _frame_tracks(detections: Sequence[fo.Detection], video: int) -> FrameTracks:
    boxes = [
        [x, y, x + w, y + h] for x, y, w, h in (d.bounding_box for d in detections)
    ]
    offset = video << 32
    ids = [-1 if d.index is None else int(d.index) + offset for d in detections]
    return FrameTracks(np.array(boxes).reshape(-1, 4), np.array(ids))


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` IoU of ``xyxy`` boxes."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _count_switches(
    true_ids: np.ndarray,
    pred_ids: np.ndarray,
    overlaps: np.ndarray,
    last_id: dict[int, int],
) -> int:
    """Identity switches in one frame; updates ``last_id`` (true id -> predicted id)."""
    switches = 0
    for g, true_id in enumerate(true_ids.tolist()):
        matches = np.flatnonzero(overlaps[g])
        if not len(matches):
            continue
        # With several candidates, keep the one it had before if present.
        candidates = pred_ids[matches].tolist()
        previous = last_id.get(true_id)
        current = previous if previous in candidates else candidates[0]
        if previous is not None and current != previous:
            switches += 1
        last_id[true_id] = current
    return switches


def _best_pairing(pairs: dict[tuple[int, int], int]) -> int:
    """The most co-occurring frames over one-to-one pairings of true and predicted ids."""
    if not pairs:
        return 0
    true_ids = sorted({t for t, _ in pairs})
    pred_ids = sorted({p for _, p in pairs})
    rows = {t: i for i, t in enumerate(true_ids)}
    cols = {p: j for j, p in enumerate(pred_ids)}
    counts = np.zeros((len(true_ids), len(pred_ids)), dtype=np.int64)
    for (t, p), n in pairs.items():
        counts[rows[t], cols[p]] = n
    r, c = linear_sum_assignment(counts, maximize=True)
    return int(counts[r, c].sum())
