"""Combiner-Fixed: direct attention inside a query's own span plus one summary per other span,
normalised by one softmax, so every key keeps a non-zero weight (full support).

Ren, Dai, Dai, Chen, Yang, Leskovec, Schuurmans, Dai 2021, "Combiner: Full Attention Transformer
with Sparse Computation Cost", arXiv:2107.05768 (NeurIPS 2021), the "Combiner-Fixed" variant.

Attention is read as an expectation out[t] = E_{p(s|t)}[V[s]]. The sequence is cut into spans of
r tokens (span u = positions u·r ... u·r + r − 1). For a query t in span u (batch b, query head
n, kv head n // G):

    direct:   a[t, s] = Q[t]·K[s]·scale              s in span u (s <= t when causal)
    summary:  K̄[j] = Σ_{s∈j} q(s|j) K[s],  V̄[j] = Σ_{s∈j} q(s|j) V[s]      every other span j
              ā[t, j] = Q[t]·K̄[j]·scale              j != u (j < u when causal)
    p = softmax over the joint set {a[t, s]} ∪ {ā[t, j]}                    one normaliser
    out[t] = Σ_s p[t, s] V[s] + Σ_j p[t, j] V̄[j]

so the implied weight of a key s in another span is p(s|t) = p(j|t)·q(s|j) > 0. The within-span
distribution q(·|j) is query independent: 'mean' (uniform over the span's real keys) or
'learned' (softmax over the span of w_k·K[s], with a learned vector w_k [H] per kv head; the
paper's "learned query-independent weights", declared as the `summary_query` tensor).

Time O(T·(r + T/r)·H), memory O(T·(r + T/r)) per (batch, head): O(T·√T·H) with r = √T. One span
covering the sequence (r >= T) is exactly softmax.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxattn import errors
from jaxattn.attention import core

KIND = "combiner"
SUMMARIES = ("mean", "learned")


def combiner_attention(
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
    span_size: int = 64,
    summary: str = "mean",
    summary_query: jax.Array | None = None,
) -> jax.Array:
    """Combiner-Fixed attention: own-span keys directly, other spans through their summaries.

    Paper: Ren et al. 2021, arXiv:2107.05768 (Combiner-Fixed).

    Args:
      query: [B, T, N, H].
      key, value: [B, S, K, H] with S == T (self-attention: a query's direct span is its own);
        K divides N (GQA/MQA).
      is_causal: direct keys s <= t of the own span, and summaries of earlier spans only (a
        summary of an earlier span reads no future key, so this is exact).
      kv_mask: [B, S] bool, True = real key. Summaries average over real keys only; a span with
        no real key has no summary (it is masked).
      q_segment_ids, kv_segment_ids: unsupported (a span summary would mix packed segments).
      bias: unsupported (a summary logit has no single key position to bias).
      scale: logits scale, default 1/sqrt(H).
      dropout_rate, dropout_rng: dropout on the joint probabilities p (direct slots and summary
        slots); the keep mask is `core.dropout_keep(dropout_rng, rate, (B, K, G, U, r, r + U))`
        (U spans, r direct slots then U summary slots per query).
      span_size: r, the span length (>= T is softmax). LRA-style lengths: about √T.
      summary: 'mean' or 'learned' (the within-span distribution q(·|j)).
      summary_query: [K, H] float32, w_k for summary='learned' (declared by `param_specs`).

    Returns:
      [B, T, N, H] in value.dtype; a query with no real key returns zeros.

    Masks: causal, key padding, GQA, dropout. No packing, bias or cross-attention.

    Not implemented: the paper's Combiner-Axial and Combiner-Logsparse variants (other partitions
    of the same direct + summary scheme) and max-pooling summaries. Not compared with the
    authors' code (google-research/google-research/combiner is a TensorFlow/JAX research code
    base with its own model wiring; not run here); tests/attention/combiner_test.py checks the
    implied T×T matrix (V = I) entry by entry against the equations above.
    """
    if bias is not None:
        raise core.unsupported(KIND, "bias")
    if q_segment_ids is not None or kv_segment_ids is not None:
        raise core.unsupported(KIND, "segment_ids (packing): a span summary would mix segments")
    B, T, S, N, K, H = core.check_inputs(KIND, query, key, value, kv_mask=kv_mask)
    if T != S:
        raise core.unsupported(KIND, f"cross-attention (T={T} != S={S}); it is self-attention only")
    core.check_dropout(KIND, dropout_rate, dropout_rng)
    if not isinstance(span_size, int) or span_size < 1:
        raise errors.ConfigError(f"{KIND}: span_size must be a positive int; got {span_size!r}")
    if summary not in SUMMARIES:
        raise errors.ConfigError(f"{KIND}: summary must be one of {SUMMARIES}; got {summary!r}")
    if summary == "learned" and summary_query is None:
        raise ValueError(f"{KIND}: summary='learned' needs summary_query [K, H] (param_specs)")
    G = N // K
    scale = core.default_scale(scale, H)

    r = min(span_size, T)
    U = -(-T // r)
    q = _pad(query, U * r).reshape(B, U, r, K, G, H)
    k = _pad(key, U * r).reshape(B, U, r, K, H)
    v = _pad(value, U * r).reshape(B, U, r, K, H)
    valid = jnp.ones((B, T), bool) if kv_mask is None else kv_mask.astype(bool)
    km = _pad(valid, U * r).reshape(B, U, r)  # real keys

    # Within-span distributions q(s|j) [B, U, r, K] and the span summaries K̄, V̄ [B, U, K, H].
    if summary == "mean":
        w = jnp.broadcast_to(km[..., None], (B, U, r, K)).astype(jnp.float32)
    else:
        wl = jnp.einsum(
            "BUrKH,KH->BUrK", k, summary_query.astype(k.dtype), preferred_element_type=jnp.float32
        )
        wl = jnp.where(km[..., None], wl, -1e30)  # padded keys get no weight
        wl = wl - jax.lax.stop_gradient(jnp.max(wl, axis=2, keepdims=True))
        w = jnp.where(km[..., None], jnp.exp(wl), 0.0)
    w = w / jnp.maximum(w.sum(axis=2, keepdims=True), 1e-30)
    k_bar = jnp.einsum("BUrK,BUrKH->BUKH", w, k.astype(jnp.float32))
    v_bar = jnp.einsum("BUrK,BUrKH->BUKH", w, v.astype(jnp.float32))
    span_ok = jnp.any(km, axis=2)  # [B, U]

    direct = jnp.einsum("BUCKGH,BUDKH->BKGUCD", q, k, preferred_element_type=jnp.float32) * scale
    region = jnp.einsum("BUCKGH,BJKH->BKGUCJ", q.astype(jnp.float32), k_bar) * scale
    c = np.arange(r)
    u = np.arange(U)
    direct_ok = km[:, None, None, :, None, :]  # [B, 1, 1, U, 1, r]
    if is_causal:
        direct_ok = direct_ok & jnp.asarray(c[:, None] >= c[None, :])  # [r, r]
    other = u[None, :] < u[:, None] if is_causal else u[None, :] != u[:, None]  # [U (own), J]
    region_ok = (jnp.asarray(other)[None] & span_ok[:, None, :])[:, None, None, :, None, :]

    logits = jnp.concatenate([direct, region], axis=-1)  # [B, K, G, U, r, r + U]
    keep = jnp.concatenate(
        [jnp.broadcast_to(direct_ok, direct.shape), jnp.broadcast_to(region_ok, region.shape)], -1
    )
    logits = jnp.where(keep, logits, core.MASK_VALUE)
    probs = jnp.where(keep, jax.nn.softmax(logits, axis=-1), 0.0)  # fully masked row -> zeros
    probs = core.dropout(probs, dropout_rate, dropout_rng)
    p_direct, p_region = probs[..., :r], probs[..., r:]
    out = jnp.einsum(
        "BKGUCD,BUDKH->BUCKGH", p_direct.astype(value.dtype), v, preferred_element_type=jnp.float32
    ) + jnp.einsum("BKGUCJ,BJKH->BUCKGH", p_region, v_bar)
    return out.reshape(B, U * r, N, H)[:, :T].astype(value.dtype)


def param_specs(
    hparams: Mapping[str, Any], *, num_heads: int, num_kv_heads: int, head_dim: int, kv_length: int
) -> dict[str, core.ParamSpec]:
    """summary='learned': w [K, H] per kv head, initialised to zeros (q(·|j) starts as the mean,
    the paper's mean-pooling summary); summary='mean': nothing."""
    del num_heads, kv_length
    if hparams.get("summary", "mean") != "learned":
        return {}
    return {
        "summary_query": core.ParamSpec(
            (num_kv_heads, head_dim), jax.nn.initializers.zeros, ("heads", "kv")
        )
    }


def _pad(x: jax.Array, length: int) -> jax.Array:
    """Zero (False) pads axis 1 of x to `length`."""
    pad = [(0, 0)] * x.ndim
    pad[1] = (0, length - x.shape[1])
    return jnp.pad(x, pad)
