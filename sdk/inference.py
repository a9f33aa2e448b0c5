"""The SDK: sliced and baseline inference over a FiftyOne dataset or view.

``apply_sliced_model`` and ``apply_baseline_model`` run the same model on tiles
or on whole images and write ``fo.Detections`` (with cropped instance masks when
the model segments) to a label field, so the two are directly comparable.
Oriented-box (OBB) models write ``fo.Polylines`` instead: one closed, filled
4-point polygon per rotated box. The operators in ``run_inference`` are forms
over these two functions.

Every run:

- checks its options, the label field and the model before it writes anything;
- loads the model once (cached by path and device across runs of a process);
- writes labels in batches (``set_values(..., key_field="id")``), so memory
  stays flat and an interrupted run keeps every finished sample, and no
  sample is ever half-written;
- reads tiled TIFFs, BigTIFFs and GeoTIFFs window by window (never whole);
- skips (and reports) samples whose image is missing or unreadable, or has a
  corrupt stored tile;
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

from collections.abc import Sequence
from typing import Any

import fiftyone as fo

from ..slicer import (
    MergeConfig,
    ModelOptions,
    PredictOptions,
    SliceOptions,
    VideoOptions,
)
from ..slicer.tiles import Overlap, SliceWH
from .run import InferenceRun, InferenceSummary, ProgressCallback
from .video import VideoRun, video_keywords

#: Keywords of a run that are not prediction or model settings.
RUN_KEYWORDS = (
    "overwrite",
    "skip_existing",
    "allow_mixed_settings",
    "tags",
    "token",
    "shard",
    "run_id",
    "store_tiles",
)
#: Arguments of ``apply_*`` that are not passed on as keywords.
_POSITIONAL = ("samples", "model", "label_field", "progress")


def apply_sliced_model(
    samples: fo.core.collections.SampleCollection,
    model: Any,
    label_field: str,
    *,
    slice_wh: SliceWH = SliceOptions.slice_wh,
    overlap: Overlap = SliceOptions.overlap,
    imgsz: int | None = SliceOptions.imgsz,
    full_image_pass: bool = SliceOptions.full_image_pass,
    full_image_imgsz: int | None = SliceOptions.full_image_imgsz,
    batch_size: int = SliceOptions.batch_size,
    confidence: float = SliceOptions.confidence,
    classes: Sequence[str | int] | None = SliceOptions.classes,
    max_detections: int | None = SliceOptions.max_detections,
    bands: Sequence[int] | None = SliceOptions.bands,
    scaling: str = SliceOptions.scaling,
    merge: str | MergeConfig = MergeConfig.strategy,
    merge_metric: str = MergeConfig.metric,
    merge_threshold: float = MergeConfig.threshold,
    class_agnostic: bool = MergeConfig.class_agnostic,
    device: str | None = ModelOptions.device,
    half: bool = ModelOptions.half,
    backend: str = ModelOptions.backend,
    precision: str = ModelOptions.precision,
    calibration_tiles: int = ModelOptions.calibration_tiles,
    trust_remote_code: bool = ModelOptions.trust_remote_code,
    allow_unsafe_pickle: bool = ModelOptions.allow_unsafe_pickle,
    frame_step: int = VideoOptions.frame_step,
    first_frame: int | None = VideoOptions.first_frame,
    last_frame: int | None = VideoOptions.last_frame,
    tracker: str | None = VideoOptions.tracker,
    track_high_thresh: float = VideoOptions.track_high_thresh,
    track_low_thresh: float = VideoOptions.track_low_thresh,
    new_track_thresh: float = VideoOptions.new_track_thresh,
    track_buffer: int = VideoOptions.track_buffer,
    match_thresh: float = VideoOptions.match_thresh,
    gmc_method: str = VideoOptions.gmc_method,
    overwrite: bool = False,
    skip_existing: bool = False,
    allow_mixed_settings: bool = False,
    tags: Sequence[str] | None = None,
    progress: bool | ProgressCallback | None = None,
    token: str | None = None,
    shard: tuple[int, int] | None = None,
    run_id: str | None = None,
    store_tiles: bool = False,
) -> InferenceSummary:
    """Runs sliced inference on every sample and writes ``fo.Detections`` to ``label_field``.

    Each image is cut into overlapping ``slice_wh`` tiles, the model runs on
    each tile, and the detections are shifted back and merged (``merge``).
    Detections carry ``confidence``, ``tile`` (tile index, ``-1`` for the
    full-image pass) and ``truncated`` (touches an interior tile edge), and a
    mask cropped to the box when the model segments. An oriented-box (OBB)
    model writes ``fo.Polylines`` (rotated boxes as closed, filled 4-point
    polygons, merged across tiles by rotated-box IoU) with the same
    attributes plus ``angle``.

    On a video collection, each frame of the range is an image: the field is
    the frame field ``frames.<label_field>`` (see ``sdk.video``) and the
    summary is a ``VideoSummary`` (frames as well as videos).

    Args:
        samples: a dataset or view of images, or of videos.
        model: a model path (Ultralytics ``.pt``, a Transformers directory or
            hub id), a ``YOLO`` object, a ``(transformers model, processor)``
            pair, a callable ``tile -> detections``, a ``TileModel``, or a
            FiftyOne ``Model`` that returns ``Detections``.
        label_field: the field to write (``Detections``, or ``Polylines`` for
            an OBB model).
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
        bands: for rasters read in windows (tiled TIFF, BigTIFF, GeoTIFF,
            16-bit or multi-band TIFF), the bands shown as RGB, counted from 1
            (e.g. ``(4, 3, 2)``), or one band shown as gray; ``None`` takes
            the first three.
        scaling: how such bands become 8-bit: ``"auto"`` (8-bit data as
            stored, other data stretched per band between its 2nd and 98th
            percentiles), ``"percentile"`` or ``"range"`` (the data type's).
        merge: ``"provenance"``, ``"nms"``, ``"nmm"``, ``"greedy_nmm"`` or
            ``"none"``.
        merge_metric: ``"iou"`` or ``"ios"``.
        merge_threshold: match threshold of the merge.
        class_agnostic: merge detections of different classes too.
        device: torch device (``None``: cuda, mps or cpu).
        half: float16 inference (GPU only).
        backend: ``"auto"`` (OpenVINO for Ultralytics models on a CPU,
            exported once into a cache; PyTorch otherwise), ``"torch"`` or
            ``"openvino"``. The run record says which ran.
        precision: ``"fp32"``, ``"bf16"`` (OpenVINO, on CPUs with native
            bfloat16) or ``"int8"`` (OpenVINO, calibrated on the first
            ``calibration_tiles`` tiles of the run). The run record says
            which ran.
        calibration_tiles: how many tiles calibrate an INT8 model.
        overwrite: replace the field's values on these samples if it exists
            (refused for a field that stored evaluations use as ground truth).
            A sample whose image cannot be read keeps its previous labels.
        skip_existing: only label samples whose field is empty (resume a run,
            or pre-label only what is missing). Whether a sample's field is
            empty is read on the dataset, whatever the view shows.
        allow_mixed_settings: let ``skip_existing`` add labels made with other
            settings (model, slicing, ...) than the field's; refused otherwise.
        tags: tags added to every sample labelled.
        progress: ``True``/``False``/``None`` shows/hides/defaults FiftyOne's
            progress bar; a callable gets ``(fraction, label)`` as samples finish.
        trust_remote_code: let Transformers run a hub repository's own code.
        allow_unsafe_pickle: fully unpickle a ``.pt`` file that safe loading
            refuses (legacy checkpoints). It runs any code the file holds:
            only for files you trust.
        frame_step: videos only: label every Nth frame of the range.
        first_frame: videos only: first frame to label (from 1; ``None``:
            the first).
        last_frame: videos only: last frame to label, included (``None``: the
            last).
        tracker: videos only: ``None``, ``"bytetrack"`` or ``"botsort"``
            (Ultralytics' trackers on the merged detections of each labelled
            frame); each detection's ``index`` is its track id.
        track_high_thresh: tracker setting (Ultralytics' name and default).
        track_low_thresh: tracker setting.
        new_track_thresh: tracker setting.
        track_buffer: tracker setting: labelled frames a lost track is kept.
        match_thresh: tracker setting.
        gmc_method: BoT-SORT's camera-motion compensation.
        token: Hugging Face token for private hub models (never recorded).
        shard: ``(index, count)``: process only that shard of ``samples``
            (see ``shard_views``), e.g. one of several workers.
        run_id: shared by all shards of one run (one is made up if ``None``).
        store_tiles: also write each image's tile grid as ``fo.Polylines`` to
            ``<label_field>_tiles`` (same overwrite rules), so the App draws
            the seams over the image.

    Returns:
        an ``InferenceSummary``; the run is also recorded on the dataset
        (``get_run_info(samples, label_field)``).

    Raises:
        LabelFieldError: the field exists and neither ``overwrite`` nor
            ``skip_existing`` is set (or both are), it holds another label
            type, its name is invalid, or its labels came from other settings
            (``skip_existing`` without ``allow_mixed_settings``).
        FieldInUseError: another run is writing the field now.
        ConfigError: an option is out of range, a class is not the model's, or
            the collection is not one of images or videos (patches, frames
            and clips views are refused); raised before any write.
        ModelLoadError: the model cannot be loaded, or safe loading refused
            it (before any write).

    Example::

        >>> import fiftyone as fo, sliced_inference as si
        >>> from sliced_inference.synthetic import write_dataset, load_fiftyone_dataset
        >>> _ = write_dataset("/tmp/si-example", num_images=2)
        >>> dataset = load_fiftyone_dataset("/tmp/si-example", overwrite=True)
        >>> s = si.apply_sliced_model(dataset, "models/small-objects-det.pt", "sliced")  # doctest: +SKIP
        >>> s.processed, dataset.count("sliced.detections") > 0  # doctest: +SKIP
        (2, True)
    """
    keywords = {k: v for k, v in locals().items() if k not in _POSITIONAL}
    return sliced_run(samples, model, label_field, **keywords).execute(progress)


def apply_baseline_model(
    samples: fo.core.collections.SampleCollection,
    model: Any,
    label_field: str,
    *,
    imgsz: int | None = PredictOptions.imgsz,
    confidence: float = PredictOptions.confidence,
    classes: Sequence[str | int] | None = PredictOptions.classes,
    max_detections: int | None = PredictOptions.max_detections,
    bands: Sequence[int] | None = PredictOptions.bands,
    scaling: str = PredictOptions.scaling,
    device: str | None = ModelOptions.device,
    half: bool = ModelOptions.half,
    backend: str = ModelOptions.backend,
    precision: str = ModelOptions.precision,
    calibration_tiles: int = ModelOptions.calibration_tiles,
    trust_remote_code: bool = ModelOptions.trust_remote_code,
    allow_unsafe_pickle: bool = ModelOptions.allow_unsafe_pickle,
    frame_step: int = VideoOptions.frame_step,
    first_frame: int | None = VideoOptions.first_frame,
    last_frame: int | None = VideoOptions.last_frame,
    tracker: str | None = VideoOptions.tracker,
    track_high_thresh: float = VideoOptions.track_high_thresh,
    track_low_thresh: float = VideoOptions.track_low_thresh,
    new_track_thresh: float = VideoOptions.new_track_thresh,
    track_buffer: int = VideoOptions.track_buffer,
    match_thresh: float = VideoOptions.match_thresh,
    gmc_method: str = VideoOptions.gmc_method,
    overwrite: bool = False,
    skip_existing: bool = False,
    allow_mixed_settings: bool = False,
    tags: Sequence[str] | None = None,
    progress: bool | ProgressCallback | None = None,
    token: str | None = None,
    shard: tuple[int, int] | None = None,
    run_id: str | None = None,
) -> InferenceSummary:
    """Runs the model on each whole image (the baseline) and writes ``label_field``.

    The same conversion, attributes (``tile`` is ``-1``), run record and safety
    rules as ``apply_sliced_model``, so the two fields compare like for like.
    ``imgsz`` raises the input resolution (e.g. 1280) instead of slicing. A
    raster read in windows is shrunk to the input size while it is read
    (from a pyramid level when the file has one), never decoded whole.

    Args:
        samples: a dataset or view of images, or of videos (frames labelled).
        model: anything ``apply_sliced_model`` accepts.
        label_field: the field to write (``Detections``, or ``Polylines`` for
            an OBB model).
        imgsz: model input size (longer side); ``None``: the model's own.
        confidence: minimum score kept.
        classes: labels (or class ids) to keep; ``None`` keeps all.
        max_detections: most detections per image, best first.
        bands: as in ``apply_sliced_model``.
        scaling: as in ``apply_sliced_model``.
        device: torch device (``None``: cuda, mps or cpu).
        half: float16 inference (GPU only).
        backend: as in ``apply_sliced_model``.
        precision: as in ``apply_sliced_model`` (INT8 calibrates on the
            first images of the run).
        calibration_tiles: how many images calibrate an INT8 model.
        overwrite: replace the field's values on these samples if it exists.
        skip_existing: only label samples whose field is empty.
        allow_mixed_settings: as in ``apply_sliced_model``.
        tags: tags added to every sample labelled.
        progress: as in ``apply_sliced_model``.
        trust_remote_code: let Transformers run a hub repository's own code.
        allow_unsafe_pickle: as in ``apply_sliced_model`` (trusted files only).
        frame_step: as in ``apply_sliced_model`` (videos), and so are
            ``first_frame``, ``last_frame``, ``tracker`` and the tracker
            settings ``track_high_thresh``, ``track_low_thresh``,
            ``new_track_thresh``, ``track_buffer``, ``match_thresh``,
            ``gmc_method``.
        first_frame: see ``frame_step``.
        last_frame: see ``frame_step``.
        tracker: see ``frame_step``.
        track_high_thresh: see ``frame_step``.
        track_low_thresh: see ``frame_step``.
        new_track_thresh: see ``frame_step``.
        track_buffer: see ``frame_step``.
        match_thresh: see ``frame_step``.
        gmc_method: see ``frame_step``.
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
    keywords = {k: v for k, v in locals().items() if k not in _POSITIONAL}
    return baseline_run(samples, model, label_field, **keywords).execute(progress)


def sliced_run(
    samples: fo.core.collections.SampleCollection,
    model: Any,
    label_field: str,
    **keywords: Any,
) -> InferenceRun:
    """A checked, not yet started sliced run (what ``apply_sliced_model`` executes).

    Takes the keywords of ``apply_sliced_model`` except ``progress``; the
    operators use it to stream progress with ``InferenceRun.iter_execute``.

    Example::

        >>> run = sliced_run(dataset, "models/small-objects-det.pt", "sliced")  # doctest: +SKIP
        >>> for fraction, label in run.iter_execute():  # doctest: +SKIP
        ...     print(f"{fraction:.0%} {label}")
    """
    return _checked_run(SliceOptions, samples, model, label_field, keywords)


def baseline_run(
    samples: fo.core.collections.SampleCollection,
    model: Any,
    label_field: str,
    **keywords: Any,
) -> InferenceRun:
    """A checked, not yet started baseline run (what ``apply_baseline_model`` executes).

    Example::

        >>> run = baseline_run(dataset, "models/small-objects-det.pt", "baseline")  # doctest: +SKIP
        >>> summary = run.execute()  # doctest: +SKIP
    """
    return _checked_run(PredictOptions, samples, model, label_field, keywords)


def _checked_run(
    options_cls: type[PredictOptions],
    samples: fo.core.collections.SampleCollection,
    model: Any,
    label_field: str,
    keywords: dict[str, Any],
) -> InferenceRun:
    """Splits flat keywords into options, model options and run keywords, validated."""
    keywords = dict(keywords)
    run = {k: keywords.pop(k) for k in RUN_KEYWORDS if k in keywords}
    model_options = {
        k: keywords.pop(k) for k in ModelOptions.settings() if k in keywords
    }
    video = video_keywords(samples, keywords)
    if samples.media_type == "video":
        return VideoRun(
            samples,
            model,
            label_field,
            options_cls.from_params(keywords),
            ModelOptions.from_params(model_options),
            VideoOptions.from_params(video),
            **run,
        )
    return InferenceRun(
        samples,
        model,
        label_field,
        options_cls.from_params(keywords),
        ModelOptions.from_params(model_options),
        **run,
    )
