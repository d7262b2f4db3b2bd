"""`python -m experiments.reproduce lra` through its CLI: collect-only over fabricated cells, the
dry run, refusals, and (slow) the real trainer on the smoke preset."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from jaxattn.reproduce import grid
from tests.reproduce import fake_cells

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _env():
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)  # the trainers run on one CPU device, not the tests' 8
    return env


def _reproduce(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "experiments.reproduce", *args],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _cell(root, task, kind, *, setup="nystromformer", size="base", config_arg=""):
    rows = [grid.Row(kind, f"configs/lra_{kind}.py")]
    (cell,) = grid.cells(str(root), rows, [task], setup=setup, size=size, config_arg=config_arg)
    return cell


def test_collect_only_renders_fabricated_workdirs(tmp_path):
    fake_cells.write_cell(_cell(tmp_path, "listops", "softmax"), {0: 0.35, 1: 0.36, 2: 0.37})
    fake_cells.write_cell(_cell(tmp_path, "text", "nystrom"), {0: fake_cells.ERROR})
    run = _reproduce(
        "lra",
        f"--workdir_root={tmp_path}",
        "--collect_only",
        "--kinds=softmax,nystrom",
        "--tasks=listops,text",
    )
    assert run.returncode == 0, run.stderr[-2000:]
    grid_dir = tmp_path / "nystromformer-base"
    md = (grid_dir / "lra_table.md").read_text()
    assert md in run.stdout  # the table is printed too
    assert "| softmax | Nys. T3: Standard (softmax) | 36.00 ± 1.00 (n=3) · 37.10 · -1.10 |" in md
    assert "| nystrom | Nys. T3: Nyströmformer | — · 37.15 | error [1] · 65.52 |" in md
    assert "[1] text/nystrom: seed=0: exit 1: ValueError: boom in the trainer" in md
    assert "Seeds of every reported cell: 0, 1, 2." in md
    assert "wall time of the runs (sum of wall_time_s): 30 s" in run.stdout
    doc = json.loads((grid_dir / "lra_table.json").read_text())
    assert doc["rows"][0]["cells"]["listops"]["seeds"] == [0, 1, 2]
    if importlib.util.find_spec("matplotlib") is not None:  # requirements-bench.txt
        assert (grid_dir / "lra_table.png").stat().st_size > 10_000
    assert sorted(os.listdir(grid_dir / "listops" / "softmax")) == [
        "seed=0",
        "seed=1",
        "seed=2",
        "sweep.json",
    ]  # collect-only writes the table only


def test_dry_run_counts_runs_and_writes_nothing(tmp_path):
    fake_cells.write_cell(
        _cell(tmp_path, "listops", "softmax", size="small"), {0: 0.3}, wall_time_s=100.0
    )
    before = sorted(p for p, _, _ in os.walk(tmp_path))
    run = _reproduce(
        "lra",
        f"--workdir_root={tmp_path}",
        "--dry_run",
        "--size=small",
        "--kinds=softmax,nystrom",
        "--seeds=0",
        "--config.data.data_dir=/tmp/unused",
    )
    assert run.returncode == 2, run.stdout[-2000:]  # softmax's cell has another data_dir
    assert "listops/softmax: " in run.stderr and "different sweep" in run.stderr

    run = _reproduce(
        "lra",
        f"--workdir_root={tmp_path}",
        "--dry_run",
        "--size=small",
        "--kinds=softmax,nystrom",
        "--seeds=0",
    )
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert lines[0].startswith("listops/softmax/seed=0 [done]: -m experiments.train ")
    assert (
        "--config=configs/lra_nystrom.py:task=pathfinder,setup=nystromformer,size=small" in lines[3]
    )
    assert "reproduce: 4 cells, 4 runs: 1 done, 3 pending; would run 3, 1 at a time" in lines
    assert lines[-1].startswith("reproduce: estimated 1m40s")  # listops/nystrom at 100 s
    assert "no estimate for ['pathfinder']" in lines[-1]
    assert sorted(p for p, _, _ in os.walk(tmp_path)) == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--size=small", "--tasks=text"], "not in size=small's tasks"),
        (["--kinds=nope"], "unknown kind(s) ['nope']"),
        (["--seeds=0,x"], "--seeds must be integers"),
        (["--config_arg=smoke,task=text"], "use --tasks/--setup/--size"),
        (["--kinds=softmax", "--config.data.data_dirr=/x"], "listops/softmax: "),
    ],
)
def test_bad_input_is_one_error_line(tmp_path, args, message):
    run = _reproduce("lra", f"--workdir_root={tmp_path}", "--dry_run", *args)
    assert run.returncode == 2, run.stdout[-2000:] + run.stderr[-2000:]
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], run.stderr[-2000:]


def test_benchmark_name_is_required(tmp_path):
    run = _reproduce(f"--workdir_root={tmp_path}", "--dry_run")
    assert run.returncode != 0 and "usage: python -m experiments.reproduce {lra}" in run.stderr


@pytest.mark.slow
def test_smoke_grid_end_to_end(tmp_path):
    root, data_dir = tmp_path / "root", tmp_path / "tfds"
    args = [
        "lra",
        f"--workdir_root={root}",
        "--config_arg=smoke",
        f"--config.data.data_dir={data_dir}",
    ]
    run = _reproduce(*args, "--kinds=softmax,nystrom", "--tasks=listops", "--seeds=0", timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "[done] listops/softmax/seed=0" in run.stdout
    assert "[done] listops/nystrom/seed=0" in run.stdout
    assert "NOT comparable" in run.stdout

    # The whole grid collected: the two cells measured, every other cell missing.
    collect = _reproduce(*args, "--collect_only")
    assert collect.returncode == 0, collect.stderr[-2000:]
    doc = json.loads((root / "nystromformer-base-smoke" / "lra_table.json").read_text())
    assert doc["grid"]["tasks"] == ["listops", "text", "retrieval", "image", "pathfinder", "pathx"]
    measured = set()
    for row in doc["rows"]:
        for task, cell in row["cells"].items():
            if cell["n"]:
                measured.add((task, row["kind"]))
                assert cell["seeds"] == [0] and 0.0 <= cell["mean"] <= 100.0
            else:
                # Kinds the LRA models cannot serve (grid kinds) have no config: "no_config".
                missing = "no_config" if cell.get("unservable") else "not_run"
                assert cell["status"] == missing and cell["mean"] is None
    assert measured == {("listops", "softmax"), ("listops", "nystrom")}
    assert doc["wall_time_s"] > 0 and doc["num_runs_done"] == 2
    # A rerun skips the finished runs.
    rerun = _reproduce(*args, "--kinds=softmax,nystrom", "--tasks=listops", "--seeds=0")
    assert rerun.returncode == 0 and "running 0" in rerun.stdout
