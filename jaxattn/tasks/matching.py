"""Two-document classification (LRA Retrieval): does document 1 cite document 2?

The batch holds both documents (`inputs`, `inputs2`, from the records' `tokens`, `tokens2`) and
the model is a two-tower matcher (`models.classifier.DualEncoderClassifier`). Loss and metrics
are classification's: cross-entropy and accuracy as (sum, weight) pairs.
"""

from __future__ import annotations

import jax

from jaxattn.tasks import classification

loss = classification.loss
metrics = classification.metrics
make_row = classification.make_row
derived_metrics = classification.derived_metrics
baselines = classification.baselines
HIGHER_IS_BETTER = classification.HIGHER_IS_BETTER


def model_inputs(batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    return {"tokens": batch["inputs"], "tokens2": batch["inputs2"]}
