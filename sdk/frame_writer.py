"""Writes finished video frames to a frame field in batches (``frames.<field>``)."""

from __future__ import annotations

import time

import fiftyone as fo

#: Frames written per database batch (or after ``WRITE_INTERVAL_S`` seconds).
FRAME_BATCH_SIZE = 64
WRITE_INTERVAL_S = 30.0


class FrameWriter:
    """Collects labelled frames and writes them with one ``set_values`` per batch.

    Frame labels are queued as ``{sample id: {frame number: Detections}}``, the
    dict form FiftyOne's ``set_values`` writes to frame fields in one call
    (frames that do not exist yet are created). Memory holds one batch.

    Args:
        dataset: the dataset written to.
        label_field: the frame field (without ``frames.``).
        tags: tags added to each video once all its frames are labelled.

    Example::

        >>> writer = FrameWriter(dataset, "sliced", [])  # doctest: +SKIP
        >>> writer.add(sample_id, 1, fo.Detections())  # doctest: +SKIP
        >>> writer.flush()  # doctest: +SKIP
    """

    def __init__(self, dataset: fo.Dataset, label_field: str, tags: list[str]) -> None:
        self.dataset = dataset
        self.path = f"frames.{label_field}"
        self.tags = tags
        self.frames: dict[str, dict[int, fo.Detections | None]] = {}
        self.metadata: dict[str, fo.VideoMetadata] = {}
        self.finished: list[str] = []
        # Frames written per unfinished video, so a failed one can be undone.
        self.written: dict[str, set[int]] = {}
        self.queued = 0
        self.last_flush = time.monotonic()

    def add(self, sample_id: str, frame_number: int, detections: fo.Detections) -> None:
        """Queues the labels of one frame."""
        self.frames.setdefault(sample_id, {})[int(frame_number)] = detections
        self.queued += 1

    def finish(self, sample_id: str, metadata: fo.VideoMetadata | None) -> None:
        """Marks a video done: its metadata (when it had none) and tags go out next."""
        if metadata is not None:
            self.metadata[sample_id] = metadata
        self.finished.append(sample_id)
        self.written.pop(sample_id, None)

    def discard(self, sample_id: str) -> None:
        """Forgets a failed video: drops its queued frames and removes the
        labels already written to its frames (now)."""
        self.queued -= len(self.frames.pop(sample_id, {}))
        written = self.written.pop(sample_id, set())
        if written:
            self.dataset.set_values(
                self.path, {sample_id: dict.fromkeys(written)}, key_field="id"
            )

    def due(self) -> bool:
        """Whether a batch is full or the last write is old enough to write again."""
        return (
            self.queued >= FRAME_BATCH_SIZE
            or time.monotonic() - self.last_flush >= WRITE_INTERVAL_S
        )

    def flush(self) -> None:
        """Writes the queued frames, metadata and tags, and empties the queue."""
        self.last_flush = time.monotonic()
        if self.frames:
            self.dataset.set_values(self.path, self.frames, key_field="id")
            for sample_id, frames in self.frames.items():
                if sample_id not in self.finished:
                    self.written.setdefault(sample_id, set()).update(frames)
        if self.metadata:
            self.dataset.set_values("metadata", self.metadata, key_field="id")
        if self.tags and self.finished:
            self.dataset.select(self.finished).tag_samples(self.tags)
        self.frames, self.metadata, self.finished = {}, {}, []
        self.queued = 0
