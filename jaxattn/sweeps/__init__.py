"""Sweeps: run one config at many override points, each through the real trainer.

  python -m experiments.sweep --config=configs/lra_nystrom.py --workdir_root=runs/sweeps/nystrom

A config module may define `get_sweep(arg) -> list[dict[str, Any]]` (big_vision style): one dict
per point, mapping dotted config paths to values, built with the helpers in `axes`:

  def get_sweep(arg=None):
      return axes.product(
          axes.axis("train.seed", [0, 1, 2]),
          axes.axis("optim.learning_rate", [1e-4, 5e-4]),
      )

Modules (import the module, not its names):
  axes.py       axis / product / zipped / chain: lists of override dicts; `--sweep` parsing
  points.py     Point (name + overrides) and the stable, file-safe names derived from overrides
  command.py    the trainer argv of a point, checked against the trainer's own flag parser
  layout.py     the sweep root on disk (below): sweep.json, point status, failure records, lock
  launchers.py  Job, the Launcher protocol and LocalLauncher (subprocesses on this machine)
  runner.py     launches the points that are not done, N at once, with progress lines
  results.py    results.json / results.md of the root, with mean ± std over `train.seed`

Layout of a sweep root (the same for any launcher: a pod or SLURM launcher only changes where
`python -m experiments.train` runs; it must send the point's output to `<name>/log.txt`):

  <root>/sweep.json         config spec, shared overrides, the points and their names
  <root>/results.json       one row per point + the seed groups (rewritten after every point)
  <root>/results.md         the same as Markdown tables
  <root>/.sweep.lock        flock'ed by the runner working in this root
  <root>/<name>/            the point's trainer workdir (config.json, metrics.jsonl,
                            checkpoints/, checkpoints_best/, results.json: see WORKSPACE.md)
  <root>/<name>/log.txt     the trainer's stdout and stderr, appended at each launch
  <root>/<name>/failed.json written by the runner when a launch failed; removed at relaunch

A point is done when `<name>/results.json` holds a JSON object (the trainer writes it last);
interrupted when its workdir exists without one (a rerun resumes from its latest checkpoint);
error when it is interrupted and holds failed.json; pending otherwise.
"""

from jaxattn import errors


class SweepError(errors.JaxattnError):
    """A sweep cannot run as asked (bad override, another sweep in the root, ...): one line."""
