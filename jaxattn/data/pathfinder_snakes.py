"""Pathfinder's snakes: the generator's parameters and snakes2's rules for growing snakes.

`Params` holds the generator's parameters (snakes2 `Args` names; `pathfinder.params` fills them
per resolution). The growth rules are those of `snakes.py` / `snakes2.py` (`seed_snake`,
`extend_snake`, `two_snakes`, `make_snake`), with this package's changes that keep labels
unambiguous; `pathfinder`'s docstring describes both. Every function draws from the `rng` it is
given, in a fixed order, and updates the `pathfinder_draw.Canvas` it is given.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from jaxattn.data import pathfinder_draw

Paddle = pathfinder_draw.Paddle


@dataclasses.dataclass(frozen=True)
class Params:
    """Generator parameters (snakes2 `Args` names); `pathfinder.params()` fills them per
    resolution."""

    image_size: int
    padding: int
    paddle_margins: tuple[int, ...]  # one is drawn per image
    paddle_length: int
    paddle_thickness: float
    marker_radius: float
    seed_distance: int
    contour_length: int
    continuity: float
    distractor_length: int
    num_distractor_snakes: int
    snake_contrasts: tuple[float, ...]
    paddle_contrasts: tuple[float, ...]  # target snakes only, one drawn per paddle step
    antialias_scale: int = 2
    max_paddle_retrial: int = 2
    max_distractor_retrial: int = 4
    stop_with_availability: float = 0.01
    max_target_restarts: int = 100_000  # a safety net: raise instead of looping forever


def pick(rng: np.random.Generator, values: tuple) -> float:
    """One of `values`, uniformly; no draw if there is only one."""
    return values[int(rng.integers(len(values)))] if len(values) > 1 else values[0]


def new_canvas(p: Params, margin: int) -> pathfinder_draw.Canvas:
    """A blank canvas for one image drawn with paddle margin `margin`."""
    return pathfinder_draw.Canvas(
        size=p.image_size,
        padding=p.padding,
        paddle_length=p.paddle_length,
        paddle_thickness=p.paddle_thickness,
        margin=margin,
        antialias_scale=p.antialias_scale,
    )


def _random_angle(rng: np.random.Generator) -> float:
    return int(rng.integers(-180, 180)) * math.pi / 180


def _seed(
    canvas: pathfinder_draw.Canvas,
    p: Params,
    rng: np.random.Generator,
    lined: np.ndarray,
    forbidden: np.ndarray | None,
    contrast: float,
):
    """snakes.seed_snake: (paddle, pivot, angle, tail) or None."""
    for _ in range(p.max_paddle_retrial + 1):
        angle = _random_angle(rng)
        stamp = canvas.stamp(angle)
        free = canvas.free_tails(lined, stamp)
        if free.size == 0:
            return None
        tail = divmod(int(free[rng.integers(free.size)]), canvas.size)
        head = pathfinder_draw.translate(tail, angle, p.paddle_length)
        pivot = pathfinder_draw.translate(head, pathfinder_draw.flip(angle), canvas.step)
        paddle = Paddle(stamp, tail[0], tail[1], contrast)
        if canvas.in_bounds(head, pivot) and (
            forbidden is None or canvas.fits(lined, forbidden, paddle)
        ):
            return paddle, pivot, angle, tail
    return None


def _extend(
    canvas: pathfinder_draw.Canvas,
    p: Params,
    rng: np.random.Generator,
    occupied: np.ndarray,
    forbidden: np.ndarray | None,
    pivot: tuple[int, int],
    angle: float,
    contrast: float,
):
    """snakes.extend_snake: (paddle, new pivot, new angle, head) or None when stuck."""
    cy, cx = pathfinder_draw.translate(pivot, angle, p.paddle_length + 2 * canvas.margin)
    near = occupied[cy + canvas.near_dy, cx + canvas.near_dx].max(axis=1)
    turn = np.abs(canvas.cand_angles - angle)
    turn = np.minimum(turn, 2 * np.pi - turn)
    weights = (1.0 - near) * np.cos(np.minimum(turn * p.continuity, 0.5 * np.pi)) ** 2
    total = weights.sum()
    if total < 1e-4:
        return None
    cmf = np.cumsum(weights / total)
    for _ in range(p.max_paddle_retrial + 1):
        index = min(int(np.searchsorted(cmf, rng.random(), side="right")), cmf.size - 1)
        new_angle = float(canvas.cand_angles[index])
        head = (cy + int(canvas.cand_dy[index]), cx + int(canvas.cand_dx[index]))
        paddle = Paddle(canvas.stamp(pathfinder_draw.flip(new_angle)), head[0], head[1], contrast)
        if canvas.fits(occupied, forbidden, paddle):
            return paddle, (cy, cx), new_angle, head
    return None


def target_pair(
    canvas: pathfinder_draw.Canvas, p: Params, rng: np.random.Generator, clearance: float
) -> tuple[list[list[Paddle]], np.ndarray] | None:
    """snakes2.two_snakes: ([paddles of snake 0, of snake 1], tips int32 [2, 2, 2]) or None.

    tips: [snake, origin/terminal, (y, x)]. Each snake keeps out of a disc of `clearance`
    around the other's origin. On success the canvas' occupancy holds both snakes.
    """
    b, n = canvas.border, canvas.size
    mus = list(p.snake_contrasts) * 2
    rng.shuffle(mus)
    mask = canvas.mask.copy()
    lined = np.ones_like(mask)
    edge = 2 * p.seed_distance
    lined[b + edge : b + n - edge, b + edge : b + n - edge] = mask[
        b + edge : b + n - edge, b + edge : b + n - edge
    ]
    first = _seed(canvas, p, rng, lined, None, pick(rng, p.paddle_contrasts) * mus[0])
    if first is None:
        return None
    with_first = mask.copy()
    canvas.paste(with_first, first[0], "mask")
    second = None
    contrast = pick(rng, p.paddle_contrasts) * mus[1]
    for _ in range(p.max_paddle_retrial + 1):
        angle = _random_angle(rng)
        direction = int(rng.integers(0, 360)) * math.pi / 180
        tail = (
            round(first[3][0] + p.seed_distance * math.sin(direction)),
            round(first[3][1] + p.seed_distance * math.cos(direction)),
        )
        head = pathfinder_draw.translate(tail, angle, p.paddle_length)
        pivot = pathfinder_draw.translate(head, pathfinder_draw.flip(angle), canvas.step)
        paddle = Paddle(canvas.stamp(angle), tail[0], tail[1], contrast)
        # The original checks bounds only; this seed must also be free like any paddle.
        if canvas.in_bounds(tail, head, pivot) and canvas.fits(with_first, None, paddle):
            second = paddle, pivot, angle, tail
            break
    if second is None:
        return None
    paddles = [[first[0]], [second[0]]]
    pivots, angles = [first[1], second[1]], [first[2], second[2]]
    tips = np.zeros((2, 2, 2), np.int32)
    tips[0, 0], tips[1, 0] = first[3], second[3]
    # Each snake keeps out of a disc around the other's origin, where a marker may go.
    keep_out = [canvas.disc(tips[1, 0], clearance), canvas.disc(tips[0, 0], clearance)]
    for _ in range(p.contour_length - 1):
        paddle_contrast = pick(rng, p.paddle_contrasts)
        for s in (0, 1):
            # Checked against everything but the snake's own latest paddle; the original also
            # leaves out the other snake's latest paddle.
            occupied = np.maximum(mask, keep_out[s])
            canvas.paste(occupied, paddles[1 - s][-1], "mask")
            grown = _extend(
                canvas, p, rng, occupied, None, pivots[s], angles[s], paddle_contrast * mus[s]
            )
            if grown is None:
                return None
            canvas.paste(mask, paddles[s][-1], "mask")
            paddles[s].append(grown[0])
            pivots[s], angles[s], tips[s, 1] = grown[1], grown[2], grown[3]
    for s in (0, 1):
        canvas.paste(mask, paddles[s][-1], "mask")
    canvas.mask = mask
    return paddles, tips


def distractor(
    canvas: pathfinder_draw.Canvas, p: Params, rng: np.random.Generator, num_paddles: int
) -> list[Paddle] | None:
    """snakes.make_snake for a distractor: its paddles (canvas occupancy updated) or None.

    Its strokes stay out of `canvas.forbidden`.
    """
    b, n = canvas.border, canvas.size
    mask = canvas.mask
    inner = mask[b : b + n, b : b + n]
    if np.count_nonzero(inner <= 0.3) / inner.size < p.stop_with_availability:
        return None
    lined = mask.copy()
    lined[b, :], lined[b + n - 1, :], lined[:, b], lined[:, b + n - 1] = 1, 1, 1, 1
    seeded = _seed(canvas, p, rng, lined, canvas.forbidden, pick(rng, p.snake_contrasts))
    if seeded is None:
        return None
    paddles = [seeded[0]]
    pivot, angle = seeded[1], seeded[2]
    work = mask.copy()
    for _ in range(num_paddles - 1):
        grown = _extend(
            canvas, p, rng, work, canvas.forbidden, pivot, angle, pick(rng, p.snake_contrasts)
        )
        if grown is None:
            return None
        canvas.paste(work, paddles[-1], "mask")
        paddles.append(grown[0])
        pivot, angle = grown[1], grown[2]
    canvas.paste(work, paddles[-1], "mask")
    canvas.mask = work
    return paddles
