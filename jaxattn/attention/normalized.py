"""Normalized attention: scores standardised over the valid keys instead of a softmax.

Richter & Wattenhofer 2020, "Normalized Attention Without Probability Cage",
https://arxiv.org/abs/2005.09561. Per query head n, with s_ij = scale·q_i·k_j + bias_ij and
V_i the set of keys query i may attend to (causal ∩ padding ∩ same segment), |V_i| = c_i:

    μ_i = (1/c_i) Σ_{j∈V_i} s_ij,   σ_i² = (1/c_i) Σ_{j∈V_i} (s_ij − μ_i)²
    a_ij = g_n · (s_ij − μ_i) / sqrt(σ_i² + ε)     for j ∈ V_i, else 0       [B, N, T, S]
    out_i = Σ_j a_ij v_j                                                    [B, T, N, H]

The weights are not probabilities: they may be negative and sum to 0 over each row (no
convex-hull "probability cage"). g [N] is a learned gain per head (`param_specs`, init 1.0, as
the catalog's "each row has std |g|"); the paper also discusses an additive bias, which is
dropped here because with Σ_j a_ij = 0 a bias would only add b·Σ_j v_j, a plain mean-pooling term.

Masks: every mask is honoured exactly, because the statistics are taken over V_i only: causal
(prefix statistics over the allowed keys j ≤ i), key padding (statistics over real keys),
packing (statistics within the segment), an additive `bias` (added to s before standardising),
GQA, cross-attention. A row with no allowed key is 0; with one allowed key σ = 0 and a = 0.
No attention dropout (a rate > 0 raises): the weights are signed, O(1) per key and sum to 0, not
probabilities (whether the paper drops any was not checked here).

Not compared with a reference implementation: the paper's code was not found among public
repositories in the time given; `dense_reference` below is an independent formulation
(nan-masked mean/std per row on repeated kv heads) that the battery holds this function to.

Complexity: O(B·N·T·S·H) time, O(B·N·T·S) memory (dense, like `softmax`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxattn.attention import core, softmax

KIND = "normalized"
# Added to the row variance before the square root: keeps one-key rows (σ = 0) finite.
VAR_EPS = 1e-6


def normalized_attention(
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
    gain: jax.Array | None = None,
) -> jax.Array:
    """Attention with the scores standardised over each row's valid keys (no softmax).

    Args:
      query: [B, T, N, H].
      key, value: [B, S, K, H]; K divides N (GQA/MQA). T != S is cross-attention.
      is_causal: query t sees keys s <= t; the mean and std are over those keys only.
      kv_mask: [B, S] bool, True = real key (statistics over real keys only).
      q_segment_ids, kv_segment_ids: [B, T] / [B, S] packing ids (statistics within a segment).
      bias: additive score bias broadcastable to [B, N, T, S], added before standardising.
      scale: score scale, default 1/sqrt(H) (irrelevant up to ε: standardising removes it).
      dropout_rate, dropout_rng: a rate > 0 raises (no probabilities to drop; see above).
      gain: [N] the learned gain g per head (param_specs: init 1.0); None means 1.

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
    core.reject_dropout(
        KIND, dropout_rate, "the weights are signed standardised scores, not probabilities"
    )
    G = N // K
    f32 = jnp.float32
    g = jnp.ones((N,), f32) if gain is None else gain.astype(f32)
    if g.shape != (N,):
        raise ValueError(f"{KIND}: gain must be [N] = {(N,)}; got {g.shape}")

    q = query.reshape(B, T, K, G, H)
    scores = jnp.einsum("BTKGH,BSKH->BKGTS", q, key, preferred_element_type=f32)
    scores = scores * core.default_scale(scale, H)
    if bias is not None:
        scores = scores + softmax._group_heads(jnp.asarray(bias, f32), K, G)
    keep = core.make_keep_mask(
        T,
        S,
        is_causal=is_causal,
        kv_mask=kv_mask,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
    )
    keep = jnp.ones((1, 1, 1, T, S), bool) if keep is None else keep[:, :, None]  # [B|1,1,1,T,S]
    w = keep.astype(f32)
    count = jnp.sum(w, axis=-1, keepdims=True)  # [B|1, 1, 1, T, 1]
    inv = 1.0 / jnp.maximum(count, 1.0)
    scores = jnp.where(keep, scores, 0.0)  # masked scores never reach the statistics
    mean = jnp.sum(scores, axis=-1, keepdims=True) * inv
    centred = jnp.where(keep, scores - mean, 0.0)
    var = jnp.sum(centred * centred, axis=-1, keepdims=True) * inv
    weights = centred * jax.lax.rsqrt(var + VAR_EPS) * g.reshape(1, K, G, 1, 1)  # [B, K, G, T, S]
    # One allowed key: exactly 0 (s − μ is 0 in exact arithmetic; XLA may round the two
    # differently, and 1/sqrt(ε) would amplify that to ~1e-4).
    weights = jnp.where(count > 1, weights, 0.0)
    weights = weights.astype(value.dtype)
    out = jnp.einsum("BKGTS,BSKH->BTKGH", weights, value, preferred_element_type=f32)
    return out.reshape(B, T, N, H).astype(value.dtype)


def dense_reference(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    *,
    is_causal: bool = False,
    kv_mask: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    gain: jax.Array | None = None,
) -> jax.Array:
    """The same math written independently, for tests: kv heads repeated, masked scores set to
    NaN and `jnp.nanmean` / `jnp.nanvar` per row, float32. Returns [B, T, N, H] float32."""
    B, T, N, H = query.shape
    S = key.shape[1]
    G = N // key.shape[2]
    k, v = (jnp.repeat(x.astype(jnp.float32), G, axis=2) for x in (key, value))
    s = jnp.einsum("BTNH,BSNH->BNTS", query.astype(jnp.float32), k) / jnp.sqrt(H)
    if q_segment_ids is not None and kv_segment_ids is None:
        kv_segment_ids = q_segment_ids
    keep = core.make_keep_mask(
        T,
        S,
        is_causal=is_causal,
        kv_mask=kv_mask,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
    )
    keep = jnp.ones((1, 1, T, S), bool) if keep is None else keep
    s = jnp.where(keep, s, jnp.nan)
    a = (s - jnp.nanmean(s, -1, keepdims=True)) / jnp.sqrt(
        jnp.nanvar(s, -1, keepdims=True) + VAR_EPS
    )
    g = jnp.ones((N,)) if gain is None else gain
    a = jnp.nan_to_num(a * g[None, :, None, None], nan=0.0)
    return jnp.einsum("BNTS,BSNH->BTNH", a, v)


def param_specs(
    hparams: Mapping[str, Any], *, num_heads: int, num_kv_heads: int, head_dim: int, kv_length: int
) -> dict[str, core.ParamSpec]:
    """The per-head gain g [N], initialised to 1.0."""
    del hparams, num_kv_heads, head_dim, kv_length
    return {"gain": core.ParamSpec((num_heads,), jax.nn.initializers.ones, ("heads",))}
