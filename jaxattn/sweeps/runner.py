"""Runs a sweep's jobs through a launcher, `parallel` at a time, skipping finished points.

Each job's point is looked up on disk first (layout.status): done points are skipped;
interrupted and failed ones are launched again (the trainer resumes from its latest
checkpoint); pending ones are launched. A failed job is recorded in its workdir (failed.json:
exit status and the log's last line) and the others go on. One progress line is printed per
start and per finish, with the elapsed time and an ETA from the points finished in this run.
With `parallel` > 1 the first job runs alone until its trainer has started training (see
`_opened`), so that parallel trainers do not build the same missing dataset at once.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from jaxattn.sweeps import launchers, layout

POLL_INTERVAL_S = 0.5


@dataclasses.dataclass
class Outcome:
    name: str
    status: str  # layout.DONE or layout.ERROR
    seconds: float
    exit_code: int | None = None
    error: str = ""


def format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def plan(jobs: Sequence[launchers.Job]) -> dict[str, str]:
    """{job name: its status on disk}."""
    return {job.name: layout.status(job.workdir) for job in jobs}


def run(
    jobs: Sequence[launchers.Job],
    launcher: launchers.Launcher,
    *,
    parallel: int = 1,
    log: Callable[[str], None] = print,
    on_finish: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Launches every job whose point is not done, at most `parallel` at once; waits for all.

    `on_finish` is called after each job ends (e.g. to rewrite the results table). On
    KeyboardInterrupt (Ctrl-C, or SIGTERM turned into one by the caller) the running jobs are
    cancelled, left resumable, and the interrupt propagates.
    """
    if parallel < 1:
        raise ValueError(f"parallel must be >= 1, got {parallel}")
    statuses = plan(jobs)
    todo = [job for job in jobs if statuses[job.name] != layout.DONE]
    counts = {s: list(statuses.values()).count(s) for s in set(statuses.values())}
    log(
        f"sweep: {len(jobs)} points: "
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        + f"; running {len(todo)}, {parallel} at a time"
    )
    outcomes: list[Outcome] = []
    running: dict[str, tuple[launchers.Job, Any, float, int]] = {}
    queue = list(todo)
    start = time.monotonic()

    def progress() -> str:
        elapsed = time.monotonic() - start
        finished = len(outcomes)
        eta = elapsed / finished * (len(todo) - finished) if finished else None
        failed = sum(o.status != layout.DONE for o in outcomes)
        return (
            f"{finished}/{len(todo)} finished, {failed} failed, {len(running)} running | "
            f"elapsed {format_duration(elapsed)}"
            + (f", ETA {format_duration(eta)}" if eta is not None else "")
        )

    try:
        while queue or running:
            while queue and len(running) < parallel and (not running or _opened(running, outcomes)):
                job = queue.pop(0)
                was = statuses[job.name]
                layout.clear_failure(job.workdir)
                offset = os.path.getsize(job.log_path) if os.path.exists(job.log_path) else 0
                handle = launcher.launch(job)
                running[job.name] = (job, handle, time.monotonic(), offset)
                how = {layout.PENDING: "", layout.ERROR: " (after a failure: resuming)"}.get(
                    was, " (resuming)"
                )
                log(f"[start] {job.name}{how} | {progress()}")
            time.sleep(POLL_INTERVAL_S if running else 0)
            for name in list(running):
                job, handle, began, offset = running[name]
                code = launcher.poll(handle)
                if code is None:
                    continue
                del running[name]
                outcome = _outcome(job, code, time.monotonic() - began, offset)
                outcomes.append(outcome)
                if outcome.status != layout.DONE:
                    layout.record_failure(job.workdir, outcome.exit_code, outcome.error)
                    log(
                        f"[FAILED] {name} after {format_duration(outcome.seconds)} (exit "
                        f"{outcome.exit_code}): {outcome.error} | log {job.log_path} | {progress()}"
                    )
                else:
                    log(
                        f"[done] {name} in {format_duration(outcome.seconds)}"
                        f"{_summary(job.workdir)} | {progress()}"
                    )
                if on_finish is not None:
                    on_finish(outcome)
    except BaseException:
        for job, handle, _, _ in running.values():
            launcher.cancel(handle)
            log(f"[stopped] {job.name}: interrupted, resumable")
        raise
    return outcomes


def _opened(running: dict[str, tuple], outcomes: list[Outcome]) -> bool:
    """Whether a second job may start: once one job of this run has finished or got past its
    data setup (its metrics.jsonl exists). Trainers that build a missing dataset at the same time
    collide in the tfds directory (FileExistsError on its rename), so the first one runs alone.
    """
    return bool(outcomes) or any(layout.has_started(job.workdir) for job, *_ in running.values())


def _outcome(job: launchers.Job, code: int, seconds: float, offset: int) -> Outcome:
    if code == 0 and layout.point_results(job.workdir) is not None:
        return Outcome(job.name, layout.DONE, seconds, code)
    if code == 0:
        error = f"exited 0 without writing {layout.RESULTS_FILE}"
    else:
        error = layout.last_line(job.log_path, offset) or "no output"
    return Outcome(job.name, layout.ERROR, seconds, code, error)


def _summary(workdir: str) -> str:
    results = layout.point_results(workdir) or {}
    metric = results.get("best_metric") or "accuracy"
    value = (results.get("test") or {}).get(metric, results.get(f"test_{metric}"))
    return f": test_{metric} {value:.4f}" if isinstance(value, (int, float)) else ""
