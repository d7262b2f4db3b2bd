"""Where a point's trainer runs: the Launcher protocol and LocalLauncher.

A launcher gets a `Job` (the trainer argv, the point workdir, the log path, the working
directory and extra environment) and must run the argv so that the trainer's stdout and stderr
end up appended to `job.log_path`; it reports the exit status through `poll`. The runner does
everything else (status, failure records, results), so a new launcher keeps the workdir layout:

- a SLURM launcher would `sbatch --output=<log_path> --open-mode=append --chdir=<cwd>` a script
  that runs the argv, return the job id from `launch`, read the exit code from `sacct` in
  `poll` and `scancel` in `cancel`;
- a pod launcher would run the argv on every host of the slice (the trainer is multi-process
  aware: only process 0 writes the workdir) with host 0's output going to the log.

Register it in LAUNCHERS; `experiments/sweep.py --launcher=<name>` picks it.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import datetime
import os
import signal
import subprocess
import sys
from typing import Any, Protocol

# The repository root, so `python -m experiments.train` resolves from any working directory.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclasses.dataclass(frozen=True)
class Job:
    name: str  # the point's name
    argv: tuple[str, ...]  # the trainer command
    workdir: str  # <root>/<name>
    log_path: str  # <root>/<name>/log.txt: stdout and stderr, appended
    cwd: str  # where the argv runs (relative config paths resolve from here)
    env: dict[str, str] = dataclasses.field(default_factory=dict)  # added to the environment


class Launcher(Protocol):
    def launch(self, job: Job) -> Any:
        """Starts `job` and returns a handle for poll/cancel; does not wait for it."""
        ...

    def poll(self, handle: Any) -> int | None:
        """None while the job runs, then its exit status (negative: killed by that signal)."""
        ...

    def cancel(self, handle: Any) -> None:
        """Stops the job (it stays resumable: the trainer resumes from its checkpoint)."""
        ...


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the runner dies, so a killed runner leaves no
    trainer behind to race the rerun's. Linux only; kept across the trainer's re-exec."""
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


class LocalLauncher:
    """Each job as a subprocess of this process, on this machine."""

    def launch(self, job: Job) -> subprocess.Popen:
        os.makedirs(job.workdir, exist_ok=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1", **job.env)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH", "")) if p)
        with open(job.log_path, "a") as log:
            stamp = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
            log.write(f"=== sweep: launch {stamp}: {' '.join(job.argv)}\n")
            log.flush()
            return subprocess.Popen(
                job.argv,
                cwd=job.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )

    def poll(self, handle: subprocess.Popen) -> int | None:
        return handle.poll()

    def cancel(self, handle: subprocess.Popen, timeout_s: float = 10.0) -> None:
        if handle.poll() is not None:
            return
        handle.terminate()
        try:
            handle.wait(timeout_s)
        except subprocess.TimeoutExpired:
            handle.kill()
            handle.wait()


LAUNCHERS: dict[str, type] = {"local": LocalLauncher}
