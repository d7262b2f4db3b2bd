"""The runner with stand-in trainers: skip done points, record failures, parallel, kill and rerun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from jaxattn.sweeps import launchers, layout, runner

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Stands in for `python -m experiments.train`: counts its launches, then succeeds (writes
# results.json), fails (exit 2 with an error line) or exits 0 without results.
FAKE_TRAINER = r"""
import json, os, sys, time
workdir, mode, seconds, setup = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
with open(os.path.join(workdir, "launches.txt"), "a") as f:
    f.write(f"{os.getpid()} {time.time()}\n")
time.sleep(setup)  # data and model setup: metrics.jsonl comes after it, as in the trainer
open(os.path.join(workdir, "metrics.jsonl"), "a").close()
print("training", flush=True)
time.sleep(seconds)
if mode == "fail":
    print("error: boom", file=sys.stderr, flush=True)
    sys.exit(2)
if mode == "ok":
    with open(os.path.join(workdir, "results.json"), "w") as f:
        json.dump({"test_accuracy": 0.25, "last_checkpoint": {"step": 3}}, f)
"""


def _job(root, name, mode="ok", seconds=0.0, setup=0.0):
    workdir = os.path.join(root, name)
    return launchers.Job(
        name=name,
        argv=(sys.executable, "-c", FAKE_TRAINER, workdir, mode, str(seconds), str(setup)),
        workdir=workdir,
        log_path=os.path.join(workdir, layout.LOG_FILE),
        cwd=root,
    )


def _launches(job):
    """[(pid, start time)] of each launch of `job`."""
    path = os.path.join(job.workdir, "launches.txt")
    lines = open(path).read().splitlines() if os.path.exists(path) else []
    return [(int(pid), float(t)) for pid, t in (line.split() for line in lines)]


def test_skips_done_records_failures_and_reruns_them(tmp_path):
    root = str(tmp_path)
    done, ok, fail, silent = (
        _job(root, "done"),
        _job(root, "ok"),
        _job(root, "fail", "fail"),
        _job(root, "silent", "silent"),
    )
    os.makedirs(done.workdir)
    with open(os.path.join(done.workdir, "results.json"), "w") as f:
        json.dump({"test_accuracy": 0.5}, f)
    lines, finished = [], []
    outcomes = runner.run(
        [done, ok, fail, silent],
        launchers.LocalLauncher(),
        parallel=2,
        log=lines.append,
        on_finish=finished.append,
    )
    by_name = {o.name: o for o in outcomes}
    assert set(by_name) == {"ok", "fail", "silent"} and len(finished) == 3
    assert _launches(done) == []
    assert by_name["ok"].status == layout.DONE
    assert by_name["fail"].status == layout.ERROR and by_name["fail"].exit_code == 2
    assert by_name["fail"].error == "error: boom"
    assert "without writing results.json" in by_name["silent"].error
    assert layout.status(fail.workdir) == layout.ERROR
    assert layout.failure(fail.workdir)["error"] == "error: boom"
    assert lines[0].startswith("sweep: 4 points: 1 done, 3 pending; running 3, 2 at a time")
    assert any(line.startswith("[done] ok") and "test_accuracy 0.2500" in line for line in lines)
    assert any(
        line.startswith("[FAILED] fail") and "(exit 2): error: boom" in line for line in lines
    )
    assert any("2 running" in line for line in lines if line.startswith("[start]"))

    # Rerun with the failure fixed: only the failed points run again.
    fixed = _job(root, "fail", "ok")
    lines.clear()
    outcomes = runner.run([done, ok, fixed, silent], launchers.LocalLauncher(), log=lines.append)
    assert [o.name for o in outcomes] == ["fail", "silent"]
    assert len(_launches(ok)) == 1 and len(_launches(fixed)) == 2
    assert layout.status(fixed.workdir) == layout.DONE
    assert layout.failure(fixed.workdir) is None
    assert any("fail (after a failure: resuming)" in line for line in lines)
    assert open(fixed.log_path).read().count("=== sweep: launch") == 2


def test_interrupt_cancels_running_jobs_and_leaves_them_resumable(tmp_path):
    root = str(tmp_path)
    quick, slow = _job(root, "quick", seconds=1.0), _job(root, "slow", seconds=60)

    def stop(_outcome):
        raise KeyboardInterrupt

    lines = []
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        runner.run(
            [quick, slow], launchers.LocalLauncher(), parallel=2, log=lines.append, on_finish=stop
        )
    assert time.monotonic() - start < 30
    assert "[stopped] slow: interrupted, resumable" in lines
    assert layout.status(slow.workdir) == layout.INTERRUPTED


def test_parallel_jobs_wait_until_the_first_is_past_its_setup(tmp_path):
    root = str(tmp_path)
    jobs = [_job(root, "a", seconds=4.0, setup=1.0), _job(root, "b"), _job(root, "c")]
    lines = []
    runner.run(jobs, launchers.LocalLauncher(), parallel=3, log=lines.append)
    # Launch times come from time.time() in each process (file mtimes use the kernel's coarse
    # clock and can read a few ms early): a spends 1 s in setup, then 4 s training (slack for
    # process start-up on a loaded machine).
    a_start = _launches(jobs[0])[0][1]
    for job in jobs[1:]:
        started = _launches(job)[0][1]
        assert a_start + 1.0 <= started < a_start + 5.0  # after a's setup, beside a's training
    assert any("3 running" in line for line in lines)


class _InstantLauncher:
    """A launcher that 'runs' a job by writing its results: the runner needs nothing else."""

    def __init__(self):
        self.launched = []

    def launch(self, job):
        self.launched.append(job.name)
        os.makedirs(job.workdir, exist_ok=True)
        with open(os.path.join(job.workdir, "results.json"), "w") as f:
            json.dump({"test_accuracy": 1.0}, f)
        return job.name

    def poll(self, handle):
        return 0

    def cancel(self, handle):
        pass


def test_any_launcher_with_launch_poll_cancel_works(tmp_path):
    launcher = _InstantLauncher()
    jobs = [_job(str(tmp_path), n) for n in ("a", "b", "c")]
    outcomes = runner.run(jobs, launcher, parallel=3, log=lambda _: None)
    assert launcher.launched == ["a", "b", "c"]
    assert all(o.status == layout.DONE for o in outcomes)


DRIVER = r"""
import json, sys
from jaxattn.sweeps import launchers, runner
jobs = [launchers.Job(**{**j, "argv": tuple(j["argv"])}) for j in json.loads(sys.argv[1])]
runner.run(jobs, launchers.LocalLauncher(), log=lambda line: print(line, flush=True))
"""


def test_killed_runner_takes_its_trainer_down_and_the_rerun_skips_finished_points(tmp_path):
    root = str(tmp_path)
    jobs = [_job(root, f"p{i}", seconds=s) for i, s in enumerate([0.2, 30, 0.2])]
    spec = json.dumps([{**j.__dict__, "argv": list(j.argv)} for j in jobs])
    env = dict(os.environ, PYTHONPATH=ROOT)
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, spec], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while not _launches(jobs[1]):
        assert driver.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    first = os.stat(os.path.join(jobs[0].workdir, "results.json"))
    trainer_pid = _launches(jobs[1])[0][0]
    os.kill(driver.pid, signal.SIGKILL)  # the runner only, not its process group
    driver.wait()
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{trainer_pid}") and _is_alive(trainer_pid):
        assert time.monotonic() < deadline, "the trainer outlived its killed runner"
        time.sleep(0.05)

    jobs[1] = _job(root, "p1", seconds=0.2)
    spec = json.dumps([{**j.__dict__, "argv": list(j.argv)} for j in jobs])
    rerun = subprocess.run(
        [sys.executable, "-c", DRIVER, spec], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "1 done, 1 interrupted, 1 pending" in rerun.stdout
    again = os.stat(os.path.join(jobs[0].workdir, "results.json"))
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
    assert [len(_launches(j)) for j in jobs] == [1, 2, 1]
    assert all(layout.status(j.workdir) == layout.DONE for j in jobs)


def _is_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
    except OSError:
        return False
