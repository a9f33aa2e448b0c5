"""Reading video frames once, in order, one at a time (OpenCV).

``read_frames`` decodes a video from its first frame to the last one asked for
and yields only the frames asked for; frames in between are only grabbed
(``VideoCapture.grab``), not converted. A video that cannot be opened, or that
ends before a frame asked for (truncated, frames missing), raises
``VideoError`` naming the file and the frame.

Example::

    >>> frames = read_frames("clip.mp4", [1, 11, 21])  # doctest: +SKIP
    >>> [(number, rgb.shape) for number, rgb in frames]  # doctest: +SKIP
    [(1, (1080, 1920, 3)), (11, (1080, 1920, 3)), (21, (1080, 1920, 3))]
"""

from __future__ import annotations

import os
from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import VideoError


@dataclass(frozen=True)
class VideoInfo:
    """What OpenCV reads from a video's header.

    Attributes:
        width, height: frame size in pixels.
        frame_rate: frames per second (0 when the header has none).
        frame_count: frames the header announces (may be wrong for broken files).
    """

    width: int
    height: int
    frame_rate: float
    frame_count: int


def video_info(path: str | os.PathLike) -> VideoInfo:
    """The header of a video as OpenCV reads it.

    Raises:
        VideoError: the file is missing or OpenCV cannot open it.
    """
    capture = _open(path)
    try:
        return VideoInfo(
            width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            frame_rate=float(capture.get(cv2.CAP_PROP_FPS) or 0.0),
            frame_count=int(capture.get(cv2.CAP_PROP_FRAME_COUNT)),
        )
    finally:
        capture.release()


def read_frames(
    path: str | os.PathLike,
    frame_numbers: Sequence[int],
    pixels_for: Container[int] | None = None,
) -> Iterator[tuple[int, np.ndarray | None]]:
    """Yields ``(frame_number, rgb)`` for each frame asked for, decoding the video once.

    Args:
        path: the video file.
        frame_numbers: increasing 1-based frame numbers.
        pixels_for: the frames whose pixels are needed (``None``: all asked
            for); the others are yielded as ``(number, None)`` without being
            converted.

    Raises:
        VideoError: the video cannot be opened, or ends (or fails to decode)
            before the last frame asked for.
    """
    wanted = list(frame_numbers)
    if any(b <= a for a, b in zip(wanted, wanted[1:], strict=False)):
        raise ValueError("frame_numbers must be increasing")
    if not wanted:
        return
    if wanted[0] < 1:
        raise ValueError(f"frames are numbered from 1, got {wanted[0]}")
    pixels_for = set(wanted) if pixels_for is None else pixels_for
    capture = _open(path)
    try:
        position = 0  # frames decoded so far
        for number in wanted:
            while position < number - 1:
                if not capture.grab():
                    raise _ended(path, position, number)
                position += 1
            if number in pixels_for:
                ok, bgr = capture.read()
                frame = np.ascontiguousarray(bgr[..., ::-1]) if ok else None
            else:
                ok, frame = capture.grab(), None
            if not ok:
                raise _ended(path, position, number)
            position += 1
            yield number, frame
    finally:
        capture.release()


def _open(path: str | os.PathLike) -> cv2.VideoCapture:
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"video file not found: {path}")
    if path.stat().st_size == 0:
        raise VideoError(f"video file is empty (0 bytes): {path}")
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        capture.release()
        raise VideoError(f"cannot open video {path}: corrupt or not a video")
    return capture


def _ended(path: str | os.PathLike, decoded: int, number: int) -> VideoError:
    return VideoError(
        f"video {path} ended after {decoded} frames, before frame {number}: "
        "truncated, corrupt or frames missing"
    )
