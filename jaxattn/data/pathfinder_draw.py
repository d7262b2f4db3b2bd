"""Pathfinder's pixels: anti-aliased paddle stamps, the padded occupancy canvas, markers.

Everything here is deterministic (no random draws) and knows nothing of snakes or labels:

* `paddle_stamp`: a paddle drawn with PIL at `antialias_scale`x and Lanczos-downsampled, with
  its exclusion mask (the line dilated by a disc of `margin * scale` px, downsampled the same
  way); cached per angle.
* `Canvas`: one image's occupancy mask and forbidden pixels on arrays padded by a border of
  occupancy 1, where paddles are tested (`fits`) and composited (`paste`).
* `render` composites snakes' paddles; `marker_layer` draws the marker discs (scale x, Lanczos,
  as snakes2's `draw_circle`).

The rules that place paddles are in `pathfinder_snakes`; the algorithm as a whole is described
in `pathfinder`.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

STROKE_LEVEL = 32 / 255  # a pixel belongs to a snake's stroke iff its ink is at least this


class Stamp(NamedTuple):
    """A paddle at one angle, ready to paste."""

    ink: np.ndarray  # float32 [P, P], P = 2R + 1: the paddle, starting at the centre
    mask: np.ndarray  # float32 [P, P]: its exclusion zone
    stroke: np.ndarray  # bool [P, P]: ink >= STROKE_LEVEL
    core: tuple[np.ndarray, np.ndarray]  # (dy, dx) where mask == 1: the seed footprint
    radius: int  # R


class Paddle(NamedTuple):
    """A stamp placed on the canvas."""

    stamp: Stamp
    y: int  # where the paddle starts (image coordinates)
    x: int
    contrast: float


@functools.lru_cache(maxsize=64)
def disc_offsets(radius: float) -> tuple[np.ndarray, np.ndarray]:
    """(dy, dx) int arrays of the pixels within `radius` of (0, 0)."""
    r = int(math.floor(radius))
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    keep = dy**2 + dx**2 <= radius**2
    return dy[keep], dx[keep]


def disc(size: int, centre: tuple[float, float], radius: float) -> np.ndarray:
    """bool [size, size]: pixels within `radius` of `centre` (y, x)."""
    yy, xx = np.ogrid[:size, :size]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def translate(coord: tuple[int, int], angle: float, dist: float) -> tuple[int, int]:
    """snakes.translate_coord: `coord` moved `dist` px along `angle` (radians), rounded up."""
    # ceil, not round: part of the original's geometry.
    return (
        int(math.ceil(coord[0] + dist * math.sin(angle))),
        int(math.ceil(coord[1] + dist * math.cos(angle))),
    )


def flip(angle: float) -> float:
    """The opposite direction, in [-pi, pi]."""
    return angle + math.pi if angle < 0 else angle - math.pi


@functools.lru_cache(maxsize=8192)
def paddle_stamp(angle: float, length: int, thickness: float, margin: int, scale: int) -> Stamp:
    """The paddle at `angle` (radians) and its mask, drawn at `scale`x and Lanczos-downsampled.

    The patch has (2R + 1) px, R = length + ceil(thickness) + margin, as in the original (so a
    paddle is a little longer than `length`).
    """
    if round(thickness * scale) != thickness * scale:
        raise ValueError(f"paddle_thickness * antialias_scale must be whole: {thickness}")
    radius = length + math.ceil(thickness) + margin
    size, centre = 2 * radius * scale + 1, radius * scale
    head = translate((centre, centre), angle, length * scale)
    line = Image.new("L", (size, size), 0)
    ImageDraw.Draw(line).line(
        [(centre, centre), (head[1], head[0])], fill=255, width=round(thickness * scale)
    )
    # Exclusion zone: the line dilated by a disc of margin * scale big pixels.
    big = np.asarray(line) > 0
    reach = margin * scale
    padded = np.pad(big, reach)
    dilated = np.zeros_like(big)
    for dy, dx in zip(*disc_offsets(reach), strict=True):
        dilated |= padded[reach + dy : reach + dy + size, reach + dx : reach + dx + size]
    small = (2 * radius + 1, 2 * radius + 1)
    ink = np.asarray(line.resize(small, Image.Resampling.LANCZOS), np.float32) / 255
    mask_u8 = np.asarray(
        Image.fromarray(dilated.astype(np.uint8) * 255).resize(small, Image.Resampling.LANCZOS)
    )
    core_y, core_x = np.nonzero(mask_u8 == 255)
    arrays = [ink, mask_u8.astype(np.float32) / 255, ink >= STROKE_LEVEL]
    for array in arrays:
        array.setflags(write=False)
    return Stamp(*arrays, core=(core_y - radius, core_x - radius), radius=radius)


@functools.lru_cache(maxsize=64)
def circle_candidates(step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets (dy, dx) and angles of the pixels on a circle of radius `step`, sorted.

    snakes.get_coords_cmf samples one point per pixel of arc and truncates centre + offset to
    int; for an integer centre and a coordinate >= 0 that is centre + floor(offset), so the
    unique pixels, their order (row-major) and angles are the same around every centre.
    """
    angles = np.arange(0, 360, 360.0 / (2 * step * np.pi)) * np.pi / 180
    dy = np.floor(step * np.sin(angles)).astype(np.int64)
    dx = np.floor(step * np.cos(angles)).astype(np.int64)
    pairs = np.unique(np.stack([dy, dx], axis=1), axis=0)
    dy, dx = pairs[:, 0], pairs[:, 1]
    return dy, dx, np.arctan2(dy, dx)


class Canvas:
    """One image's occupancy (`mask`) and `forbidden` pixels, on arrays padded by `border`
    pixels of occupancy 1.

    The border stands in for the original's bounds checks: an off-image candidate sees
    occupancy 1 and so gets weight 0 (the original drops it), and no patch is ever clipped.
    Coordinates passed in and out are image coordinates.
    """

    def __init__(
        self,
        *,
        size: int,
        padding: int,
        paddle_length: int,
        paddle_thickness: float,
        margin: int,
        antialias_scale: int,
    ):
        self.size = n = size
        self.paddle_length, self.paddle_thickness = paddle_length, paddle_thickness
        self.margin, self.antialias_scale = margin, antialias_scale
        self.step = paddle_length + margin  # pivot to next head
        radius = paddle_length + math.ceil(paddle_thickness) + margin  # a stamp's R
        self.border = b = radius + self.step + 2 * margin + 2
        self.mask = np.ones((n + 2 * b, n + 2 * b), np.float32)
        self.mask[b + padding : b + n - padding, b + padding : b + n - padding] = 0
        self.forbidden = np.zeros(self.mask.shape, bool)  # no distractor stroke pixel here
        # The candidate heads around a centre, and each one's margin-disc neighbourhood
        # (the original dilates the whole mask), as padded offsets.
        dy, dx, self.cand_angles = circle_candidates(self.step)
        ddy, ddx = disc_offsets(margin)
        self.cand_dy, self.cand_dx = dy, dx
        self.near_dy, self.near_dx = b + dy[:, None] + ddy, b + dx[:, None] + ddx

    def canvas(self) -> np.ndarray:
        """A blank float32 array of the padded shape."""
        return np.zeros(self.mask.shape, np.float32)

    def crop(self, array: np.ndarray) -> np.ndarray:
        b, n = self.border, self.size
        return array[..., b : b + n, b : b + n]

    def disc(self, centre: np.ndarray, radius: float) -> np.ndarray:
        """bool, padded: pixels within `radius` of `centre` (image coordinates)."""
        yy, xx = np.ogrid[: self.mask.shape[0], : self.mask.shape[1]]
        cy, cx = centre[0] + self.border, centre[1] + self.border
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2

    def stamp(self, angle: float) -> Stamp:
        return paddle_stamp(
            angle, self.paddle_length, self.paddle_thickness, self.margin, self.antialias_scale
        )

    def _window(self, paddle: Paddle) -> tuple[slice, slice]:
        r, b = paddle.stamp.radius, self.border
        return slice(b + paddle.y - r, b + paddle.y + r + 1), slice(
            b + paddle.x - r, b + paddle.x + r + 1
        )

    def fits(self, occupied: np.ndarray, forbidden: np.ndarray | None, paddle: Paddle) -> bool:
        """snakes.extend_snake's test (mask + occupancy < 1.8 everywhere), and no stroke pixel
        in `forbidden` (the marker discs, for distractors)."""
        window = self._window(paddle)
        if float((occupied[window] + paddle.stamp.mask).max()) >= 1.8:
            return False
        return forbidden is None or not (forbidden[window] & paddle.stamp.stroke).any()

    def paste(self, array: np.ndarray, paddle: Paddle, what: str) -> None:
        """Max-composites the paddle's 'mask' or 'ink' (times its contrast) into `array`."""
        window = self._window(paddle)
        if what == "mask":
            np.maximum(array[window], paddle.stamp.mask, out=array[window])
        else:
            np.maximum(array[window], paddle.stamp.ink * paddle.contrast, out=array[window])

    def in_bounds(self, *coords: tuple[int, int]) -> bool:
        return all(0 <= y < self.size and 0 <= x < self.size for y, x in coords)

    def free_tails(self, occupied: np.ndarray, stamp: Stamp) -> np.ndarray:
        """Flat image indices where the stamp's core footprint meets only occupancy <= 0.3."""
        b, n = self.border, self.size
        blocked = np.zeros((n, n), np.float32)
        for dy, dx in zip(*stamp.core, strict=True):
            np.maximum(blocked, occupied[b + dy : b + dy + n, b + dx : b + dx + n], out=blocked)
        return np.flatnonzero(blocked <= 0.3)


def render(canvas: Canvas, snakes: list[list[Paddle]]) -> tuple[np.ndarray, np.ndarray]:
    """(composite float32 [H, W] with contrasts, per-snake inks float32 [S, H, W] without)."""
    inks = np.zeros((len(snakes), *canvas.mask.shape), np.float32)
    image = canvas.canvas()
    for ink, paddles in zip(inks, snakes, strict=True):
        for paddle in paddles:
            canvas.paste(ink, paddle._replace(contrast=1.0), "ink")
            canvas.paste(image, paddle, "ink")
    return canvas.crop(image), canvas.crop(inks)


def marker_layer(tips: np.ndarray, size: int, radius: float, scale: int) -> np.ndarray:
    """snakes2.draw_circle for each tip (int [K, (y, x)]): discs of `radius` drawn at `scale`x,
    Lanczos-downsampled, float32 [size, size]."""
    layer = np.zeros((size, size), np.float32)
    half = int(math.ceil(radius)) + 4  # the disc plus Lanczos' 3-pixel support
    for cy, cx in tips:
        y0, y1 = max(cy - half, 0), min(cy + half + 1, size)
        x0, x1 = max(cx - half, 0), min(cx + half + 1, size)
        ys = np.arange(y0 * scale, y1 * scale)[:, None] - cy * scale
        xs = np.arange(x0 * scale, x1 * scale)[None, :] - cx * scale
        disc_u8 = ((ys**2 + xs**2) <= (radius * scale) ** 2).astype(np.uint8) * 255
        small = Image.fromarray(disc_u8).resize((x1 - x0, y1 - y0), Image.Resampling.LANCZOS)
        window = layer[y0:y1, x0:x1]
        np.maximum(window, np.asarray(small, np.float32) / 255, out=window)
    return layer


def marker_centre(tip: np.ndarray, scale: int) -> np.ndarray:
    """float32 (y, x) centre of the marker disc `marker_layer` draws on `tip` (int [..., 2])."""
    # draw_circle puts the centre on big pixel tip * scale, i.e. at tip + 1/(2 scale) - 1/2.
    return tip.astype(np.float32) + 0.5 / scale - 0.5
