"""Writes finished samples to the database in batches, never half a sample."""

from __future__ import annotations

import time

import fiftyone as fo

#: Samples written per database batch (a batch is also written after
#: ``WRITE_INTERVAL_S`` seconds, so slow models lose little when interrupted).
WRITE_BATCH_SIZE = 16
WRITE_INTERVAL_S = 30.0


class BatchWriter:
    """Collects finished samples and writes them with one ``set_values`` per batch.

    Args:
        dataset: the dataset written to.
        label_field: the field the labels go to.
        tags: tags added to each labelled sample.
        overwrite: a sample that failed gets its old value cleared, so the
            field never mixes two runs.

    Example::

        >>> writer = BatchWriter(dataset, "sliced", [], overwrite=False)  # doctest: +SKIP
        >>> writer.add(sample_id, fo.Detections(), None)  # doctest: +SKIP
        >>> writer.flush()  # doctest: +SKIP
    """

    def __init__(
        self, dataset: fo.Dataset, label_field: str, tags: list[str], overwrite: bool
    ) -> None:
        self.dataset = dataset
        self.label_field = label_field
        self.tags = tags
        self.overwrite = overwrite
        self.labels: dict[str, fo.Detections | fo.Polylines | None] = {}
        self.metadata: dict[str, fo.ImageMetadata] = {}
        self.last_flush = time.monotonic()

    def add(
        self,
        sample_id: str,
        labels: fo.Detections | fo.Polylines,
        metadata: fo.ImageMetadata | None,
    ) -> None:
        """Queues one finished sample (and its metadata when it had none)."""
        self.labels[sample_id] = labels
        if metadata is not None:
            self.metadata[sample_id] = metadata

    def failed(self, sample_id: str) -> None:
        """Marks a sample whose image could not be read."""
        # With overwrite, clear the old value: the field must not mix two runs.
        if self.overwrite and self.dataset.has_field(self.label_field):
            self.labels[sample_id] = None

    def due(self) -> bool:
        """Whether a batch is full or the last write is old enough to write again."""
        return (
            len(self.labels) >= WRITE_BATCH_SIZE
            or time.monotonic() - self.last_flush >= WRITE_INTERVAL_S
        )

    def flush(self) -> None:
        """Writes what is queued (labels, metadata, tags) and empties the queue."""
        self.last_flush = time.monotonic()
        if not self.labels and not self.metadata:
            return
        if self.metadata:
            self.dataset.set_values("metadata", self.metadata, key_field="id")
        if self.labels:
            self.dataset.set_values(self.label_field, self.labels, key_field="id")
            labelled = [sid for sid, dets in self.labels.items() if dets is not None]
            if self.tags and labelled:
                self.dataset.select(labelled).tag_samples(self.tags)
        self.labels, self.metadata = {}, {}
