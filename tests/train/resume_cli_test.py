"""kill -9 during a real CLI run, rerun the same command: it resumes from the last checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_kill_dash_nine_then_rerun_resumes(tmp_path):
    workdir, data_dir = tmp_path / "run", tmp_path / "tfds"
    cmd = [
        sys.executable,
        "-m",
        "experiments.train",
        "--config=configs/lra_nystrom.py:smoke",
        f"--workdir={workdir}",
        f"--config.data.data_dir={data_dir}",
        "--config.train.num_train_steps=400",
        "--config.train.checkpoint_every_steps=5",
        "--config.train.eval_every_steps=1000",
    ]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    ckpt_dir = workdir / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline:
        steps = [int(s) for s in os.listdir(ckpt_dir) if s.isdigit()] if ckpt_dir.exists() else []
        if steps and max(steps) >= 10:
            break
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("no checkpoint at step >= 10 within 240 s")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (workdir / "results.json").exists(), "the run finished before it could be killed"
    killed_at = max(int(s) for s in os.listdir(ckpt_dir) if s.isdigit())

    rerun = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    resumed = [line for line in rerun.stderr.splitlines() if "resumed from" in line]
    assert resumed, rerun.stderr[-3000:]
    resumed_step = int(resumed[0].rsplit("step", 1)[1])
    assert resumed_step >= killed_at - 5 and resumed_step >= 10  # the newest complete checkpoint
    first_logged = [
        json.loads(line)["step"]
        for line in open(workdir / "metrics.jsonl")
        if json.loads(line)["split"] == "train"
    ]
    assert resumed_step + 1 in first_logged
    results = json.load(open(workdir / "results.json"))
    assert results["last_checkpoint"]["step"] == 400
