"""Image ``metadata`` from file headers: TIFFs of any size without decoding them.

FiftyOne reads image sizes with Pillow, which refuses images beyond its
decompression-bomb limit (a 40000x30000 BigTIFF is 1.2 gigapixels) and knows
nothing of GeoTIFF tags. Here TIFFs are read with ``tifffile``: size, bands
and, for GeoTIFFs, the georeference (``metadata.georeference``, see
``slicer.georeference``), all from the header. Other images keep FiftyOne's
own ``ImageMetadata.build_for``.

Example::

    import sliced_inference as si

    si.compute_metadata(dataset)  # instead of dataset.compute_metadata()
    sample = dataset.first()
    print(sample.metadata.width, sample.metadata["georeference"]["transform"])
"""

from __future__ import annotations

import os

import fiftyone as fo
import fiftyone.core.collections as foc

from ..slicer.rasters import read_tiff_header

#: Where a GeoTIFF's georeference is kept on ``sample.metadata``.
GEOREFERENCE = "georeference"


def image_metadata(path: str) -> fo.ImageMetadata:
    """``fo.ImageMetadata`` of one image; for a TIFF, from its header alone.

    Example::

        >>> image_metadata("scene.tif").width  # doctest: +SKIP
        40000
    """
    return tiff_metadata(path) or fo.ImageMetadata.build_for(path)


def tiff_metadata(path: str) -> fo.ImageMetadata | None:
    """``fo.ImageMetadata`` from a TIFF's header (``None`` if the file is no TIFF)."""
    header = read_tiff_header(path)
    if header is None:
        return None
    width, height = header.shown_size
    metadata = fo.ImageMetadata(
        size_bytes=os.path.getsize(path),
        mime_type="image/tiff",
        width=width,
        height=height,
        num_channels=header.bands,
    )
    if header.georeference is not None:
        metadata[GEOREFERENCE] = header.georeference
    return metadata


def compute_metadata(
    samples: foc.SampleCollection, overwrite: bool = False, progress: bool | None = None
) -> None:
    """FiftyOne's ``compute_metadata``, with TIFFs read from their headers.

    Args:
        samples: a dataset or view of images.
        overwrite: recompute metadata that is already there.
        progress: FiftyOne's progress-bar setting for the other images.
    """
    missing = samples if overwrite else samples.exists("metadata", False)
    ids, paths = missing.values(["id", "filepath"])
    found = {}
    for sample_id, path in zip(ids, paths, strict=True):
        metadata = tiff_metadata(path)
        if metadata is not None:
            found[sample_id] = metadata
    if found:
        samples._root_dataset.set_values("metadata", found, key_field="id")
    rest = missing.exclude(list(found)) if found else missing
    rest.compute_metadata(overwrite=overwrite, progress=progress)
