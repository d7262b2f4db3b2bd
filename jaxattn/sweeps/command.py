"""The trainer command of a sweep point, checked in-process against the trainer's flag parser.

A point runs `python -m experiments.train --config=<file>:<arg> --workdir=<root>/<name>
--config.<path>=<value> ...`. ml_collections parses `--config.<path>=<text>` by the field's
type: str fields take the text as is; int, float and bool fields use absl's parsers, which
reject 'None' (so an Optional field that holds a number cannot be set back to None from the
command line); untyped fields read a Python literal, else the text. `format_value` writes each
value for its field's type, and `check` parses every point's arguments with the same parser
the trainer uses and compares the values it reads back, so a point that would reach the trainer
with a different value (a None that becomes the string 'None' in a str field) or fail to
parse (a float for an int field, a misspelt path) stops the sweep before anything runs.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

from absl import flags
from ml_collections import config_dict, config_flags

from jaxattn import sweeps
from jaxattn.sweeps import points

TRAIN_MODULE = "experiments.train"


def split_spec(spec: str) -> tuple[str, str | None]:
    """'configs/x.py:smoke' -> ('configs/x.py', 'smoke'); no ':' -> (path, None)."""
    path, sep, arg = spec.partition(":")
    return path, (arg if sep else None)


def format_value(value: Any, field_type: Any = object) -> str:
    """`value` as `--config.<path>=` text that parses back to `value` for a `field_type` field."""
    if isinstance(value, str) and field_type is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"  # absl's bool parser and the literal parser agree
    # Floats as their shortest exact text; ints, None and containers as literals; strings of
    # untyped fields quoted, or the literal parser would read '1' as an int.
    return repr(value)


def override_args(overrides: dict[str, Any], field_types: dict[str, Any]) -> list[str]:
    return [
        f"--config.{p}={format_value(v, field_types.get(p, object))}" for p, v in overrides.items()
    ]


def trainer_argv(spec: str, workdir: str, args: Sequence[str]) -> list[str]:
    """The trainer's argv; `--config=` comes before its overrides, as ml_collections requires."""
    return [sys.executable, "-m", TRAIN_MODULE, f"--config={spec}", f"--workdir={workdir}", *args]


def load_module(spec: str) -> Any:
    """The config module named by `spec` (for its get_sweep)."""
    path, _ = split_spec(spec)
    if not os.path.isfile(path):
        raise sweeps.SweepError(f"config file '{path}' not found (run from the repository root)")
    module_spec = importlib.util.spec_from_file_location("_sweep_config", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def sweep_of(spec: str) -> list[dict[str, Any]] | None:
    """The config's own sweep, `get_sweep(arg)`, or None when the module defines none."""
    module = load_module(spec)
    if not hasattr(module, "get_sweep"):
        return None
    return module.get_sweep(split_spec(spec)[1])


def parse(spec: str, args: Sequence[str]) -> tuple[config_dict.ConfigDict, dict[str, Any]]:
    """The locked config the trainer builds from `--config=spec *args`, and its override values.

    Raises SweepError with the parser's message (one line) when the arguments do not parse.
    """
    argv = ["trainer", f"--config={spec}", *args]
    fv = flags.FlagValues()
    holder = config_flags.DEFINE_config_file(
        "config", None, "config", flag_values=fv, lock_config=True, sys_argv=argv
    )
    try:
        fv(argv)
        config = holder.value
    except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
        raise sweeps.SweepError(f"{' '.join(args) or spec}: {_one_line(e)}") from None
    return config, config_flags.get_override_values(fv["config"])


def _one_line(e: Exception) -> str:
    text = str(e).strip()
    with contextlib.suppress(SyntaxError, ValueError):  # KeyError-style quoted messages
        text = str(ast.literal_eval(text)) if text.startswith(("'", '"')) else text
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()] or [repr(e)]
    if "Traceback" in text:  # a config file's own error, wrapped by the flag parser
        return lines[-1]
    return "; ".join(lines)


def field_type(config: config_dict.ConfigDict, path: str) -> Any:
    """The declared type of `path` in `config` (object when unknown)."""
    *parents, leaf = path.split(".")
    holder = config
    for name in parents:
        holder = holder.get(name)
        if not isinstance(holder, config_dict.ConfigDict):
            return object
    if leaf not in holder:
        return object
    return holder.get_type(leaf) or object


def read_back(config: config_dict.ConfigDict, path: str) -> Any:
    value = config
    for name in path.split("."):
        value = value[name]
    return value


def same(a: Any, b: Any) -> bool:
    """Equal after a JSON round trip, ints and floats compared as numbers."""
    a, b = points.canonical(a), points.canonical(b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and type(a) is not bool:
        return type(b) is not bool and (a == b or math.isclose(a, b, rel_tol=1e-12))
    return a == b


def check(
    spec: str, shared: dict[str, Any], pts: Sequence[points.Point]
) -> tuple[list[str], dict[str, list[str]]]:
    """Formats and checks every point's override arguments against the trainer's parser.

    Returns the shared arguments and {point name: its arguments}. Raises SweepError when a point
    sets a shared path, fails to parse, or would reach the trainer with another value.
    """
    base, _ = parse(spec, [])
    types = {p: field_type(base, p) for p in shared}
    shared_args = override_args(shared, types)
    out = {}
    for point in pts:
        both = sorted(set(point.overrides) & set(shared))
        if both:
            raise sweeps.SweepError(
                f"point {point.name}: {both} set both by --config.* and by the sweep"
            )
        point_types = {p: field_type(base, p) for p in point.overrides}
        args = override_args(point.overrides, point_types)
        try:
            config, _ = parse(spec, [*shared_args, *args])
        except sweeps.SweepError as e:
            raise sweeps.SweepError(
                f"point {point.name}: {e}{_none_hint(point.overrides)}"
            ) from None
        values = {**shared, **point.overrides}
        for (path, value), arg in zip(values.items(), shared_args + args, strict=True):
            got = read_back(config, path)
            if not same(got, value):
                raise sweeps.SweepError(
                    f"point {point.name}: {arg} reaches the trainer as {got!r}, not {value!r}"
                    + _none_hint({path: value})
                )
        out[point.name] = args
    return shared_args, out


def _none_hint(overrides: dict[str, Any]) -> str:
    if any(v is None for v in overrides.values()):
        return " (a typed field cannot be set to None from the command line)"
    return ""
