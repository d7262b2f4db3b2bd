"""Multivariate long-term forecasting: the next P steps of every channel from the last L.

A record is one window of a scaled series (`data/windows.py`); its row is
  inputs   float32 [L, C]  the look-back window (normalized by the train split's scaler)
  targets  float32 [P, C]  the next P steps (normalized)
  weights  float32 []      1 for a real window, 0 for the eval pipeline's padding rows.
The model is called with `inputs` [B, L, C] and returns predictions [B, P, C].

Metrics, on the normalized data as the benchmark reports them (sums and weights over the P * C
predicted values, so padded eval batches average exactly): `mse` (also the loss) and `mae`.
Baselines in results.json, on the test windows: `test_naive_*` repeats the last observed value
for all P steps, `test_zero_*` predicts 0 (the train split's mean).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Batch = dict[str, jax.Array]

HIGHER_IS_BETTER = {"loss": False, "mse": False, "mae": False}


def make_row(example: Mapping[str, Any], seq_len: int, weight: float = 1.0) -> dict[str, Any]:
    """A window {'inputs' [L, C], 'targets' [P, C]} -> one row (module docstring)."""
    inputs = np.asarray(example["inputs"], np.float32)
    if inputs.shape[0] != seq_len:
        raise ValueError(f"window of {inputs.shape[0]} steps; the look-back is {seq_len}")
    return {
        "inputs": inputs,
        "targets": np.asarray(example["targets"], np.float32),
        "weights": np.float32(weight),
    }


def model_inputs(batch: Batch) -> dict[str, jax.Array]:
    return {"inputs": batch["inputs"]}


def _weighted(errors: jax.Array, batch: Batch) -> tuple[jax.Array, jax.Array]:
    """(sum over rows of weight * sum of errors [P, C], sum of weight * P * C)."""
    w = batch["weights"].astype(jnp.float32)  # [B]
    per_row = errors.reshape(errors.shape[0], -1)  # [B, P * C]
    return (per_row.sum(axis=1) * w).sum(), w.sum() * per_row.shape[1]


def loss(predictions: jax.Array, batch: Batch) -> tuple[jax.Array, jax.Array]:
    """(sum of weighted squared errors, weight); predictions [B, P, C]: MSE over all P * C."""
    diff = predictions.astype(jnp.float32) - batch["targets"].astype(jnp.float32)
    return _weighted(jnp.square(diff), batch)


def metrics(predictions: jax.Array, batch: Batch) -> dict[str, tuple[jax.Array, jax.Array]]:
    diff = predictions.astype(jnp.float32) - batch["targets"].astype(jnp.float32)
    mse = _weighted(jnp.square(diff), batch)
    return {"loss": mse, "mse": mse, "mae": _weighted(jnp.abs(diff), batch)}


def derived_metrics(averages: Mapping[str, float]) -> dict[str, float]:
    del averages
    return {}


def baselines(source: Any, seq_len: int) -> dict[str, float]:
    """Test MSE / MAE of the naive forecast (the last observed value, repeated) and of the zero
    forecast (the train mean), over every test window (float64 sums)."""
    sums = {"naive_mse": 0.0, "naive_mae": 0.0, "zero_mse": 0.0, "zero_mae": 0.0}
    count = 0
    for i in range(len(source)):
        row = make_row(source[i], seq_len)
        targets = row["targets"].astype(np.float64)  # [P, C]
        naive = targets - row["inputs"][-1].astype(np.float64)  # broadcast over P
        sums["naive_mse"] += float(np.square(naive).sum())
        sums["naive_mae"] += float(np.abs(naive).sum())
        sums["zero_mse"] += float(np.square(targets).sum())
        sums["zero_mae"] += float(np.abs(targets).sum())
        count += targets.size
    if count == 0:
        return {}
    return {f"test_{name}": value / count for name, value in sums.items()}
