"""Writes finished samples to the database in batches, never half a sample."""

from __future__ import annotations

import time

import fiftyone as fo

from .sample_scope import dataset_samples

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
        tiles_field: where each sample's tile grid goes (``fo.Polylines``),
            written with its labels; ``None`` writes none.

    A sample is written only once it is finished (labels, its tiles and, when
    it had none, its metadata): nothing is written for a sample that failed,
    so an ``overwrite`` run keeps the previous labels of an image it could not
    read.

    Example::

        >>> writer = BatchWriter(dataset, "sliced", [])  # doctest: +SKIP
        >>> writer.add(sample_id, fo.Detections(), None)  # doctest: +SKIP
        >>> writer.flush()  # doctest: +SKIP
    """

    def __init__(
        self,
        dataset: fo.Dataset,
        label_field: str,
        tags: list[str],
        tiles_field: str | None = None,
    ) -> None:
        self.dataset = dataset
        self.label_field = label_field
        self.tags = tags
        self.tiles_field = tiles_field
        self.labels: dict[str, fo.Detections | fo.Polylines] = {}
        self.tiles: dict[str, fo.Polylines | None] = {}
        self.metadata: dict[str, fo.ImageMetadata] = {}
        self.last_flush = time.monotonic()

    def add(
        self,
        sample_id: str,
        labels: fo.Detections | fo.Polylines,
        metadata: fo.ImageMetadata | None,
        tiles: fo.Polylines | None = None,
    ) -> None:
        """Queues one finished sample (its metadata when it had none, its tiles if kept)."""
        self.labels[sample_id] = labels
        if self.tiles_field is not None:
            self.tiles[sample_id] = tiles
        if metadata is not None:
            self.metadata[sample_id] = metadata

    def due(self) -> bool:
        """Whether a batch is full or the last write is old enough to write again."""
        return (
            len(self.labels) >= WRITE_BATCH_SIZE
            or time.monotonic() - self.last_flush >= WRITE_INTERVAL_S
        )

    def flush(self) -> None:
        """Writes what is queued (labels, tiles, metadata, tags) and empties the queue."""
        self.last_flush = time.monotonic()
        if not self.labels and not self.metadata:
            return
        if self.metadata:
            self.dataset.set_values("metadata", self.metadata, key_field="id")
        if self.labels:
            self.dataset.set_values(self.label_field, self.labels, key_field="id")
            if self.tags:
                # dataset.select() sees only the active group slice.
                samples = dataset_samples(self.dataset)
                samples.select(list(self.labels)).tag_samples(self.tags)
        if self.tiles:
            self.dataset.set_values(self.tiles_field, self.tiles, key_field="id")
        self.labels, self.metadata, self.tiles = {}, {}, {}
