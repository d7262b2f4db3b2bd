"""Building sweeps: a sweep is a list of override dicts {dotted config path: value}.

Every helper takes and returns such lists, so they compose:

  axes.product(
      axes.axis("train.seed", [0, 1, 2]),
      axes.zipped(axes.axis("optim.learning_rate", [1e-4, 5e-4]),
                  axes.axis("optim.warmup_steps", [1000, 200])),
  )  # 6 points: every seed with each (learning_rate, warmup_steps) pair

`parse_axis` reads the command line's `--sweep=train.seed=0,1,2`.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from jaxattn import sweeps

Sweep = list[dict[str, Any]]


def axis(path: str, values: Iterable[Any]) -> Sweep:
    """One point per value: `axis("train.seed", [0, 1])` -> [{"train.seed": 0}, {"train.seed": 1}]."""
    _check_path(path)
    points = [{path: v} for v in values]
    if not points:
        raise sweeps.SweepError(f"sweep axis '{path}' has no values")
    return points


def product(*sweeps_: Sweep) -> Sweep:
    """The cartesian product: every combination, the last sweep varying fastest."""
    out = []
    for combo in itertools.product(*sweeps_):
        out.append(_merge(combo))
    return out


def zipped(*sweeps_: Sweep) -> Sweep:
    """Point i of every sweep merged into one point; the sweeps must have the same length."""
    lengths = {len(s) for s in sweeps_}
    if len(lengths) > 1:
        raise sweeps.SweepError(f"zipped sweeps differ in length: {[len(s) for s in sweeps_]}")
    return [_merge(combo) for combo in zip(*sweeps_, strict=True)]


def chain(*sweeps_: Sweep) -> Sweep:
    """The points of each sweep, one sweep after another."""
    return [dict(p) for s in sweeps_ for p in s]


def parse_value(text: str) -> Any:
    """A command-line value as ml_collections reads untyped fields: a Python literal, else the
    string itself ('1e-4' -> 0.0001, 'None' -> None, 'softmax' -> 'softmax')."""
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    try:
        return ast.literal_eval(text)
    except (SyntaxError, ValueError):
        return text


def parse_axis(text: str) -> Sweep:
    """'train.seed=0,1,2' -> axis("train.seed", [0, 1, 2]); values are split on commas."""
    path, sep, values = text.partition("=")
    path = path.strip()
    if path.startswith("config."):
        path = path[len("config.") :]
    if not sep or not values.strip():
        raise sweeps.SweepError(f"--sweep='{text}': expected 'path=v1,v2,...'")
    return axis(path, [parse_value(v) for v in values.split(",")])


def from_flags(texts: Sequence[str]) -> Sweep:
    """The product of the `--sweep` axes (one axis per flag)."""
    return product(*(parse_axis(t) for t in texts))


def _merge(combo: Sequence[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for point in combo:
        for path, value in point.items():
            if path in merged:
                raise sweeps.SweepError(f"'{path}' is set by two combined sweep axes")
            merged[path] = value
    return merged


def _check_path(path: str) -> None:
    parts = path.split(".")
    if not path or not all(p.isidentifier() for p in parts):
        raise sweeps.SweepError(f"'{path}' is not a dotted config path like 'train.seed'")
