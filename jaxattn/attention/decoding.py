"""Incremental decoding for the exact kinds: a key/value cache (`core.Decoder`).

The cache holds the (already position-encoded) keys and values of every position so far,
[B, max_length, K, H] each; step `index` writes the new token's key and value at row `index` and
runs softmax attention of the one query over rows 0..index. That is the causal full pass's row
`index` exactly (the same math over the same keys), at O(index·H) per step instead of
recomputing the prefix. Used by softmax, softmax_xla and softmax_chunked, whose block sizes or
XLA implementation do not matter for one query row.

Kinds with other decoding states keep their decoders beside their math: the rolling window of
`local` (local.py), the recurrent state of `linear` and causal `performer` (linear.py,
performer.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxattn.attention import core, softmax


def kv_cache_init(
    hparams: Mapping[str, Any],
    *,
    batch: int,
    max_length: int,
    num_heads: int,
    num_kv_heads: int,
    head_dim: int,
    dtype: Any,
) -> dict[str, jax.Array]:
    """Empty key and value caches [B, max_length, K, H]."""
    del hparams, num_heads
    shape = (batch, max_length, num_kv_heads, head_dim)
    return {"key": jnp.zeros(shape, dtype), "value": jnp.zeros(shape, dtype)}


def kv_cache_step(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    cache: Mapping[str, jax.Array],
    index: jax.Array,
    *,
    scale: float | None = None,
    **unused: Any,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """query [B, 1, N, H], key/value [B, 1, K, H] at position `index` -> ([B, 1, N, H], cache).

    `unused`: the kind's hyper-parameters (block sizes, implementation), which do not change
    the math of one query row."""
    del unused
    keys = jax.lax.dynamic_update_slice_in_dim(
        cache["key"], key.astype(cache["key"].dtype), index, axis=1
    )
    values = jax.lax.dynamic_update_slice_in_dim(
        cache["value"], value.astype(cache["value"].dtype), index, axis=1
    )
    B, S = keys.shape[:2]
    seen = jnp.broadcast_to(jnp.arange(S) <= index, (B, S))  # rows 0..index
    out = softmax.softmax_attention(query, keys, values, kv_mask=seen, scale=scale)
    return out, {"key": keys, "value": values}


KV_CACHE = core.Decoder(init=kv_cache_init, step=kv_cache_step)
