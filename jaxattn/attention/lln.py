"""Linear Log-Normal (LLN) attention: exponential feature maps whose spread is moment-matched to
softmax's, from running standard deviations of q and k kept as non-gradient state.

Paper: Yury Nahshan, Joseph Kampeas, Emir Haleva 2023, "Linear Log-Normal Attention with
Unbiased Concentration", https://arxiv.org/abs/2311.13541.

    φ_q(q) = exp(α·q),  φ_k(k) = exp(β·k)   elementwise, [H] -> [H]
    out_t  = Σ_j φ_q(q_t)·φ_k(k_j) v_j / Σ_j φ_q(q_t)·φ_k(k_j)

Moment matching (derived here; the paper's own formulas for α, β were not available to us, so
this follows its idea, matching the spread of LLN's log-weights to softmax's): with
q, k entries of standard deviation σ_q, σ_k, softmax's log-weights scale·q·k have variance
σ_sm² = scale²·H·σ_q²·σ_k². An LLN log-weight log Σ_i exp(α q_i + β k_i) is the logsumexp of H
Gaussians of variance σ₀² = α²σ_q² + β²σ_k², whose variance g_H(σ₀) grows monotonically with
σ₀. We pick σ₀ = g_H⁻¹(σ_sm²) and split it evenly between the two maps (α σ_q = β σ_k):

    α = σ₀ / (sqrt(2)·σ_q),   β = σ₀ / (sqrt(2)·σ_k).

g_H is tabulated once per H by fixed-seed Monte Carlo (`_logsumexp_variance_table`, σ₀ up to
MAX_SIGMA) and inverted by interpolation. The closed-form Fenton–Wilkinson log-normal
approximation, σ₀² = ln(1 + H·(exp(σ_sm²) − 1)), was tried first and undershoots the log-weight
variance by about 2x at σ_sm² = 1 (tests/attention/lln_test.py measures the tabulated match).

σ_q and σ_k are the running standard deviations in the state (`q_std`, `k_std`, [K] each,
init 1; σ_q is over the G query heads of a kv head, so α and β are one pair per kv head and
the key features are shared by the group as GQA needs). The forward pass uses the stored
values, so an output never depends on other tokens through α, β (causality and padding stay
exact, and the batch does not change an example's output), and returns the state updated with
this call's statistics over real tokens: std ← m·std + (1 − m)·std(batch) (`std_momentum` m,
stop-gradient).

Stabilisation: a query's common factor exp(max_i α q_i) cancels, and a key's is carried as a
log-scale through linear.py (`k_log_scale`), so nothing overflows in float32.

"LLN+Diag" (`diag_block_size` > 0): the output is the average of LLN and block-diagonal softmax
attention (local.py's 'block' mode, blocks of that size), the paper's remedy for LLN's weaker
local concentration. Whether the paper averages or sums the two is not settled here; we
average (both are normalised attentions, so the average stays one).

Shapes: query [B, T, N, H], key/value [B, S, K, H] -> ([B, T, N, H], new state).
Complexity: O((T+S)·H²) time, O(H²) state per head (causal: O(T·(C+H)·H)); with Diag add
O(T·b·H). Masks: causal, key padding, packing (contiguous segments, exact), GQA, cross-attention
(not with Diag: block-diagonal softmax is self-attention only; it raises). No bias, no dropout.

Reference implementation: none public was found; not compared.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxattn import errors
from jaxattn.attention import core, linear, local

KIND = "lln"
MIN_STD = 1e-3  # α, β = c / std: a degenerate (constant) input must not blow them up
MAX_SIGMA = 12.0  # the table's largest σ₀ (softmax log-weight variances beyond it are clipped)


def lln_attention(
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
    std_momentum: float = 0.99,
    diag_block_size: int = 0,
    chunk_size: int = 64,
    q_std: jax.Array | None = None,
    k_std: jax.Array | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """LLN attention (module docstring); returns (out, {'q_std', 'k_std'} updated).

    Args:
      query: [B, T, N, H].
      key, value: [B, S, K, H]; K divides N (GQA/MQA). T != S is cross-attention.
      is_causal: query t sees keys s <= t (linear.py's chunked scan; Diag: causal blocks).
      kv_mask: [B, S] bool, True = real key; pads are left out of the sums and the statistics.
        In self-attention it also marks the padded queries (left out of q's statistics).
      q_segment_ids, kv_segment_ids: packed contiguous segments (T == S), exact.
      bias: unsupported (raises): no T×S logits.
      scale: softmax's logits scale that LLN matches, default 1/sqrt(H).
      dropout_rate, dropout_rng: unsupported for a rate > 0 (LLN forms no probabilities).
      std_momentum: m of the running standard deviations, in [0, 1].
      diag_block_size: b > 0 averages in block-diagonal softmax (LLN+Diag); 0 = plain LLN.
      chunk_size: C of the causal / packed scan; the result does not depend on it.
      q_std, k_std: [K], [K] the running σ_q, σ_k (state_specs, init 1); None means 1.

    Returns:
      ([B, T, N, H] in value.dtype, {'q_std': [K], 'k_std': [K]} float32, no gradient).
    """
    if bias is not None:
        raise core.unsupported(KIND, "bias")
    core.reject_dropout(KIND, dropout_rate, "LLN's exponential kernel forms no probabilities")
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
    linear.check_packing(KIND, q_segment_ids, T, S)
    linear.check_chunk_size(KIND, chunk_size)
    _check_hparams(std_momentum, diag_block_size)
    if diag_block_size and T != S:
        raise core.unsupported(
            KIND, f"cross-attention (T={T} != S={S}) with diag_block_size > 0 (LLN+Diag)"
        )
    G = N // K
    scale = core.default_scale(scale, H)
    sq = jnp.ones((K,), jnp.float32) if q_std is None else q_std.astype(jnp.float32)
    sk = jnp.ones((K,), jnp.float32) if k_std is None else k_std.astype(jnp.float32)
    alpha, beta = moment_matched_exponents(sq, sk, scale=scale, head_dim=H)  # [K], [K]
    kv_valid = jnp.ones((B, S), bool) if kv_mask is None else kv_mask.astype(bool)

    q = query.reshape(B, T, K, G, H).astype(jnp.float32)
    phi_q, phi_k, log_k = exp_features(q, key, alpha, beta)
    out = linear.feature_attention(
        phi_q,
        phi_k,
        value,
        kv_valid=kv_valid,
        is_causal=is_causal,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
        chunk_size=chunk_size,
        k_log_scale=log_k,
    ).reshape(B, T, N, H)
    if diag_block_size:
        diag = local.local_attention(
            query,
            key,
            value,
            is_causal=is_causal,
            kv_mask=kv_mask,
            q_segment_ids=q_segment_ids,
            kv_segment_ids=kv_segment_ids,
            scale=scale,
            mode="block",
            block_size=diag_block_size,
        )
        out = 0.5 * (out + diag.astype(jnp.float32))

    q_valid = kv_valid if T == S else jnp.ones((B, T), bool)
    new_state = {
        "q_std": _ema(sq, _std(query.reshape(B, T, K, G * H), q_valid), std_momentum),
        "k_std": _ema(sk, _std(key, kv_valid), std_momentum),
    }
    return out.astype(value.dtype), jax.tree.map(jax.lax.stop_gradient, new_state)


def _check_hparams(std_momentum: float, diag_block_size: int) -> None:
    if not 0.0 <= std_momentum <= 1.0:
        raise errors.ConfigError(f"{KIND}: std_momentum must be in [0, 1]; got {std_momentum!r}")
    if not isinstance(diag_block_size, int) or diag_block_size < 0:
        raise errors.ConfigError(
            f"{KIND}: diag_block_size must be an int >= 0; got {diag_block_size!r}"
        )


def moment_matched_exponents(
    q_std: jax.Array, k_std: jax.Array, *, scale: float, head_dim: int
) -> tuple[jax.Array, jax.Array]:
    """(α, β) per kv head from σ_q, σ_k [K] (module docstring)."""
    sq, sk = jnp.maximum(q_std, MIN_STD), jnp.maximum(k_std, MIN_STD)
    var_sm = scale**2 * head_dim * sq**2 * sk**2  # softmax's log-weight variance
    sigma, var_lse = _logsumexp_variance_table(head_dim)
    sigma_0 = jnp.interp(var_sm, jnp.asarray(var_lse), jnp.asarray(sigma))  # g_H⁻¹
    c = sigma_0 / math.sqrt(2.0)
    return c / sq, c / sk


@functools.cache
def _logsumexp_variance_table(head_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(σ₀ grid, g_H(σ₀) = Var[logsumexp(σ₀·z)], z ~ N(0, I_H)), fixed-seed Monte Carlo in
    float64; g_H is made strictly increasing (it is, up to sampling noise) for interpolation."""
    z = np.random.default_rng(0).standard_normal((8192, head_dim))
    sigma = np.linspace(0.0, MAX_SIGMA, 241)
    x = sigma[:, None, None] * z[None]  # [grid, M, H]
    top = x.max(axis=-1, keepdims=True)
    lse = top[..., 0] + np.log(np.exp(x - top).sum(axis=-1))  # [grid, M]
    var = np.maximum.accumulate(lse.var(axis=1)) + np.arange(sigma.size) * 1e-12
    return sigma.astype(np.float32), var.astype(np.float32)


def exp_features(q: jax.Array, k: jax.Array, alpha: jax.Array, beta: jax.Array):
    """(ψ_q [B, T, K, G, H], ψ_k [B, S, K, H], ℓ_k [B, S, K]) with φ_k = ψ_k·exp(ℓ_k): both maxed
    to 1 per vector (a query's factor cancels; a key's is the log-scale). α, β [K]."""
    aq = alpha[:, None, None] * q.astype(jnp.float32)  # [B, T, K, G, H]
    bk = beta[:, None] * k.astype(jnp.float32)  # [B, S, K, H]
    aq = aq - jax.lax.stop_gradient(jnp.max(aq, axis=-1, keepdims=True))
    log_k = jnp.max(bk, axis=-1)  # [B, S, K]
    return jnp.exp(aq), jnp.exp(bk - jax.lax.stop_gradient(log_k)[..., None]), log_k


def _std(x: jax.Array, valid: jax.Array) -> jax.Array:
    """Standard deviation per head over the real tokens, batch and channels: [B, L, M, H] -> [M]."""
    x = jax.lax.stop_gradient(x.astype(jnp.float32))
    w = valid[:, :, None, None].astype(jnp.float32)
    count = jnp.maximum(jnp.sum(w) * x.shape[-1], 1.0)
    mean = jnp.sum(x * w, axis=(0, 1, 3)) / count  # [M]
    var = jnp.sum(w * (x - mean[:, None]) ** 2, axis=(0, 1, 3)) / count
    return jnp.sqrt(var)


def _ema(old: jax.Array, new: jax.Array, momentum: float) -> jax.Array:
    return momentum * old + (1.0 - momentum) * new


def quadratic_lln_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    *,
    is_causal: bool = False,
    kv_mask: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    scale: float | None = None,
    q_std: jax.Array | None = None,
    k_std: jax.Array | None = None,
    **unused: Any,
) -> jax.Array:
    """Plain LLN (no Diag) through the explicit T×S normalised matrix of the same exponential
    weights, the test reference (float32, shift-stabilised). Returns [B, T, N, H]."""
    del unused
    B, T, N, H = query.shape
    K = key.shape[2]
    sq = jnp.ones((K,)) if q_std is None else q_std
    sk = jnp.ones((K,)) if k_std is None else k_std
    alpha, beta = moment_matched_exponents(sq, sk, scale=core.default_scale(scale, H), head_dim=H)
    q = query.reshape(B, T, K, N // K, H)
    phi_q, phi_k, log_k = exp_features(q, key, alpha, beta)
    out = linear.quadratic_feature_attention(
        phi_q,
        phi_k,
        value,
        kv_valid=kv_mask,
        is_causal=is_causal,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
        k_log_scale=log_k,
    )
    return out.reshape(B, T, N, H)


def state_specs(
    hparams: Mapping[str, Any], *, num_heads: int, num_kv_heads: int, head_dim: int, kv_length: int
) -> dict[str, core.ParamSpec]:
    """The running standard deviations q_std and k_std, [K] each, init 1 (unit-variance inputs)."""
    del num_heads, head_dim, kv_length
    _check_hparams(hparams.get("std_momentum", 0.99), hparams.get("diag_block_size", 0))
    ones = jax.nn.initializers.ones
    return {
        "q_std": core.ParamSpec((num_kv_heads,), ones, ("heads",)),
        "k_std": core.ParamSpec((num_kv_heads,), ones, ("heads",)),
    }


def log_weight_variance(q: jax.Array, k: jax.Array, alpha: float, beta: float) -> jax.Array:
    """Var over (t, s) of log Σ_i exp(α q_ti + β k_si) for q [T, H], k [S, H]: the spread of LLN's
    attention log-weights (the test compares it with softmax's, Var of scale·q·k)."""
    a = alpha * q[:, None, :] + beta * k[None, :, :]  # [T, S, H]
    return jnp.var(jax.nn.logsumexp(a, axis=-1))
