"""Sliced (or baseline) inference on the frames of video samples, with optional tracking.

``VideoRun`` is the ``InferenceRun`` of video collections: the same checks,
model loading, run record and summary, but it labels ``frames.<label_field>``.
For each video it decodes the frames once, in order (``slicer.read_frames``,
never more than one frame in memory), predicts on the frames of the range
(``VideoOptions``: every ``frame_step``-th frame from ``first_frame`` to
``last_frame``), links the merged detections of consecutive labelled frames
into tracks when a tracker is chosen (``slicer.Tracker``; the track id goes
into ``fo.Detection.index``), and queues each frame's ``fo.Detections`` for
``FrameWriter``, which writes them in batches.

Safety, as for images:

- ``skip_existing`` labels only the frames of the range that have no value in
  the field, so an interrupted run resumes at the first unlabelled frame of
  each video. With a tracker, the labels already stored are fed to it again
  (in order, without predicting), so the tracks continue as if the run had
  never stopped.
- a video that cannot be opened, or that ends before a frame of its range
  (truncated, frames missing), is skipped and reported in ``summary.errors``
  and the run record; the labels this run wrote to its frames are removed,
  and the run goes on with the next video.
- ``overwrite`` clears the field on every frame of a video before labelling
  it, so a video's field never mixes two runs.
- progress counts frames as well as videos.

Example::

    import sliced_inference as si

    summary = si.apply_sliced_model(
        video_dataset, "models/small-objects-det.pt", "sliced",
        frame_step=2, tracker="bytetrack",
    )
    print(summary.frames_processed, summary.frames_per_second)
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import fiftyone as fo
import fiftyone.core.utils as fou
import numpy as np

from ..slicer import (
    ConfigError,
    ModelOptions,
    PredictOptions,
    TileModel,
    Tracker,
    VideoError,
    VideoOptions,
    read_frames,
    video_info,
)
from ..slicer.models import is_rotated
from .frame_writer import FrameWriter
from .label_fields import check_label_field
from .label_runs import labelled_videos
from .labels import class_id_map, to_detections
from .run import InferenceRun, InferenceSummary

logger = logging.getLogger(__name__)


@dataclass
class VideoSummary(InferenceSummary):
    """What a video run did (``processed``, ``skipped`` and ``errors`` count videos).

    Attributes:
        frames_total: frames the run had to label.
        frames_processed: frames labelled.
        frames_skipped: frames of the range that already had labels
            (``skip_existing``).
        frames_per_second: ``frames_processed / seconds``.
    """

    frames_total: int = 0
    frames_processed: int = 0
    frames_skipped: int = 0
    frames_per_second: float | None = None


@dataclass
class _VideoPlan:
    """One video's work: the frames of its range, which to label, what is known."""

    numbers: list[int] = field(default_factory=list)
    todo: set[int] = field(default_factory=set)
    metadata: fo.VideoMetadata | None = None
    new_metadata: bool = False
    error: str | None = None


class VideoRun(InferenceRun):
    """An inference run over the frames of a video collection.

    Args:
        samples: a dataset or view of videos.
        model: anything ``cached_model`` accepts.
        label_field: the frame field to write (``frames.<label_field>``).
        options: ``SliceOptions`` (sliced) or ``PredictOptions`` (whole frames).
        model_options: how the model is loaded and run.
        video_options: frame range, step and tracker.
        **keywords: as ``InferenceRun`` (``overwrite``, ``skip_existing``,
            ``tags``, ``token``, ``shard``, ``run_id``).

    Example::

        >>> run = VideoRun(videos, "models/small-objects-det.pt", "sliced", SliceOptions(), video_options=VideoOptions(frame_step=5))  # doctest: +SKIP
        >>> run.execute().frames_processed  # doctest: +SKIP
    """

    media_type = "video"

    def __init__(
        self,
        samples: fo.core.collections.SampleCollection,
        model: Any,
        label_field: str,
        options: PredictOptions,
        model_options: ModelOptions | None = None,
        video_options: VideoOptions | None = None,
        **keywords: Any,
    ) -> None:
        if keywords.get("store_tiles"):
            raise ConfigError(
                "store_tiles applies to image runs: a video run writes frame "
                "labels only"
            )
        super().__init__(
            samples, model, label_field, options, model_options, **keywords
        )
        self.video_options = video_options or VideoOptions()
        self.summary = VideoSummary(label_field, self.kind)
        self._plans: dict[str, _VideoPlan] = {}
        self._class_ids: dict[str, int] = {}

    def _samples_to_label(
        self, target: fo.DatasetView, scope: fo.DatasetView
    ) -> tuple[list[str], list[str], list[int | None]]:
        """Ids and paths of the videos with frames to label, checked under the claim."""
        check_label_field(
            self.samples, self.label_field, self.overwrite, self.skip_existing
        )
        ids, paths = scope.values(["id", "filepath"])
        metadata = dict(zip(ids, scope.values("metadata"), strict=True))
        labelled = self._labelled_frames(scope)
        # Videos of the target with labels now (whether a run replaces or adds
        # to the field's labels), decided on the dataset: a view may hide them.
        self._labelled = set(
            labelled_videos(self.dataset, self.label_field).values("id")
        ) & set(target.values("id"))
        todo_ids, todo_paths = [], []
        for sample_id, path in zip(ids, paths, strict=True):
            plan = self._plan(path, metadata[sample_id], labelled.get(sample_id, set()))
            if plan.error is None and not plan.todo:
                self.summary.skipped += 1
                continue
            self._plans[sample_id] = plan
            todo_ids.append(sample_id)
            todo_paths.append(path)
        self.summary.frames_total = sum(len(p.todo) for p in self._plans.values())
        return todo_ids, todo_paths, [None] * len(todo_ids)

    def _check_model_labels(self, tile_model: TileModel) -> None:
        if is_rotated(tile_model):
            raise ConfigError(
                "oriented-box (OBB) models label images: a video run writes "
                "frames.<field> as Detections, with track ids"
            )

    def _declare_field(self, tile_model: TileModel) -> None:
        if not self.dataset.has_frame_field(self.label_field):
            self.dataset.add_frame_field(
                self.label_field,
                fo.EmbeddedDocumentField,
                embedded_doc_type=fo.Detections,
            )

    def _writer(self) -> FrameWriter:
        return FrameWriter(self.dataset, self.label_field, self.tags)

    def _label_samples(
        self,
        samples: list[tuple[str, str, int | None]],
        tile_model: TileModel,
        writer: FrameWriter,
        checkpoint: Callable[[], None],
        progress_bar: bool | None,
    ) -> Generator[tuple[float, str], None, None]:
        self._class_ids = class_id_map(tile_model.class_names)
        total = max(self.summary.frames_total, 1)
        yield (
            0.0,
            (f"{len(samples)} videos, {self.summary.frames_total} frames to process"),
        )
        done = 0
        with fou.ProgressBar(
            total=self.summary.frames_total, progress=progress_bar
        ) as bar:
            for index, (sample_id, path, _) in enumerate(samples, start=1):
                plan = self._plans[sample_id]
                labelled = 0
                for _ in self._label_video(sample_id, path, plan, tile_model, writer):
                    labelled += 1
                    done += 1
                    bar.update()
                    if writer.due():
                        checkpoint()
                    yield (
                        done / total,
                        (
                            f"{done}/{self.summary.frames_total} frames, "
                            f"video {index}/{len(samples)}"
                        ),
                    )
                # A video that failed leaves its frames undone: count them.
                left = len(plan.todo) - labelled
                if left:
                    done += left
                    bar.update(left)
                    yield done / total, f"video {index}/{len(samples)} skipped"

    def _label_video(
        self,
        sample_id: str,
        path: str,
        plan: _VideoPlan,
        tile_model: TileModel,
        writer: FrameWriter,
    ) -> Generator[int, None, None]:
        """Labels one video, yielding each frame number as its labels are queued."""
        if plan.error is not None:
            self._fail(sample_id, path, VideoError(plan.error))
            return
        options = self.video_options
        tracker = Tracker(options) if options.tracker else None
        known: dict[int, fo.Detections] = {}
        numbers = sorted(plan.todo)
        if tracker is not None:
            # Tracks need every frame of the range, in order: labels already
            # stored are replayed rather than predicted again.
            numbers = plan.numbers
            if len(plan.todo) < len(plan.numbers):
                known = self._stored_labels(sample_id)
        if self.overwrite and self.dataset.has_frame_field(self.label_field):
            self.dataset.select(sample_id).clear_frame_field(self.label_field)
        pixels = set(plan.todo)
        if tracker is not None and tracker.needs_frames:
            pixels = set(numbers)
        width = int(plan.metadata.frame_width)
        height = int(plan.metadata.frame_height)
        labelled = found = 0
        try:
            for number, rgb in read_frames(path, numbers, pixels):
                if number in plan.todo:
                    height, width = rgb.shape[:2]
                    preds = self.predict(rgb, tile_model)
                    detections = to_detections(preds, width, height)
                else:
                    detections = known.get(number, fo.Detections())
                if tracker is not None:
                    _set_track_ids(
                        detections,
                        tracker.update(
                            *self.track_arrays(detections, width, height), rgb
                        ),
                    )
                if number not in plan.todo:
                    continue
                writer.add(sample_id, number, detections)
                labelled += 1
                self.summary.frames_processed += 1
                found += len(detections.detections)
                yield number
        except VideoError as error:
            # Skipped and reported: nothing this run wrote stays on the video.
            writer.discard(sample_id)
            self.summary.frames_processed -= labelled
            self._fail(sample_id, path, error)
            return
        self.summary.num_detections += found
        writer.finish(sample_id, plan.metadata if plan.new_metadata else None)
        self.summary.processed += 1

    def _record_common(self, tile_model: TileModel) -> dict[str, Any]:
        common = super()._record_common(tile_model)
        common["media_type"] = "video"
        common["settings"].update(self.video_options.to_dict())
        return common

    def _record_stats(self, total: int, started_at: str) -> dict[str, Any]:
        return {
            **super()._record_stats(total, started_at),
            "frames_total": self.summary.frames_total,
            "frames_processed": 0,
            "frames_skipped": self.summary.frames_skipped,
            "frames_per_second": None,
        }

    def _progress_stats(self, started: float) -> dict[str, Any]:
        seconds = time.perf_counter() - started
        fps = self.summary.frames_processed / seconds if seconds > 0 else None
        self.summary.frames_per_second = fps
        return {
            **super()._progress_stats(started),
            "frames_processed": self.summary.frames_processed,
            "frames_per_second": fps,
        }

    def _fail(self, sample_id: str, path: str, error: Exception) -> None:
        self.summary.errors[sample_id] = str(error)
        self._error_paths[sample_id] = path

    def _plan(
        self, path: str, metadata: fo.VideoMetadata | None, labelled: set[int]
    ) -> _VideoPlan:
        """The frames of one video to label (an error instead when unreadable)."""
        plan = _VideoPlan(metadata=metadata)
        if metadata is None or not metadata.total_frame_count:
            try:
                plan.metadata = video_metadata(path)
            except (VideoError, OSError, ValueError) as error:
                plan.error = str(error)
                return plan
            plan.new_metadata = True
        numbers = self.video_options.frame_numbers(int(plan.metadata.total_frame_count))
        plan.numbers = list(numbers)
        if self.skip_existing:
            plan.todo = set(plan.numbers) - labelled
            self.summary.frames_skipped += len(plan.numbers) - len(plan.todo)
        else:
            plan.todo = set(plan.numbers)
        if not plan.numbers:
            plan.error = (
                f"video {path} has {plan.metadata.total_frame_count} frames: none "
                f"in the range {self.video_options.first_frame}-"
                f"{self.video_options.last_frame}"
            )
        return plan

    def _labelled_frames(
        self, scope: fo.core.collections.SampleCollection
    ) -> dict[str, set[int]]:
        """Sample id -> numbers of the frames that have a value in the field."""
        if not self.skip_existing:
            return {}
        view = labelled_videos(scope, self.label_field)
        ids, numbers = view.values(["id", "frames.frame_number"])
        return {i: set(n or []) for i, n in zip(ids, numbers, strict=True)}

    def _stored_labels(self, sample_id: str) -> dict[int, fo.Detections]:
        """The labels already in the field of one video, by frame number."""
        view = self.dataset.select(sample_id)
        numbers, labels = view.values(
            ["frames.frame_number", f"frames.{self.label_field}"]
        )
        return {
            n: dets
            for n, dets in zip(numbers[0] or [], labels[0] or [], strict=True)
            if dets is not None
        }

    def track_arrays(
        self, detections: fo.Detections, width: int, height: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What the tracker gets for a frame: pixel boxes, scores, class ids.

        Read from the ``fo.Detections`` as stored, so a resumed run feeds the
        tracker exactly what the first run fed it.
        """
        dets = detections.detections
        rel = np.array([d.bounding_box for d in dets], dtype=np.float64).reshape(-1, 4)
        rel[:, 2:] += rel[:, :2]
        boxes = rel * np.array([width, height, width, height], dtype=np.float64)
        scores = np.array(
            [1.0 if d.confidence is None else d.confidence for d in dets], np.float64
        )
        for label in {str(d.label) for d in dets} - set(self._class_ids):
            self._class_ids[label] = max(self._class_ids.values(), default=-1) + 1
        ids = [self._class_ids[str(d.label)] for d in dets]
        return boxes, scores, np.array(ids, dtype=np.int64)


def video_metadata(path: str) -> fo.VideoMetadata:
    """A video's metadata: FiftyOne's (ffprobe), else what OpenCV reads.

    Raises:
        VideoError: the file cannot be opened or holds no frames.
    """
    info = video_info(path)  # a missing, empty or unreadable file fails here
    if shutil.which("ffprobe"):
        try:
            metadata = fo.VideoMetadata.build_for(path)
        except Exception as error:  # ffprobe's errors are plain exceptions
            reason = str(error).strip().splitlines()[-1]
            raise VideoError(f"ffprobe cannot read video {path}: {reason}") from error
    else:
        _warn_no_ffprobe()
        metadata = fo.VideoMetadata(
            frame_width=info.width,
            frame_height=info.height,
            frame_rate=info.frame_rate,
            total_frame_count=info.frame_count,
        )
    if not metadata.total_frame_count or not metadata.frame_width:
        raise VideoError(f"video {path} holds no frames")
    return metadata


def _set_track_ids(detections: fo.Detections, track_ids: np.ndarray) -> None:
    for detection, track_id in zip(detections.detections, track_ids, strict=True):
        detection.index = int(track_id) if track_id >= 0 else None


def _warn_no_ffprobe() -> None:
    if not getattr(_warn_no_ffprobe, "done", False):
        logger.warning(
            "ffprobe not found: video metadata read with OpenCV (frame size, rate "
            "and count only). FiftyOne needs ffprobe for video: apt-get install ffmpeg"
        )
        _warn_no_ffprobe.done = True


def video_keywords(
    samples: fo.core.collections.SampleCollection, keywords: dict[str, Any]
) -> dict[str, Any]:
    """Takes the ``VideoOptions`` keywords out of ``keywords`` (in place).

    Raises:
        ConfigError: a frame or tracker option given for a collection of images.
    """
    video = {k: keywords.pop(k) for k in VideoOptions.settings() if k in keywords}
    given = {k: v for k, v in video.items() if v is not None and v != _DEFAULTS[k]}
    if given and samples.media_type != "video":
        raise ConfigError(
            f"{', '.join(sorted(given))}: frame and tracker options apply to video "
            f"collections; this one's media type is {samples.media_type!r}"
        )
    return video


_DEFAULTS = {name: s.default for name, s in VideoOptions.settings().items()}
