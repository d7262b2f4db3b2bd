"""`python -m experiments.sweep` end to end: the real trainer on the smoke preset, killed
mid-sweep and rerun, plus the CLI's refusals (one `error:` line, exit 2)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _env():
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)  # the trainers run on one CPU device, not the tests' 8
    return env


def _sweep(*args):
    return [sys.executable, "-m", "experiments.sweep", *args]


def _children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(entry))
    return out


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except OSError:
        return False


def test_dry_run_lists_the_configs_sweep(tmp_path):
    run = subprocess.run(
        _sweep("--config=configs/lra_nystrom.py", f"--workdir_root={tmp_path}", "--dry_run"),
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert [line.split(" ")[0] for line in lines] == ["seed=0", "seed=1", "seed=2"]
    assert "[pending]: -m experiments.train --config=configs/lra_nystrom.py" in lines[1]
    assert f"--workdir={tmp_path}/seed=1 --config.train.seed=1" in lines[1]
    assert not os.listdir(tmp_path)  # a dry run writes nothing


@pytest.mark.parametrize(
    "args, message",
    [
        (["--config=configs/lra_softmax.py:smoke"], "defines no get_sweep(arg)"),
        (["--config=configs/lra_nystrom.py:smoke", "--sweep=train.sed=1"], "instead of"),
        (["--collect_only"], "no readable sweep.json"),
    ],
)
def test_bad_input_is_one_error_line(tmp_path, args, message):
    run = subprocess.run(
        _sweep(f"--workdir_root={tmp_path}/root", *args),
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2, run.stderr[-2000:]
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], run.stderr[-2000:]


@pytest.mark.slow
def test_killed_sweep_reruns_without_redoing_finished_points(tmp_path):
    root, data_dir = tmp_path / "sweep", tmp_path / "tfds"
    cmd = _sweep(
        "--config=configs/lra_nystrom.py:smoke",
        f"--workdir_root={root}",
        "--sweep=train.seed=0,1",
        f"--config.data.data_dir={data_dir}",
        # HEAD's default; keeps the smoke run independent of in-progress attention-dropout work.
        "--config.model.attention_dropout_rate=0.0",
    )
    first, second = root / "seed=0", root / "seed=1"
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 240
        # Kill once point 0 is done and point 1's trainer has started.
        while not ((first / "results.json").exists() and (second / "log.txt").exists()):
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            assert time.time() < deadline, "point 0 did not finish within 240 s"
            time.sleep(0.1)
        trainers = []
        while not trainers and time.time() < deadline:
            trainers = _children(proc.pid)
            time.sleep(0.05)
        assert not (second / "results.json").exists(), "point 1 finished before the kill"
        os.kill(proc.pid, signal.SIGKILL)  # the runner alone: its trainer must die with it
        proc.wait()
        deadline = time.time() + 15
        while any(_alive(pid) for pid in trainers):
            assert time.time() < deadline, "a trainer outlived its killed runner"
            time.sleep(0.1)
    finally:
        if proc.poll() is None or _children(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    before = os.stat(first / "results.json")
    metrics_before = (first / "metrics.jsonl").read_text()
    rerun = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=400)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "sweep: 2 points: 1 done, 1 interrupted; running 1" in rerun.stdout
    assert "[start] seed=1 (resuming)" in rerun.stdout
    assert "[start] seed=0" not in rerun.stdout
    after = os.stat(first / "results.json")
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert (first / "metrics.jsonl").read_text() == metrics_before
    assert (first / "log.txt").read_text().count("=== sweep: launch") == 1
    assert (second / "log.txt").read_text().count("=== sweep: launch") == 2

    doc = json.loads((root / "results.json").read_text())
    assert [p["status"] for p in doc["points"]] == ["done", "done"]
    assert doc["seed_groups"][0]["seeds"] == [0, 1]
    assert "| (base) | 0, 1 | 2/2 |" in (root / "results.md").read_text()
    sweep = json.loads((root / "sweep.json").read_text())
    assert [p["name"] for p in sweep["points"]] == ["seed=0", "seed=1"]

    # --collect_only rebuilds the same table from the workdirs.
    (root / "results.md").unlink()
    collect = subprocess.run(
        _sweep(f"--workdir_root={root}", "--collect_only"),
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert collect.returncode == 0, collect.stderr[-2000:]
    assert json.loads((root / "results.json").read_text())["points"] == doc["points"]
    assert (root / "results.md").exists()
