"""Large scenes with many small objects and exact instance labels.

A scene is a textured background with clutter (faint roads and vegetation-like
blobs in colours no object uses), then objects drawn one after another: most
8-48 px, a few of 200 px or more, some in tight groups that touch or overlap,
some cut by the image border. Later objects occlude earlier ones, and every
label is computed from the final ownership of each pixel, so masks are exactly
the visible pixels and boxes are their tight bounds.

Example::

    >>> scene = generate_scene(seed=7, width=1600, height=1200)
    >>> scene.image.shape
    (1200, 1600, 3)
    >>> len(scene.labels) == len(scene.boxes) == len(scene.masks)
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from .shapes import CLASSES, Sprite, draw_sprite

# Background palettes (RGB): muted earth, grass, concrete and water tones. None
# is close to an object colour, so the background cannot pass for an object.
_PALETTES = np.array(
    [
        [(112, 124, 78), (86, 104, 62), (132, 128, 96)],  # grassland
        [(168, 150, 112), (144, 124, 92), (182, 168, 132)],  # desert
        [(118, 118, 114), (96, 98, 96), (140, 138, 130)],  # concrete
        [(62, 96, 112), (52, 82, 96), (80, 112, 120)],  # water
        [(96, 84, 64), (120, 106, 78), (76, 88, 56)],  # soil
    ],
    dtype=np.float32,
)
# Clutter colours: dark greens and browns (bushes, patches, tracks).
_CLUTTER = np.array(
    [(52, 78, 40), (70, 96, 48), (90, 72, 50), (64, 58, 44), (104, 112, 70)],
    dtype=np.float32,
)


@dataclass
class Scene:
    """A generated image and its ground truth.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        boxes: ``(N, 4)`` int64 ``xyxy`` pixels, the tight box of each visible
            mask (``x1``, ``y1`` exclusive).
        masks: per object, a bool array of shape ``(y1 - y0, x1 - x0)``: the
            object's visible pixels inside its box.
        labels: per object, its class name (one of ``CLASSES``).
        seed: the seed that generated the scene.
    """

    image: np.ndarray
    boxes: np.ndarray
    masks: list[np.ndarray]
    labels: list[str]
    seed: int = 0
    meta: dict = field(default_factory=dict)

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
        """``(N,)`` int64 index of each label in ``CLASSES``."""
        return np.array([CLASSES.index(x) for x in self.labels], dtype=np.int64)

    @property
    def areas(self) -> np.ndarray:
        """``(N,)`` int64 visible pixel count of each object."""
        return np.array([int(m.sum()) for m in self.masks], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)


def scene_size(
    rng: np.random.Generator, min_width: int = 1600, max_width: int = 4000
) -> tuple[int, int]:
    """A random image size: width in the range, a common aspect ratio.

    Example::

        >>> w, h = scene_size(np.random.default_rng(0))
        >>> 1600 <= w <= 4000
        True
    """
    if not 0 < min_width <= max_width:
        raise ValueError(
            f"need 0 < min_width <= max_width, got {min_width}, {max_width}"
        )
    width = int(rng.integers(min_width, max_width + 1))
    aspect = float(rng.choice([1.0, 4 / 3, 3 / 2, 16 / 9]))
    return width, max(1, int(round(width / aspect)))


def _smooth_noise(
    rng: np.random.Generator, width: int, height: int, cell: float
) -> np.ndarray:
    """Value noise with features about ``cell`` px wide, in ``[-1, 1]`` (float32)."""
    gw, gh = max(2, int(width / cell) + 2), max(2, int(height / cell) + 2)
    grid = rng.uniform(-1.0, 1.0, size=(gh, gw)).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)


def paint_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A float32 RGB background: palette regions, a gradient and textures."""
    palette = _PALETTES[rng.integers(len(_PALETTES))]
    palette = palette + rng.normal(0.0, 6.0, size=palette.shape).astype(np.float32)
    # Large regions (fields, lots) from thresholded low-frequency noise.
    regions = _smooth_noise(rng, width, height, rng.uniform(300, 900))
    index = (regions < -0.25).astype(np.uint8) + 2 * (regions > 0.35)
    img = palette[index]
    img = cv2.GaussianBlur(img, (0, 0), 3.0)
    # A lighting gradient across the scene in a random direction.
    theta = rng.uniform(0, 2 * np.pi)
    xs = np.linspace(-0.5, 0.5, width, dtype=np.float32) * np.cos(theta)
    ys = np.linspace(-0.5, 0.5, height, dtype=np.float32) * np.sin(theta)
    gain = 1.0 + rng.uniform(0.1, 0.35) * (ys[:, None] + xs[None, :])
    # Texture at two scales, so tiles of the same scene still differ.
    texture = 0.6 * _smooth_noise(rng, width, height, 60) + 0.4 * _smooth_noise(
        rng, width, height, 8
    )
    gain = gain * (1.0 + rng.uniform(0.04, 0.12) * texture)
    img *= gain[..., None]
    return img


def paint_clutter(rng: np.random.Generator, img: np.ndarray) -> None:
    """Draws things that are not objects: faint tracks and soft blobs (in place)."""
    height, width = img.shape[:2]
    mp = width * height / 1e6
    overlay = img.copy()
    for _ in range(rng.poisson(3 * mp) + 1):  # roads and tracks
        pts = np.cumsum(rng.normal(0, 400, size=(rng.integers(2, 6), 2)), axis=0)
        pts += rng.uniform([0, 0], [width, height])
        colour = _CLUTTER[rng.integers(len(_CLUTTER))] * rng.uniform(0.8, 1.3)
        thick = int(rng.integers(2, 12))
        cv2.polylines(
            overlay, [pts.astype(np.int32)], False, colour.tolist(), thick, cv2.LINE_AA
        )
    for _ in range(rng.poisson(60 * mp)):  # bushes, patches, debris
        centre = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        # Mostly object-sized, so the model must learn colour and shape.
        axes = tuple(int(a) for a in np.exp(rng.uniform(np.log(3), np.log(60), size=2)))
        colour = _CLUTTER[rng.integers(len(_CLUTTER))] * rng.uniform(0.7, 1.2)
        cv2.ellipse(
            overlay,
            centre,
            axes,
            rng.uniform(0, 360),
            0,
            360,
            colour.tolist(),
            -1,
            cv2.LINE_AA,
        )
    alpha = rng.uniform(0.4, 0.7)
    cv2.addWeighted(overlay, alpha, img, 1 - alpha, 0.0, dst=img)


@dataclass
class _Placed:
    label: str
    x0: int
    y0: int
    x1: int
    y1: int
    full_area: int


def _paste(
    sprite: Sprite,
    cx: float,
    cy: float,
    img: np.ndarray,
    owner: np.ndarray,
    placed: list[_Placed],
    label: str,
    min_visible: float,
    min_kept: float,
) -> bool:
    """Draws ``sprite`` centred at ``(cx, cy)`` unless that hides too much.

    Rejected when the object is mostly outside the image, or when it would
    leave an earlier object with less than ``min_kept`` of its area: heavily
    hidden objects make labels nobody could predict.
    """
    height, width = owner.shape
    s = sprite.size
    ox, oy = int(round(cx)) - s // 2, int(round(cy)) - s // 2
    x0, y0, x1, y1 = max(ox, 0), max(oy, 0), min(ox + s, width), min(oy + s, height)
    if x1 <= x0 or y1 <= y0:
        return False
    local = (slice(y0 - oy, y1 - oy), slice(x0 - ox, x1 - ox))
    mask = sprite.mask[local]
    area = int(mask.sum())
    if area < max(min_visible * sprite.mask.sum(), 6):
        return False
    region = owner[y0:y1, x0:x1]
    hidden = region[mask]
    hidden = hidden[hidden > 0]
    if hidden.size:
        ids, counts = np.unique(hidden, return_counts=True)
        for oid, count in zip(ids, counts, strict=True):
            obj = placed[oid - 1]
            left = int((owner[obj.y0 : obj.y1, obj.x0 : obj.x1] == oid).sum()) - count
            if left < min_kept * obj.full_area or left < 6:
                return False
    if sprite.halo is not None:
        halo = sprite.halo[local] * (region == 0)
        view = img[y0:y1, x0:x1]
        view += halo[..., None] * (np.float32(sprite.halo_rgb) - view)
    img[y0:y1, x0:x1][mask] = sprite.rgb[local][mask]
    region[mask] = len(placed) + 1
    ys, xs = np.nonzero(mask)
    placed.append(
        _Placed(
            label,
            x0 + xs.min(),
            y0 + ys.min(),
            x0 + xs.max() + 1,
            y0 + ys.max() + 1,
            area,
        )
    )
    return True


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def generate_scene(
    seed: int,
    width: int = 2400,
    height: int = 1800,
    *,
    density: float = 40.0,
    size_range: tuple[float, float] = (8.0, 48.0),
    large_range: tuple[float, float] = (200.0, 420.0),
    num_large: int | None = None,
    group_fraction: float = 0.35,
    classes: Sequence[str] = CLASSES,
    lines: tuple[Sequence[float], Sequence[float]] = ((), ()),
    line_fraction: float = 0.5,
) -> Scene:
    """Generates one scene; the same arguments always give the same scene.

    Args:
        seed: random seed.
        width, height: image size in pixels.
        density: small objects per megapixel (on average).
        size_range: lengths of ordinary objects in pixels (log-uniform).
        large_range: lengths of the few large objects.
        num_large: how many large objects; ``None`` picks 1 to 3.
        group_fraction: share of small objects placed in tight groups (parking
            rows, tank farms, marinas) where they touch or overlap.
        classes: the classes to draw (a subset of ``CLASSES``).
        lines: ``(xs, ys)``: vertical lines at ``x`` and horizontal lines at
            ``y`` (e.g. the seams of a tile grid) that attract objects.
        line_fraction: with ``lines``, the share of the ungrouped small
            objects centred on one of them (so they cross it).

    Returns:
        A ``Scene`` whose labels are exactly the visible object pixels.

    Example::

        >>> a = generate_scene(1, 800, 600)
        >>> b = generate_scene(1, 800, 600)
        >>> bool((a.image == b.image).all())
        True
    """
    if width < 32 or height < 32:
        raise ValueError(f"scene too small: {width}x{height}")
    unknown = set(classes) - set(CLASSES)
    if unknown or not classes:
        raise ValueError(f"classes must be a non-empty subset of {CLASSES}")
    rng = np.random.default_rng(seed)
    img = paint_background(rng, width, height)
    paint_clutter(rng, img)
    owner = np.zeros((height, width), np.int32)
    placed: list[_Placed] = []
    classes = list(classes)

    def place(label: str, length: float, cx: float, cy: float, angle: float) -> bool:
        sprite = draw_sprite(label, length, angle, rng)
        return _paste(sprite, cx, cy, img, owner, placed, label, 0.3, 0.5)

    # Large objects first, so small ones may sit on top of them.
    n_large = int(rng.integers(1, 4)) if num_large is None else num_large
    for _ in range(n_large):
        for _attempt in range(20):
            length = rng.uniform(*large_range)
            if place(
                str(rng.choice(classes)),
                length,
                rng.uniform(0, width),
                rng.uniform(0, height),
                rng.uniform(0, 2 * np.pi),
            ):
                break

    n_small = int(rng.poisson(density * width * height / 1e6))
    n_grouped = int(n_small * group_fraction)
    count = 0
    while count < n_grouped:
        # A group: same class and size, in a row or a small grid, nearly touching.
        label = str(rng.choice(classes))
        length = _log_uniform(rng, *size_range)
        angle = rng.uniform(0, 2 * np.pi)
        cols, rows = int(rng.integers(2, 6)), int(rng.integers(1, 4))
        pitch = length * rng.uniform(0.85, 1.15)
        gap = (
            length * (0.5 if label in ("car", "boat") else 1.0) * rng.uniform(0.8, 1.1)
        )
        ox, oy = rng.uniform(0, width), rng.uniform(0, height)
        u = np.array([np.cos(angle), np.sin(angle)])
        v = np.array([-u[1], u[0]])
        for r in range(rows):
            for c in range(cols):
                # Cars and boats side by side across their heading.
                cx, cy = np.array([ox, oy]) + v * c * gap + u * r * pitch
                cx += rng.normal(0, 0.08 * length)
                cy += rng.normal(0, 0.08 * length)
                jitter = rng.normal(0, 0.1)
                place(label, length * rng.uniform(0.92, 1.08), cx, cy, angle + jitter)
                count += 1

    xs, ys = (list(v) for v in lines)
    for _ in range(n_small - count):
        length = _log_uniform(rng, *size_range)
        # Centres slightly outside the image give objects cut by the border.
        margin = length * 0.4
        on_line = bool(xs or ys) and rng.random() < line_fraction
        for _attempt in range(3):
            # Drawn in this order so that scenes without lines stay as they were.
            label = str(rng.choice(classes))
            cx = rng.uniform(-margin, width + margin)
            cy = rng.uniform(-margin, height + margin)
            if on_line:
                cx, cy = _onto_line(rng, cx, cy, xs, ys, length)
            if place(label, length, cx, cy, rng.uniform(0, 2 * np.pi)):
                break

    # Sensor noise and a slight blur over everything, objects included.
    img = cv2.GaussianBlur(img, (0, 0), 0.6)
    img += rng.normal(0.0, rng.uniform(2.0, 5.0), size=(height, width, 1)).astype(
        np.float32
    )
    image = np.clip(img, 0, 255).astype(np.uint8)
    return _labels(image, owner, placed, seed)


def _onto_line(
    rng: np.random.Generator,
    cx: float,
    cy: float,
    xs: Sequence[float],
    ys: Sequence[float],
    length: float,
) -> tuple[float, float]:
    """Moves a centre onto a random one of the lines, within a fifth of the object's length."""
    k = int(rng.integers(len(xs) + len(ys)))
    offset = rng.uniform(-0.2, 0.2) * length
    if k < len(xs):
        return float(xs[k]) + offset, cy
    return cx, float(ys[k - len(xs)]) + offset


def _labels(
    image: np.ndarray, owner: np.ndarray, placed: list[_Placed], seed: int
) -> Scene:
    """Boxes and masks from final pixel ownership (occlusion already applied)."""
    boxes, masks, labels = [], [], []
    for i, obj in enumerate(placed):
        crop = owner[obj.y0 : obj.y1, obj.x0 : obj.x1] == i + 1
        ys, xs = np.nonzero(crop)
        if not len(ys):
            continue
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        boxes.append((obj.x0 + x0, obj.y0 + y0, obj.x0 + x1, obj.y0 + y1))
        masks.append(np.ascontiguousarray(crop[y0:y1, x0:x1]))
        labels.append(obj.label)
    box_array = np.array(boxes, dtype=np.int64).reshape(-1, 4)
    return Scene(image, box_array, masks, labels, seed)
