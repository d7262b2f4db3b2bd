"""Every LRA task's smoke preset trains end to end on small data the tests make: ListOps and
Pathfinder generated, Text / Image / Retrieval from tiny fake files in their real formats (the
dual encoder on Retrieval). Two kinds per task: exact softmax and Nyström."""

from __future__ import annotations

import math
import os

import pytest

from configs import lra_base, lra_nystrom, lra_softmax
from jaxattn.train import trainer
from tests.train import fake_lra_files

CONFIGS = {"softmax": lra_softmax, "nystrom": lra_nystrom}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tfds")
    for writer in fake_lra_files.WRITERS.values():
        writer(root / "downloads" / "manual")
    return str(root)


# ~20 s each (two compiles), so in the slow tier that .ci/run also runs.
@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(CONFIGS))
@pytest.mark.parametrize("task", [t for t in lra_base.TASKS if t != "listops"])
def test_task_smoke_preset_trains(task, kind, tmp_path, data_dir):
    config = CONFIGS[kind].get_config(f"task={task},smoke")
    config.data.data_dir = data_dir
    config.train.update(
        num_train_steps=2, eval_every_steps=2, checkpoint_every_steps=2, max_eval_batches=1
    )
    results = trainer.train_and_evaluate(config, str(tmp_path / "w"))
    assert results["dataset"].startswith(config.data.name)
    assert os.listdir(tmp_path / "w" / "checkpoints") == ["2"]
    assert math.isfinite(results["test_loss"]) and 0.0 <= results["test_accuracy"] <= 1.0
    if task == "retrieval":
        assert config.model.name == "dual_encoder_classifier"
