"""Sequence classification: inputs -> model kwargs, cross-entropy and accuracy as (sum, weight).

Every metric is a (sum, weight) pair: summing pairs across batches and dividing once gives the
exact average even when the last eval batch is padded with weight-0 rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxattn.data import pipeline

Batch = dict[str, jax.Array]

# Which way is better, for checkpoint selection (`train.best_metric`).
HIGHER_IS_BETTER = {"accuracy": True, "loss": False}

# Record {'tokens', 'label'} -> row {'inputs', 'targets', 'weights'}.
make_row = pipeline.classification_row


def model_inputs(batch: Batch) -> dict[str, jax.Array]:
    return {"tokens": batch["inputs"]}


def _weights(batch: Batch) -> jax.Array:
    return batch.get("weights", jnp.ones(batch["targets"].shape, jnp.float32)).astype(jnp.float32)


def loss(logits: jax.Array, batch: Batch) -> tuple[jax.Array, jax.Array]:
    """Softmax cross-entropy: (sum over rows of weight * CE, sum of weights). logits [B, C]."""
    ce = optax.softmax_cross_entropy_with_integer_labels(
        logits.astype(jnp.float32), batch["targets"]
    )
    w = _weights(batch)
    return (ce * w).sum(), w.sum()


def metrics(logits: jax.Array, batch: Batch) -> dict[str, tuple[jax.Array, jax.Array]]:
    w = _weights(batch)
    correct = (jnp.argmax(logits, axis=-1) == batch["targets"]).astype(jnp.float32)
    return {"loss": loss(logits, batch), "accuracy": ((correct * w).sum(), w.sum())}


def derived_metrics(averages: Mapping[str, float]) -> dict[str, float]:
    del averages
    return {}


def baselines(source: Any, seq_len: int) -> dict[str, float]:
    """The accuracy of always predicting the most frequent label of the test split."""
    del seq_len
    labels = np.asarray([int(source[i]["label"]) for i in range(len(source))])
    return {"test_majority_class_rate": float(np.bincount(labels).max() / max(len(labels), 1))}
