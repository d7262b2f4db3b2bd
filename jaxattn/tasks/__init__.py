"""Tasks: per-task loss, metrics and batch adaptor, looked up by `config.task.name`.

A task module holds: `make_row(record, seq_len, weight=1.0)` (a dataset record -> one batch row),
`model_inputs(batch)`, `loss(logits, batch)` and `metrics(logits, batch)` as (sum, weight) pairs,
`derived_metrics(averages)` (functions of averages, e.g. perplexity), `baselines(test_source,
seq_len)` (reference numbers for results.json) and `HIGHER_IS_BETTER` {metric: bool}.
"""

from __future__ import annotations

import types

from jaxattn import errors
from jaxattn.tasks import (
    classification,
    forecasting,
    icl_regression,
    image_classification,
    matching,
    next_token,
)

TASKS: dict[str, types.ModuleType] = {
    "classification": classification,
    "matching": matching,
    "next_token": next_token,
    "icl_regression": icl_regression,
    "forecasting": forecasting,
    "image_classification": image_classification,
}


def get_task(name: str) -> types.ModuleType:
    if name not in TASKS:
        raise errors.ConfigError(
            f"unknown task '{name}'; available tasks: {', '.join(sorted(TASKS))}"
        )
    return TASKS[name]
