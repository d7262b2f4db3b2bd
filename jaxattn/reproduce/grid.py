"""The kind × task grid of LRA runs: its rows, its cells on disk, and each cell's sweep.

Rows are discovered, never listed: every `configs/lra_<kind>.py` whose kind is registered
(jaxattn.attention.REGISTRY, or the `exact` alias), in registry order, and every registered kind
without such a file (its cells read "no config"). A kind the LRA models cannot serve by its
capabilities (`unservable`: a grid kind, since LRA's sequence models offer no token grid) is a
row without a config whose cells read "n/a". Each (task, kind) cell is a sweep root of
jaxattn.sweeps with one point per seed (`seed=<s>`, the same names as `axes.axis("train.seed",
...)`), so `python -m experiments.sweep --config=<the cell's spec> --workdir_root=<cell>` works on
a cell too:

  <root>/<grid>/<task>/<kind>/sweep.json, results.{json,md}    grid = <setup>-<size>[-<arg>]
  <root>/<grid>/<task>/<kind>/seed=<s>/                          the trainer workdir of one seed

A cell's sweep keeps every point recorded before (a rerun with fewer `--seeds` adds nothing and
drops nothing; its jobs are the asked seeds only), as `experiments.sweep` extends a sweep.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from jaxattn import attention, sweeps
from jaxattn.sweeps import axes, command, launchers, layout, points, results, runner

CONFIG_PATTERN = re.compile(r"^lra_(?P<kind>[a-z0-9_]+)\.py$")
SEED_PATH = results.SEED_PATH


@dataclasses.dataclass(frozen=True)
class Row:
    kind: str
    config: str | None  # "configs/lra_<kind>.py" relative to the repository root, or None
    unservable: str | None = None  # why the LRA models cannot run this kind (then config None)


def unservable(spec: Any) -> str | None:
    """Why LRA's models (sequence classifiers) cannot run a kind with these capabilities, or None."""
    if getattr(spec, "grid", False):
        return "needs a 2-D token grid; the LRA models offer none"
    return None


@dataclasses.dataclass(frozen=True)
class Cell:
    task: str
    kind: str
    config: str | None
    dir: str  # the cell's sweep root
    spec: str | None  # "<config>:task=...,setup=...,size=...[,<arg>]"
    unservable: str | None = None  # Row.unservable


@dataclasses.dataclass
class CellPlan:
    """What running a cell means: its sweep.json and the jobs of the asked seeds."""

    cell: Cell
    sweep: dict[str, Any] | None = None
    jobs: list[launchers.Job] = dataclasses.field(default_factory=list)
    error: str | None = None  # the cell's config does not build (shown as an error cell)


def discover(
    configs_dir: str,
    registry: Mapping[str, Any] | None = None,
    *,
    repo_root: str | None = None,
) -> list[Row]:
    """The grid's rows: registered kinds (registry order) with their config file or None.

    A config file whose kind is the `exact` alias is a row too (after the registered kinds); one
    whose kind is not registered (lra_base.py) is not.
    """
    registry = attention.REGISTRY if registry is None else registry
    repo_root = repo_root or os.path.dirname(os.path.abspath(configs_dir))
    files = {}
    for name in sorted(os.listdir(configs_dir)):
        match = CONFIG_PATTERN.match(name)
        if match:
            path = os.path.relpath(os.path.join(configs_dir, name), repo_root)
            files[match["kind"]] = path
    rows = []
    for kind, spec in registry.items():
        reason = unservable(spec)
        rows.append(Row(kind, None, reason) if reason else Row(kind, files.get(kind)))
    if attention.EXACT_ALIAS in files and attention.EXACT_ALIAS not in registry:
        rows.append(Row(attention.EXACT_ALIAS, files[attention.EXACT_ALIAS]))
    return rows


def select(rows: Sequence[Row], kinds: Iterable[str] | None) -> list[Row]:
    """The rows of `kinds` (None or empty: all), in the grid's order; unknown kinds raise."""
    kinds = list(kinds or [])
    if not kinds:
        return list(rows)
    known = {r.kind for r in rows}
    unknown = [k for k in kinds if k not in known]
    if unknown:
        raise sweeps.SweepError(f"unknown kind(s) {unknown}; the grid's kinds: {sorted(known)}")
    return [r for r in rows if r.kind in kinds]


def grid_name(setup: str, size: str, config_arg: str = "") -> str:
    """'nystromformer-small', or with a config-string suffix 'nystromformer-base-smoke'."""
    name = f"{setup}-{size}"
    if config_arg:
        name += "-" + points.sanitize(config_arg.replace(",", "-").replace("=", "-"))
    return name


def config_spec(config: str, task: str, setup: str, size: str, config_arg: str = "") -> str:
    arg = f"task={task},setup={setup},size={size}"
    return f"{config}:{arg},{config_arg}" if config_arg else f"{config}:{arg}"


def cells(
    root: str,
    rows: Sequence[Row],
    tasks: Sequence[str],
    *,
    setup: str,
    size: str,
    config_arg: str = "",
) -> list[Cell]:
    """Every (task, kind) cell, task-major."""
    grid = os.path.join(root, grid_name(setup, size, config_arg))
    return [
        Cell(
            task=task,
            kind=row.kind,
            config=row.config,
            dir=os.path.join(grid, task, row.kind),
            spec=(
                config_spec(row.config, task, setup, size, config_arg)
                if row.config is not None
                else None
            ),
            unservable=row.unservable,
        )
        for task in tasks
        for row in rows
    ]


def seed_points(seeds: Sequence[int]) -> list[points.Point]:
    return points.make_points(axes.axis(SEED_PATH, list(seeds)))


def plan(
    cell: Cell,
    seeds: Sequence[int],
    override_args: Sequence[str],
    *,
    cwd: str = launchers.REPO_ROOT,
) -> CellPlan:
    """The cell's sweep and the trainer jobs of `seeds`, checked by the trainer's flag parser.

    `override_args` are `--config.<path>=<text>` arguments shared by every run. Raises
    SweepError when they do not parse for this cell although its config builds without them (a
    user error); a config that does not build at all is returned as `CellPlan.error`.
    """
    out = CellPlan(cell)
    if cell.spec is None:
        return out
    try:
        _, shared = command.parse(cell.spec, list(override_args))
    except sweeps.SweepError as e:
        try:
            command.parse(cell.spec, [])
        except sweeps.SweepError as bare:
            out.error = str(bare)
            return out
        raise sweeps.SweepError(f"{cell.task}/{cell.kind}: {e}") from None
    asked = seed_points(seeds)
    all_points = _with_recorded(cell.dir, asked)
    try:
        shared_args, point_args = command.check(cell.spec, dict(shared), asked)
    except sweeps.SweepError as e:
        raise sweeps.SweepError(f"{cell.task}/{cell.kind}: {e}") from None
    out.sweep = layout.sweep_doc(cell.spec, dict(shared), all_points)
    for p in asked:
        workdir = layout.point_dir(cell.dir, p.name)
        out.jobs.append(
            launchers.Job(
                name=f"{cell.task}/{cell.kind}/{p.name}",
                argv=tuple(
                    command.trainer_argv(cell.spec, workdir, shared_args + point_args[p.name])
                ),
                workdir=workdir,
                log_path=os.path.join(workdir, layout.LOG_FILE),
                cwd=cwd,
            )
        )
    return out


def _with_recorded(cell_dir: str, asked: Sequence[points.Point]) -> list[points.Point]:
    """The points recorded in the cell's sweep.json, then the asked ones it lacks."""
    recorded = layout.read_sweep(cell_dir) or {}
    out = [
        points.Point(p["name"], p["overrides"])
        for p in recorded.get("points", [])
        if isinstance(p, dict) and "name" in p and isinstance(p.get("overrides"), dict)
    ]
    names = {p.name for p in out}
    return out + [p for p in asked if p.name not in names]


def check_claims(plans: Sequence[CellPlan]) -> None:
    """Raises SweepError when a cell's root holds another sweep (nothing is written)."""
    for p in plans:
        if p.sweep is not None:
            try:
                layout.claim(p.cell.dir, p.sweep, write=False)
            except sweeps.SweepError as e:
                raise sweeps.SweepError(f"{p.cell.task}/{p.cell.kind}: {e}") from None


def interleave(plans: Sequence[CellPlan]) -> list[launchers.Job]:
    """The jobs seed-major (every kind's first seed, then every kind's second, ...), so a grid
    stopped early has one seed of many cells rather than every seed of a few."""
    out = []
    longest = max((len(p.jobs) for p in plans), default=0)
    for i in range(longest):
        out += [p.jobs[i] for p in plans if i < len(p.jobs)]
    return out


def run(
    plans: Sequence[CellPlan],
    launcher: launchers.Launcher,
    *,
    parallel: int = 1,
    log: Callable[[str], None] = print,
    on_finish: Callable[[runner.Outcome], None] | None = None,
) -> list[runner.Outcome]:
    """Runs the plans' jobs that are not done, one task after another, `parallel` at a time.

    Every cell root with jobs is locked and claimed (sweep.json) first, and its results.json /
    results.md are rewritten after each of its points ends. Tasks run one after another because
    the runner starts a task's first job alone until its trainer has built the task's data (two
    trainers building one dataset collide). Interrupts propagate (jobs stay resumable).
    """
    todo = [p for p in plans if p.sweep is not None and p.jobs]
    check_claims(todo)
    owner = {job.name: p for p in todo for job in p.jobs}
    outcomes: list[runner.Outcome] = []
    with contextlib.ExitStack() as stack:
        for p in todo:
            stack.enter_context(layout.locked(p.cell.dir))
        for p in todo:
            layout.claim(p.cell.dir, p.sweep)
            results.write(p.cell.dir, results.collect(p.cell.dir, p.sweep))

        def finished(outcome: runner.Outcome) -> None:
            p = owner[outcome.name]
            results.write(p.cell.dir, results.collect(p.cell.dir, p.sweep))
            if on_finish is not None:
                on_finish(outcome)

        for task in dict.fromkeys(p.cell.task for p in todo):
            jobs = interleave([p for p in todo if p.cell.task == task])
            log(f"reproduce: task {task}: {len(jobs)} runs")
            outcomes += runner.run(jobs, launcher, parallel=parallel, log=log, on_finish=finished)
    return outcomes
