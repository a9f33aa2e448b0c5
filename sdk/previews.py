"""Low-resolution previews for images the FiftyOne App cannot show.

Browsers, and so the App, do not display TIFFs, and a 40000 px image would not
fit in a browser's memory anyway. ``write_previews`` writes a downsampled JPEG
for each such image (read in windows, never decoded whole), stores its path in
a sample field and makes that field the App's media for the grid and the
sample view (``app_config.grid_media_field`` / ``modal_media_field``, with
``media_fallback`` so other samples keep showing their own image). Labels are
stored relative to the image, so boxes drawn on a preview land where they
belong.

Example::

    import sliced_inference as si

    si.write_previews(dataset, "/data/previews")   # then: fo.launch_app(dataset)
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import fiftyone as fo
import fiftyone.core.collections as foc
import fiftyone.core.utils as fou

from ..slicer import ImageError, PredictOptions
from ..slicer.rasters import open_raster, read_tiff_header

#: The sample field that holds each preview's path.
PREVIEW_FIELD = "preview_filepath"
#: Longest side of a preview, in pixels.
PREVIEW_MAX_SIDE = 2048


def write_previews(
    samples: foc.SampleCollection,
    output_dir: str | os.PathLike,
    *,
    field: str = PREVIEW_FIELD,
    max_side: int = PREVIEW_MAX_SIDE,
    bands: tuple[int, ...] | None = PredictOptions.bands,
    scaling: str = PredictOptions.scaling,
    use_in_app: bool = True,
    progress: bool | None = None,
) -> dict[str, str]:
    """Writes a JPEG preview of each TIFF, and of each image longer than ``max_side``.

    Args:
        samples: a dataset or view of images.
        output_dir: where the previews go (``<sample id>.jpg``).
        field: the sample field that receives each preview's path.
        max_side: longest side of a preview in pixels.
        bands: the bands shown, as for inference (``PredictOptions.bands``).
        scaling: how bands become 8-bit (``PredictOptions.scaling``).
        use_in_app: make ``field`` the App's media for the grid and the
            sample view (other samples fall back to ``filepath``).
        progress: FiftyOne's progress-bar setting.

    Returns:
        sample id -> error message, for images that could not be read (they
        get no preview; the others do).
    """
    options = PredictOptions(bands=bands, scaling=scaling)  # validates them
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    ids, paths = samples.values(["id", "filepath"])
    written, errors = {}, {}
    with fou.ProgressBar(total=len(ids), progress=progress) as bar:
        for sample_id, path in bar(list(zip(ids, paths, strict=True))):
            if not _needs_preview(path, max_side):
                continue
            target = output / f"{sample_id}.jpg"
            try:
                _write_preview(path, target, max_side, options)
            except ImageError as error:
                errors[sample_id] = str(error)
                continue
            written[sample_id] = str(target)
    dataset = samples._root_dataset
    if written:
        dataset.set_values(field, written, key_field="id")
    if use_in_app and dataset.has_field(field):
        _show_in_app(dataset, field)
    return errors


def _needs_preview(path: str, max_side: int) -> bool:
    """TIFFs (no browser shows them) and images longer than ``max_side``."""
    if read_tiff_header(path) is not None:
        return True
    try:
        metadata = fo.ImageMetadata.build_for(path)
    except Exception:  # unreadable: the run reports it, the App shows nothing
        return False
    return max(metadata.width or 0, metadata.height or 0) > max_side


def _write_preview(
    path: str, target: Path, max_side: int, options: PredictOptions
) -> None:
    source = open_raster(path, options.bands, options.scaling)
    try:
        image, _ = source.whole_image(max_side)
    finally:
        source.close()
    longer = max(image.shape[:2])
    if longer > max_side:  # an image in memory comes back at full size
        scale = max_side / longer
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    if not cv2.imwrite(str(target), image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90]):
        raise ImageError(f"cannot write preview {target}")


def _show_in_app(dataset: fo.Dataset, field: str) -> None:
    config = dataset.app_config
    if field not in config.media_fields:
        config.media_fields = [*config.media_fields, field]
    config.grid_media_field = field
    config.modal_media_field = field
    config.media_fallback = True
    dataset.save()
