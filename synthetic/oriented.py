"""Scenes of rotated, elongated objects with exact oriented ground truth (for OBB models).

The same backgrounds and clutter as ``scenes.generate_scene``, with two classes
of elongated objects at any heading: ``container`` (a rotated rectangle in a
bright paint, a darker door end and corrugation stripes) and ``ship`` (an
ellipse with a dark hull and a light deck). Most are 14-64 px long and 2.5-5
times as long as wide; a few long ones (120-260 px) cross tile edges; about a
third stand in rows side by side (container stacks, ships at a quay).

Objects never overlap or touch (a placement that would is refused) and lie
wholly inside the image, so each label is the exact rotated rectangle the
object was drawn in: ``rboxes`` holds ``(cx, cy, length, width, angle)`` in
pixels, with pixel ``(i, j)`` covering ``[i, i+1) x [j, j+1)``, the same
convention as ``fo.Polyline.from_rotated_box`` with a ``frame_size``. The
existing scenes, their seeds and their classes are not affected.

Example::

    >>> scene = generate_oriented_scene(seed=3, width=800, height=600)
    >>> scene.image.shape, scene.rboxes.shape[1]
    ((600, 800, 3), 5)
    >>> set(scene.labels) <= set(ORIENTED_CLASSES)
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..slicer.rotated import rbox_corners
from .scenes import paint_background, paint_clutter

#: The oriented-object classes, in the order used as model class ids.
ORIENTED_CLASSES: tuple[str, ...] = ("container", "ship")

# Fixed-point bits for cv2.fillPoly: 1/16 px vertex precision.
_SHIFT = 4
# Bright paints: none close to a background palette or to the clutter.
_CONTAINER_COLOURS = np.array(
    [(196, 48, 36), (40, 84, 180), (226, 150, 30), (36, 150, 90), (226, 226, 220)],
    dtype=np.float32,
)
_HULL_COLOURS = np.array(
    [(28, 36, 70), (40, 40, 46), (110, 30, 30), (20, 64, 72)], dtype=np.float32
)
_DECK = np.array((232.0, 232.0, 224.0), dtype=np.float32)


@dataclass
class OrientedScene:
    """A generated image and its oriented ground truth.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        rboxes: ``(N, 5)`` float64 ``(cx, cy, length, width, angle)`` in
            pixels; ``angle`` (radians, ``[0, pi)``) turns the length axis
            from ``+x`` towards ``+y``.
        labels: per object, one of ``ORIENTED_CLASSES``.
        seed: the seed that generated the scene.
    """

    image: np.ndarray
    rboxes: np.ndarray
    labels: list[str]
    seed: int = 0

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return int(self.image.shape[0])

    @property
    def class_ids(self) -> np.ndarray:
        """``(N,)`` int64 index of each label in ``ORIENTED_CLASSES``."""
        return np.array(
            [ORIENTED_CLASSES.index(x) for x in self.labels], dtype=np.int64
        )

    @property
    def polygons(self) -> np.ndarray:
        """``(N, 4, 2)`` corners of each object's rotated rectangle, in pixels."""
        return rbox_corners(self.rboxes)

    @property
    def areas(self) -> np.ndarray:
        """``(N,)`` area of each rotated rectangle in square pixels."""
        return self.rboxes[:, 2] * self.rboxes[:, 3]

    def __len__(self) -> int:
        return len(self.labels)


def generate_oriented_scene(
    seed: int,
    width: int = 2400,
    height: int = 1800,
    *,
    density: float = 60.0,
    size_range: tuple[float, float] = (14.0, 64.0),
    aspect_range: tuple[float, float] = (2.5, 5.0),
    long_range: tuple[float, float] = (120.0, 260.0),
    num_long: int | None = None,
    group_fraction: float = 0.35,
    classes: Sequence[str] = ORIENTED_CLASSES,
) -> OrientedScene:
    """Generates one scene of rotated objects; the same arguments give the same scene.

    Args:
        seed: random seed.
        width, height: image size in pixels.
        density: ordinary objects per megapixel (on average; refused
            placements make it a little lower).
        size_range: lengths of ordinary objects in pixels (log-uniform).
        aspect_range: length / width (widths are at least 4 px).
        long_range: lengths of the few long objects.
        num_long: how many long objects; ``None`` picks 0 to 2.
        group_fraction: share of ordinary objects placed in rows.
        classes: the classes to draw (a subset of ``ORIENTED_CLASSES``).

    Returns:
        An ``OrientedScene`` whose rotated boxes are exactly the drawn shapes.

    Example::

        >>> a = generate_oriented_scene(1, 640, 480)
        >>> b = generate_oriented_scene(1, 640, 480)
        >>> bool((a.image == b.image).all()) and bool((a.rboxes == b.rboxes).all())
        True
    """
    if width < 64 or height < 64:
        raise ValueError(f"scene too small: {width}x{height}")
    if not classes or set(classes) - set(ORIENTED_CLASSES):
        raise ValueError(f"classes must be a non-empty subset of {ORIENTED_CLASSES}")
    rng = np.random.default_rng(seed)
    img = paint_background(rng, width, height)
    paint_clutter(rng, img)
    taken = np.zeros((height, width), bool)
    rboxes: list[tuple[float, ...]] = []
    labels: list[str] = []
    classes = list(classes)

    def place(label: str, rbox: tuple[float, ...]) -> bool:
        if not _draw(img, taken, label, rbox, rng):
            return False
        rboxes.append(rbox)
        labels.append(label)
        return True

    def shape(length: float, low: float, high: float) -> tuple[float, float]:
        return length, max(length / rng.uniform(low, high), 4.0)

    for _ in range(int(rng.integers(0, 3)) if num_long is None else num_long):
        for _attempt in range(20):
            length, wide = shape(rng.uniform(*long_range), 4.0, 7.0)
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            if place(str(rng.choice(classes)), (cx, cy, length, wide, _heading(rng))):
                break

    n_small = int(rng.poisson(density * width * height / 1e6))
    count = 0
    while count < int(n_small * group_fraction):
        # A row side by side across the heading, sometimes two rows deep.
        label = str(rng.choice(classes))
        length, wide = shape(np.exp(rng.uniform(*np.log(size_range))), *aspect_range)
        angle = _heading(rng)
        along = np.array([np.cos(angle), np.sin(angle)])
        across = np.array([-along[1], along[0]])
        gap = wide * rng.uniform(1.3, 1.7)
        origin = rng.uniform([0, 0], [width, height])
        for row in range(int(rng.integers(1, 3))):
            for col in range(int(rng.integers(3, 9))):
                cx, cy = origin + across * col * gap + along * row * length * 1.2
                jitter = rng.normal(0, 0.03)
                place(label, (cx, cy, length, wide, (angle + jitter) % np.pi))
                count += 1
    for _ in range(n_small - count):
        length, wide = shape(np.exp(rng.uniform(*np.log(size_range))), *aspect_range)
        for _attempt in range(3):
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            if place(str(rng.choice(classes)), (cx, cy, length, wide, _heading(rng))):
                break

    # Sensor noise and a slight blur over everything, as in the other scenes.
    img = cv2.GaussianBlur(img, (0, 0), 0.6)
    img += rng.normal(0.0, rng.uniform(2.0, 5.0), size=(height, width, 1)).astype(
        np.float32
    )
    image = np.clip(img, 0, 255).astype(np.uint8)
    boxes = np.array(rboxes, dtype=np.float64).reshape(-1, 5)
    return OrientedScene(image, boxes, labels, seed)


def _heading(rng: np.random.Generator) -> float:
    return float(rng.uniform(0, np.pi))


def _polygon_mask(
    corners: np.ndarray, x0: int, y0: int, shape: tuple[int, int]
) -> np.ndarray:
    """Pixels of the patch at ``(x0, y0)`` whose centres fall inside the polygon."""
    mask = np.zeros(shape, np.uint8)
    # Pixel (i, j) has its centre at (i + 0.5, j + 0.5); OpenCV puts it at (i, j).
    pts = (corners - [x0 + 0.5, y0 + 0.5]) * (1 << _SHIFT)
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1, cv2.LINE_8, _SHIFT)
    return mask > 0


def _ellipse(rbox: tuple[float, ...], scale: float = 1.0) -> np.ndarray:
    """A 48-corner polygon of the ellipse inscribed in a rotated box."""
    cx, cy, length, wide, angle = rbox
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    local = np.stack([np.cos(t) * length / 2, np.sin(t) * wide / 2], axis=1) * scale
    c, s = np.cos(angle), np.sin(angle)
    return local @ np.array([[c, s], [-s, c]]) + [cx, cy]


def _scaled(rbox: tuple[float, ...], grow: float) -> np.ndarray:
    """Corners of ``rbox`` grown by ``grow`` px on every side."""
    cx, cy, length, wide, angle = rbox
    grown = [cx, cy, length + 2 * grow, wide + 2 * grow, angle]
    return rbox_corners(np.array([grown]))[0]


def _draw(
    img: np.ndarray,
    taken: np.ndarray,
    label: str,
    rbox: tuple[float, ...],
    rng: np.random.Generator,
) -> bool:
    """Paints one object unless it leaves the image or comes within 1 px of another."""
    height, width = taken.shape
    corners = _scaled(rbox, 0.0)
    if corners.min() < 1 or (corners.max(axis=0) > [width - 1, height - 1]).any():
        return False
    x0, y0 = (int(v) - 2 for v in corners.min(axis=0))
    x1, y1 = (int(np.ceil(v)) + 2 for v in corners.max(axis=0))
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    shape = (y1 - y0, x1 - x0)
    if (_polygon_mask(_scaled(rbox, 1.0), x0, y0, shape) & taken[y0:y1, x0:x1]).any():
        return False
    patch = img[y0:y1, x0:x1]
    if label == "container":
        body = _polygon_mask(corners, x0, y0, shape)
        paint = _CONTAINER_COLOURS[rng.integers(len(_CONTAINER_COLOURS))]
        paint = paint + rng.normal(0, 8, 3).astype(np.float32)
        patch[body] = paint
        length = rbox[2]
        # Corrugation: thin darker stripes across the length, every ~3 px.
        for k in np.arange(-length / 2 + 1.5, length / 2 - 1.0, 3.0):
            stripe = _polygon_mask(_stripe(rbox, k), x0, y0, shape) & body
            patch[stripe] = paint * 0.82
        door = _polygon_mask(_stripe(rbox, length / 2 - 1.0, 2.0), x0, y0, shape)
        patch[door & body] = paint * 0.6
    else:
        body = _polygon_mask(_ellipse(rbox), x0, y0, shape)
        hull = _HULL_COLOURS[rng.integers(len(_HULL_COLOURS))]
        patch[body] = hull + rng.normal(0, 6, 3).astype(np.float32)
        deck = _polygon_mask(_ellipse(rbox, 0.6), x0, y0, shape) & body
        patch[deck] = _DECK + rng.normal(0, 6, 3).astype(np.float32)
    taken[y0:y1, x0:x1] |= body
    return True


def _stripe(
    rbox: tuple[float, ...], offset: float, thickness: float = 1.0
) -> np.ndarray:
    """Corners of a band across ``rbox`` at ``offset`` px from its centre, along its length."""
    cx, cy, _, wide, angle = rbox
    c, s = np.cos(angle), np.sin(angle)
    return rbox_corners(
        np.array([[cx + offset * c, cy + offset * s, thickness, wide, angle]])
    )[0]
