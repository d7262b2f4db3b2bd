"""Dynamic Mask Attention (DMA): a learned, query-agnostic key importance picks the top-w keys.

"Trainable Dynamic Mask Sparse Attention" (2025), https://arxiv.org/abs/2508.02124. Per kv head
κ, an SSM-style gate scores every key from that head's values:

    δ_jκ = exp(A_κ · softplus(v_jκ · W_Δ,κ))                            W_Δ [K, H], A [K]
    logits_ij = scale · q_i·k_j + δ_j + bias_ij                           (δ shared by G heads)
    keep_ij = allowed_ij ∧ (rank of δ_j among query i's allowed keys < w) (ties: lower index)
    out_i = Σ_j softmax_j(logits_ij | keep_ij) v_j

The importance is the same for every query, so the per-row top-w is a global ranking of δ
restricted to the keys row i may see: causal rows keep the w most important past keys, padded
and other-segment keys are never kept. Every mask is exact (causal, padding, packing, bias, GQA,
cross, dropout on the probabilities); a row with no allowed key is 0.

This is the dense reference of the method: it forms the T×S logits and masks the dropped keys
(O(T·S·H) time, plus an O(T·S·log S) sort per row when w < S); the paper's sparse kernel, which
skips the masked blocks (O(T·w·H)), is not implemented here. `keep_window_size` defaults to the
paper's 2048. The authors' Doge code, as recalled, feeds all kv heads' values to every gate (a Linear
[K·H -> K]); here each kv head's gate reads its own values (the catalog's per-head form), which
keeps GQA equal to MHA with repeated kv heads. A is initialised to 0 (δ = 1 at the start, as
recalled from Doge), W_Δ normal(0.02); this module was not run beside that code (not available
here).
With A = 0, δ = 1 is a constant bias and w >= S keeps every allowed key: plain softmax.

Complexity: O(T·S·H + T·S·log S) time, O(T·S) memory (dense reference).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxattn.attention import core, softmax

KIND = "dma"


def dma_attention(
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
    keep_window_size: int = 2048,
    delta_proj: jax.Array | None = None,
    delta_a: jax.Array | None = None,
) -> jax.Array:
    """Softmax over each row's top-w keys by the value-derived importance δ (added as a bias).

    Args:
      query: [B, T, N, H].
      key, value: [B, S, K, H]; K divides N (GQA/MQA). T != S is cross-attention.
      is_causal, kv_mask, q_segment_ids, kv_segment_ids: the usual masks; the top-w is taken
        among each row's allowed keys.
      bias: additive logits bias broadcastable to [B, N, T, S] (does not affect the selection).
      scale: logits scale, default 1/sqrt(H).
      dropout_rate, dropout_rng: probability dropout, keep mask
        `core.dropout_keep(dropout_rng, dropout_rate, (B, K, G, T, S))`.
      keep_window_size: w, the keys kept per query row (>= S keeps every allowed key).
      delta_proj: W_Δ [K, H]; delta_a: A [K] (param_specs). None: δ = 1 (A = 0).

    Returns:
      [B, T, N, H] in value.dtype; rows without an allowed key are 0.
    """
    B, T, S, N, K, H = core.check_inputs(
        KIND,
        query,
        key,
        value,
        kv_mask=kv_mask,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
    )
    q_segment_ids, kv_segment_ids = core.resolve_segment_ids(
        KIND, q_segment_ids, kv_segment_ids, T, S
    )
    core.check_dropout(KIND, dropout_rate, dropout_rng)
    if keep_window_size < 1:
        raise ValueError(f"{KIND}: keep_window_size must be >= 1; got {keep_window_size}")
    G = N // K
    f32 = jnp.float32
    # Padded tokens' values are zeroed first: their δ is never used, and garbage there could
    # overflow exp and turn the masked branch's gradient into NaN.
    gate_values = value if kv_mask is None else jnp.where(kv_mask[:, :, None, None], value, 0)
    delta = key_importance(gate_values, delta_proj, delta_a)  # [B, K, S]

    q = query.reshape(B, T, K, G, H)
    logits = jnp.einsum("BTKGH,BSKH->BKGTS", q, key, preferred_element_type=f32)
    logits = logits * core.default_scale(scale, H) + delta[:, :, None, None, :]
    if bias is not None:
        logits = logits + softmax._group_heads(jnp.asarray(bias, f32), K, G)
    allowed = core.make_keep_mask(
        T,
        S,
        is_causal=is_causal,
        kv_mask=kv_mask,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
    )
    allowed = jnp.ones((1, 1, T, S), bool) if allowed is None else allowed  # [B|1, 1, T, S]
    keep = top_w_mask(delta, allowed, keep_window_size)[:, :, None]  # [B, K, 1, T, S]
    logits = jnp.where(keep, logits, core.MASK_VALUE)
    probs = jnp.where(keep, jax.nn.softmax(logits, axis=-1), 0.0)  # a row with no key is 0
    probs = core.dropout(probs, dropout_rate, dropout_rng).astype(value.dtype)
    out = jnp.einsum("BKGTS,BSKH->BTKGH", probs, value, preferred_element_type=f32)
    return out.reshape(B, T, N, H).astype(value.dtype)


def key_importance(
    value: jax.Array, delta_proj: jax.Array | None, delta_a: jax.Array | None
) -> jax.Array:
    """δ [B, K, S] float32: exp(A_κ · softplus(v_jκ · W_Δ,κ)) per kv head κ."""
    B, S, K, H = value.shape
    if delta_proj is None or delta_a is None:
        return jnp.ones((B, K, S), jnp.float32)
    if delta_proj.shape != (K, H) or delta_a.shape != (K,):
        raise ValueError(
            f"{KIND}: delta_proj must be {(K, H)} and delta_a {(K,)}; got "
            f"{delta_proj.shape}, {delta_a.shape}"
        )
    # float32 (XLA:CPU has no bf16 x bf16 -> f32 dot for every contraction; this one is O(S·K·H)).
    dt = jnp.einsum("BSKH,KH->BKS", value.astype(jnp.float32), delta_proj.astype(jnp.float32))
    return jnp.exp(delta_a.astype(jnp.float32)[None, :, None] * jax.nn.softplus(dt))


def top_w_mask(delta: jax.Array, allowed: jax.Array, w: int) -> jax.Array:
    """keep [B, K, T, S]: allowed keys whose δ ranks < w among the row's allowed keys.

    delta [B, K, S]; allowed [B|1, 1, T, S]. Ties go to the lower key index (a stable sort), so
    exactly min(w, allowed count) keys are kept per row.
    """
    B, K, S = delta.shape
    allowed = jnp.broadcast_to(allowed, (allowed.shape[0], K) + allowed.shape[2:])
    if w >= S:
        return jnp.broadcast_to(allowed, (B, K) + allowed.shape[2:])
    # Rank by δ descending among allowed keys (disallowed keys sort last); no gradient.
    score = jnp.where(allowed, jax.lax.stop_gradient(delta)[:, :, None, :], -jnp.inf)
    order = jnp.argsort(-score, axis=-1, stable=True)  # [B, K, T, S]: key at each rank
    rank = jnp.argsort(order, axis=-1, stable=True)  # rank of each key
    return jnp.logical_and(allowed, rank < w)


def param_specs(
    hparams: Mapping[str, Any], *, num_heads: int, num_kv_heads: int, head_dim: int, kv_length: int
) -> dict[str, core.ParamSpec]:
    """W_Δ [K, H] normal(0.02), A [K] zeros."""
    del hparams, num_heads, kv_length
    K, H = num_kv_heads, head_dim
    return {
        "delta_proj": core.ParamSpec((K, H), jax.nn.initializers.normal(0.02), ("heads", "kv")),
        "delta_a": core.ParamSpec((K,), jax.nn.initializers.zeros, ("heads",)),
    }
