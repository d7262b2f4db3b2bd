"""Exact scaled dot-product attention: the reference every other variant is tested against."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxattn.attention import core


def softmax_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    *,
    is_causal: bool = False,
    kv_mask: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    bias: jax.Array | None = None,
    scale: float | None = None,
    dropout_rate: float = 0.0,
    dropout_rng: jax.Array | None = None,
) -> jax.Array:
    """softmax(Q Kᵀ · scale + bias + mask) V (Vaswani et al. 2017, arXiv:1706.03762).

    Args:
      query: [B, T, N, H].
      key, value: [B, S, K, H]; K divides N (GQA/MQA when K < N). T != S is cross-attention.
      is_causal: query t sees keys s <= t (top-left aligned).
      kv_mask: [B, S] bool, True = real key.
      q_segment_ids, kv_segment_ids: [B, T] / [B, S] int, packed sequences attend within their
        segment only; kv ids default to the query ids.
      bias: additive logits bias broadcastable to [B, N, T, S] (relative positions, ALiBi).
      scale: logits scale, default 1/sqrt(H).
      dropout_rate: attention-probability dropout (a Python float in [0, 1)); kept
        probabilities are scaled by 1 / (1 - dropout_rate).
      dropout_rng: PRNG key of the dropout mask, required when dropout_rate > 0. The keep mask is
        `core.dropout_keep(dropout_rng, dropout_rate, (B, N, T, S))` (`dropout_mask`).

    Returns:
      [B, T, N, H] in value.dtype. A query row whose keys are all masked returns zeros.

    Complexity: O(B·N·T·S·H) time, O(B·N·T·S) memory. Supports every mask, bias, GQA, cross.
    """
    B, T, S, N, K, H = core.check_inputs(
        "softmax",
        query,
        key,
        value,
        kv_mask=kv_mask,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
    )
    q_segment_ids, kv_segment_ids = core.resolve_segment_ids(
        "softmax", q_segment_ids, kv_segment_ids, T, S
    )
    use_dropout = core.check_dropout("softmax", dropout_rate, dropout_rng)
    G = N // K
    scale = core.default_scale(scale, H)

    q = query.reshape(B, T, K, G, H)
    logits = jnp.einsum("BTKGH,BSKH->BKGTS", q, key, preferred_element_type=jnp.float32) * scale
    if bias is not None:
        logits = logits + _group_heads(jnp.asarray(bias, jnp.float32), K, G)
    keep = core.make_keep_mask(
        T,
        S,
        is_causal=is_causal,
        kv_mask=kv_mask,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
    )
    if keep is not None:
        keep = keep[:, :, None]  # [B|1, 1, 1, T, S]
        logits = jnp.where(keep, logits, core.MASK_VALUE)
    probs = jax.nn.softmax(logits, axis=-1)
    if keep is not None:
        probs = jnp.where(
            keep, probs, 0.0
        )  # a fully masked row becomes zeros, not a uniform average
    if use_dropout:
        kept = dropout_mask(dropout_rng, dropout_rate, B, N, T, S).reshape(B, K, G, T, S)
        probs = core.apply_dropout(probs, kept, dropout_rate)
    out = jnp.einsum(
        "BKGTS,BSKH->BTKGH", probs.astype(value.dtype), value, preferred_element_type=jnp.float32
    )
    return out.reshape(B, T, N, H).astype(value.dtype)


def dropout_mask(rng: jax.Array, dropout_rate: float, B: int, N: int, T: int, S: int) -> jax.Array:
    """The keep mask [B, N, T, S] `softmax_attention` draws (query head n = k·G + g)."""
    return core.dropout_keep(rng, dropout_rate, (B, N, T, S))


def _group_heads(bias: jax.Array, K: int, G: int) -> jax.Array:
    """[B|1, N|1, T|1, S] -> [B|1, K|1, G|1, T|1, S] so it adds to grouped logits."""
    while bias.ndim < 4:
        bias = bias[None]
    b, n, t, s = bias.shape
    if n == 1:
        return bias[:, :, None]
    return bias.reshape(b, K, G, t, s)
