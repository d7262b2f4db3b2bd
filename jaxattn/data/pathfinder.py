"""Pathfinder (LRA): a seeded, deterministic re-implementation of the `snakes2` generator.

The algorithm is that of `drewlinsley/pathfinder` (`snakes2.py`, `snakes.py`), with the
per-resolution parameters of LRA's TFDS builders (LRA.md §2.5). In words:

* **Paddles.** A paddle is a line of `paddle_length` px drawn with PIL at `antialias_scale`x
  resolution (width `round(thickness * scale)`) and downsampled with Lanczos; its exclusion
  mask is the same line dilated by a disc of `margin * scale` px, downsampled the same way.
  The downsampled patch has (2R + 1) px, R = length + ceil(thickness) + margin, as in the
  original (so a paddle is a little longer than `paddle_length`). Both are cached per angle.
* **Two target snakes.** The first paddle's tail is drawn uniformly among free pixels at least
  2 * `seed_distance` from the borders whose whole paddle footprint is free (mask <= 0.3); the
  second tail lies `seed_distance` away in a random integer direction; orientations are
  integer degrees in [-180, 180). The snakes then grow alternately, one paddle at a time: the
  next head lies on the pixels of a circle of radius length + margin around a pivot `margin`
  beyond the previous head, each candidate weighted by cos^2(min(continuity * |turn|, pi/2))
  times (1 - the margin-dilated occupancy there); the paddle is drawn from the head back
  towards the pivot and accepted iff its mask and the occupancy never sum to 1.8 (3 tries).
  A snake's own previous paddle joins the occupancy one step late, so consecutive paddles may
  touch. When a snake is stuck the pair restarts.
* **Distractors.** `num_distractor_snakes` snakes of `distractor_length` paddles, each seeded
  at a free spot (1 px border) and grown the same way; a snake that cannot be completed is
  retried 4 times, then skipped; seeding stops once under 1% of the canvas is free. No single
  loose paddles (`use_single_paddles=False` in the reference wrapper).
* **Markers and label.** label ~ Bernoulli(0.5); snake A is one of the two at random; a disc of
  `marker_radius` (drawn at `antialias_scale`x, Lanczos) goes on A's origin tip (the tail of
  its first paddle) and one on A's terminal tip (label 1) or on B's terminal tip (label 0).
* **Intensity.** Target paddles have snake_contrast * paddle_contrast, distractor paddles
  snake_contrast only (as in `snakes2.py`: 1.5 vs 2.0 at 32 px); strokes combine by max, the
  markers (1.0) by max on top; the image is scaled so that its maximum is 255 (what
  `scipy.misc.imsave` does with a float image) and stored as uint8.

What differs from the original, on purpose:

* **Labels are never ambiguous.** "Connected" is `markers_connected`: a chain of snakes that
  share stroke pixels (ink >= `STROKE_LEVEL`). The original checks a new paddle against a
  shared occupancy that lacks the other target snake's latest paddle (and never adds snake 0's
  last paddle), places the second seed without checking it is free, and lets distractors and
  the other target run over a marker. Re-running those rules here (32 px, hard, 300 images),
  the two target snakes shared pixels in 108 images and 81 of the 147 label-0 images had
  connected markers.
  So: a paddle is checked against every other snake's latest paddle too; the second seed is
  checked like any paddle; while growing, each target snake keeps out of a disc of
  `marker_radius + CLEARANCE` around the other's origin, and a pair is redrawn if a snake's
  strokes enter that disc around any of the other's two tips, or if an origin and a terminal
  tip (of either snake) are closer than twice that radius; discs around the two marked tips
  are reserved before distractors are drawn (strokes and exclusion zones stay out); and, with
  `verify=True`, an image whose two target snakes end up chained through distractors is
  redrawn. All of these are decided without looking at the label (the reserved discs sit under
  the visible markers), so they leak nothing about it. Snakes may still lie in neighbouring
  pixels: with the 1-px margin at 32 px they often do, under the original's rules as well.
  The price is more pair restarts: ~55 per 32-px image instead of ~27.
* The first seed's footprint test centres the paddle on the tail (the original's dilation
  kernel is off by one pixel).
* Randomness comes from numpy's PCG64, seeded per chunk of `examples_per_chunk` examples from
  (seed, split, chunk index), so a split depends on (seed, split name, size, chunk size, params)
  only, never on the number of worker processes. Draws happen in a different order from the
  original (the marked snake is drawn before the distractors), so no image is the original's.
* `num_distractor_snakes` is LRA's docstring formula with the level's distractor length
  (20 // 4 = 5 at 32 px, hard). The reference wrapper may have kept the baseline count
  (20 // 2 = 10) for all levels (LRA.md §2.5 [derived]); pass `num_distractor_snakes` to
  `params` to change it.

Cost: most of the time goes into restarting target pairs that get stuck, as in the original.
At 64 px (paddle 5, continuity 1.8, a 14-paddle snake ~98 px long in a 62-px canvas) only about
1 pair in 2000 completes, with the original's rules too, so 64 px is by far the slowest size.

Downsampling uses PIL's Lanczos (the original went through `scipy.misc.imresize`, which also
called PIL's Lanczos on a uint8 image), so stamps match the original's up to PIL versions.

This module holds the public API: LRA's parameters per resolution (`params`), one labelled
image (`draw_example`), the label check (`markers_connected`) and seeded splits (`iter_split`,
`generate`, chunked and spread over processes by `generation`). The pixels (stamps, canvas,
markers) are drawn by `pathfinder_draw`; snakes are grown by `pathfinder_snakes`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import NamedTuple

import numpy as np

from jaxattn.data import generation, pathfinder_draw, pathfinder_snakes

NUM_CLASSES = 2
VOCAB_SIZE = 256  # pixel values are the tokens
RESOLUTIONS = (32, 64, 128, 256)
DIFFICULTIES: dict[str, int] = {"easy": 6, "intermediate": 9, "hard": 14}  # contour length
EXAMPLES_PER_CHUNK = 100
STROKE_LEVEL = pathfinder_draw.STROKE_LEVEL  # ink from which a pixel belongs to a stroke
CLEARANCE = 1.0  # px between a marker disc (marker_radius) and another snake's strokes

# LRA's TFDS builder docstrings (LRA-code data/pathfinder.py); `distractor_budget` is the
# numerator of num_distractor_snakes = budget // distractor_length. Values they do not set
# are the snakes2 defaults (padding 22, paddle_length 5, seed_distance 27, contrast [1.0]).
_RESOLUTION_PARAMS: dict[int, dict] = {
    32: dict(
        padding=1,
        paddle_margins=(1,),
        paddle_length=2,
        paddle_thickness=0.5,
        marker_radius=1.5,
        seed_distance=7,
        continuity=1.0,
        distractor_budget=20,
        snake_contrasts=(2.0,),
        paddle_contrasts=(0.75,),
    ),
    64: dict(
        padding=1,
        paddle_margins=(1,),
        paddle_length=5,
        paddle_thickness=1.0,
        marker_radius=2.5,
        seed_distance=12,
        continuity=1.8,
        distractor_budget=22,
        snake_contrasts=(0.8,),
        paddle_contrasts=(1.0,),
    ),
    128: dict(
        padding=1,
        paddle_margins=(2, 3),
        paddle_length=5,
        paddle_thickness=1.5,
        marker_radius=3.0,
        seed_distance=20,
        continuity=1.8,
        distractor_budget=35,
        snake_contrasts=(0.9,),
        paddle_contrasts=(1.0,),
    ),
    256: dict(
        padding=22,
        paddle_margins=(3,),
        paddle_length=5,
        paddle_thickness=2.0,
        marker_radius=5.0,
        seed_distance=27,
        continuity=1.8,
        distractor_budget=30,
        snake_contrasts=(1.0,),
        paddle_contrasts=(1.0,),
    ),
}


Params = pathfinder_snakes.Params  # the public name: `pathfinder.Params`


def params(resolution: int, difficulty: str = "hard", **overrides) -> Params:
    """LRA's parameters for a resolution (32/64/128/256) and level (easy/intermediate/hard)."""
    if resolution not in _RESOLUTION_PARAMS:
        raise ValueError(f"resolution {resolution} not in {RESOLUTIONS}")
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty {difficulty!r} not in {sorted(DIFFICULTIES)}")
    values = dict(_RESOLUTION_PARAMS[resolution])
    budget = values.pop("distractor_budget")
    contour_length = DIFFICULTIES[difficulty]
    distractor_length = contour_length // 3
    values.update(
        image_size=resolution,
        contour_length=contour_length,
        distractor_length=distractor_length,
        num_distractor_snakes=budget // distractor_length,
    )
    values.update(overrides)
    return Params(**values)


class Geometry(NamedTuple):
    """What was drawn where, to verify a label; not stored in datasets.

    inks: uint8 [S, H, W], each snake's strokes before contrast (0 = snake A, whose origin
      carries the first marker; 1 = the other target snake B; 2.. = distractors).
    markers: float32 [2, 2], (y, x) centres of the two marker discs in pixel coordinates
      (the first on A's origin; a tip's disc is centred 1/4 px up-left of it at scale 2, as in
      the original's `draw_circle`).
    marker_radius: the discs' radius in pixels.
    marker_layer: uint8 [H, W], the two discs alone.
    tips: int32 [2, 2, 2], [snake A/B, origin/terminal, (y, x)].
    """

    inks: np.ndarray
    markers: np.ndarray
    marker_radius: float
    marker_layer: np.ndarray
    tips: np.ndarray


class Example(NamedTuple):
    """One image: `image` uint8 [H, W] (tokens are its row-major pixels), `label` 0 or 1."""

    image: np.ndarray
    label: int


# --- labels and examples ----------------------------------------------------------------------


def _flood(strokes: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Grows `region` (bool [H, W]) by every snake whose strokes overlap it, until stable."""
    region = region.copy()
    pending = list(range(len(strokes)))
    changed = True
    while changed:
        changed = False
        for s in list(pending):
            if (region & strokes[s]).any():
                region |= strokes[s]
                pending.remove(s)
                changed = True
    return region


def markers_connected(geometry: Geometry, *, level: float = STROKE_LEVEL) -> bool:
    """Whether strokes join the two marker discs (what label 1 claims).

    A flood fill over snakes: start from the first marker's disc (pixels within
    `marker_radius + 0.5` of its centre); add every snake with a stroke pixel (ink >= `level`)
    in the region; repeat until nothing is added. The markers are connected iff the region
    then reaches the second disc. Snakes join where their pixels overlap, not where they are
    merely adjacent: at 32 px the 1-px margin keeps different snakes off each other's pixels
    but not out of neighbouring ones (under the original's rules too), and a snake's paddles
    are dashes, so contiguity of pixels means nothing along a snake either.
    Reads only the drawn pixels and the marker centres, not which snakes were marked.
    """
    strokes = geometry.inks >= level * 255
    n = strokes.shape[-1]
    first, second = (
        pathfinder_draw.disc(n, centre, geometry.marker_radius + 0.5) for centre in geometry.markers
    )
    return bool((_flood(strokes, first) & second).any())


def draw_example(
    rng: np.random.Generator,
    p: Params,
    *,
    verify: bool = True,
    stats: dict[str, int] | None = None,
) -> tuple[Example, Geometry]:
    """Draws one labelled image from `rng`.

    Args:
      rng: the random stream (consumed).
      p: generator parameters (`params(32, 'hard')`).
      verify: redraw an image whose two target snakes are chained through other strokes
        (checked whatever the label, so redrawing leaks nothing about it), and assert
        `markers_connected(geometry) == label` (the construction guarantees it).
      stats: if given, counts of redraws by reason are added to it.

    Returns:
      (Example(image uint8 [H, W], label), Geometry).
    """
    stats = {} if stats is None else stats

    def count(reason: str) -> None:
        stats[reason] = stats.get(reason, 0) + 1

    label = int(rng.integers(2))
    margin = int(pathfinder_snakes.pick(rng, p.paddle_margins))
    n = p.image_size
    for _ in range(p.max_target_restarts):
        canvas = pathfinder_snakes.new_canvas(p, margin)
        pair = pathfinder_snakes.target_pair(canvas, p, rng, p.marker_radius + CLEARANCE)
        if pair is None:
            count("target_restart")
            continue
        targets, tips = pair
        target_image, target_inks = pathfinder_draw.render(canvas, targets)
        target_strokes = target_inks >= STROKE_LEVEL
        # [snake, origin/terminal, (y, x)]
        centres = pathfinder_draw.marker_centre(tips, p.antialias_scale)
        if any(
            (
                pathfinder_draw.disc(n, centres[1 - s, end], p.marker_radius + CLEARANCE)
                & target_strokes[s]
            ).any()
            for s in (0, 1)
            for end in (0, 1)
        ):
            count("tips_too_close")  # all four tips, whatever the label
            continue
        # Any origin and any terminal tip may end up marked: keep every such pair of discs
        # apart, so that two touching dots never give the label away (or contradict it).
        gaps = np.linalg.norm(centres[:, None, 0] - centres[None, :, 1], axis=-1)  # [s, t]
        if gaps.min() < 2 * (p.marker_radius + CLEARANCE):
            count("markers_too_close")
            continue
        marked = int(rng.integers(2))  # snake A
        other = 1 - marked
        ends = tips[[marked, marked if label else other], [0, 1]]  # [2, (y, x)]
        # Keep distractors off the two markers (both are visible, so this tells nothing).
        for centre in pathfinder_draw.marker_centre(ends, p.antialias_scale):
            canvas.mask[canvas.disc(centre, p.marker_radius + margin + 1)] = 1
            canvas.forbidden |= canvas.disc(centre, p.marker_radius + CLEARANCE)
        distractors = []
        for _ in range(p.num_distractor_snakes):
            for _ in range(p.max_distractor_retrial + 1):
                snake = pathfinder_snakes.distractor(canvas, p, rng, p.distractor_length)
                if snake is not None:
                    distractors.append(snake)
                    break
        distractor_image, distractor_inks = pathfinder_draw.render(canvas, distractors)
        inks = np.concatenate([target_inks[[marked, other]], distractor_inks])
        if (
            verify
            and _flood(inks[1:] >= STROKE_LEVEL, target_strokes[marked])[
                target_strokes[other]
            ].any()
        ):
            count("targets_chained")
            continue
        markers = pathfinder_draw.marker_layer(ends, n, p.marker_radius, p.antialias_scale)
        image = np.maximum(np.maximum(target_image, distractor_image), markers)
        image = np.floor(image * (255 / image.max()) + 0.5).astype(np.uint8)
        geometry = Geometry(
            inks=np.floor(inks * 255 + 0.5).astype(np.uint8),
            markers=pathfinder_draw.marker_centre(ends, p.antialias_scale),
            marker_radius=p.marker_radius,
            marker_layer=np.floor(markers * 255 + 0.5).astype(np.uint8),
            tips=tips[[marked, other]],
        )
        if verify and markers_connected(geometry) != bool(label):
            raise AssertionError(f"Pathfinder generator bug: label {label} not what is drawn")
        return Example(image, label), geometry
    raise RuntimeError(
        f"no Pathfinder image after {p.max_target_restarts} tries; parameters too tight: {p}"
    )


# --- chunks, workers, splits ------------------------------------------------------------------


def _chunk_rng(seed: int, split: str, chunk_index: int) -> np.random.Generator:
    chunk_seed = generation.chunk_seed("pathfinder", seed, split, chunk_index, num_bytes=16)
    return np.random.default_rng(chunk_seed)


def generate_chunk(
    p: Params,
    *,
    seed: int,
    split: str,
    chunk_index: int,
    num_examples: int = EXAMPLES_PER_CHUNK,
    verify: bool = True,
    with_geometry: bool = False,
) -> list[tuple[Example, Geometry | None]]:
    """The first `num_examples` examples of chunk `chunk_index` of `split` (a prefix of the
    full chunk: examples are drawn one after another from the chunk's own RNG)."""
    rng = _chunk_rng(seed, split, chunk_index)
    out = []
    for _ in range(num_examples):
        example, geometry = draw_example(rng, p, verify=verify)
        out.append((example, geometry if with_geometry else None))
    return out


def _chunk_images(args: tuple) -> list[tuple[bytes, int]]:
    p, seed, split, chunk_index, num_examples = args
    chunk = generate_chunk(
        p, seed=seed, split=split, chunk_index=chunk_index, num_examples=num_examples
    )
    return [(example.image.tobytes(), example.label) for example, _ in chunk]


def iter_split(
    p: Params,
    split: str,
    size: int,
    *,
    seed: int,
    examples_per_chunk: int = EXAMPLES_PER_CHUNK,
    num_workers: int | None = None,
    log_every_s: float | None = 5.0,
) -> Iterator[Example]:
    """Yields the `size` examples of `split`, in order, generated chunk by chunk.

    Args:
      p: generator parameters.
      split: split name; with `seed`, it seeds the split's chunks, so splits are independent.
      size: number of examples.
      seed: dataset seed.
      examples_per_chunk: examples per RNG chunk; part of the dataset's identity.
      num_workers: processes (default os.cpu_count()); <= 1 runs inline. The examples do not
        depend on it.
      log_every_s: progress on stderr at most this often; None prints nothing.

    Memory stays at a few chunks, so Path-X sizes stream straight into the tfds writer.
    """
    tasks = [
        (p, seed, split, index, min(examples_per_chunk, size - start))
        for index, start in enumerate(range(0, size, examples_per_chunk))
    ]
    label = f"pathfinder{p.image_size}(c={p.contour_length}, {split}, seed={seed})"
    progress = generation.Progress(size, log_every_s, label)
    done = 0

    def on_wait(finished: list[tuple]) -> None:  # count chunks finished out of order
        progress.update(done + sum(task[-1] for task in finished))

    chunks = generation.map_ordered(
        _chunk_images,
        tasks,
        num_workers=generation.num_processes(num_workers, len(tasks)),
        on_wait=on_wait,
    )
    try:
        for chunk in chunks:
            for image_bytes, label_value in chunk:
                image = np.frombuffer(image_bytes, np.uint8).reshape(p.image_size, p.image_size)
                yield Example(image, label_value)
            done += len(chunk)
            progress.update(done)
    finally:
        chunks.close()  # stops the workers if the caller stops early
    if size:
        progress.finish()


def generate(
    p: Params,
    split_sizes: Mapping[str, int],
    *,
    seed: int,
    examples_per_chunk: int = EXAMPLES_PER_CHUNK,
    num_workers: int | None = None,
    log_every_s: float | None = 5.0,
) -> dict[str, list[Example]]:
    """split name -> list of examples (`iter_split` for each split, held in memory)."""
    return {
        split: list(
            iter_split(
                p,
                split,
                size,
                seed=seed,
                examples_per_chunk=examples_per_chunk,
                num_workers=num_workers,
                log_every_s=log_every_s,
            )
        )
        for split, size in split_sizes.items()
    }
