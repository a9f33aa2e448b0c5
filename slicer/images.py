"""Reading images and normalising arrays to the one layout the engine uses.

Inside the engine every image is an ``HxWx3`` uint8 array in **RGB** order,
EXIF orientation applied (as browsers, and so the FiftyOne App, show it).
Grayscale, RGBA, palette, CMYK and 16-bit inputs are converted here, once.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from .errors import ImageError

#: Smallest side an image may have; a 1-pixel image holds nothing to detect.
MIN_SIDE = 2


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Reads an image file as RGB uint8 with its EXIF orientation applied.

    Raises:
        ImageError: the file is missing, empty, truncated, not an image,
            beyond PIL's decompression-bomb limit, or smaller than
            ``MIN_SIDE`` on a side; the message names the file.

    Example::

        >>> image = load_image("photo.jpg")  # doctest: +SKIP
        >>> image.shape[2], image.dtype
        (3, dtype('uint8'))
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image file not found: {path}")
    if path.stat().st_size == 0:
        raise ImageError(f"image file is empty (0 bytes): {path}")
    try:
        with _pil_open(path) as image:
            # In place: otherwise an image without rotation is copied whole.
            ImageOps.exif_transpose(image, in_place=True)
            array = _pil_to_rgb(image)
    except UnidentifiedImageError as error:
        raise ImageError(f"not an image file (unknown format): {path}") from error
    except Image.DecompressionBombError as error:
        raise ImageError(
            f"image {path} is larger than PIL.Image.MAX_IMAGE_PIXELS allows "
            f"({error}); raise that limit if you trust the file"
        ) from error
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"cannot decode image {path}: {error}") from error
    return check_size(array, str(path))


def to_rgb(image: np.ndarray, channels: str = "rgb") -> np.ndarray:
    """Normalises an array to ``HxWx3`` uint8 RGB.

    Args:
        image: ``HxW``, ``HxWx1``, ``HxWx3`` or ``HxWx4`` array of uint8,
            uint16 (scaled down), bool, or float in ``[0, 1]``.
        channels: order of a colour ``image``: ``"rgb"`` or ``"bgr"``
            (OpenCV's ``cv2.imread`` order).

    Example::

        >>> to_rgb(np.zeros((4, 5), np.uint16)).shape
        (4, 5, 3)
    """
    if channels not in ("rgb", "bgr"):
        raise ImageError(f"channels must be 'rgb' or 'bgr', got {channels!r}")
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    elif array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ImageError(
            f"expected an HxW or HxWxC image with C in 1, 3, 4; got shape {array.shape}"
        )
    array = array[..., :3]
    if channels == "bgr":
        array = array[..., ::-1]
    return check_size(np.ascontiguousarray(_to_uint8(array)), "image")


def check_size(image: np.ndarray, name: str) -> np.ndarray:
    """Returns ``image`` if both sides are at least ``MIN_SIDE``, else raises ``ImageError``."""
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise ImageError(
            f"{name} is {width}x{height} px: too small to run a detector on"
        )
    return image


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        peak = float(np.nanmax(array)) if array.size else 1.0
        scale = 255.0 if peak <= 1.0 else 255.0 / peak
        return np.clip(np.nan_to_num(array) * scale, 0, 255).astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        # Scale by bit depth, not by the image's peak: a browser shows a
        # 16-bit PNG the same way, so boxes and the App agree on brightness.
        if array.dtype.itemsize == 1:
            return array.astype(np.uint8)
        peak = int(array.max()) if array.size else 0
        bits = 16 if peak <= 0xFFFF else int(peak).bit_length()
        return (np.clip(array, 0, None).astype(np.uint64) >> (bits - 8)).astype(
            np.uint8
        )
    raise ImageError(f"unsupported image dtype {array.dtype}")


def _pil_open(path: Path):
    """Pillow's own ``Image.open``, also where Ultralytics has replaced it.

    Ultralytics' replacement pip-installs (or, offline, fails to import) a HEIF
    plugin whenever Pillow does not know a file: reading a user's bad image
    must give an ``ImageError``, never install packages.
    """
    from PIL import Image

    patches = sys.modules.get("ultralytics.utils.patches")
    return getattr(patches, "_image_open", Image.open)(path)


def _pil_to_rgb(image) -> np.ndarray:
    """PIL image of any mode -> RGB uint8 array (16-bit and float modes scaled)."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return to_rgb(np.asarray(image))
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image)
