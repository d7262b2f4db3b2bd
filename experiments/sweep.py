"""Run a config's sweep: every point through the real trainer, one workdir per point.

  python -m experiments.sweep --config=configs/lra_nystrom.py --workdir_root=runs/sweeps/nystrom
  python -m experiments.sweep --config=configs/lra_nystrom.py:smoke --workdir_root=/tmp/sweep \
      --sweep=train.seed=0,1,2 --sweep=optim.learning_rate=1e-4,5e-4 --parallel=2 \
      --config.data.data_dir=/tmp/tfds
  python -m experiments.sweep --workdir_root=runs/sweeps/nystrom --collect_only

The points come from `--sweep` (one axis per flag, their product) or else from the config
module's `get_sweep(arg)`; `--config.<path>=<value>` flags apply to every point. Point
`<name>` trains in `<workdir_root>/<name>/` (log in its log.txt); `<workdir_root>/sweep.json`
records the sweep and `results.json` / `results.md` hold the table (mean ± std over
`train.seed`). Rerunning the same command skips done points and resumes interrupted or failed
ones from their checkpoints. A sweep that keeps every recorded point and adds some extends
the root's sweep; a root that holds any other sweep is refused. Exit status: 0 when
every point is done, 1 when a point failed, 2 on bad input, 130 when interrupted.
Layout and modules: jaxattn/sweeps/__init__.py.
"""

import os
import signal
import sys

from absl import app, flags
from ml_collections import config_flags

from jaxattn import errors, sweeps
from jaxattn.sweeps import axes, command, launchers, layout, points, results, runner

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "configs/*.py file and config string, e.g. configs/lra_nystrom.py:smoke"
)
_ROOT = flags.DEFINE_string("workdir_root", None, "Directory of the sweep: one workdir per point.")
_SWEEP = flags.DEFINE_multi_string(
    "sweep",
    [],
    "An axis 'path=v1,v2,...' (repeatable: their product); replaces the config's get_sweep.",
)
_PARALLEL = flags.DEFINE_integer(
    "parallel",
    1,
    "Points trained at once (the first runs alone until its trainer has started training).",
    lower_bound=1,
)
_LAUNCHER = flags.DEFINE_enum(
    "launcher", "local", list(launchers.LAUNCHERS), "Where the points run."
)
_COLLECT_ONLY = flags.DEFINE_bool(
    "collect_only", False, "Only rebuild results.json / results.md from the workdirs."
)
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Print each point's status and command; run none.")
flags.mark_flags_as_required(["workdir_root"])


def _collect(root: str) -> int:
    sweep = layout.read_sweep(root)
    if sweep is None:
        raise sweeps.SweepError(f"no readable {layout.SWEEP_FILE} in {root}")
    doc = results.collect(root, sweep)
    paths = results.write(root, doc)
    if layout.is_locked(root):
        print(f"note: a sweep runner is working in {root}; unfinished points may be running")
    print(f"wrote {' and '.join(paths)}")
    return 0


def _sweep(root: str) -> int:
    if _CONFIG.value is None:
        raise sweeps.SweepError("--config is required (only --collect_only runs without it)")
    spec = config_flags.get_config_filename(flags.FLAGS["config"])
    shared = dict(config_flags.get_override_values(flags.FLAGS["config"]))
    if _SWEEP.value:
        overrides = axes.from_flags(_SWEEP.value)
    else:
        overrides = command.sweep_of(spec)
        if overrides is None:
            raise sweeps.SweepError(
                f"{command.split_spec(spec)[0]} defines no get_sweep(arg); pass the points with "
                "--sweep=path=v1,v2,..."
            )
    pts = points.make_points(overrides)
    shared_args, point_args = command.check(spec, shared, pts)
    jobs = [
        launchers.Job(
            name=p.name,
            argv=tuple(
                command.trainer_argv(
                    spec, layout.point_dir(root, p.name), shared_args + point_args[p.name]
                )
            ),
            workdir=layout.point_dir(root, p.name),
            log_path=os.path.join(layout.point_dir(root, p.name), layout.LOG_FILE),
            cwd=os.getcwd(),
        )
        for p in pts
    ]
    sweep = layout.sweep_doc(spec, shared, pts)
    if _DRY_RUN.value:
        layout.claim(root, sweep, write=False)
        statuses = runner.plan(jobs)
        for job in jobs:
            print(f"{job.name} [{statuses[job.name]}]: {' '.join(job.argv[1:])}")
        return 0

    with layout.locked(root):
        added = layout.claim(root, sweep)
        if added:
            print(f"sweep: adding {len(added)} points to the sweep in {root}: {added}", flush=True)
        results.write(root, results.collect(root, sweep))

        def rewrite(_outcome: runner.Outcome) -> None:
            results.write(root, results.collect(root, sweep))

        launcher = launchers.LAUNCHERS[_LAUNCHER.value]()
        try:
            runner.run(
                jobs,
                launcher,
                parallel=_PARALLEL.value,
                log=lambda line: print(line, flush=True),
                on_finish=rewrite,
            )
        finally:
            doc = results.collect(root, sweep)
            paths = results.write(root, doc)
    statuses = [r["status"] for r in doc["points"]]
    print(
        f"sweep: {statuses.count(layout.DONE)}/{len(statuses)} points done; wrote "
        f"{' and '.join(paths)}",
        flush=True,
    )
    return 0 if all(s == layout.DONE for s in statuses) else 1


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    signal.signal(signal.SIGTERM, _raise_interrupt)  # stop the trainers, keep them resumable
    root = os.path.abspath(_ROOT.value)
    try:
        sys.exit(_collect(root) if _COLLECT_ONLY.value else _sweep(root))
    except errors.JaxattnError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("sweep: interrupted; rerun the same command to resume", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    app.run(main)
