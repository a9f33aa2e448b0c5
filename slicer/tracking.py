"""Track ids for the merged detections of each video frame, with Ultralytics' trackers.

``Tracker`` feeds Ultralytics' ``BYTETracker`` or ``BOTSORT`` (the trackers
behind ``YOLO.track``) with one frame's detections at a time and returns, for
each detection, the id of the track it joined, or ``-1`` when it joined none
(a detection that starts a track is confirmed on the next frame, as in
Ultralytics). The trackers take a Results-like object (``xywh``, ``conf``,
``cls``, boolean indexing): ``TrackerInput`` is that object for plain arrays.

Why Ultralytics' trackers: on the generated drone video (``bench.video``) their
ByteTrack reached a higher IDF1 than Roboflow's ``trackers`` ByteTrack (the
successor of supervision's), at a cost per frame that is small next to sliced
inference; BoT-SORT adds camera-motion compensation for moving cameras.

Example::

    >>> import numpy as np
    >>> tracker = Tracker(VideoOptions(tracker="bytetrack"))
    >>> boxes = np.array([[10, 10, 30, 30]], np.float64)
    >>> [tracker.update(boxes + 2 * i, np.array([0.9]), np.array([1])).tolist() for i in range(2)]
    [[1], [1]]
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from .errors import ConfigError
from .options import VideoOptions

#: Settings Ultralytics' trackers need that runs do not expose (ReID needs a
#: second model, which would be downloaded).
_FIXED = {
    "fuse_score": True,
    "with_reid": False,
    "proximity_thresh": 0.5,
    "appearance_thresh": 0.8,
    "model": "auto",
}


class TrackerInput:
    """One frame's detections as Ultralytics' trackers read them.

    Args:
        boxes: ``(N, 4)`` ``xyxy`` pixel boxes.
        scores: ``(N,)`` confidences.
        class_ids: ``(N,)`` class ids.
    """

    def __init__(
        self, boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray
    ) -> None:
        self.xyxy = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        self.conf = np.asarray(scores, dtype=np.float64).reshape(-1)
        self.cls = np.asarray(class_ids, dtype=np.float64).reshape(-1)

    @property
    def xywh(self) -> np.ndarray:
        """Centre x, centre y, width, height."""
        xy = (self.xyxy[:, :2] + self.xyxy[:, 2:]) / 2
        return np.concatenate([xy, self.xyxy[:, 2:] - self.xyxy[:, :2]], axis=1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index: Any) -> TrackerInput:
        return TrackerInput(self.xyxy[index], self.conf[index], self.cls[index])


class Tracker:
    """One video's tracker: call ``update`` once per labelled frame, in order.

    Args:
        options: the run's ``VideoOptions`` (``tracker`` must be set).

    Raises:
        ConfigError: ``options.tracker`` is ``None``.
    """

    def __init__(self, options: VideoOptions) -> None:
        from ultralytics.trackers import BOTSORT, BYTETracker

        if options.tracker is None:
            raise ConfigError("no tracker chosen (tracker=None)")
        settings = {
            **_FIXED,
            "tracker_type": options.tracker,
            "gmc_method": options.gmc_method,
            **options.tracker_settings(),
        }
        if settings["gmc_method"] == "none":
            settings["gmc_method"] = None  # what Ultralytics' GMC takes for "off"
        args = SimpleNamespace(**settings)
        self.name = options.tracker
        self._tracker = (
            BOTSORT(args) if options.tracker == "botsort" else BYTETracker(args)
        )
        #: Whether ``update`` needs the frame (BoT-SORT's motion compensation).
        self.needs_frames = options.tracker == "botsort" and args.gmc_method is not None

    def update(
        self,
        boxes: np.ndarray,
        scores: np.ndarray,
        class_ids: np.ndarray,
        frame_rgb: np.ndarray | None = None,
    ) -> np.ndarray:
        """The track id of each detection of the next frame (``-1``: none).

        Args:
            boxes: ``(N, 4)`` ``xyxy`` pixel boxes.
            scores: ``(N,)`` confidences.
            class_ids: ``(N,)`` class ids.
            frame_rgb: the frame, needed when ``needs_frames``.
        """
        detections = TrackerInput(boxes, scores, class_ids)
        if self.needs_frames and frame_rgb is None:
            raise ConfigError(f"{self.name} with motion compensation needs the frame")
        frame = (
            None if frame_rgb is None else np.ascontiguousarray(frame_rgb[..., ::-1])
        )
        tracked = self._tracker.update(detections, frame)
        ids = np.full(len(detections), -1, dtype=np.int64)
        if len(tracked):
            # Rows are [x1, y1, x2, y2, track_id, score, cls, detection index].
            ids[tracked[:, -1].astype(np.int64)] = tracked[:, 4].astype(np.int64)
        return ids
