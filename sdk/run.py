"""One inference run over a collection: the loop that reads, predicts, writes and records.

``InferenceRun`` is built by ``inference.sliced_run`` / ``inference.baseline_run``
(or the operators) with validated options, and started with ``execute`` (to the
end) or ``iter_execute`` (a generator of progress, for the App).
"""

from __future__ import annotations

import logging
import re
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
    calibrate,
    is_rotated,
    predict_full_image,
    predict_sliced,
    tile_boxes,
)
from ..slicer.models.base import settings_in_effect
from ..slicer.rasters import RasterSource, open_raster
from ..slicer.sliced import check_classes
from .batch_writer import BatchWriter
from .dataset_doc import utc_now
from .field_claims import FieldClaim, FieldInUseError
from .label_fields import check_label_field
from .label_runs import labels_role
from .labels import count_labels, label_type, tile_polylines, to_labels
from .metadata import image_metadata
from .model_cache import cached_model, describe_model
from .run_records import MAX_STORED_ERRORS, RunRecorder
from .sample_scope import collection_problem, labelled_ids, refresh_schema
from .shards import shard_view

logger = logging.getLogger(__name__)

#: Suffix of the field ``store_tiles=True`` writes the tile grid to.
TILES_SUFFIX = "_tiles"

#: A progress callback: ``(fraction done in [0, 1], label)``.
ProgressCallback = Callable[[float, str], None]
#: What a run id may look like (it is a key in the dataset's run records).
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def tiles_field(label_field: str) -> str:
    """The field a sliced run's tile grid is written to (``store_tiles=True``).

    Example::

        >>> tiles_field("sliced")
        'sliced_tiles'
    """
    return label_field + TILES_SUFFIX


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
    error surfaces before the model loads or anything is written. ``execute``
    then claims the field (a second writer is refused, see ``field_claims``),
    checks it again under the claim, and refuses to resume a field whose
    labels came from other settings unless ``allow_mixed_settings``.

    Args:
        samples: a dataset or view of images.
        model: anything ``cached_model`` accepts.
        label_field: the field to write: ``Detections``, or ``Polylines`` for
            rotated-box (OBB) models.
        options: ``SliceOptions`` for a sliced run, ``PredictOptions`` for a
            whole-image (baseline) run.
        model_options: how the model is loaded and run.
        overwrite: replace the field's values on these samples if it exists.
        skip_existing: only label samples whose field is empty.
        allow_mixed_settings: let ``skip_existing`` add labels made with other
            settings (model, slicing, ...) than the field's labels.
        tags: tags added to every sample labelled.
        token: Hugging Face token (never recorded).
        shard: ``(index, count)``: process only that shard of ``samples``.
        run_id: shared by all shards of one run.
        store_tiles: also write each image's tile grid to
            ``tiles_field(label_field)`` (``fo.Polylines``), so the App draws
            the seams; sliced runs only.

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
        allow_mixed_settings: bool = False,
        tags: Sequence[str] | None = None,
        token: str | None = None,
        shard: tuple[int, int] | None = None,
        run_id: str | None = None,
        store_tiles: bool = False,
    ) -> None:
        problem = collection_problem(samples)
        if problem:
            raise ConfigError(problem)
        if samples.media_type != self.media_type:
            raise ConfigError(
                f"this run labels {self.media_type}s; the collection's media "
                f"type is {samples.media_type!r}"
            )
        if run_id is not None and not _RUN_ID.fullmatch(str(run_id)):
            raise ConfigError(
                f"run_id must be 1-64 letters, digits, '_' or '-'; got {run_id!r}"
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
        self.tiles_field = None
        if store_tiles:
            if not isinstance(options, SliceOptions):
                raise ConfigError(
                    "store_tiles needs a sliced run: a baseline has no tiles"
                )
            self.tiles_field = tiles_field(label_field)
            check_label_field(
                samples, self.tiles_field, overwrite, skip_existing, fo.Polylines
            )
        self.samples = samples
        self.dataset = samples._root_dataset
        self.model = model
        self.label_field = label_field
        self.options = options
        self.model_options = model_options or ModelOptions()
        self.kind = "sliced" if isinstance(options, SliceOptions) else "baseline"
        self.overwrite = bool(overwrite)
        self.skip_existing = bool(skip_existing)
        self.allow_mixed_settings = bool(allow_mixed_settings)
        self.tags = list(tags or [])
        self.token = token
        self.shard = shard
        self.run_id = run_id or uuid.uuid4().hex
        self.summary = InferenceSummary(label_field, self.kind)
        self._error_paths: dict[str, str] = {}
        # Samples of the target that held labels when the run started.
        self._labelled: set[str] = set()
        self._kept_previous = 0

    def predict(self, image: Any, tile_model: TileModel) -> Predictions:
        """The run's prediction on one image (an array or a ``RasterSource``), sliced or whole."""
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
        ``self.summary`` holds the result, also returned at the end. An empty
        collection labels and records nothing (a shard still records itself,
        so the run's record adds up).
        """
        target = self.samples.view()
        scope = target if self.shard is None else shard_view(target, *self.shard)
        if self.shard is None and len(scope) == 0:
            logger.warning(
                "%s: no samples to label; nothing recorded", self.label_field
            )
            yield 1.0, "No samples to label"
            return self.summary
        claim = FieldClaim(self.dataset, self.label_field, self.run_id, self.shard)
        claim.acquire()
        try:
            yield from self._run_claimed(target, scope, claim, progress_bar)
        finally:
            claim.release()
        if self.summary.errors:
            logger.warning(
                "%s: %d of %d samples skipped (could not be read): %s",
                self.label_field,
                self.summary.num_errors,
                self.summary.processed + self.summary.num_errors,
                "; ".join(list(self.summary.errors.values())[:5]),
            )
        return self.summary

    def _run_claimed(
        self,
        target: fo.DatasetView,
        scope: fo.DatasetView,
        claim: FieldClaim,
        progress_bar: bool | None,
    ) -> Generator[tuple[float, str], None, None]:
        """The run once it holds the field: plan, load, label, record."""
        ids, paths, widths = self._samples_to_label(target, scope)
        loading = time.perf_counter()
        tile_model = cached_model(self.model, self.model_options, token=self.token)
        check_classes(tile_model, self.options.classes)  # before anything is written
        # Only the loaded model says which label type it writes: check again,
        # still before anything is written.
        self._check_model_labels(tile_model)
        common = self._record_common(tile_model)
        labels = labels_role(
            self.dataset,
            self.label_field,
            {**common, "run_id": self.run_id},
            to_label=len(ids),
            labelled_in_target=len(self._labelled),
            overwrite=self.overwrite,
            allow_mixed_settings=self.allow_mixed_settings,
        )
        # An INT8 model is quantized on this run's first tiles (counted as
        # loading), once the run is known to go ahead. Videos are not images:
        # their model calibrates on the first frame's tiles instead.
        calibrate(tile_model, paths, self.options)
        # Declared now, so the run's record always names a field that exists.
        self._declare_field(tile_model)
        # Timing starts after loading: a cached model must not make one run
        # look faster than another in the comparison.
        started = time.perf_counter()
        stats = {
            **self._record_stats(len(ids), utc_now()),
            "model_load_seconds": started - loading,
        }
        recorder = RunRecorder(self.dataset, self.label_field, self.shard, self.run_id)
        recorder.start(common, stats, labels)
        writer = self._writer()

        def checkpoint() -> None:
            self._flush(writer, claim)
            recorder.update(self._progress_stats(started))

        status, failure = "failed", None
        try:
            yield from self._label_samples(
                list(zip(ids, paths, widths, strict=True)),
                tile_model,
                writer,
                checkpoint,
                progress_bar,
            )
            self._flush(writer, claim)
            status = "completed"
        except (GeneratorExit, KeyboardInterrupt):
            status = "interrupted"
            raise
        except Exception as error:
            failure = f"{type(error).__name__}: {error}"
            raise
        finally:
            # Keep every finished sample, whatever stopped the run (unless the
            # field is another run's now); and record the end even when that
            # last write fails too.
            try:
                if not claim.lost:
                    writer.flush()
            except Exception as error:
                logger.warning(
                    "%s: could not write the last samples: %s", self.label_field, error
                )
                status = "failed"
                failure = failure or f"{type(error).__name__}: {error}"
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

    def _samples_to_label(
        self, target: fo.DatasetView, scope: fo.DatasetView
    ) -> tuple[list[str], list[str], list[int | None]]:
        """Ids, paths and widths of the samples to label, checked under the claim."""
        # Another run (or process) may have written the field since the
        # constructor looked, and this process's schema may predate it.
        refresh_schema(self.dataset, self.label_field)
        check_label_field(
            self.samples, self.label_field, self.overwrite, self.skip_existing
        )
        ids, paths, widths = scope.values(["id", "filepath", "metadata.width"])
        target_ids = ids if self.shard is None else target.values("id")
        # What exists is decided on the dataset: a view may hide the field.
        self._labelled = labelled_ids(self.dataset, self.label_field, target_ids)
        todo = [
            i
            for i, sample_id in enumerate(ids)
            if not (self.skip_existing and sample_id in self._labelled)
        ]
        self.summary.skipped = len(ids) - len(todo)
        return tuple([v[i] for i in todo] for v in (ids, paths, widths))

    def _check_model_labels(self, tile_model: TileModel) -> None:
        """Refuses the field if it holds another label type than the loaded model writes."""
        # Only the loaded model says which label type it writes: checked
        # again, still before anything is written.
        check_label_field(
            self.samples,
            self.label_field,
            self.overwrite,
            self.skip_existing,
            label_type(is_rotated(tile_model)),
        )

    def _declare_field(self, tile_model: TileModel) -> None:
        """Adds the label field to the dataset's schema if it is new."""
        if not self.dataset.has_field(self.label_field):
            self.dataset.add_sample_field(
                self.label_field,
                fo.EmbeddedDocumentField,
                embedded_doc_type=label_type(is_rotated(tile_model)),
            )

    def _writer(self) -> BatchWriter:
        """Where finished samples are queued and written in batches."""
        return BatchWriter(self.dataset, self.label_field, self.tags, self.tiles_field)

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
        yield 0.0, f"Loaded model, {len(samples)} samples to process"
        with fou.ProgressBar(total=len(samples), progress=progress_bar) as bar:
            for done, (sample_id, path, width) in enumerate(samples, start=1):
                self._process(sample_id, path, width is None, tile_model, writer)
                if writer.due():
                    checkpoint()
                bar.update()
                yield done / max(len(samples), 1), f"{done}/{len(samples)} samples"

    def _flush(self, writer: BatchWriter, claim: FieldClaim) -> None:
        if claim.lost:
            raise FieldInUseError(
                f"Field {self.label_field!r} was taken over by another run (this "
                "one was silent too long): stopped before writing more"
            )
        writer.flush()

    def _process(
        self,
        sample_id: str,
        path: str,
        needs_metadata: bool,
        tile_model: TileModel,
        writer: BatchWriter,
    ) -> None:
        try:
            # A tiled TIFF is read window by window as tiles are predicted; a
            # corrupt tile fails here with an ImageError naming it.
            source = open_raster(path, self.options.bands, self.options.scaling)
            try:
                preds = self.predict(source, tile_model)
            finally:
                source.close()
        except ImageError as error:  # the engine's one error for a bad file
            message = str(error)
            if self.overwrite and sample_id in self._labelled:
                # Nothing is lost: the old labels stay until the image reads.
                message += " (its previous labels were kept)"
                self._kept_previous += 1
            self.summary.errors[sample_id] = message
            self._error_paths[sample_id] = path
            return
        width, height = source.size
        labels = to_labels(preds, width, height, is_rotated(tile_model))
        metadata = (
            image_metadata(path) if _needs_metadata(needs_metadata, source) else None
        )
        tiles = None
        if self.tiles_field is not None:
            grid = tile_boxes(
                (width, height), self.options.slice_wh, self.options.overlap
            )
            tiles = tile_polylines(grid, width, height)
        writer.add(sample_id, labels, metadata, tiles)
        self.summary.processed += 1
        self.summary.num_detections += count_labels(labels)

    def _record_common(self, tile_model: TileModel) -> dict[str, Any]:
        """What the record of every shard shares: kind, model, settings in effect, versions."""
        settings, ignored = self._settings_in_effect(tile_model)
        return {
            "label_field": self.label_field,
            "kind": self.kind,
            "model": describe_model(self.model),
            "model_class": type(tile_model).__name__,
            "label_type": label_type(is_rotated(tile_model)).__name__,
            "settings": {
                **settings,
                "overwrite": self.overwrite,
                "skip_existing": self.skip_existing,
                "allow_mixed_settings": self.allow_mixed_settings,
                "tags": self.tags,
                "tiles_field": self.tiles_field,
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
            "previous_labels_kept": 0,
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
            "previous_labels_kept": self._kept_previous,
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


def _needs_metadata(missing: bool, source: RasterSource) -> bool:
    """Write ``metadata`` when it is missing, and for every GeoTIFF (to keep its georeference)."""
    return missing or source.georeference is not None
