"""Short synthetic videos: small objects moving across a textured scene, with true track ids.

A video is one background (the still scenes' textures and clutter, see
``scenes``) and a set of objects, each drawn once as a sprite and then moved in
a straight line at its own speed (a quarter of them parked), entering and
leaving the frame. Every frame gets fresh sensor noise. Per frame, the ground
truth is computed from pixel ownership, as for still scenes: a box is the tight
bound of an object's visible pixels, and an object hidden by another or by the
frame border beyond ``MIN_VISIBLE`` of its area is not drawn (and not labelled)
in that frame. Each object keeps its ``track_id`` across frames.

``write_video`` streams frames to an mp4 (``mp4v``) with ``cv2.VideoWriter``,
one at a time, and saves the labels next to it (``<name>.json``), so videos of
any length are written in constant memory.

Example::

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "clip.mp4"
    >>> labels = write_video(out, num_frames=3, width=320, height=240, seed=1)
    >>> len(labels.frames), out.is_file()
    (3, True)
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .scenes import _log_uniform, _paste, _Placed, paint_background, paint_clutter
from .shapes import CLASSES, Sprite, draw_sprite

#: Classes that move (storage tanks stay where they are).
MOVING_CLASSES = ("plane", "car", "boat")
#: An object less visible than this share of its area is not drawn in a frame.
MIN_VISIBLE = 0.3
#: Labels of a video are saved next to it with this suffix.
LABELS_SUFFIX = ".json"


@dataclass(frozen=True)
class MovingObject:
    """One object of a video: its sprite and straight-line motion.

    Attributes:
        track_id: the object's identity, the same in every frame (from 1).
        label: its class, one of ``CLASSES``.
        length: its length in pixels.
        start: ``(x, y)`` centre in the first frame, in pixels.
        velocity: ``(dx, dy)`` pixels per frame; ``(0, 0)`` when parked.
    """

    track_id: int
    label: str
    length: float
    start: tuple[float, float]
    velocity: tuple[float, float]

    def centre(self, index: int) -> tuple[float, float]:
        """The centre in frame ``index`` (0-based)."""
        return (
            self.start[0] + self.velocity[0] * index,
            self.start[1] + self.velocity[1] * index,
        )


@dataclass
class FrameLabels:
    """The ground truth of one frame.

    Attributes:
        frame_number: 1-based, as FiftyOne numbers frames.
        boxes: ``xyxy`` integer pixel boxes of the visible objects.
        labels: their classes.
        track_ids: their ``MovingObject.track_id``.
    """

    frame_number: int
    boxes: list[list[int]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    track_ids: list[int] = field(default_factory=list)


@dataclass
class VideoLabels:
    """A whole video's ground truth and how it was made.

    Attributes:
        width, height: frame size in pixels.
        fps: frames per second written to the file.
        seed: the generator's seed.
        frames: one ``FrameLabels`` per frame, in order.
    """

    width: int
    height: int
    fps: float
    seed: int
    frames: list[FrameLabels] = field(default_factory=list)

    def save(self, path: str | Path) -> None:
        """Writes the labels as JSON."""
        Path(path).write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: str | Path) -> VideoLabels:
        """Reads labels written by ``save``."""
        data = json.loads(Path(path).read_text())
        frames = [FrameLabels(**f) for f in data.pop("frames")]
        return cls(**data, frames=frames)


def moving_objects(
    rng: np.random.Generator,
    width: int,
    height: int,
    num_frames: int,
    *,
    density: float = 20.0,
    size_range: tuple[float, float] = (12.0, 40.0),
    speed_range: tuple[float, float] = (1.5, 7.0),
    parked_fraction: float = 0.25,
) -> list[MovingObject]:
    """Objects and their motion for a ``num_frames`` video.

    Movers start anywhere their path crosses the frame during the clip, so
    some enter and some leave; parked objects (and every storage tank) stay.

    Example::

        >>> objs = moving_objects(np.random.default_rng(0), 640, 480, 10)
        >>> all(o.track_id == i + 1 for i, o in enumerate(objs))
        True
    """
    count = max(1, int(rng.poisson(density * width * height / 1e6)))
    objects = []
    for track_id in range(1, count + 1):
        label = str(rng.choice(CLASSES))
        length = _log_uniform(rng, *size_range)
        parked = label not in MOVING_CLASSES or rng.random() < parked_fraction
        speed = 0.0 if parked else _log_uniform(rng, *speed_range)
        heading = rng.uniform(0, 2 * np.pi)
        velocity = (speed * np.cos(heading), speed * np.sin(heading))
        # Where the object is halfway through the clip: inside the frame.
        mid = (rng.uniform(0, width), rng.uniform(0, height))
        half = (num_frames - 1) / 2.0
        start = (mid[0] - velocity[0] * half, mid[1] - velocity[1] * half)
        objects.append(
            MovingObject(
                track_id,
                label,
                length,
                (float(start[0]), float(start[1])),
                (float(velocity[0]), float(velocity[1])),
            )
        )
    return objects


def iter_video_frames(
    num_frames: int = 60,
    width: int = 1920,
    height: int = 1080,
    *,
    seed: int = 0,
    density: float = 20.0,
    size_range: tuple[float, float] = (12.0, 40.0),
) -> Iterator[tuple[np.ndarray, FrameLabels]]:
    """Yields each frame (``HxWx3`` uint8 RGB) with its labels, one at a time.

    Args:
        num_frames: frames in the clip.
        width, height: frame size in pixels.
        seed: random seed; the same arguments always give the same video.
        density: objects per megapixel.
        size_range: object lengths in pixels (log-uniform).

    Example::

        >>> frames = iter_video_frames(2, 320, 240, seed=3)
        >>> image, labels = next(frames)
        >>> image.shape, labels.frame_number
        ((240, 320, 3), 1)
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    if width < 32 or height < 32:
        raise ValueError(f"video too small: {width}x{height}")
    rng = np.random.default_rng(seed)
    background = paint_background(rng, width, height)
    paint_clutter(rng, background)
    objects = moving_objects(
        rng, width, height, num_frames, density=density, size_range=size_range
    )
    # Each object keeps one sprite: it turns with its heading, once.
    sprites = [
        draw_sprite(o.label, o.length, float(np.arctan2(*o.velocity[::-1])), rng)
        for o in objects
    ]
    noise_level = rng.uniform(2.0, 4.0)
    for index in range(num_frames):
        image, labels = _render_frame(
            background, objects, sprites, index, rng, noise_level
        )
        yield image, labels


def write_video(
    path: str | Path,
    num_frames: int = 60,
    width: int = 1920,
    height: int = 1080,
    *,
    seed: int = 0,
    fps: float = 25.0,
    density: float = 20.0,
    size_range: tuple[float, float] = (12.0, 40.0),
) -> VideoLabels:
    """Writes a synthetic video (``mp4v``) and its labels (``<path>.json``).

    Frames are rendered and written one at a time (constant memory).

    Returns:
        the ``VideoLabels`` also saved next to the video.

    Example::

        labels = write_video("/tmp/drone.mp4", num_frames=60, seed=0)
        print(sum(len(f.boxes) for f in labels.frames))
    """
    path = Path(path)
    writer = _video_writer(path, "mp4v", fps, (width, height))
    labels = VideoLabels(width, height, float(fps), seed)
    try:
        for image, frame in iter_video_frames(
            num_frames, width, height, seed=seed, density=density, size_range=size_range
        ):
            writer.write(np.ascontiguousarray(image[..., ::-1]))  # RGB -> BGR
            labels.frames.append(frame)
    finally:
        writer.release()
    labels.save(labels_path(path))
    return labels


def labels_path(video_path: str | Path) -> Path:
    """Where ``write_video`` keeps the labels of ``video_path``."""
    return Path(video_path).with_suffix(LABELS_SUFFIX)


def _video_writer(
    path: Path, codec: str, fps: float, size: tuple[int, int]
) -> cv2.VideoWriter:
    """An open ``cv2.VideoWriter`` (its folder made), or ``OSError``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*codec), float(fps), size
    )
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write a {codec} video to {path}")
    return writer


def _render_frame(
    background: np.ndarray,
    objects: Sequence[MovingObject],
    sprites: Sequence[Sprite],
    index: int,
    rng: np.random.Generator,
    noise_level: float,
) -> tuple[np.ndarray, FrameLabels]:
    """One frame: the objects pasted at their positions, blur and noise, labels."""
    height, width = background.shape[:2]
    img = background.copy()
    owner = np.zeros((height, width), np.int32)
    placed: list[_Placed] = []
    drawn: list[int] = []
    for obj, sprite in zip(objects, sprites, strict=True):
        cx, cy = obj.centre(index)
        if _paste(
            sprite, cx, cy, img, owner, placed, obj.label, MIN_VISIBLE, MIN_VISIBLE
        ):
            drawn.append(obj.track_id)
    img = cv2.GaussianBlur(img, (0, 0), 0.6)
    img += rng.normal(0.0, noise_level, size=(height, width, 1)).astype(np.float32)
    image = np.clip(img, 0, 255).astype(np.uint8)
    return image, _frame_labels(owner, placed, drawn, index + 1)


def _frame_labels(
    owner: np.ndarray, placed: list[_Placed], drawn: list[int], frame_number: int
) -> FrameLabels:
    """Boxes of the visible pixels each drawn object still owns."""
    labels = FrameLabels(frame_number)
    for i, (obj, track_id) in enumerate(zip(placed, drawn, strict=True)):
        ys, xs = np.nonzero(owner[obj.y0 : obj.y1, obj.x0 : obj.x1] == i + 1)
        if not len(ys):
            continue
        labels.boxes.append(
            [
                int(obj.x0 + xs.min()),
                int(obj.y0 + ys.min()),
                int(obj.x0 + xs.max() + 1),
                int(obj.y0 + ys.max() + 1),
            ]
        )
        labels.labels.append(obj.label)
        labels.track_ids.append(track_id)
    return labels


def write_cut_video(
    path: str | Path, num_frames: int = 10, keep: float = 0.6, size: int = 160
) -> Path:
    """Writes an AVI (MJPG) of noise frames, then cuts off its end.

    The header still announces ``num_frames`` frames but only the first ones
    decode: the "truncated, frames missing" case (an interrupted recording or
    download), for tests of the runs' error handling.

    Example::

        >>> import tempfile, pathlib
        >>> path = write_cut_video(pathlib.Path(tempfile.mkdtemp()) / "cut.avi")
        >>> path.stat().st_size > 0
        True
    """
    path = Path(path)
    height = size * 3 // 4
    writer = _video_writer(path, "MJPG", 10.0, (size, height))
    noise = np.random.default_rng(0)
    for _ in range(num_frames):
        writer.write(noise.integers(0, 255, (height, size, 3), dtype=np.uint8))
    writer.release()
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path
