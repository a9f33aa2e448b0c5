"""Instance shapes: each class drawn as a small sprite (mask, colours, optional halo).

A sprite is a square patch centred on the object. ``mask`` marks the object's own
pixels (what its instance mask will be before occlusion); ``rgb`` holds their
colours; ``halo`` is an optional soft effect around the object (a boat's wake)
that is painted only on background pixels and never belongs to any mask.

Shapes are polygons in unit coordinates (x along the object's heading, the
object spanning about ``[-0.5, 0.5]``), scaled, rotated and filled with
sub-pixel precision, so even 8-pixel objects keep their silhouette.

Example::

    >>> import numpy as np
    >>> sprite = draw_sprite("plane", 24, 0.3, np.random.default_rng(0))
    >>> sprite.mask.shape == sprite.rgb.shape[:2]
    True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

#: The object classes, in the order used as model class ids.
CLASSES: tuple[str, ...] = ("plane", "car", "boat", "storage-tank")

# Fixed-point bits for cv2.fillPoly: 1/16 px vertex precision.
_SHIFT = 4

Polygon = np.ndarray  # (K, 2) float, unit coordinates


@dataclass
class Sprite:
    """An object rendered into a square patch centred on its position.

    Attributes:
        mask: ``(S, S)`` bool, the object's pixels.
        rgb: ``(S, S, 3)`` uint8 colours (meaningful where ``mask``).
        halo: ``(S, S)`` float32 opacity in ``[0, 1]`` of an effect drawn on the
            background only, or ``None``.
        halo_rgb: colour of that effect.
    """

    mask: np.ndarray
    rgb: np.ndarray
    halo: np.ndarray | None = None
    halo_rgb: tuple[int, int, int] = (255, 255, 255)

    @property
    def size(self) -> int:
        """Side of the square patch in pixels."""
        return int(self.mask.shape[0])


def _transform(poly: Polygon, length: float, angle: float, centre: float) -> np.ndarray:
    """Unit polygon -> fixed-point pixel vertices (scaled, rotated, centred)."""
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    pts = (np.asarray(poly, dtype=np.float64) * length) @ rot.T + centre
    return np.round(pts * (1 << _SHIFT)).astype(np.int32)


def _fill(canvas: np.ndarray, polys: Sequence[np.ndarray], value: int = 1) -> None:
    # One call per polygon: a single fillPoly call with several polygons leaves
    # their overlaps unfilled (even-odd rule), punching holes in the union.
    for poly in polys:
        cv2.fillPoly(canvas, [poly], value, lineType=cv2.LINE_8, shift=_SHIFT)


def _mirror(poly: Polygon) -> Polygon:
    """The polygon reflected across the heading axis (the other wing, side...)."""
    return np.asarray(poly, dtype=np.float64) * np.array([1.0, -1.0])


def _half_width(length: float, fraction: float, min_px: float) -> float:
    """A half-width in unit coordinates that is at least ``min_px`` pixels wide.

    Thin parts (a fuselage, a wing) would vanish on tiny objects; keeping a
    minimum pixel width keeps the silhouette recognisable.
    """
    return max(fraction, min_px / max(length, 1.0))


def _rounded_rect(half_len: float, half_wid: float, radius: float) -> Polygon:
    """A rounded rectangle centred on the origin, as a polygon."""
    radius = min(radius, half_len, half_wid)
    pts = []
    corners = [
        (half_len - radius, half_wid - radius, 0.0),
        (-half_len + radius, half_wid - radius, np.pi / 2),
        (-half_len + radius, -half_wid + radius, np.pi),
        (half_len - radius, -half_wid + radius, 1.5 * np.pi),
    ]
    for cx, cy, start in corners:
        for t in np.linspace(start, start + np.pi / 2, 5):
            pts.append((cx + radius * np.cos(t), cy + radius * np.sin(t)))
    return np.array(pts)


def _shade(base: np.ndarray, rng: np.random.Generator, spread: float) -> np.ndarray:
    """A colour jittered per object so a class is not one exact RGB value."""
    jitter = rng.normal(0.0, spread, size=3)
    return np.clip(base + jitter, 0, 255)


def _canvas(length: float, extent: float) -> tuple[int, float]:
    """Patch side (odd, so the object has a centre pixel) and centre coordinate."""
    side = int(np.ceil(length * extent)) + 4
    side += 1 - side % 2
    return side, (side - 1) / 2.0


def _plane(length: float, angle: float, rng: np.random.Generator) -> Sprite:
    side, centre = _canvas(length, 1.5)
    fw = _half_width(length, 0.065, 1.0)
    chord = _half_width(length, 0.09, 1.0)
    fuselage = [
        (0.5, 0.0),
        (0.44, fw),
        (-0.48, fw * 0.8),
        (-0.48, -fw * 0.8),
        (0.44, -fw),
    ]
    sweep = rng.uniform(0.05, 0.15)
    wing = [
        (0.12 + chord, 0.0),
        (0.1 - sweep, 0.5),
        (0.1 - sweep - chord, 0.5),
        (0.1 - chord, 0.0),
    ]
    tail = [(-0.32, 0.0), (-0.42, 0.19), (-0.48, 0.19), (-0.46, 0.0)]
    parts = [fuselage, wing, _mirror(wing), tail, _mirror(tail)]
    mask8 = np.zeros((side, side), np.uint8)
    _fill(mask8, [_transform(p, length, angle, centre) for p in parts])
    body = _shade(np.array([228.0, 230.0, 234.0]), rng, 10.0)
    rgb = np.empty((side, side, 3), np.float64)
    rgb[:] = body * 0.88  # wings and tail a little darker than the fuselage
    fus = np.zeros_like(mask8)
    _fill(fus, [_transform(fuselage, length, angle, centre)])
    rgb[fus > 0] = body
    return Sprite(mask8 > 0, np.clip(rgb, 0, 255).astype(np.uint8))


_CAR_COLOURS = np.array(
    [
        (205, 30, 35),  # red
        (35, 70, 210),  # blue
        (235, 205, 30),  # yellow
        (20, 165, 175),  # teal
        (185, 45, 160),  # magenta
    ],
    dtype=np.float64,
)


def _car(length: float, angle: float, rng: np.random.Generator) -> Sprite:
    side, centre = _canvas(length, 1.2)
    half_wid = _half_width(length, 0.22, 1.5)
    body = _rounded_rect(0.5, half_wid, half_wid * 0.45)
    windshield = _rounded_rect(0.06, half_wid * 0.8, 0.0) + np.array([0.16, 0.0])
    rear = _rounded_rect(0.04, half_wid * 0.75, 0.0) + np.array([-0.3, 0.0])
    mask8 = np.zeros((side, side), np.uint8)
    _fill(mask8, [_transform(body, length, angle, centre)])
    glass = np.zeros_like(mask8)
    _fill(glass, [_transform(p, length, angle, centre) for p in (windshield, rear)])
    colour = _shade(_CAR_COLOURS[rng.integers(len(_CAR_COLOURS))], rng, 12.0)
    rgb = np.empty((side, side, 3), np.float64)
    rgb[:] = colour
    rgb[(glass > 0) & (mask8 > 0)] = (40.0, 48.0, 60.0)
    return Sprite(mask8 > 0, np.clip(rgb, 0, 255).astype(np.uint8))


_HULL_COLOURS = np.array(
    [(22, 34, 88), (96, 30, 26), (34, 34, 38), (18, 70, 60)], dtype=np.float64
)


def _boat(length: float, angle: float, rng: np.random.Generator) -> Sprite:
    # The wake trails behind the stern, so the patch is larger than the hull.
    side, centre = _canvas(length, 3.8)
    beam = _half_width(length, 0.16, 1.5)
    # A pointed bow: the beam narrows as a parabola over the front third.
    s = np.linspace(0.0, 1.0, 7)
    bow = np.stack([0.15 + 0.35 * s, beam * (1.0 - s**2)], axis=1)[::-1]
    hull = np.concatenate([[(-0.5, -beam)], _mirror(bow)[::-1], bow, [(-0.5, beam)]])
    cabin = _rounded_rect(0.12, beam * 0.55, 0.0) + np.array([-0.18, 0.0])
    mask8 = np.zeros((side, side), np.uint8)
    _fill(mask8, [_transform(hull, length, angle, centre)])
    deck = np.zeros_like(mask8)
    _fill(deck, [_transform(cabin, length, angle, centre)])
    rgb = np.empty((side, side, 3), np.float64)
    rgb[:] = _shade(_HULL_COLOURS[rng.integers(len(_HULL_COLOURS))], rng, 8.0)
    rgb[(deck > 0) & (mask8 > 0)] = _shade(np.array([236.0, 236.0, 230.0]), rng, 6.0)
    # Wake: a widening V behind the stern, fading with distance.
    trail = rng.uniform(0.7, 1.3)
    wake = [
        (-0.45, beam),
        (-0.5 - trail, beam + 0.3 * trail),
        (-0.5 - trail, -beam - 0.3 * trail),
        (-0.45, -beam),
    ]
    wake8 = np.zeros_like(mask8)
    _fill(wake8, [_transform(wake, length, angle, centre)])
    yy, xx = np.mgrid[0:side, 0:side] - centre
    heading = np.array([np.cos(angle), np.sin(angle)])
    along = -(xx * heading[0] + yy * heading[1]) / max(length, 1.0)
    fade = np.clip(1.0 - (along - 0.5) / trail, 0.0, 1.0)
    halo = (wake8 > 0) * fade * rng.uniform(0.2, 0.4)
    halo = cv2.GaussianBlur(halo.astype(np.float32), (0, 0), max(length * 0.05, 0.6))
    return Sprite(
        mask8 > 0, np.clip(rgb, 0, 255).astype(np.uint8), halo, (232, 238, 242)
    )


def _storage_tank(length: float, angle: float, rng: np.random.Generator) -> Sprite:
    side, centre = _canvas(length, 1.05)
    radius = length / 2.0
    yy, xx = np.mgrid[0:side, 0:side] - centre
    dist = np.hypot(xx, yy)
    mask = dist <= radius
    base = _shade(np.array([214.0, 206.0, 190.0]), rng, 10.0)
    # One side lit, the other shaded, as a cylinder roof in sunlight.
    light = 1.0 + 0.12 * (xx * np.cos(angle) + yy * np.sin(angle)) / max(radius, 1.0)
    rgb = base[None, None, :] * light[..., None]
    ring = (dist >= radius * 0.62) & (dist <= radius * 0.62 + max(radius * 0.12, 1.0))
    rgb[ring] *= 0.62
    rgb[dist <= max(radius * 0.12, 0.6)] *= 0.7
    return Sprite(mask, np.clip(rgb, 0, 255).astype(np.uint8))


_DRAWERS: dict[str, Callable[[float, float, np.random.Generator], Sprite]] = {
    "plane": _plane,
    "car": _car,
    "boat": _boat,
    "storage-tank": _storage_tank,
}


def draw_sprite(
    label: str, length: float, angle: float, rng: np.random.Generator
) -> Sprite:
    """Renders one object of class ``label``.

    Args:
        label: one of ``CLASSES``.
        length: the object's length in pixels (a tank's diameter, a plane's span).
        angle: heading in radians.
        rng: source of colour jitter and shape variation.

    Returns:
        A ``Sprite`` whose patch is centred on the object.

    Example::

        >>> import numpy as np
        >>> s = draw_sprite("storage-tank", 20, 0.0, np.random.default_rng(1))
        >>> bool(s.mask[s.size // 2, s.size // 2])
        True
    """
    try:
        drawer = _DRAWERS[label]
    except KeyError:
        raise ValueError(
            f"unknown class {label!r}; expected one of {CLASSES}"
        ) from None
    return drawer(float(length), float(angle), rng)
