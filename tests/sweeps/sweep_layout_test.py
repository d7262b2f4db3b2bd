"""Point status from the files of a workdir, sweep.json claims, the lock, and the results table."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

import pytest

from jaxattn import sweeps
from jaxattn.sweeps import axes, layout, points, results


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def _finish(workdir, test_accuracy, validation_accuracy=0.5, step=3):
    doc = {
        "test_accuracy": test_accuracy,
        "validation_accuracy": validation_accuracy,
        "checkpoint_step": step - 1,
        "last_checkpoint": {"step": step},
        "num_train_steps": step,
        "wall_time_s": 12.3,
    }
    _write(os.path.join(workdir, "results.json"), json.dumps(doc))


# ----------------------------------------------------------------------------- status
def test_status_from_files(tmp_path):
    workdir = str(tmp_path / "p")
    assert layout.status(workdir) == layout.PENDING
    os.makedirs(workdir)
    assert layout.status(workdir) == layout.INTERRUPTED
    _write(os.path.join(workdir, "results.json"), '{"test_acc')  # cut by a kill mid-write
    assert layout.status(workdir) == layout.INTERRUPTED
    layout.record_failure(workdir, 2, "error: boom")
    assert layout.status(workdir) == layout.ERROR
    assert layout.failure(workdir)["error"] == "error: boom"
    layout.clear_failure(workdir)
    assert layout.status(workdir) == layout.INTERRUPTED
    _finish(workdir, 0.3)
    assert layout.status(workdir) == layout.DONE


def test_last_line_reads_from_an_offset(tmp_path):
    log = str(tmp_path / "log.txt")
    _write(log, "old run\nerror: old\n")
    offset = os.path.getsize(log)
    with open(log, "a") as f:
        f.write("step 1\n\nerror: new one\n\n")
    assert layout.last_line(log, offset) == "error: new one"
    assert layout.last_line(str(tmp_path / "missing")) == ""
    with open(log, "a") as f:
        f.truncate(offset)
    assert layout.last_line(log, offset) == ""


# ----------------------------------------------------------------------------- sweep.json
def _doc(seeds, config="configs/x.py:smoke", shared=None):
    pts = points.make_points(axes.axis("train.seed", seeds))
    return layout.sweep_doc(config, shared or {}, pts)


def test_claim_accepts_the_same_or_an_extended_sweep_only(tmp_path):
    root = str(tmp_path / "root")
    assert layout.claim(root, _doc([0, 1])) == []
    assert layout.claim(root, _doc([0, 1])) == []
    assert layout.claim(root, _doc([0, 1, 2]), write=False) == ["seed=2"]
    assert len(layout.read_sweep(root)["points"]) == 2  # write=False only checks
    assert layout.claim(root, _doc([0, 1, 2])) == ["seed=2"]
    assert len(layout.read_sweep(root)["points"]) == 3
    with pytest.raises(sweeps.SweepError, match=r"different sweep \(its points missing"):
        layout.claim(root, _doc([0, 1]))
    with pytest.raises(sweeps.SweepError, match=r"different sweep \(config"):
        layout.claim(root, _doc([0, 1, 2], config="configs/y.py"))
    with pytest.raises(sweeps.SweepError, match=r"different sweep \(shared overrides"):
        layout.claim(root, _doc([0, 1, 2], shared={"data.data_dir": "/d"}))
    changed = layout.sweep_doc(
        "configs/x.py:smoke", {}, [points.Point("seed=0", {"train.seed": 5})]
    )
    with pytest.raises(sweeps.SweepError, match="changed"):
        layout.claim(root, changed)


def test_lock_refuses_a_second_runner_and_dies_with_its_holder(tmp_path):
    root = str(tmp_path / "root")
    with layout.locked(root):
        assert layout.is_locked(root)
        with pytest.raises(sweeps.SweepError, match=f"pid {os.getpid()}"), layout.locked(root):
            pass
    assert not layout.is_locked(root)
    # A holder killed with SIGKILL leaves no stale lock.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from jaxattn.sweeps import layout\n"
            "with layout.locked(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)",
            root,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    assert layout.is_locked(root)
    holder.kill()
    holder.wait()
    assert not layout.is_locked(root)


# ----------------------------------------------------------------------------- results
def test_table_rows_and_mean_std_over_seeds(tmp_path):
    root = str(tmp_path)
    sweep = axes.product(
        axes.axis("model.pooling", ["mean", "cls"]), axes.axis("train.seed", [0, 1, 2])
    )
    sweep.append({"model.pooling": "sum"})  # no seed: in no group
    pts = points.make_points(sweep)
    doc = layout.sweep_doc("configs/x.py", {"data.data_dir": "/d"}, pts)
    accs = {"mean": [0.30, 0.34, 0.35], "cls": [0.36, 0.37]}
    for p in pts:
        pooling, seed = p.overrides["model.pooling"], p.overrides.get("train.seed")
        if seed is not None and seed < len(accs[pooling]):
            _finish(layout.point_dir(root, p.name), accs[pooling][seed], 0.1 * (seed + 1))
    failed = layout.point_dir(root, "pooling=cls,seed=2")
    os.makedirs(failed)
    layout.record_failure(failed, 2, "error: loss is NaN | lower the lr")

    out = results.collect(root, doc)
    rows = {r["name"]: r for r in out["points"]}
    assert rows["pooling=mean,seed=1"]["status"] == layout.DONE
    assert rows["pooling=mean,seed=1"]["test_accuracy"] == 0.34
    assert rows["pooling=mean,seed=1"]["steps"] == 3
    assert rows["pooling=cls,seed=2"]["status"] == layout.ERROR
    assert rows["pooling=cls,seed=2"]["exit_code"] == 2
    assert rows["pooling=sum"]["status"] == layout.PENDING

    groups = {g["overrides"]["model.pooling"]: g for g in out["seed_groups"]}
    assert set(groups) == {"mean", "cls"}
    mean = groups["mean"]
    assert mean["seeds"] == [0, 1, 2] and mean["num_done"] == 3
    assert mean["test_accuracy_mean"] == pytest.approx(statistics.fmean(accs["mean"]))
    assert mean["test_accuracy_std"] == pytest.approx(statistics.stdev(accs["mean"]))
    assert mean["test_accuracy_std"] == pytest.approx(0.026458, abs=1e-6)  # sample std (n-1)
    assert groups["cls"]["seeds"] == [0, 1] and groups["cls"]["num_points"] == 3

    json_path, md_path = results.write(root, out)
    assert json.load(open(json_path))["seed_groups"][0]["seeds"] == [0, 1, 2]
    md = open(md_path).read()
    assert "| pooling=mean,seed=0 | done | mean | 0 | 0.3000 | 0.1000 | 3 | 12 s |" in md
    assert "| pooling=mean | 0, 1, 2 | 3/3 | 0.3300 ± 0.0265 | 0.2000 ± 0.1000 |" in md
    assert "| pooling=cls | 0, 1 | 2/3 | 0.3650 ± 0.0071 |" in md
    assert "error (exit 2): error: loss is NaN \\| lower the lr" in md
    assert "| pooling=sum | pending | sum |  | - |" in md


def test_table_shows_the_runs_selection_metric(tmp_path):
    """A language-model sweep selects on bits/byte: the table shows it, not accuracy."""
    root = str(tmp_path)
    pts = points.make_points(axes.axis("train.seed", [0, 1]))
    doc = layout.sweep_doc("configs/lm_softmax.py", {}, pts)
    for p, bpb in zip(pts, [2.5, 2.7], strict=True):
        results_doc = {
            "best_metric": "bits_per_byte",
            "test": {"bits_per_byte": bpb, "accuracy": 0.5, "loss": 1.0},
            "validation": {"bits_per_byte": bpb - 0.1, "accuracy": 0.5, "loss": 1.0},
            "test_accuracy": 0.5,
            "last_checkpoint": {"step": 3},
            "wall_time_s": 5.0,
        }
        _write(
            os.path.join(layout.point_dir(root, p.name), "results.json"), json.dumps(results_doc)
        )
    out = results.collect(root, doc)
    assert [r["test"] for r in out["points"]] == [2.5, 2.7]
    md = results.markdown(out)
    assert "| test bits/byte | val bits/byte |" in md
    assert "| seed=0 | done | 0 | 2.5000 | 2.4000 | 3 | 5 s |" in md
    assert "0.5000" not in md


def test_mean_std_edge_cases():
    assert results.mean_std([]) == (None, None)
    assert results.mean_std([0.5]) == (0.5, None)
    assert results.mean_std([0.2, 0.4]) == (pytest.approx(0.3), pytest.approx(0.141421356))
