"""The train state: a plain pytree (no callables), so jit shardings and orbax handle it directly."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: number of optimizer updates applied
    params: Any
    opt_state: Any
    # Non-gradient model collections (e.g. 'attention_state': routing centroids); {} for most models.
    model_state: Any = flax.struct.field(default_factory=dict)
