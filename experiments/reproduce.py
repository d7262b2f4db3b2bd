"""Run or collect the LRA kind × task grid and render it against the published numbers.

  python -m experiments.reproduce lra --workdir_root=runs/reproduce --size=small --parallel=2
  python -m experiments.reproduce lra --workdir_root=runs/reproduce --size=small --dry_run
  python -m experiments.reproduce lra --workdir_root=runs/reproduce --collect_only
  python -m experiments.reproduce lra --workdir_root=/tmp/r --kinds=softmax,nystrom \
      --tasks=listops --seeds=0 --config_arg=smoke --config.data.data_dir=/tmp/tfds

Rows: every configs/lra_<kind>.py whose kind is registered (plus registered kinds without one,
shown as "no config"); columns: the tasks (size=small: ListOps and Pathfinder only); per cell one
run per seed of `configs/lra_<kind>.py:task=<task>,setup=<setup>,size=<size>[,<config_arg>]`
through the sweep runner (jaxattn.sweeps): finished runs are skipped, interrupted ones resume.
`--config.<path>=<value>` flags apply to every run. Outputs in <workdir_root>/<setup>-<size>
[-<config_arg>]/: lra_table.md, lra_table.json, lra_table.png (rewritten after every run) and
one sweep root per cell, <task>/<kind>/ (layout: jaxattn/reproduce/__init__.py). The table is
printed at the end with the summed wall time of the runs. Exit status: 0 when every asked run
is done, 1 when one failed or a config does not build, 2 on bad input, 130 when interrupted.
"""

import collections
import os
import signal
import statistics
import sys
import time

from absl import app, flags

from configs import lra_base
from jaxattn import errors
from jaxattn.reproduce import grid, table
from jaxattn.sweeps import axes, launchers, layout, runner

CONFIGS_DIR = os.path.join(launchers.REPO_ROOT, "configs")
BENCHMARKS = ("lra",)

_ROOT = flags.DEFINE_string("workdir_root", None, "Directory of the grids (one per setup-size).")
_SETUP = flags.DEFINE_enum(
    "setup", "nystromformer", list(lra_base.SETUPS), "configs/lra_base.py setup."
)
_SIZE = flags.DEFINE_enum(
    "size", "base", list(lra_base.SIZES), "base, or small (ListOps and Pathfinder, reduced)."
)
_TASKS = flags.DEFINE_list("tasks", [], "Task subset (default: all tasks of --size).")
_KINDS = flags.DEFINE_list("kinds", [], "Kind subset (default: every row of the grid).")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "train.seed values of every cell.")
_PARALLEL = flags.DEFINE_integer("parallel", 1, "Runs trained at once.", lower_bound=1)
_CONFIG_ARG = flags.DEFINE_string(
    "config_arg", "", "Appended to every config string, e.g. 'smoke' (a separate grid directory)."
)
_LAUNCHER = flags.DEFINE_enum("launcher", "local", list(launchers.LAUNCHERS), "Where runs go.")
_COLLECT_ONLY = flags.DEFINE_bool("collect_only", False, "Render from what exists; run nothing.")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Print each run's status and command; run none.")
flags.mark_flags_as_required(["workdir_root"])

_OVERRIDES: list[str] = []  # the --config.<path>=<value> arguments, for every run


def _parse_flags(argv: list[str]) -> list[str]:
    """absl's parser for everything but `--config.<path>=<value>`, which is kept for the runs."""
    rest = []
    for arg in argv:
        if arg.startswith("--config.") and "=" in arg:
            _OVERRIDES.append(arg)
        else:
            rest.append(arg)
    try:
        return flags.FLAGS(rest)
    except flags.Error as e:
        print(f"FATAL Flags parsing error: {e}", file=sys.stderr)
        sys.exit(1)


def _tasks() -> list[str]:
    allowed = list(lra_base.SMALL) if _SIZE.value == "small" else list(lra_base.TASKS)
    tasks = _TASKS.value or allowed
    bad = [t for t in tasks if t not in allowed]
    if bad:
        raise errors.ConfigError(f"--tasks {bad} not in size={_SIZE.value}'s tasks {allowed}")
    return [t for t in allowed if t in tasks]


def _config_arg() -> str:
    arg = _CONFIG_ARG.value.strip(",")
    taken = [k for k in ("task", "setup", "size") if f"{k}=" in arg]
    if taken:
        raise errors.ConfigError(f"--config_arg='{arg}' sets {taken}; use --tasks/--setup/--size")
    return arg


def _seeds() -> list[int]:
    try:
        seeds = [int(s) for s in _SEEDS.value]
    except ValueError:
        raise errors.ConfigError(f"--seeds must be integers, got {_SEEDS.value}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise errors.ConfigError(f"--seeds must be distinct integers, got {_SEEDS.value}")
    return seeds


def _shared_values() -> dict:
    out = {}
    for arg in _OVERRIDES:
        path, _, value = arg[len("--config.") :].partition("=")
        out[path] = axes.parse_value(value)
    return out


def _print_plan(plans: list[grid.CellPlan]) -> None:
    counts: collections.Counter = collections.Counter()
    walls = collections.defaultdict(list)  # task -> wall times of its done runs
    todo = collections.Counter()
    for p in plans:
        where = f"{p.cell.task}/{p.cell.kind}"
        if p.cell.spec is None:
            why = p.cell.unservable or f"no configs/lra_{p.cell.kind}.py"
            print(f"{where}: no config ({why})")
            counts["no config"] += 1
            continue
        if p.error:
            print(f"{where}: config error: {p.error}")
            counts["config error"] += 1
            continue
        statuses = runner.plan(p.jobs)
        for job in p.jobs:
            status = statuses[job.name]
            print(f"{job.name} [{status}]: {' '.join(job.argv[1:])}")
            counts[status] += 1
            results = layout.point_results(job.workdir)
            if results is None:
                todo[p.cell.task] += 1
            elif isinstance(results.get("wall_time_s"), (int, float)):
                walls[p.cell.task].append(float(results["wall_time_s"]))
    runs = sum(n for s, n in counts.items() if s not in ("no config", "config error"))
    print(
        f"reproduce: {len(plans)} cells, {runs} runs: "
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        + f"; would run {sum(todo.values())}, {_PARALLEL.value} at a time"
    )
    known = {t: statistics.fmean(w) * todo[t] for t, w in walls.items() if todo[t]}
    unknown = sorted(t for t in todo if t not in walls)
    if known:
        print(
            "reproduce: estimated "
            + table.format_duration(sum(known.values()) / _PARALLEL.value)
            + " from the mean wall time of finished runs per task"
            + (f" (no estimate for {unknown}: no run finished)" if unknown else "")
        )
    elif todo:
        print(f"reproduce: no time estimate (no finished runs of {unknown})")


def _reproduce(root: str) -> int:
    tasks, seeds = _tasks(), _seeds()
    rows = grid.select(grid.discover(CONFIGS_DIR), _KINDS.value)
    setup, size, arg = _SETUP.value, _SIZE.value, _config_arg()
    cells = grid.cells(root, rows, tasks, setup=setup, size=size, config_arg=arg)
    shared = _shared_values()
    config_errors: dict = {}

    def render() -> tuple[dict, list[str]]:
        doc = table.collect(
            cells,
            rows,
            root=root,
            setup=setup,
            size=size,
            tasks=tasks,
            seeds=seeds,
            config_arg=arg,
            overrides=shared,
            errors=config_errors,
            repo_root=launchers.REPO_ROOT,
        )
        return doc, table.write(doc)

    def report(doc: dict, paths: list[str], elapsed: float | None = None) -> None:
        print(table.markdown(doc), flush=True)
        print(f"reproduce: wrote {', '.join(paths)}")
        line = f"reproduce: wall time of the runs (sum of wall_time_s): {doc['wall_time_s']:.0f} s"
        if elapsed is not None:
            line += f"; this invocation: {table.format_duration(elapsed)}"
        print(line, flush=True)

    if _COLLECT_ONLY.value:
        report(*render())
        return 0

    plans = [grid.plan(c, seeds, _OVERRIDES) for c in cells]
    config_errors.update({(p.cell.task, p.cell.kind): p.error for p in plans if p.error})
    grid.check_claims(plans)
    if _DRY_RUN.value:
        _print_plan(plans)
        return 0

    start = time.monotonic()
    try:
        grid.run(
            plans,
            launchers.LAUNCHERS[_LAUNCHER.value](),
            parallel=_PARALLEL.value,
            log=lambda line: print(line, flush=True),
            on_finish=lambda _outcome: render(),
        )
    finally:
        report(*render(), elapsed=time.monotonic() - start)
    jobs = [j for p in plans for j in p.jobs]
    all_done = all(layout.status(j.workdir) == layout.DONE for j in jobs)
    return 0 if all_done and not config_errors else 1


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv):
    if argv[1:] != ["lra"]:
        raise app.UsageError(
            f"usage: python -m experiments.reproduce {{{'|'.join(BENCHMARKS)}}} "
            f"--workdir_root=DIR [flags]; got {argv[1:]}"
        )
    signal.signal(signal.SIGTERM, _raise_interrupt)  # stop the trainers, keep them resumable
    root = os.path.abspath(_ROOT.value)
    os.chdir(launchers.REPO_ROOT)  # config specs are relative to the repository root
    try:
        sys.exit(_reproduce(root))
    except errors.JaxattnError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("reproduce: interrupted; rerun the same command to resume", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    app.run(main, flags_parser=_parse_flags)
