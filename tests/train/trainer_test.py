"""End-to-end trainer tests on the smoke preset (tiny generated ListOps, a few steps)."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from configs import lra_nystrom, lra_softmax
from jaxattn import errors
from jaxattn.train import checkpoint, trainer


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def smoke_config(data_dir, module=lra_nystrom, **train):
    config = module.get_config("smoke")
    config.data.data_dir = data_dir
    config.train.update(train)
    return config


def read_params(workdir, step):
    manager = ocp.CheckpointManager(os.path.join(workdir, "checkpoints"))
    restored = manager.restore(step, args=ocp.args.StandardRestore())
    return restored["params"]


def test_smoke_run_writes_every_artifact(tmp_path, data_dir):
    workdir = str(tmp_path / "run")
    results = trainer.train_and_evaluate(smoke_config(data_dir), workdir)
    names = set(os.listdir(workdir))
    assert {
        "config.json",
        "metrics.jsonl",
        "results.json",
        "checkpoints",
        "checkpoints_best",
        "tensorboard",
    } <= names
    assert os.listdir(os.path.join(workdir, "tensorboard")), "no TensorBoard event file"
    saved = json.load(open(os.path.join(workdir, "results.json")))
    assert saved == json.loads(json.dumps(results))
    assert 0.0 <= saved["test_accuracy"] <= 1.0
    assert saved["checkpoint"] == "best_validation" and saved["checkpoint_step"] in (2, 3)
    assert sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints"))) == [2, 3]
    rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    train_rows = [r for r in rows if r["split"] == "train"]
    assert [r["step"] for r in train_rows] == [1, 2, 3]
    assert {"loss", "accuracy", "learning_rate", "steps_per_s", "grad_norm"} <= set(train_rows[0])
    assert any(r["split"] == "validation" for r in rows) and any(r["split"] == "test" for r in rows)
    assert (
        json.load(open(os.path.join(workdir, "config.json")))["model"]["attention"]["kind"]
        == "nystrom"
    )


class _Crash(Exception):
    pass


def test_resume_after_crash_matches_uninterrupted_run(tmp_path, data_dir, monkeypatch):
    """A run that dies after its step-2 checkpoint and is restarted ends with the same parameters."""
    config = smoke_config(
        data_dir, num_train_steps=4, eval_every_steps=100, checkpoint_every_steps=2
    )
    straight = str(tmp_path / "straight")
    trainer.train_and_evaluate(config, straight)

    crashed = str(tmp_path / "crashed")
    original = checkpoint.save_state

    def save_then_die(manager, step, state):
        original(manager, step, state)
        if step == 2:
            manager.wait_until_finished()
            raise _Crash()

    monkeypatch.setattr(checkpoint, "save_state", save_then_die)
    with pytest.raises(_Crash):
        trainer.train_and_evaluate(config, crashed)
    monkeypatch.setattr(checkpoint, "save_state", original)
    assert not os.path.exists(os.path.join(crashed, "results.json"))
    trainer.train_and_evaluate(config, crashed)

    a, b = read_params(straight, 4), read_params(crashed, 4)
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)
    rows = [json.loads(line) for line in open(os.path.join(crashed, "metrics.jsonl"))]
    assert [r["step"] for r in rows if r["split"] == "train"][-2:] == [3, 4]


def test_non_finite_loss_raises_and_keeps_checkpoints(tmp_path, data_dir):
    config = smoke_config(data_dir, num_train_steps=6, checkpoint_every_steps=1, log_every_steps=3)
    config.optim.update(schedule="constant", learning_rate=1e38)
    workdir = str(tmp_path / "nan")
    with pytest.raises(errors.NonFiniteLossError, match="between steps"):
        trainer.train_and_evaluate(config, workdir)
    assert os.listdir(os.path.join(workdir, "checkpoints")), (
        "checkpoints written before the NaN were lost"
    )


def test_corrupt_checkpoint_gives_checkpoint_error_and_deletes_nothing(tmp_path, data_dir):
    config = smoke_config(data_dir, num_train_steps=2, checkpoint_every_steps=2)
    workdir = str(tmp_path / "corrupt")
    trainer.train_and_evaluate(config, workdir)
    step_dir = os.path.join(workdir, "checkpoints", "2")
    for root, _, files in os.walk(step_dir):
        for name in files:
            with open(os.path.join(root, name), "wb") as f:
                f.write(b"garbage")
    before = sorted(os.listdir(step_dir))
    with pytest.raises(errors.CheckpointError, match="nothing was deleted"):
        trainer.train_and_evaluate(config, workdir)
    assert sorted(os.listdir(step_dir)) == before


def test_softmax_smoke_trains(tmp_path, data_dir):
    results = trainer.train_and_evaluate(
        smoke_config(data_dir, module=lra_softmax), str(tmp_path / "sm")
    )
    assert results["attention"] == "softmax"


def test_time_budget_stops_early_evaluates_saves_and_resumes(tmp_path, data_dir):
    workdir = str(tmp_path / "run")
    config = smoke_config(data_dir, num_train_steps=50, time_budget_s=0.0)
    results = trainer.train_and_evaluate(config, workdir)
    # A budget of 0 s is used up by the first step: it is the last, validated and saved.
    assert results["steps_trained"] == 1 and results["num_train_steps"] == 50
    assert results["checkpoint_step"] == 1
    assert os.listdir(os.path.join(workdir, "checkpoints")) == ["1"]
    config.train.time_budget_s = None
    config.train.num_train_steps = 3
    resumed = trainer.train_and_evaluate(config, workdir)  # a rerun continues from step 1
    assert resumed["steps_trained"] == 3


def test_unknown_best_metric_is_one_clear_error(tmp_path, data_dir):
    config = smoke_config(data_dir, best_metric="bits_per_byte")
    with pytest.raises(errors.ConfigError, match="best_metric 'bits_per_byte'.*accuracy"):
        trainer.train_and_evaluate(config, str(tmp_path / "run"))
