"""In-context regression: predict the query's y from the prompt; squared error as (sum, weight).

Rows: {'points': float32 [N + 1, d + 1] (the prompt, query last with y = 0), 'targets': float32
[] (y_q), 'weights': float32 []}. Metric `mse` (mean squared error of y_q) and `loss` (the same).
Baselines in results.json: ridge (Bayes-optimal), best one-step GD and the zero predictor on the
test prompts (`data/icl_regression.reference_errors`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxattn.data import icl_regression

Batch = dict[str, jax.Array]

HIGHER_IS_BETTER = {"mse": False, "loss": False}


def make_row(example: Mapping[str, Any], seq_len: int, weight: float = 1.0) -> dict[str, Any]:
    del seq_len  # the prompt's length is the data's num_points + 1
    return {
        "points": np.asarray(example["points"], np.float32),
        "targets": np.float32(example["target"]),
        "weights": np.float32(weight),
    }


def model_inputs(batch: Batch) -> dict[str, jax.Array]:
    return {"points": batch["points"]}


def loss(predictions: jax.Array, batch: Batch) -> tuple[jax.Array, jax.Array]:
    """(sum of weight * (ŷ - y)², sum of weights); predictions [B]."""
    w = batch["weights"].astype(jnp.float32)
    return (jnp.square(predictions.astype(jnp.float32) - batch["targets"]) * w).sum(), w.sum()


def metrics(predictions: jax.Array, batch: Batch) -> dict[str, tuple[jax.Array, jax.Array]]:
    pair = loss(predictions, batch)
    return {"loss": pair, "mse": pair}


def derived_metrics(averages: Mapping[str, float]) -> dict[str, float]:
    del averages
    return {}


def baselines(source: Any, seq_len: int) -> dict[str, float]:
    del seq_len
    return {f"test_{k}": v for k, v in icl_regression.reference_errors(source).items()}
