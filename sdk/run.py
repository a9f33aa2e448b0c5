"""One inference run over a collection: the loop that reads, predicts, writes and records.

``InferenceRun`` is built by ``inference.sliced_run`` / ``inference.baseline_run``
(or the operators) with validated options, and started with ``execute`` (to the
end) or ``iter_execute`` (a generator of progress, for the App).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Generator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import fiftyone as fo
import fiftyone.core.utils as fou

from .._version import __version__
from ..slicer import (
    ConfigError,
    ImageError,
    ModelOptions,
    Predictions,
    PredictOptions,
    SliceOptions,
    TileModel,
    load_image,
    predict_full_image,
    predict_sliced,
)
from ..slicer.models.base import settings_in_effect
from ..slicer.sliced import check_classes
from .batch_writer import BatchWriter
from .label_fields import check_label_field
from .labels import to_detections
from .model_cache import cached_model, describe_model
from .run_records import MAX_STORED_ERRORS, RunRecorder, utc_now
from .shards import shard_view

logger = logging.getLogger(__name__)

#: A progress callback: ``(fraction done in [0, 1], label)``.
ProgressCallback = Callable[[float, str], None]


@dataclass
class InferenceSummary:
    """What a run did.

    Attributes:
        label_field: the field written.
        kind: ``"sliced"`` or ``"baseline"``.
        processed: samples labelled.
        skipped: samples left alone because they already had labels
            (``skip_existing``).
        errors: sample id -> short message, for samples whose image could not
            be read (those samples were not labelled).
        num_detections: detections written.
        seconds: wall time of the run after the model was loaded (reading
            images, inference, merging, writing labels).
        images_per_second: ``processed / seconds``.
    """

    label_field: str
    kind: str
    processed: int = 0
    skipped: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    num_detections: int = 0
    seconds: float = 0.0
    images_per_second: float | None = None

    @property
    def num_errors(self) -> int:
        """Samples that failed (see ``errors``)."""
        return len(self.errors)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy (used as the operators' result)."""
        return {**asdict(self), "num_errors": self.num_errors}


class InferenceRun:
    """One checked inference run over a collection; start it with ``execute``.

    The constructor checks the label field and the collection, so every usage
    error surfaces before the model loads or anything is written.

    Args:
        samples: a dataset or view of images.
        model: anything ``cached_model`` accepts.
        label_field: the ``Detections`` field to write.
        options: ``SliceOptions`` for a sliced run, ``PredictOptions`` for a
            whole-image (baseline) run.
        model_options: how the model is loaded and run.
        overwrite: replace the field's values on these samples if it exists.
        skip_existing: only label samples whose field is empty.
        tags: tags added to every sample labelled.
        token: Hugging Face token (never recorded).
        shard: ``(index, count)``: process only that shard of ``samples``.
        run_id: shared by all shards of one run.

    Example::

        >>> run = InferenceRun(dataset, "models/small-objects-det.pt", "sliced", SliceOptions())  # doctest: +SKIP
        >>> summary = run.execute()  # doctest: +SKIP
    """

    #: The media type of the collections this run labels (``video.VideoRun``
    #: labels the frames of videos).
    media_type = "image"

    def __init__(
        self,
        samples: fo.core.collections.SampleCollection,
        model: Any,
        label_field: str,
        options: PredictOptions,
        model_options: ModelOptions | None = None,
        *,
        overwrite: bool = False,
        skip_existing: bool = False,
        tags: Sequence[str] | None = None,
        token: str | None = None,
        shard: tuple[int, int] | None = None,
        run_id: str | None = None,
    ) -> None:
        if samples.media_type != self.media_type:
            raise ConfigError(
                f"this run labels {self.media_type}s; the collection's media "
                f"type is {samples.media_type!r}"
            )
        if shard is not None:
            index, count = (int(v) for v in shard)
            if not 0 <= index < count:
                raise ConfigError(
                    f"shard must be (index, count), 0 <= index < count; got {shard}"
                )
            shard = (index, count)
        if isinstance(tags, str):
            tags = [tags]
        check_label_field(samples, label_field, overwrite, skip_existing)
        self.samples = samples
        self.dataset = samples._root_dataset
        self.model = model
        self.label_field = label_field
        self.options = options
        self.model_options = model_options or ModelOptions()
        self.kind = "sliced" if isinstance(options, SliceOptions) else "baseline"
        self.overwrite = overwrite
        self.skip_existing = skip_existing
        self.tags = list(tags or [])
        self.token = token
        self.shard = shard
        self.run_id = run_id or uuid.uuid4().hex
        self.summary = InferenceSummary(label_field, self.kind)
        self._error_paths: dict[str, str] = {}

    def predict(self, image: Any, tile_model: TileModel) -> Predictions:
        """The run's prediction on one decoded image (sliced or whole)."""
        if isinstance(self.options, SliceOptions):
            return predict_sliced(image, tile_model, self.options)
        return predict_full_image(image, tile_model, self.options)

    def execute(
        self, progress: bool | ProgressCallback | None = None
    ) -> InferenceSummary:
        """Runs to the end.

        Args:
            progress: ``True``/``False``/``None`` shows/hides/defaults FiftyOne's
                progress bar; a callable gets ``(fraction, label)`` as samples
                finish.
        """
        callback = progress if callable(progress) else None
        bar = None if callback else progress
        for fraction, label in self.iter_execute(progress_bar=bar):
            if callback is not None:
                callback(fraction, label)
        return self.summary

    def iter_execute(
        self, progress_bar: bool | None = None
    ) -> Generator[tuple[float, str], None, InferenceSummary]:
        """Runs, yielding ``(fraction done, label)`` after each sample.

        Closing the generator early (or an exception) writes the samples
        finished so far and records the run as interrupted (or failed).
        ``self.summary`` holds the result, also returned at the end.
        """
        scope = self.samples.view()
        if self.shard is not None:
            scope = shard_view(scope, *self.shard)
        ids, paths, widths = self._samples_to_label(scope)
        loading = time.perf_counter()
        tile_model = cached_model(self.model, self.model_options, token=self.token)
        check_classes(tile_model, self.options.classes)  # before anything is written
        # Timing starts after loading: a cached model must not make one run
        # look faster than another in the comparison.
        started = time.perf_counter()
        stats = {
            **self._record_stats(len(ids), utc_now()),
            "model_load_seconds": started - loading,
        }
        recorder = RunRecorder(self.dataset, self.label_field, self.shard, self.run_id)
        recorder.start(self._record_common(tile_model), stats)
        writer = self._writer()

        def checkpoint() -> None:
            writer.flush()
            recorder.update(self._progress_stats(started))

        status, failure = "failed", None
        try:
            yield 0.0, f"Loaded model, {len(ids)} samples to process"
            yield from self._label_samples(
                list(zip(ids, paths, widths, strict=True)),
                tile_model,
                writer,
                checkpoint,
                progress_bar,
            )
            writer.flush()
            status = "completed"
        except (GeneratorExit, KeyboardInterrupt):
            status = "interrupted"
            raise
        except Exception as error:
            failure = f"{type(error).__name__}: {error}"
            raise
        finally:
            # Keep every finished sample, whatever stopped the run.
            writer.flush()
            self.summary.seconds = time.perf_counter() - started
            self.summary.images_per_second = (
                self.summary.processed / self.summary.seconds
                if self.summary.seconds > 0
                else None
            )
            recorder.update(
                {
                    **self._progress_stats(started),
                    "status": status,
                    "failure": failure,
                    "finished_at": utc_now(),
                }
            )
        if self.summary.errors:
            logger.warning(
                "%s: %d of %d samples skipped (could not be read): %s",
                self.label_field,
                self.summary.num_errors,
                len(ids),
                "; ".join(list(self.summary.errors.values())[:5]),
            )
        return self.summary

    def _samples_to_label(
        self, scope: fo.core.collections.SampleCollection
    ) -> tuple[list[str], list[str], list[int | None]]:
        """Ids, paths and widths of the samples of ``scope`` this run labels."""
        view = scope
        if self.skip_existing and self.dataset.has_field(self.label_field):
            view = scope.exists(self.label_field, False)
        ids, paths, widths = view.values(["id", "filepath", "metadata.width"])
        self.summary.skipped = len(scope) - len(ids)
        return ids, paths, widths

    def _writer(self) -> BatchWriter:
        """Where finished samples are queued and written in batches."""
        return BatchWriter(self.dataset, self.label_field, self.tags, self.overwrite)

    def _label_samples(
        self,
        samples: list[tuple[str, str, int | None]],
        tile_model: TileModel,
        writer: BatchWriter,
        checkpoint: Callable[[], None],
        progress_bar: bool | None,
    ) -> Generator[tuple[float, str], None, None]:
        """Labels ``(id, path, width)`` samples, yielding progress after each.

        ``checkpoint`` writes what is queued and records the progress; it is
        called whenever the writer is due.
        """
        with fou.ProgressBar(total=len(samples), progress=progress_bar) as bar:
            for done, (sample_id, path, width) in enumerate(samples, start=1):
                self._process(sample_id, path, width is None, tile_model, writer)
                if writer.due():
                    checkpoint()
                bar.update()
                yield done / max(len(samples), 1), f"{done}/{len(samples)} samples"

    def _process(
        self,
        sample_id: str,
        path: str,
        needs_metadata: bool,
        tile_model: TileModel,
        writer: BatchWriter,
    ) -> None:
        try:
            image = load_image(path)
        except ImageError as error:  # the engine's one error for a bad file
            self.summary.errors[sample_id] = str(error)
            self._error_paths[sample_id] = path
            writer.failed(sample_id)
            return
        height, width = image.shape[:2]
        detections = to_detections(self.predict(image, tile_model), width, height)
        metadata = fo.ImageMetadata.build_for(path) if needs_metadata else None
        writer.add(sample_id, detections, metadata)
        self.summary.processed += 1
        self.summary.num_detections += len(detections.detections)

    def _record_common(self, tile_model: TileModel) -> dict[str, Any]:
        settings, ignored = self._settings_in_effect(tile_model)
        return {
            "label_field": self.label_field,
            "kind": self.kind,
            "model": describe_model(self.model),
            "model_class": type(tile_model).__name__,
            "settings": {
                **settings,
                "overwrite": self.overwrite,
                "skip_existing": self.skip_existing,
                "tags": self.tags,
            },
            "settings_ignored": ignored,
            "class_names": {str(k): v for k, v in tile_model.class_names.items()},
            "plugin_version": __version__,
            "fiftyone_version": fo.__version__,
        }

    def _settings_in_effect(
        self, tile_model: TileModel
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """The settings the model really runs with, and a warning for each it ignores.

        Returns:
            the settings in effect, and name -> ``{"asked": value, "reason": why}``
            for each setting asked for that this model does not apply.
        """
        asked = {**self.options.to_dict(), **self.model_options.to_dict()}
        settings, ignored = settings_in_effect(tile_model, asked)
        for name, reason in ignored.items():
            logger.warning(
                "%s: %s=%r is ignored: %s", self.label_field, name, asked[name], reason
            )
        return settings, {
            name: {"asked": asked[name], "reason": reason}
            for name, reason in ignored.items()
        }

    def _record_stats(self, total: int, started_at: str) -> dict[str, Any]:
        return {
            "status": "running",
            "started_at": started_at,
            "finished_at": None,
            "samples_total": total,
            "samples_processed": 0,
            "samples_skipped": self.summary.skipped,
            "num_errors": 0,
            "errors": [],
            "num_detections": 0,
            "seconds": None,
            "images_per_second": None,
            "shard": list(self.shard) if self.shard else None,
        }

    def _progress_stats(self, started: float) -> dict[str, Any]:
        seconds = time.perf_counter() - started
        errors = list(self.summary.errors.items())[:MAX_STORED_ERRORS]
        return {
            "samples_processed": self.summary.processed,
            "num_errors": self.summary.num_errors,
            "errors": [
                {"sample_id": sid, "filepath": self._error_paths[sid], "error": text}
                for sid, text in errors
            ],
            "num_detections": self.summary.num_detections,
            "seconds": seconds,
            "images_per_second": self.summary.processed / seconds
            if seconds > 0
            else None,
        }
