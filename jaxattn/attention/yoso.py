"""YOSO: You Only Sample (Almost) Once, attention by LSH Bernoulli sampling.

Zeng et al. 2021, "You Only Sample (Almost) Once: Linear Cost Self-Attention Via Bernoulli
Sampling", https://arxiv.org/abs/2111.09714; code github.com/mlpen/YOSO (yoso_v1: yoso.py,
kernel.py). Per query head, with q̂, k̂ the ℓ2-normalised query and key and τ hash bits:

    w_ij = (1 − arccos(q̂_i·k̂_j)/π)^τ       the probability that τ random-hyperplane bits collide
    Y_i = Σ_j w_ij v_j                      over real keys j                        [B, T, N, H]
    out_i = Y_i / ‖Y_i‖                     (the authors' ℓ2 `normalize`, eps 1e-12; no softmax)

YOSO-E (`expectation=True`, `yoso_e_reference`) forms w exactly: O(T·S·H). The sampled YOSO
estimates Y with m rounds: each round draws τ hyperplanes, hashes q̂ and k̂ to τ-bit codes,
scatter-adds the real keys' v into 2^τ buckets by key code and gathers them by query code; Y is
the mean over rounds (unbiased, variance ∝ 1/m): O((T+S)·m·(τ·H + H)) time, O(m·2^τ·H) memory.

Backward (both modes, `jax.custom_vjp`): the authors' estimate, not the exact derivative (which
is infinite at q̂·k̂ = ±1): with dY the cotangent and (dY_i·v_j) w_ij the weighted expectation,

    dV_j = Σ_i w_ij dY_i,   dq̂_i = (τ/2) Σ_j (dY_i·v_j) w_ij k̂_j,   dk̂_j = (τ/2) Σ_i (dY_i·v_j) w_ij q̂_i

exactly in YOSO-E (their `Cumulation`), and by the same hash collisions in sampled mode (their
`LSHCumulation`: buckets of v_j ⊗ k̂_j and dY_i ⊗ q̂_i, one round at a time so the H×H tables
cost O(2^τ·H²) memory). Gradients then flow through the normalisations by autodiff.

Randomness: the hyperplanes [m, H, τ] come from `rng` (the layer passes a new one every training
step, a fixed one at evaluation) and are shared by every example and head (the authors draw one
set per example and head; sharing keeps an example's output independent of its batch, so vmap,
sharding and GQA give the same numbers). Same rng, same output.

Masks: key padding (padded keys are left out of the buckets: exact). Refused: causal (the paper
is bidirectional; a causal form would need a prefix scan per bucket), packing, bias (no logits),
dropout (no probabilities). GQA and cross-attention are supported. The authors' optional
depthwise convolution on V (`conv_window`) is not included.

Compared with the authors' code: not run (its forward needs their CUDA extension); YOSO-E here
follows the formulas of their `Cumulation` line by line, and the sampled mode is tested to
approach it as 1/sqrt(m).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from jaxattn.attention import core

KIND = "yoso"
NORM_EPS = 1e-12  # torch.nn.functional.normalize's eps (the authors' `normalize`)


def yoso_attention(
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
    num_hashes: int = 32,
    hash_bits: int = 8,
    expectation: bool = False,
    rng: jax.Array | None = None,
) -> jax.Array:
    """YOSO attention: ℓ2-normalised LSH-sampled (or expected, YOSO-E) collision-weighted sums of v.

    Args:
      query: [B, T, N, H]; key, value: [B, S, K, H], K divides N (GQA/MQA); T != S allowed.
      is_causal, q_segment_ids, kv_segment_ids, bias, dropout_rate > 0: refused (raise).
      kv_mask: [B, S] bool, True = real key; padded keys never enter a bucket.
      scale: has no effect: a positive logits scale on q·k is removed by the ℓ2 normalisation
        of q and k, so the output is the same for every scale.
      num_hashes: m, the hash rounds; hash_bits: τ, bits per code (2^τ buckets).
      expectation: YOSO-E: the exact expectation (O(T·S·H)) instead of sampling.
      rng: PRNG key of the hyperplanes (needs_rng); required unless expectation.

    Returns:
      [B, T, N, H] in value.dtype: unit rows (0 where no real key collides).
    """
    if is_causal:
        raise core.unsupported(KIND, "is_causal=True: YOSO is bidirectional (not in the paper)")
    if q_segment_ids is not None or kv_segment_ids is not None:
        raise core.unsupported(KIND, "q_segment_ids/kv_segment_ids (packing)")
    if bias is not None:
        raise core.unsupported(KIND, "bias: YOSO forms no logits")
    core.reject_dropout(KIND, dropout_rate, "YOSO forms no attention probabilities")
    B, T, S, N, K, H = core.check_inputs(KIND, query, key, value, kv_mask=kv_mask)
    del scale  # q and k are ℓ2-normalised: a logits scale has no meaning here
    if hash_bits < 1 or num_hashes < 1:
        raise ValueError(f"{KIND}: hash_bits and num_hashes must be >= 1")
    G = N // K
    f32 = jnp.float32
    q_hat = _normalize(query.astype(f32)).reshape(B, T, K, G, H)
    k_hat = _normalize(key.astype(f32))
    real = jnp.ones((B, S), f32) if kv_mask is None else kv_mask.astype(f32)
    v = value.astype(f32) * real[:, :, None, None]  # padded values out of every bucket
    if expectation:
        y = _expected_cumulation(q_hat, k_hat, v, real, hash_bits)
    else:
        if rng is None:
            raise ValueError(f"{KIND}: sampled mode needs rng= (or expectation=True)")
        planes = jax.random.normal(rng, (num_hashes, H, hash_bits), f32)
        y = _lsh_cumulation(q_hat, k_hat, v, real, planes)
    return _normalize(y).reshape(B, T, N, H).astype(value.dtype)


def _normalize(x: jax.Array) -> jax.Array:
    """x / max(‖x‖, eps) over the last axis; 0 stays 0 with a finite gradient."""
    return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, -1, keepdims=True), NORM_EPS**2))


def collision_probability(cos: jax.Array, hash_bits: int) -> jax.Array:
    """(1 − arccos(cos)/π)^τ, cos clipped to [−1, 1]."""
    return (1.0 - jnp.arccos(jnp.clip(cos, -1.0, 1.0)) / math.pi) ** hash_bits


# --------------------------------------------------------------------------- YOSO-E (dense)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _expected_cumulation(q_hat, k_hat, v, real, hash_bits):
    """Y [B, T, K, G, H] = Σ_j w_ij v_j with the exact w (v already zero at padded keys)."""
    return _expected_forward(q_hat, k_hat, v, real, hash_bits)[0]


def _expected_forward(q_hat, k_hat, v, real, hash_bits):
    w = collision_probability(jnp.einsum("BTKGH,BSKH->BKGTS", q_hat, k_hat), hash_bits)
    w = w * real[:, None, None, None, :]  # [B, K, G, T, S]
    return jnp.einsum("BKGTS,BSKH->BTKGH", w, v), w


def _expected_fwd(q_hat, k_hat, v, real, hash_bits):
    y, w = _expected_forward(q_hat, k_hat, v, real, hash_bits)
    return y, (q_hat, k_hat, v, real, w)


def _expected_bwd(hash_bits, res, dy):
    q_hat, k_hat, v, real, w = res
    weighted = jnp.einsum("BTKGH,BSKH->BKGTS", dy, v) * w  # (dY_i·v_j) w_ij
    dq = (hash_bits / 2) * jnp.einsum("BKGTS,BSKH->BTKGH", weighted, k_hat)
    dk = (hash_bits / 2) * jnp.einsum("BKGTS,BTKGH->BSKH", weighted, q_hat)
    dv = jnp.einsum("BKGTS,BTKGH->BSKH", w, dy)
    return dq, dk, dv, jnp.zeros_like(real)


_expected_cumulation.defvjp(_expected_fwd, _expected_bwd)


def yoso_e_reference(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    *,
    kv_mask: jax.Array | None = None,
    hash_bits: int = 8,
) -> jax.Array:
    """YOSO-E written from the formulas per query head (kv heads repeated), float32, for tests:
    out = normalize(((1 − arccos(q̂ k̂ᵀ)/π)^τ ⊙ mask) V). Returns [B, T, N, H]."""
    G = query.shape[2] // key.shape[2]
    k, v = (jnp.repeat(x.astype(jnp.float32), G, axis=2) for x in (key, value))
    q = query.astype(jnp.float32)
    q = q / jnp.maximum(jnp.linalg.norm(q, axis=-1, keepdims=True), NORM_EPS)
    k = k / jnp.maximum(jnp.linalg.norm(k, axis=-1, keepdims=True), NORM_EPS)
    cos = jnp.clip(jnp.einsum("BTNH,BSNH->BNTS", q, k), -1.0, 1.0)
    w = (1.0 - jnp.arccos(cos) / jnp.pi) ** hash_bits
    if kv_mask is not None:
        w = w * kv_mask[:, None, None, :]
    y = jnp.einsum("BNTS,BSNH->BTNH", w, v)
    return y / jnp.maximum(jnp.linalg.norm(y, axis=-1, keepdims=True), NORM_EPS)


# --------------------------------------------------------------------------- sampled (LSH)


def _codes(x: jax.Array, planes: jax.Array) -> jax.Array:
    """τ-bit codes [..., m] int32 of x [..., H] under planes [m, H, τ]: bit b = (x·r_b > 0)."""
    bits = jnp.einsum("...H,MHb->...Mb", x, planes) > 0
    return jnp.sum(bits.astype(jnp.int32) << jnp.arange(planes.shape[-1], dtype=jnp.int32), -1)


def _bucket_sum(codes: jax.Array, x: jax.Array, num_buckets: int) -> jax.Array:
    """Per (b, head, round): Σ over positions of x into its code's bucket.

    codes [B, P, K, M] int; x [B, P, K, D] (the same for every round) -> [B, K, M, 2^τ, D].
    """
    B, P, K, M = codes.shape
    D = x.shape[-1]
    flat = (
        (jnp.arange(B)[:, None, None, None] * K + jnp.arange(K)[None, None, :, None]) * M
        + jnp.arange(M)[None, None, None, :]
    ) * num_buckets + codes  # [B, P, K, M]
    data = jnp.broadcast_to(x[:, :, :, None, :], (B, P, K, M, D))
    table = jax.ops.segment_sum(
        data.reshape(-1, D), flat.reshape(-1), num_segments=B * K * M * num_buckets
    )
    return table.reshape(B, K, M, num_buckets, D)


def _bucket_gather(table: jax.Array, codes: jax.Array) -> jax.Array:
    """table [B, K, M, 2^τ, D], codes [B, P, K, M] -> [B, P, K, M, D]."""
    B, K, M, C, D = table.shape
    idx = jnp.transpose(codes, (0, 2, 3, 1))  # [B, K, M, P]
    out = jnp.take_along_axis(table, idx[..., None], axis=3)  # [B, K, M, P, D]
    return jnp.transpose(out, (0, 3, 1, 2, 4))


@jax.custom_vjp
def _lsh_cumulation(q_hat, k_hat, v, real, planes):
    """Y [B, T, K, G, H]: the mean over rounds of Σ_{j: code(k̂_j) = code(q̂_i)} v_j."""
    return _lsh_forward(q_hat, k_hat, v, real, planes)


def _lsh_forward(q_hat, k_hat, v, real, planes):
    B, T, K, G, H = q_hat.shape
    M, C = planes.shape[0], 2 ** planes.shape[-1]
    q_codes = _codes(q_hat, planes)  # [B, T, K, G, M]
    k_codes = _codes(k_hat, planes)  # [B, S, K, M]
    table = _bucket_sum(k_codes, v, C)  # [B, K, M, C, H]; padded v are 0
    q_flat = q_codes.transpose(0, 1, 3, 2, 4).reshape(B, T * G, K, M)  # queries of a group
    y = _bucket_gather(table, q_flat).mean(axis=3)  # [B, T·G, K, H]
    return y.reshape(B, T, G, K, H).transpose(0, 1, 3, 2, 4)


def _lsh_fwd(q_hat, k_hat, v, real, planes):
    return _lsh_forward(q_hat, k_hat, v, real, planes), (q_hat, k_hat, v, real, planes)


def _lsh_bwd(res, dy):
    """The authors' LSH estimate of the YOSO-E backward, one round at a time."""
    q_hat, k_hat, v, real, planes = res
    B, T, K, G, H = q_hat.shape
    S = k_hat.shape[1]
    M, tau = planes.shape[0], planes.shape[-1]
    C = 2**tau
    q_codes = _codes(q_hat, planes).transpose(0, 1, 3, 2, 4).reshape(B, T * G, K, M)
    k_codes = _codes(k_hat, planes)  # [B, S, K, M]
    dy_f = dy.transpose(0, 1, 3, 2, 4).reshape(B, T * G, K, H)
    q_f = q_hat.transpose(0, 1, 3, 2, 4).reshape(B, T * G, K, H)
    kv_outer = (v[..., :, None] * k_hat[..., None, :]).reshape(B, S, K, H * H)  # v_j ⊗ k̂_j
    dq_outer = (dy_f[..., :, None] * q_f[..., None, :]).reshape(B, T * G, K, H * H)  # dY ⊗ q̂

    def one_round(carry, r):
        dq, dk, dv = carry
        qc = jax.lax.dynamic_slice_in_dim(q_codes, r, 1, axis=3)  # [B, T·G, K, 1]
        kc = jax.lax.dynamic_slice_in_dim(k_codes, r, 1, axis=3)  # [B, S, K, 1]
        # dV_j = Σ_{i collides} dY_i (padded keys: masked below).
        dv = dv + _bucket_gather(_bucket_sum(qc, dy_f, C), kc)[:, :, :, 0]
        # dq̂_i = (τ/2) Σ_{j collides} (dY_i·v_j) k̂_j = (τ/2) dY_iᵀ [Σ_j v_j ⊗ k̂_j].
        kv_table = _bucket_gather(_bucket_sum(kc, kv_outer, C), qc)[:, :, :, 0]
        dq = dq + jnp.einsum("BPKe,BPKeh->BPKh", dy_f, kv_table.reshape(B, T * G, K, H, H))
        # dk̂_j = (τ/2) Σ_{i collides} (dY_i·v_j) q̂_i = (τ/2) v_jᵀ [Σ_i dY_i ⊗ q̂_i].
        dq_table = _bucket_gather(_bucket_sum(qc, dq_outer, C), kc)[:, :, :, 0]
        dk = dk + jnp.einsum("BSKe,BSKeh->BSKh", v, dq_table.reshape(B, S, K, H, H))
        return (dq, dk, dv), None

    zeros = (jnp.zeros_like(q_f), jnp.zeros_like(k_hat), jnp.zeros_like(v))
    (dq, dk, dv), _ = jax.lax.scan(one_round, zeros, jnp.arange(M))
    dq = (tau / 2 / M) * dq.reshape(B, T, G, K, H).transpose(0, 1, 3, 2, 4)
    dk = (tau / 2 / M) * dk * real[:, :, None, None]
    dv = dv / M * real[:, :, None, None]
    return dq, dk, dv, jnp.zeros_like(real), jnp.zeros_like(planes)


_lsh_cumulation.defvjp(_lsh_fwd, _lsh_bwd)
