"""Linear attention, φ(x) = elu(x) + 1 (Katharopoulos et al. 2020, https://arxiv.org/abs/2006.16236).

exp(q·k) is replaced by a kernel φ(q)·φ(k) with non-negative features, so the sums over keys
can be formed once instead of once per query:

    out_t = φ(q_t)ᵀ Σ_j φ(k_j) v_jᵀ / φ(q_t)ᵀ Σ_j φ(k_j).

This module also holds the machinery every feature-map kind shares (performer.py uses it with
positive random features). All forms below compute the same function of (φ(Q), φ(K), V):

  * parallel (bidirectional): the two sums over all valid keys;
  * chunked causal (`feature_attention` with is_causal): inside a chunk of C positions the masked
    quadratic form, across chunks a carried state (Σ φ(k) vᵀ, Σ φ(k)); segment ids reset the
    state where a segment starts (packing);
  * causal prefix-sum (`causal_prefix_sum_attention`): cumulative sums per position, the plain
    reference for the chunked form, O(T·F·H) memory;
  * recurrent (`linear_attention_step`): one position at a time, for decoding;
  * quadratic (`quadratic_feature_attention`): the explicit T×S normalised kernel matrix, the test
    reference.

Exponential feature maps overflow float32 unless stabilised, so a key's features may come as
ψ(k_j) with a log-scale ℓ_j: φ(k_j) = ψ(k_j)·exp(ℓ_j). Every form divides by a common exp(μ)
before exponentiating, with μ the largest ℓ_j among the keys a query sees, so all exponentials
are ≤ 1; the factor cancels between numerator and denominator. In the chunked form μ is a
running maximum over the keys at or before t, so the stabiliser never reads the future and a
causal output does not depend on later tokens, not even by rounding.

Einsum letters: the house shape letters (core.py), F the feature dimension, J the keys of one
chunk, C a chunk's length.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxattn import errors
from jaxattn.attention import core

KIND = "linear"
# A finite stand-in for -inf in log-scales: exp(NEG) == 0 and NEG - NEG == 0 (no NaN).
NEG = -1e30


def linear_attention(
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
    chunk_size: int = 64,
) -> jax.Array:
    """Linear attention with φ(x) = elu(x) + 1: O(T·H²) instead of O(T·S·H).

    Paper: Katharopoulos et al. 2020, "Transformers are RNNs", https://arxiv.org/abs/2006.16236.

    Args:
      query: [B, T, N, H].
      key, value: [B, S, K, H]; K divides N (GQA/MQA). T != S is cross-attention.
      is_causal: query t sees keys s <= t (top-left aligned), computed by the chunked scan.
      kv_mask: [B, S] bool, True = real key; padded keys get φ(k) = 0.
      q_segment_ids, kv_segment_ids: [B, T] / [B, S] int, packed sequences (T == S only). Each
        segment must be one contiguous run of positions, as sequence packing produces: the scan
        keeps one state, reset where a segment starts. Bidirectional packed attention adds a
        reversed scan for the keys after t.
      bias: unsupported (there is no T×S logits matrix); raises UnsupportedFeatureError.
      scale: multiplies the queries before φ; None = 1 (the paper has no temperature).
      dropout_rate, dropout_rng: unsupported: no attention probabilities are formed, so a rate
        > 0 raises UnsupportedFeatureError. Rate 0 is accepted.
      chunk_size: C, positions per chunk of the causal / packed scan: O(T·C·H) work inside chunks,
        O(T/C) sequential steps; the result does not depend on C.

    Returns:
      [B, T, N, H] in value.dtype. A query that sees no key returns zeros. Features, states and
      normalisers are float32.

    Complexity: bidirectional O((T+S)·H²) time and O(H²) extra memory per (batch, head); causal
    or packed O(T·(C+H)·H) time, O(T·C + (T/C)·H²) memory for the backward pass.
    """
    if bias is not None:
        raise core.unsupported(KIND, "bias")
    core.reject_dropout(KIND, dropout_rate, "kernelised attention forms no probabilities")
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
    check_packing(KIND, q_segment_ids, T, S)
    check_chunk_size(KIND, chunk_size)
    q = query.reshape(B, T, K, N // K, H).astype(jnp.float32)
    if scale is not None:
        q = q * scale
    kv_valid = jnp.ones((B, S), bool) if kv_mask is None else kv_mask.astype(bool)
    out = feature_attention(
        elu_feature_map(q),
        elu_feature_map(key),
        value,
        kv_valid=kv_valid,
        is_causal=is_causal,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
        chunk_size=chunk_size,
    )  # [B, T, K, G, H]
    return out.reshape(B, T, N, H).astype(value.dtype)


def elu_feature_map(x: jax.Array) -> jax.Array:
    """φ(x) = elu(x) + 1 > 0, elementwise, in float32."""
    return jax.nn.elu(x.astype(jnp.float32)) + 1.0


# ---------------------------------------------------------------- the shared feature-map forms


def feature_attention(
    phi_q: jax.Array,
    phi_k: jax.Array,
    value: jax.Array,
    *,
    kv_valid: jax.Array,
    is_causal: bool = False,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    chunk_size: int = 64,
    k_log_scale: jax.Array | None = None,
) -> jax.Array:
    """Σ_j w_tj v_j / Σ_j w_tj with w_tj = φ(q_t)·φ(k_j) over the keys query t sees.

    Args:
      phi_q: [B, T, K, G, F] query features (any per-query positive factor cancels).
      phi_k: [B, S, K, F] key features ψ(k); the feature is ψ(k_j)·exp(k_log_scale_j).
      value: [B, S, K, H].
      kv_valid: [B, S] bool; invalid keys are left out (their features count as 0).
      is_causal, q_segment_ids, kv_segment_ids: as in `linear_attention` (segments need T == S).
      chunk_size: C for the chunked scan (causal or packed).
      k_log_scale: [B, S, K] or None (= 0); no gradient flows through it (it cancels).

    Returns:
      [B, T, K, G, H] float32; zeros where a query sees no key.
    """
    v = value.astype(jnp.float32)
    phi_q, phi_k = phi_q.astype(jnp.float32), phi_k.astype(jnp.float32)
    B, S, K, _ = phi_k.shape
    T = phi_q.shape[1]
    log_k = (
        jnp.zeros((B, S, K), jnp.float32)
        if k_log_scale is None
        else jax.lax.stop_gradient(k_log_scale.astype(jnp.float32))
    )
    if not is_causal and q_segment_ids is None:
        return _parallel(phi_q, phi_k, v, log_k, kv_valid)

    # Causal top-left alignment and the scan both want T == S: pad the shorter side (padded keys
    # are invalid, padded queries are dropped at the end).
    L = max(T, S)
    C = min(chunk_size, L)
    L = -(-L // C) * C
    q_seg = jnp.ones((B, T), jnp.int32) if q_segment_ids is None else q_segment_ids
    kv_seg = jnp.ones((B, S), jnp.int32) if kv_segment_ids is None else kv_segment_ids
    phi_q, q_seg = _pad_to(phi_q, L), _pad_to(q_seg, L, mode="edge")
    phi_k, v, log_k = _pad_to(phi_k, L), _pad_to(v, L), _pad_to(log_k, L)
    kv_valid, kv_seg = _pad_to(kv_valid, L), _pad_to(kv_seg, L, mode="edge")
    args = (phi_q, phi_k, v, log_k, kv_valid, q_seg, kv_seg)

    num, den, mu = _chunked_scan(*args, chunk=C, strict=False)
    if not is_causal:  # packed, bidirectional: add the keys after t with a reversed scan
        flipped = (jnp.flip(x, axis=1) for x in args)
        back = _chunked_scan(*flipped, chunk=C, strict=True)
        num_b, den_b, mu_b = (jnp.flip(x, axis=1) for x in back)
        top = jnp.maximum(mu, mu_b)  # [B, L, K]
        a, b = jnp.exp(mu - top), jnp.exp(mu_b - top)  # both finite: NEG - NEG == 0
        num = num * a[..., None, None] + num_b * b[..., None, None]
        den = den * a[..., None] + den_b * b[..., None]
    return _normalise(num, den)[:, :T]


def _parallel(phi_q, phi_k, v, log_k, kv_valid) -> jax.Array:
    """Bidirectional: one Σ φ(k) vᵀ and one Σ φ(k) per (batch, kv head)."""
    valid = kv_valid[:, :, None]  # [B, S, 1]
    top = jnp.max(jnp.where(valid, log_k, NEG), axis=1)  # [B, K]: largest log-scale of a real key
    weight = jnp.exp(jnp.where(valid, log_k - top[:, None], NEG))  # [B, S, K]; 0 at pads
    k = phi_k * weight[..., None]  # [B, S, K, F]
    kv_sum = jnp.einsum("BSKF,BSKH->BKFH", k, v)  # [B, K, F, H]
    k_sum = jnp.sum(k, axis=1)  # [B, K, F]
    num = jnp.einsum("BTKGF,BKFH->BTKGH", phi_q, kv_sum)
    den = jnp.einsum("BTKGF,BKF->BTKG", phi_q, k_sum)
    return _normalise(num, den)


def _chunked_scan(phi_q, phi_k, v, log_k, kv_valid, q_seg, kv_seg, *, chunk: int, strict: bool):
    """Unnormalised (num [B, L, K, G, H], den [B, L, K, G], μ [B, L, K]) over the keys j <= t
    (j < t if strict) of the query's segment; the true sums are num·exp(μ) and den·exp(μ).

    The carried state (Σ ψ(k) exp(ℓ - M) vᵀ, Σ ψ(k) exp(ℓ - M), M, its segment id) holds the keys
    of the segment that the previous chunk ended in; a query of another segment does not use it.
    """
    B, L, K, G, F = phi_q.shape
    H = v.shape[-1]
    n = L // chunk

    def chunks(x):  # [B, L, ...] -> [n, B, C, ...]
        return jnp.moveaxis(x.reshape(B, n, chunk, *x.shape[2:]), 1, 0)

    pos = jnp.arange(chunk)
    order = pos[:, None] > pos[None, :] if strict else pos[:, None] >= pos[None, :]  # [C, C]

    def step(carry, xs):
        kv_sum, k_sum, log_state, seg_state = carry  # [B,K,F,H], [B,K,F], [B,K], [B]
        q, k, vv, lk, ok, qs, ks = xs  # [B,C,K,G,F], [B,C,K,F], [B,C,K,H], [B,C,K], [B,C] x3
        # Keys each query sees inside the chunk, and whether it sees the carried state.
        sees = order[None] & ok[:, None, :] & (qs[:, :, None] == ks[:, None, :])  # [B, C, J]
        uses_state = qs == seg_state[:, None]  # [B, C]
        log_carry = jnp.where(uses_state[..., None], log_state[:, None, :], NEG)  # [B, C, K]
        seen = sees[..., None]  # [B, C, J, 1]
        lk_seen = jnp.where(seen, lk[:, None], NEG)  # [B, C, J, K]
        mu = jnp.maximum(log_carry, jnp.max(lk_seen, axis=2))  # [B, C, K]: running max, causal
        weight = jnp.exp(jnp.where(seen, lk_seen - mu[:, :, None], NEG))  # [B, C, J, K]; <= 1
        scores = jnp.einsum("BTKGF,BJKF->BTJKG", q, k) * weight[..., None]  # [B, C, J, K, G]
        num = jnp.einsum("BTJKG,BJKH->BTKGH", scores, vv)  # [B, C, K, G, H]
        den = jnp.sum(scores, axis=2)  # [B, C, K, G]
        decay = jnp.exp(jnp.where(uses_state[..., None], log_carry - mu, NEG))  # [B, C, K]
        num = num + jnp.einsum("BTKGF,BKFH->BTKGH", q, kv_sum) * decay[..., None, None]
        den = den + jnp.einsum("BTKGF,BKF->BTKG", q, k_sum) * decay[..., None]

        # The next state: the keys of the segment this chunk ends in.
        seg_next = ks[:, -1]  # [B]
        keeps = seg_state == seg_next  # [B]: the same segment goes on, else the state resets
        adds = (ok & (ks == seg_next[:, None]))[..., None]  # [B, J, 1]
        log_keep = jnp.where(keeps[:, None], log_state, NEG)  # [B, K]
        log_next = jnp.maximum(log_keep, jnp.max(jnp.where(adds, lk, NEG), axis=1))  # [B, K]
        alpha = jnp.exp(jnp.where(keeps[:, None], log_keep - log_next, NEG))  # [B, K]
        beta = jnp.exp(jnp.where(adds, lk - log_next[:, None], NEG))  # [B, J, K]
        k_in = k * beta[..., None]  # [B, J, K, F]
        kv_sum = kv_sum * alpha[..., None, None] + jnp.einsum("BJKF,BJKH->BKFH", k_in, vv)
        k_sum = k_sum * alpha[..., None] + jnp.sum(k_in, axis=1)
        return (kv_sum, k_sum, log_next, seg_next), (num, den, mu)

    init = (
        jnp.zeros((B, K, F, H), jnp.float32),
        jnp.zeros((B, K, F), jnp.float32),
        jnp.full((B, K), NEG, jnp.float32),
        jnp.full((B,), -1, q_seg.dtype),  # no segment: the first chunk starts fresh
    )
    xs = tuple(chunks(x) for x in (phi_q, phi_k, v, log_k, kv_valid, q_seg, kv_seg))
    _, (num, den, mu) = jax.lax.scan(step, init, xs)

    def unchunk(x):  # [n, B, C, ...] -> [B, L, ...]
        return jnp.moveaxis(x, 0, 1).reshape(B, L, *x.shape[3:])

    return unchunk(num), unchunk(den), unchunk(mu)


def _normalise(num: jax.Array, den: jax.Array) -> jax.Array:
    """num [..., H] / den [...]; 0 where no key is seen (den == 0)."""
    return num / jnp.where(den > 0, den, 1.0)[..., None]


def _pad_to(x: jax.Array, length: int, mode: str = "constant") -> jax.Array:
    """Pads axis 1 of x to `length` (zeros / False, or repeating the last entry)."""
    widths = [(0, 0)] * x.ndim
    widths[1] = (0, length - x.shape[1])
    return jnp.pad(x, widths, mode=mode)


def check_packing(kind: str, q_segment_ids: jax.Array | None, T: int, S: int) -> None:
    """Packed cross-attention would need one state per segment; only T == S is supported."""
    if q_segment_ids is not None and T != S:
        raise core.unsupported(
            kind, f"q_segment_ids/kv_segment_ids with cross-attention (T={T}, S={S})"
        )


def check_chunk_size(kind: str, chunk_size: int) -> None:
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise errors.ConfigError(f"{kind}: chunk_size must be a positive int; got {chunk_size!r}")


# ---------------------------------------------------------------- references


def quadratic_feature_attention(
    phi_q: jax.Array,
    phi_k: jax.Array,
    value: jax.Array,
    *,
    kv_valid: jax.Array | None = None,
    is_causal: bool = False,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    k_log_scale: jax.Array | None = None,
) -> jax.Array:
    """The explicit normalised kernel matrix A_tj = φ(q_t)·φ(k_j) over the kept (t, j): the test
    reference, O(T·S) memory. Arguments as in `feature_attention`; returns [B, T, K, G, H] f32."""
    B, T, K, G, F = phi_q.shape
    S = phi_k.shape[1]
    keep = core.make_keep_mask(
        T,
        S,
        is_causal=is_causal,
        kv_mask=kv_valid,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=q_segment_ids if kv_segment_ids is None else kv_segment_ids,
    )
    keep = jnp.ones((1, T, S, 1), bool) if keep is None else keep[:, 0, :, :, None]
    log_k = jnp.zeros((B, S, K)) if k_log_scale is None else k_log_scale.astype(jnp.float32)
    log_k = jnp.where(keep, log_k[:, None], NEG)  # [B, T, S, K]
    mu = jnp.max(log_k, axis=2, keepdims=True)  # [B, T, 1, K]
    weight = jnp.exp(jnp.where(keep, log_k - mu, NEG))  # [B, T, S, K]
    a = jnp.einsum("BTKGF,BSKF->BTSKG", phi_q.astype(jnp.float32), phi_k.astype(jnp.float32))
    a = a * weight[..., None]  # [B, T, S, K, G]
    num = jnp.einsum("BTSKG,BSKH->BTKGH", a, value.astype(jnp.float32))
    return _normalise(num, jnp.sum(a, axis=2))


def quadratic_linear_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    *,
    is_causal: bool = False,
    kv_mask: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    scale: float | None = None,
) -> jax.Array:
    """`linear_attention` computed through the explicit T×S normalised elu+1 kernel matrix
    (float32): the reference the battery holds `linear` to. Returns [B, T, N, H] f32."""
    B, T, N, H = query.shape
    K = key.shape[2]
    q = query.reshape(B, T, K, N // K, H).astype(jnp.float32) * (1.0 if scale is None else scale)
    out = quadratic_feature_attention(
        elu_feature_map(q),
        elu_feature_map(key),
        value,
        kv_valid=kv_mask,
        is_causal=is_causal,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
    )
    return out.reshape(B, T, N, H)


def causal_prefix_sum_attention(
    phi_q: jax.Array, phi_k: jax.Array, value: jax.Array, *, kv_valid: jax.Array | None = None
) -> jax.Array:
    """Causal linear attention by cumulative sums over positions (T == S): the plain reference
    for the chunked scan. O(T·F·H) memory. Returns [B, T, K, G, H] f32."""
    if kv_valid is not None:
        phi_k = jnp.where(kv_valid[:, :, None, None], phi_k, 0.0)
    phi_k, v = phi_k.astype(jnp.float32), value.astype(jnp.float32)
    kv_sums = jnp.cumsum(jnp.einsum("BSKF,BSKH->BSKFH", phi_k, v), axis=1)  # [B, S, K, F, H]
    k_sums = jnp.cumsum(phi_k, axis=1)  # [B, S, K, F]
    num = jnp.einsum("BTKGF,BTKFH->BTKGH", phi_q, kv_sums)
    den = jnp.einsum("BTKGF,BTKF->BTKG", phi_q, k_sums)
    return _normalise(num, den)


# ---------------------------------------------------------------- decoding


class LinearAttentionState(NamedTuple):
    """The recurrent state after some positions: Σ_j φ(k_j) v_jᵀ and Σ_j φ(k_j), float32."""

    kv_sum: jax.Array  # [B, K, F, H]
    k_sum: jax.Array  # [B, K, F]


def init_linear_attention_state(batch_size: int, num_kv_heads: int, head_dim: int):
    """The empty state (no key seen) for `linear_attention_step`; F = H for elu + 1."""
    return LinearAttentionState(
        jnp.zeros((batch_size, num_kv_heads, head_dim, head_dim), jnp.float32),
        jnp.zeros((batch_size, num_kv_heads, head_dim), jnp.float32),
    )


def linear_attention_step(
    state: LinearAttentionState,
    q_t: jax.Array,
    k_t: jax.Array,
    v_t: jax.Array,
    *,
    scale: float | None = None,
) -> tuple[LinearAttentionState, jax.Array]:
    """One decoding step of causal `linear_attention` (the paper's RNN form).

    Args:
      state: after positions < t (`init_linear_attention_state` for t = 0).
      q_t: [B, N, H]; k_t, v_t: [B, K, H], the token at position t.
      scale: as in `linear_attention`.

    Returns:
      (state after position t, out_t [B, N, H] in v_t.dtype). O(H²) time and memory per head.
    """
    B, N, H = q_t.shape
    K = k_t.shape[1]
    phi_k = elu_feature_map(k_t)  # [B, K, F]
    kv_sum = state.kv_sum + jnp.einsum("BKF,BKH->BKFH", phi_k, v_t.astype(jnp.float32))
    k_sum = state.k_sum + phi_k
    q = q_t.reshape(B, K, N // K, H).astype(jnp.float32) * (1.0 if scale is None else scale)
    phi_q = elu_feature_map(q)  # [B, K, G, F]
    num = jnp.einsum("BKGF,BKFH->BKGH", phi_q, kv_sum)
    den = jnp.einsum("BKGF,BKF->BKG", phi_q, k_sum)
    out = _normalise(num, den).reshape(B, N, H).astype(v_t.dtype)
    return LinearAttentionState(kv_sum, k_sum), out


def feature_state_init(batch: int, num_kv_heads: int, num_features: int, head_dim: int):
    """The empty recurrent state of a feature-map attention (no key seen), float32:
    {'kv_sum': [B, K, F, H], 'k_sum': [B, K, F], 'log_max': [B, K]}."""
    return {
        "kv_sum": jnp.zeros((batch, num_kv_heads, num_features, head_dim), jnp.float32),
        "k_sum": jnp.zeros((batch, num_kv_heads, num_features), jnp.float32),
        "log_max": jnp.full((batch, num_kv_heads), NEG, jnp.float32),
    }


def feature_state_step(
    state: Mapping[str, jax.Array],
    phi_q: jax.Array,
    phi_k: jax.Array,
    value: jax.Array,
    k_log_scale: jax.Array | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Adds one key to the state and reads it with one query: the causal scan's recurrence.

    The sums are kept relative to the largest key log-scale seen (`log_max`), as the chunked
    scan keeps them, so keys with large features (Performer's softmax kernel) do not overflow.

    Args:
      state: `feature_state_init` or the previous step's.
      phi_q: [B, K, G, F] query features; phi_k: [B, K, F] key features ψ(k), the feature
        being ψ(k)·exp(k_log_scale); value: [B, K, H]; k_log_scale: [B, K] or None (= 0).

    Returns:
      (out [B, K, G, H] float32, the new state).
    """
    log_k = (
        jnp.zeros(phi_k.shape[:2], jnp.float32)
        if k_log_scale is None
        else jax.lax.stop_gradient(k_log_scale.astype(jnp.float32))
    )
    top = jnp.maximum(state["log_max"], log_k)  # [B, K]
    alpha, beta = jnp.exp(state["log_max"] - top), jnp.exp(log_k - top)
    k_in = phi_k.astype(jnp.float32) * beta[..., None]  # [B, K, F]
    kv_sum = state["kv_sum"] * alpha[..., None, None] + jnp.einsum(
        "BKF,BKH->BKFH", k_in, value.astype(jnp.float32)
    )
    k_sum = state["k_sum"] * alpha[..., None] + k_in
    num = jnp.einsum("BKGF,BKFH->BKGH", phi_q, kv_sum)
    den = jnp.einsum("BKGF,BKF->BKG", phi_q, k_sum)
    return _normalise(num, den), {"kv_sum": kv_sum, "k_sum": k_sum, "log_max": top}


def _decode_init(hparams, *, batch, max_length, num_heads, num_kv_heads, head_dim, dtype):
    del hparams, max_length, num_heads, dtype
    return feature_state_init(batch, num_kv_heads, head_dim, head_dim)  # F = H for elu + 1


def _decode_step(query, key, value, cache, index, *, scale=None, **unused):
    """Causal linear attention at position `index` from the recurrent state (`core.Decoder`)."""
    del index, unused
    B, _, N, H = query.shape
    K = key.shape[2]
    q = query[:, 0].reshape(B, K, N // K, H).astype(jnp.float32) * (1.0 if scale is None else scale)
    out, state = feature_state_step(
        cache, elu_feature_map(q), elu_feature_map(key[:, 0]), value[:, 0]
    )
    return out.reshape(B, 1, N, H).astype(value.dtype), state


DECODER = core.Decoder(init=_decode_init, step=_decode_step)
