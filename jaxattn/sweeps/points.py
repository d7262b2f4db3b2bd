"""Sweep points and their names: stable, readable and safe as directory names.

A point's name is `label=value` for each of its overrides, in the order the sweep gives them,
joined by commas: `seed=1,learning_rate=0.0005`. The label is the shortest dotted suffix of the
path that no other path of the sweep ends with (`model.attention.kind` -> `kind`, but
`a.lr` and `b.lr` -> `a.lr`, `b.lr`). Characters outside [A-Za-z0-9._=,+-] become `_`; a
name longer than MAX_NAME_CHARS, or one that collides with another point's name after that, is
cut and gets 8 hex digits of a hash of its overrides. The point without overrides is `base`.
The same list of points always gives the same names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

from jaxattn import sweeps

MAX_NAME_CHARS = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]")


@dataclasses.dataclass(frozen=True)
class Point:
    name: str
    overrides: dict[str, Any]


def canonical(value: Any) -> Any:
    """`value` as it reads back from JSON (tuples -> lists), so points compare across runs."""
    return json.loads(json.dumps(value, default=repr))


def overrides_key(overrides: dict[str, Any]) -> str:
    """An order-independent identity of a set of overrides."""
    return json.dumps(canonical(overrides), sort_keys=True)


def format_label_value(value: Any) -> str:
    """The value part of a name: compact floats ('0.0005', '1e-05'), everything else as text."""
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    if isinstance(value, str):
        return value
    return json.dumps(canonical(value), separators=(",", ":")) if value is not None else "None"


def labels(paths: Sequence[str]) -> dict[str, str]:
    """Each path -> its shortest dotted suffix that no other path in `paths` ends with."""
    unique = list(dict.fromkeys(paths))
    out = {}
    for path in unique:
        parts = path.split(".")
        for n in range(1, len(parts) + 1):
            suffix = ".".join(parts[-n:])
            others = (p for p in unique if p != path)
            if not any(p == suffix or p.endswith("." + suffix) for p in others):
                break
        out[path] = suffix
    return out


def sanitize(name: str) -> str:
    """Keeps [A-Za-z0-9._=,+-]; never starts with '.' (hidden files, '..')."""
    name = _UNSAFE.sub("_", name)
    return "_" + name[1:] if name.startswith(".") else name


def _digest(overrides: dict[str, Any]) -> str:
    return hashlib.sha1(overrides_key(overrides).encode()).hexdigest()[:8]


def make_points(sweep: Sequence[dict[str, Any]]) -> list[Point]:
    """Names every point of `sweep` (a list of override dicts); duplicate points are an error."""
    if not isinstance(sweep, (list, tuple)) or not all(isinstance(p, dict) for p in sweep):
        raise sweeps.SweepError(
            f"a sweep is a list of dicts {{'path': value}}, got {type(sweep).__name__}"
        )
    if not sweep:
        raise sweeps.SweepError("the sweep has no points")
    seen: dict[str, int] = {}
    for i, p in enumerate(sweep):
        if not all(isinstance(k, str) and k for k in p):
            raise sweeps.SweepError(f"sweep point {i} has a key that is not a config path: {p}")
        key = overrides_key(p)
        if key in seen:
            raise sweeps.SweepError(f"sweep points {seen[key]} and {i} are the same: {p}")
        seen[key] = i

    label = labels([path for p in sweep for path in p])
    names = []
    for p in sweep:
        text = ",".join(f"{label[k]}={format_label_value(v)}" for k, v in p.items()) or "base"
        name = sanitize(text)
        if len(name) > MAX_NAME_CHARS:
            name = f"{name[: MAX_NAME_CHARS - 9]}-{_digest(p)}"
        names.append(name)
    clashes = {n for n in names if names.count(n) > 1}
    names = [
        f"{n[: MAX_NAME_CHARS - 9]}-{_digest(p)}" if n in clashes else n
        for n, p in zip(names, sweep, strict=True)
    ]
    return [Point(n, dict(p)) for n, p in zip(names, sweep, strict=True)]
