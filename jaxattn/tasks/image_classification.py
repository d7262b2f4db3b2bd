"""Image classification: {'image', 'label'} records -> rows, cross-entropy and accuracy.

Images are not token sequences, so rows keep the image as it is (uint8 [H, W, C]; the model
normalises it) and `seq_len` is unused. Loss and metrics are sequence classification's
(tasks/classification.py). A model with several heads trained on the same labels (the ViT's
distillation token) returns logits [B, heads, C] in training: the loss is the mean of the heads'
losses and predictions come from the mean of their logits, as at inference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from jaxattn.tasks import classification

Batch = dict[str, jax.Array]

HIGHER_IS_BETTER = classification.HIGHER_IS_BETTER
derived_metrics = classification.derived_metrics
baselines = classification.baselines


def make_row(record: Mapping[str, Any], seq_len: Any = None, weight: float = 1.0) -> dict[str, Any]:
    """{'image': uint8 [H, W, C], 'label'} -> {'inputs': the image, 'targets', 'weights'}."""
    del seq_len  # images are not cut to a length
    return {
        "inputs": np.asarray(record["image"]),
        "targets": np.int32(record["label"]),
        "weights": np.float32(weight),
    }


def model_inputs(batch: Batch) -> dict[str, jax.Array]:
    return {"images": batch["inputs"]}


def loss(logits: jax.Array, batch: Batch) -> tuple[jax.Array, jax.Array]:
    """Cross-entropy (sum, weight); logits [B, C], or [B, heads, C] (the mean of the heads')."""
    if logits.ndim == 2:
        return classification.loss(logits, batch)
    sums, weights = zip(
        *(classification.loss(logits[:, i], batch) for i in range(logits.shape[1])), strict=True
    )
    return sum(sums) / len(sums), weights[0]


def metrics(logits: jax.Array, batch: Batch) -> dict[str, tuple[jax.Array, jax.Array]]:
    """{'loss', 'accuracy'} as (sum, weight); accuracy of the mean logits over heads."""
    predicted = logits if logits.ndim == 2 else logits.mean(axis=1)
    return {**classification.metrics(predicted, batch), "loss": loss(logits, batch)}
