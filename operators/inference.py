"""The SDK: sliced and baseline inference over a FiftyOne dataset or view.

``apply_sliced_model`` and ``apply_baseline_model`` run the same model on tiles
or on whole images and write ``fo.Detections`` (with cropped instance masks when
the model segments) to a label field, so the two are directly comparable. The
operators in ``run_inference`` are forms over these two functions.

Every run:

- checks its options, the label field and the model before it writes anything;
- loads the model once (cached by path and device across runs of a process);
- writes labels in batches (``set_values(..., key_field="id")``), so memory
  stays flat and an interrupted run keeps every finished sample, and no
  sample is ever half-written;
- skips (and reports) samples whose image is missing or unreadable;
- records itself on the dataset (``run_records``) and returns an
  ``InferenceSummary``.

Example::

    import fiftyone as fo
    import sliced_inference as si

    dataset = fo.Dataset.from_images_dir("/data/aerial")
    si.apply_baseline_model(dataset, "models/small-objects-det.pt", "baseline")
    summary = si.apply_sliced_model(
        dataset, "models/small-objects-det.pt", "sliced", slice_wh=640, overlap=0.2
    )
    print(summary.processed, summary.images_per_second)
    print(si.get_run_info(dataset, "sliced")["settings"])
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Generator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import fiftyone as fo
import fiftyone.core.utils as fou
import numpy as np

from .. import __version__
from ..slicer import (
    ConfigError,
    ImageError,
    MergeConfig,
    Predictions,
    SliceOptions,
    TileModel,
    load_image,
    load_model,
    predict_full_image,
    predict_sliced,
)
from ..slicer.sliced import check_common_options
from .fiftyone_model import FiftyOneTileModel, is_fiftyone_model
from .labels import to_detections
from .run_records import MAX_STORED_ERRORS, RunRecorder, utc_now

logger = logging.getLogger(__name__)

#: Samples written per database batch (a batch is also written after
#: ``WRITE_INTERVAL_S`` seconds, so slow models lose little when interrupted).
WRITE_BATCH_SIZE = 16
WRITE_INTERVAL_S = 30.0
#: Loaded models kept per process, by (path, device, half, ...).
MODEL_CACHE_SIZE = 4
#: A progress callback: ``(fraction done in [0, 1], label)``.
ProgressCallback = Callable[[float, str], None]

_MODEL_CACHE: OrderedDict[tuple, TileModel] = OrderedDict()


class LabelFieldError(ValueError):
    """The label field cannot be written (exists without overwrite, wrong type, bad name)."""


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


def apply_sliced_model(
    samples: fo.core.collections.SampleCollection,
    model: Any,
    label_field: str,
    *,
    slice_wh: int | tuple[int, int] = 640,
    overlap: float | tuple[float, float] = 0.2,
    imgsz: int | None = None,
    full_image_pass: bool = False,
    full_image_imgsz: int | None = None,
    batch_size: int = 1,
    confidence: float = 0.25,
    classes: Sequence[str | int] | None = None,
    max_detections: int | None = None,
    merge: str = "provenance",
    merge_metric: str = "iou",
    merge_threshold: float = 0.5,
    class_agnostic: bool = False,
    device: str | None = None,
    half: bool = False,
    overwrite: bool = False,
    skip_existing: bool = False,
    tags: Sequence[str] | None = None,
    progress: bool | ProgressCallback | None = None,
    trust_remote_code: bool = False,
    token: str | None = None,
    shard: tuple[int, int] | None = None,
    run_id: str | None = None,
) -> InferenceSummary:
    """Runs sliced inference on every sample and writes ``fo.Detections`` to ``label_field``.

    Each image is cut into overlapping ``slice_wh`` tiles, the model runs on
    each tile, and the detections are shifted back and merged (``merge``).
    Detections carry ``confidence``, ``tile`` (tile index, ``-1`` for the
    full-image pass) and ``truncated`` (touches an interior tile edge), and a
    mask cropped to the box when the model segments.

    Args:
        samples: a dataset or view of images.
        model: a model path (Ultralytics ``.pt``, a Transformers directory or
            hub id), a ``YOLO`` object, a ``(transformers model, processor)``
            pair, a callable ``tile -> detections``, a ``TileModel``, or a
            FiftyOne ``Model`` that returns ``Detections``.
        label_field: the ``Detections`` field to write.
        slice_wh: tile size in pixels, an int or ``(width, height)``.
        overlap: tile overlap, a ratio in ``[0, 1)`` or pixels (int).
        imgsz: model input size for tiles; ``None`` runs each tile at its own
            resolution.
        full_image_pass: also predict on the whole image and merge (helps
            objects larger than a tile).
        full_image_imgsz: input size of that pass.
        batch_size: tiles per forward pass.
        confidence: minimum score kept.
        classes: labels (or class ids) to keep; ``None`` keeps all.
        max_detections: most detections per image, best first.
        merge: ``"provenance"``, ``"nms"``, ``"nmm"``, ``"greedy_nmm"`` or
            ``"none"``.
        merge_metric: ``"iou"`` or ``"ios"``.
        merge_threshold: match threshold of the merge.
        class_agnostic: merge detections of different classes too.
        device: torch device (``None``: cuda, mps or cpu).
        half: float16 inference (GPU only).
        overwrite: replace the field's values on these samples if it exists.
        skip_existing: only label samples whose field is empty (resume a run,
            or pre-label only what is missing).
        tags: tags added to every sample labelled.
        progress: ``True``/``False``/``None`` shows/hides/defaults FiftyOne's
            progress bar; a callable gets ``(fraction, label)`` as samples finish.
        trust_remote_code: let Transformers run a hub repository's own code.
        token: Hugging Face token for private hub models (never recorded).
        shard: ``(index, count)``: process only that shard of ``samples``
            (see ``shard_views``), e.g. one of several workers.
        run_id: shared by all shards of one run (one is made up if ``None``).

    Returns:
        an ``InferenceSummary``; the run is also recorded on the dataset
        (``get_run_info(samples, label_field)``).

    Raises:
        LabelFieldError: the field exists and neither ``overwrite`` nor
            ``skip_existing`` is set, or it holds another label type.
        ConfigError: an option is out of range (raised before any work).
        ModelLoadError: the model cannot be loaded (before any write).

    Example::

        >>> import fiftyone as fo, sliced_inference as si
        >>> from sliced_inference.synthetic import write_dataset, load_fiftyone_dataset
        >>> _ = write_dataset("/tmp/si-example", num_images=2)
        >>> dataset = load_fiftyone_dataset("/tmp/si-example", overwrite=True)
        >>> s = si.apply_sliced_model(dataset, "models/small-objects-det.pt", "sliced")  # doctest: +SKIP
        >>> s.processed, dataset.count("sliced.detections") > 0  # doctest: +SKIP
        (2, True)
    """
    run = sliced_run(
        samples,
        model,
        label_field,
        slice_wh=slice_wh,
        overlap=overlap,
        imgsz=imgsz,
        full_image_pass=full_image_pass,
        full_image_imgsz=full_image_imgsz,
        batch_size=batch_size,
        confidence=confidence,
        classes=classes,
        max_detections=max_detections,
        merge=merge,
        merge_metric=merge_metric,
        merge_threshold=merge_threshold,
        class_agnostic=class_agnostic,
        device=device,
        half=half,
        overwrite=overwrite,
        skip_existing=skip_existing,
        tags=tags,
        trust_remote_code=trust_remote_code,
        token=token,
        shard=shard,
        run_id=run_id,
    )
    return run.execute(progress)


def apply_baseline_model(
    samples: fo.core.collections.SampleCollection,
    model: Any,
    label_field: str,
    *,
    imgsz: int | None = None,
    confidence: float = 0.25,
    classes: Sequence[str | int] | None = None,
    max_detections: int | None = None,
    device: str | None = None,
    half: bool = False,
    overwrite: bool = False,
    skip_existing: bool = False,
    tags: Sequence[str] | None = None,
    progress: bool | ProgressCallback | None = None,
    trust_remote_code: bool = False,
    token: str | None = None,
    shard: tuple[int, int] | None = None,
    run_id: str | None = None,
) -> InferenceSummary:
    """Runs the model on each whole image (the baseline) and writes ``label_field``.

    The same conversion, attributes (``tile`` is ``-1``), run record and safety
    rules as ``apply_sliced_model``, so the two fields compare like for like.
    ``imgsz`` raises the input resolution (e.g. 1280) instead of slicing.

    Args:
        samples: a dataset or view of images.
        model: anything ``apply_sliced_model`` accepts.
        label_field: the ``Detections`` field to write.
        imgsz: model input size (longer side); ``None``: the model's own.
        confidence: minimum score kept.
        classes: labels (or class ids) to keep; ``None`` keeps all.
        max_detections: most detections per image, best first.
        device: torch device (``None``: cuda, mps or cpu).
        half: float16 inference (GPU only).
        overwrite: replace the field's values on these samples if it exists.
        skip_existing: only label samples whose field is empty.
        tags: tags added to every sample labelled.
        progress: as in ``apply_sliced_model``.
        trust_remote_code: let Transformers run a hub repository's own code.
        token: Hugging Face token for private hub models (never recorded).
        shard: ``(index, count)``: process only that shard of ``samples``.
        run_id: shared by all shards of one run.

    Returns:
        an ``InferenceSummary``.

    Example::

        >>> import sliced_inference as si
        >>> s = si.apply_baseline_model(dataset, "models/small-objects-det.pt", "baseline", imgsz=1280)  # doctest: +SKIP
        >>> si.get_run_info(dataset, "baseline")["settings"]["imgsz"]  # doctest: +SKIP
        1280
    """
    run = baseline_run(
        samples,
        model,
        label_field,
        imgsz=imgsz,
        confidence=confidence,
        classes=classes,
        max_detections=max_detections,
        device=device,
        half=half,
        overwrite=overwrite,
        skip_existing=skip_existing,
        tags=tags,
        trust_remote_code=trust_remote_code,
        token=token,
        shard=shard,
        run_id=run_id,
    )
    return run.execute(progress)


def sliced_run(
    samples: fo.core.collections.SampleCollection,
    model: Any,
    label_field: str,
    *,
    slice_wh: int | tuple[int, int] = 640,
    overlap: float | tuple[float, float] = 0.2,
    imgsz: int | None = None,
    full_image_pass: bool = False,
    full_image_imgsz: int | None = None,
    batch_size: int = 1,
    confidence: float = 0.25,
    classes: Sequence[str | int] | None = None,
    max_detections: int | None = None,
    merge: str = "provenance",
    merge_metric: str = "iou",
    merge_threshold: float = 0.5,
    class_agnostic: bool = False,
    **run_options: Any,
) -> InferenceRun:
    """A checked, not yet started sliced run (what ``apply_sliced_model`` executes).

    The operators use it to stream progress with ``InferenceRun.iter_execute``.
    Takes the arguments of ``apply_sliced_model`` except ``progress``.

    Example::

        >>> run = sliced_run(dataset, "models/small-objects-det.pt", "sliced")  # doctest: +SKIP
        >>> for fraction, label in run.iter_execute():  # doctest: +SKIP
        ...     print(f"{fraction:.0%} {label}")
    """
    options = SliceOptions(
        slice_wh=_pair(slice_wh),
        overlap=_pair(overlap),
        imgsz=imgsz,
        full_image_pass=full_image_pass,
        full_image_imgsz=full_image_imgsz,
        batch_size=batch_size,
        confidence=confidence,
        classes=None if classes is None else list(classes),
        max_detections=max_detections,
        merge=MergeConfig(
            strategy=merge,
            metric=merge_metric,
            threshold=merge_threshold,
            class_agnostic=class_agnostic,
        ),
    )

    def predict(image: np.ndarray, tile_model: TileModel) -> Predictions:
        return predict_sliced(image, tile_model, options)

    return InferenceRun(
        samples,
        model,
        label_field,
        kind="sliced",
        settings=options.to_dict(),
        predict=predict,
        **run_options,
    )


def baseline_run(
    samples: fo.core.collections.SampleCollection,
    model: Any,
    label_field: str,
    *,
    imgsz: int | None = None,
    confidence: float = 0.25,
    classes: Sequence[str | int] | None = None,
    max_detections: int | None = None,
    **run_options: Any,
) -> InferenceRun:
    """A checked, not yet started baseline run (what ``apply_baseline_model`` executes).

    Example::

        >>> run = baseline_run(dataset, "models/small-objects-det.pt", "baseline")  # doctest: +SKIP
        >>> summary = run.execute()  # doctest: +SKIP
    """
    check_common_options(confidence, 1, max_detections)
    if imgsz is not None and (not isinstance(imgsz, int) or imgsz <= 0):
        raise ConfigError(f"imgsz must be a positive int or None, got {imgsz!r}")
    classes = None if classes is None else list(classes)
    settings = {
        "imgsz": imgsz,
        "confidence": confidence,
        "classes": classes,
        "max_detections": max_detections,
    }

    def predict(image: np.ndarray, tile_model: TileModel) -> Predictions:
        return predict_full_image(
            image,
            tile_model,
            imgsz=imgsz,
            confidence=confidence,
            classes=classes,
            max_detections=max_detections,
        )

    return InferenceRun(
        samples,
        model,
        label_field,
        kind="baseline",
        settings=settings,
        predict=predict,
        **run_options,
    )


class InferenceRun:
    """One checked inference run over a collection; start it with ``execute``.

    Built by ``sliced_run`` / ``baseline_run``, which validate the options;
    the constructor checks the label field and the collection, so every
    usage error surfaces before the model loads or anything is written.
    """

    def __init__(
        self,
        samples: fo.core.collections.SampleCollection,
        model: Any,
        label_field: str,
        *,
        kind: str,
        settings: dict[str, Any],
        predict: Callable[[np.ndarray, TileModel], Predictions],
        device: str | None = None,
        half: bool = False,
        overwrite: bool = False,
        skip_existing: bool = False,
        tags: Sequence[str] | None = None,
        trust_remote_code: bool = False,
        token: str | None = None,
        shard: tuple[int, int] | None = None,
        run_id: str | None = None,
    ) -> None:
        if samples.media_type != "image":
            raise ConfigError(
                f"sliced inference runs on images; this collection's media type "
                f"is {samples.media_type!r}"
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
        self.kind = kind
        self.settings = settings
        self.predict = predict
        self.device = device
        self.half = half
        self.overwrite = overwrite
        self.skip_existing = skip_existing
        self.tags = list(tags or [])
        self.trust_remote_code = trust_remote_code
        self.token = token
        self.shard = shard
        self.run_id = run_id or uuid.uuid4().hex
        self.summary = InferenceSummary(label_field, kind)
        self._error_paths: dict[str, str] = {}

    def execute(
        self, progress: bool | ProgressCallback | None = None
    ) -> InferenceSummary:
        """Runs to the end; ``progress`` as in ``apply_sliced_model``."""
        callback = progress if callable(progress) else None
        bar = None if callback else progress
        steps = self.iter_execute(progress_bar=bar)
        for fraction, label in steps:
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
        view = scope
        if self.skip_existing and self.dataset.has_field(self.label_field):
            view = scope.exists(self.label_field, False)
        ids, paths, widths = view.values(["id", "filepath", "metadata.width"])
        self.summary.skipped = len(scope) - len(ids)
        loading = time.perf_counter()
        tile_model = self._load_model()  # before the first write: fail early
        # Timing starts after loading: a cached model must not make one run
        # look faster than another in the comparison.
        started = time.perf_counter()
        stats = {
            **self._record_stats(len(ids), utc_now()),
            "model_load_seconds": started - loading,
        }
        recorder = RunRecorder(self.dataset, self.label_field, self.shard, self.run_id)
        recorder.start(self._record_common(tile_model), stats)
        writer = _BatchWriter(self.dataset, self.label_field, self.tags, self.overwrite)
        status, failure = "failed", None
        try:
            yield 0.0, f"Loaded model, {len(ids)} samples to process"
            with fou.ProgressBar(total=len(ids), progress=progress_bar) as bar:
                for done, (sample_id, path, width) in enumerate(
                    zip(ids, paths, widths, strict=True), start=1
                ):
                    self._process(sample_id, path, width is None, tile_model, writer)
                    if writer.due():
                        writer.flush()
                        recorder.update(self._progress_stats(started))
                    bar.update()
                    yield done / max(len(ids), 1), f"{done}/{len(ids)} samples"
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
                "%s: %d of %d samples skipped (image could not be read): %s",
                self.label_field,
                self.summary.num_errors,
                len(ids),
                "; ".join(list(self.summary.errors.values())[:5]),
            )
        return self.summary

    def _load_model(self) -> TileModel:
        return cached_model(
            self.model,
            device=self.device,
            half=self.half,
            trust_remote_code=self.trust_remote_code,
            token=self.token,
        )

    def _process(
        self,
        sample_id: str,
        path: str,
        needs_metadata: bool,
        tile_model: TileModel,
        writer: _BatchWriter,
    ) -> None:
        try:
            image = load_image(path)
        except ImageError as error:  # the engine's one error for a bad file
            self._skip(sample_id, path, str(error), writer)
            return
        height, width = image.shape[:2]
        detections = to_detections(self.predict(image, tile_model), width, height)
        metadata = fo.ImageMetadata.build_for(path) if needs_metadata else None
        writer.add(sample_id, detections, metadata)
        self.summary.processed += 1
        self.summary.num_detections += len(detections.detections)

    def _skip(
        self, sample_id: str, path: str, message: str, writer: _BatchWriter
    ) -> None:
        self.summary.errors[sample_id] = message
        self._error_paths[sample_id] = path
        writer.failed(sample_id)

    def _record_common(self, tile_model: TileModel) -> dict[str, Any]:
        return {
            "label_field": self.label_field,
            "kind": self.kind,
            "model": describe_model(self.model),
            "model_class": type(tile_model).__name__,
            "settings": {
                **self.settings,
                "device": self.device,
                "half": self.half,
                "overwrite": self.overwrite,
                "skip_existing": self.skip_existing,
                "tags": self.tags,
            },
            "class_names": {str(k): v for k, v in tile_model.class_names.items()},
            "plugin_version": __version__,
            "fiftyone_version": fo.__version__,
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


class _BatchWriter:
    """Collects finished samples and writes them in one ``set_values`` per batch."""

    def __init__(
        self, dataset: fo.Dataset, label_field: str, tags: list[str], overwrite: bool
    ) -> None:
        self.dataset = dataset
        self.label_field = label_field
        self.tags = tags
        self.overwrite = overwrite
        self.labels: dict[str, fo.Detections | None] = {}
        self.metadata: dict[str, fo.ImageMetadata] = {}
        self.last_flush = time.monotonic()

    def add(
        self,
        sample_id: str,
        detections: fo.Detections,
        metadata: fo.ImageMetadata | None,
    ) -> None:
        self.labels[sample_id] = detections
        if metadata is not None:
            self.metadata[sample_id] = metadata

    def failed(self, sample_id: str) -> None:
        # With overwrite, clear the old value: the field must not mix two runs.
        if self.overwrite and self.dataset.has_field(self.label_field):
            self.labels[sample_id] = None

    def due(self) -> bool:
        return (
            len(self.labels) >= WRITE_BATCH_SIZE
            or time.monotonic() - self.last_flush >= WRITE_INTERVAL_S
        )

    def flush(self) -> None:
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


def check_label_field(
    samples: fo.core.collections.SampleCollection,
    label_field: str,
    overwrite: bool = False,
    skip_existing: bool = False,
) -> None:
    """Raises ``LabelFieldError`` unless ``label_field`` may be written.

    A new field is fine; an existing ``Detections`` field needs ``overwrite``
    or ``skip_existing``; a field of any other type is never written.

    Example::

        >>> check_label_field(dataset, "sliced")  # doctest: +SKIP
    """
    message = label_field_problem(samples, label_field, overwrite, skip_existing)
    if message:
        raise LabelFieldError(message)


def label_field_problem(
    samples: fo.core.collections.SampleCollection,
    label_field: str,
    overwrite: bool = False,
    skip_existing: bool = False,
) -> str | None:
    """Why ``label_field`` cannot be written, or ``None`` if it can (see ``check_label_field``)."""
    if not isinstance(label_field, str) or not label_field.strip():
        return "Give the name of the field to write the detections to"
    if (
        label_field != label_field.strip()
        or "." in label_field
        or label_field.startswith(("_", "$"))
    ):
        return (
            f"{label_field!r} is not a valid field name: no dots, no leading "
            "underscore or dollar sign, no surrounding spaces"
        )
    dataset = samples._root_dataset
    if not dataset.has_field(label_field):
        return None
    kind = dataset.get_field(label_field)
    if getattr(kind, "document_type", None) is not fo.Detections:
        return (
            f"Field {label_field!r} already exists and holds "
            f"{_field_type_name(kind)}, not Detections: choose another name"
        )
    if not overwrite and not skip_existing:
        return (
            f"Field {label_field!r} already exists: choose another name, allow "
            "overwriting, or label only the samples where it is empty"
        )
    return None


def shard_views(
    samples: fo.core.collections.SampleCollection, num_shards: int
) -> list[fo.DatasetView]:
    """Splits ``samples`` into ``num_shards`` disjoint views that cover it.

    A sample's shard depends only on its id (a hash), so the split is the same
    in every process and in every later call, even after other samples are
    added: N workers given shards ``0..N-1`` never write the same sample.

    Example::

        >>> views = shard_views(dataset, 2)  # doctest: +SKIP
        >>> sum(len(v) for v in views) == len(dataset)  # doctest: +SKIP
        True
    """
    if not isinstance(num_shards, int) or num_shards < 1:
        raise ConfigError(f"num_shards must be a positive int, got {num_shards!r}")
    ids = samples.values("id")
    buckets: list[list[str]] = [[] for _ in range(num_shards)]
    for sample_id in ids:
        buckets[shard_of(sample_id, num_shards)].append(sample_id)
    return [samples.select(b, ordered=False) for b in buckets]


def shard_view(
    samples: fo.core.collections.SampleCollection, index: int, num_shards: int
) -> fo.DatasetView:
    """Shard ``index`` of ``shard_views(samples, num_shards)``."""
    if not 0 <= index < num_shards:
        raise ConfigError(f"shard index must be in [0, {num_shards}), got {index}")
    ids = [i for i in samples.values("id") if shard_of(i, num_shards) == index]
    return samples.select(ids, ordered=False)


def shard_of(sample_id: str, num_shards: int) -> int:
    """The shard (``0..num_shards-1``) a sample id belongs to; stable everywhere.

    Example::

        >>> shard_of("65f0c0ffee0000000000abcd", 1)
        0
    """
    digest = hashlib.blake2b(str(sample_id).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % num_shards


def cached_model(
    model: Any,
    *,
    device: str | None = None,
    half: bool = False,
    trust_remote_code: bool = False,
    token: str | None = None,
) -> TileModel:
    """``load_model`` with a per-process cache for models given by path or hub id.

    Repeated operator runs in one App process reuse the loaded model. The key
    includes the file's modification time, so retrained weights at the same
    path are loaded again. Objects (``YOLO``, FiftyOne models, callables) are
    wrapped each time, never cached.

    Example::

        >>> a = cached_model("models/small-objects-det.pt", device="cpu")  # doctest: +SKIP
        >>> a is cached_model("models/small-objects-det.pt", device="cpu")  # doctest: +SKIP
        True
    """
    if is_fiftyone_model(model):
        return FiftyOneTileModel(model)
    if not isinstance(model, (str, Path)):
        return load_model(
            model,
            device=device,
            half=half,
            trust_remote_code=trust_remote_code,
            token=token,
        )
    spec = os.path.expanduser(str(model))
    mtime = os.path.getmtime(spec) if os.path.exists(spec) else None
    key = (
        os.path.abspath(spec) if mtime else spec,
        mtime,
        device,
        half,
        trust_remote_code,
    )
    if key in _MODEL_CACHE:
        _MODEL_CACHE.move_to_end(key)
        return _MODEL_CACHE[key]
    loaded = load_model(
        spec, device=device, half=half, trust_remote_code=trust_remote_code, token=token
    )
    _MODEL_CACHE[key] = loaded
    while len(_MODEL_CACHE) > MODEL_CACHE_SIZE:
        _MODEL_CACHE.popitem(last=False)
    return loaded


def clear_model_cache() -> None:
    """Forgets every cached model (frees their memory once unreferenced)."""
    _MODEL_CACHE.clear()


def describe_model(model: Any) -> str:
    """What a run record says the model was: its path or hub id, else its class name.

    Example::

        >>> describe_model("models/small-objects-det.pt")
        'models/small-objects-det.pt'
    """
    if isinstance(model, (str, Path)):
        return str(model)
    ckpt = getattr(model, "ckpt_path", None)  # ultralytics.YOLO
    if isinstance(ckpt, str) and ckpt:
        return ckpt
    if isinstance(model, tuple) and len(model) == 2:
        name = getattr(getattr(model[0], "config", None), "_name_or_path", "")
        return name or type(model[0]).__name__
    return getattr(model, "__name__", None) or type(model).__name__


def _pair(value: Any) -> Any:
    # JSON params arrive as lists; the engine takes tuples for (w, h) pairs.
    return tuple(value) if isinstance(value, list) else value


def _field_type_name(kind: Any) -> str:
    document_type = getattr(kind, "document_type", None)
    return document_type.__name__ if document_type else type(kind).__name__
