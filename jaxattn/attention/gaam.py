"""Gaussian Adaptive Attention (GAAM; Ioannides et al. 2024, https://arxiv.org/abs/2401.11143).

Ioannides, Chadha, Elkins, "Gaussian Adaptive Attention is All You Need: Robust Contextual
Representations Across Multiple Modalities", 2024, arXiv:2401.11143. A token mixer (registry
family 'mixer') without queries or keys: every feature is re-weighted by a product of Gaussians
of its own standardised value, normalised along the token axis. Shape letters (core.py) plus
n = num_heads, E = D / n (a head is a slice of E features), G = num_gaussians, g a Gaussian:

    μ[b, d]     = mean over real t of x[b, t, d]                               [B, D]
    σ²[b, d]    = unbiased variance over real t of x[b, t, d] + eps            [B, D]
    z_g[b,t,d]  = (x[b, t, d] - μ[b, d] - δ[h(d), g]) / σ[b, d]                h(d) = d // E
    w[b, t, d]  = Π_g N(z_g; 0, c[h(d), g]²)  normalised over real t:  Σ_t w[b, t, d] = 1
    y[b, t, d]  = x[b, t, d] · w[b, t, d]                                      [B, T, D]

The normalisation is computed as a masked softmax over t of the log-density Σ_g -z_g² / (2 c_g²)
(the Gaussians' constants 1/sqrt(2π c_g²) do not depend on t and cancel), which is the authors'
`mixture / mixture.sum(axis)` without its underflow: their product of densities reaches 0 for
outlying values and their clamp(eps) then returns 0 weights, where the softmax stays exact.

The authors' code (gioannides/Gaussian-Adaptive-Attention, GaussianAdaptiveAttention and
MultiHeadGaussianAdaptiveAttention) differs in three places, on purpose:
  - its heads are chunks of the normalisation axis itself; here a head is a slice of features
    (the paper's description: per-head parameters over a feature slice), the token axis whole;
  - it initialises c from N(0, 1) (so |c| can start near 0 and the weights near one-hot); here
    c starts at 1 and δ at 0 (its δ init too);
  - padding: it recognises pads by a padding value and takes the mean and variance over all
    positions, pads counted as zeros; here kv_mask excludes pads from μ, σ² and the
    normalisation, so real outputs do not depend on pads. Padded rows return x, as theirs.
Without padding and with per-feature heads the two agree: their forward, transcribed outside
the repository and run in torch float64 on a fixed input (B=2, T=16, D=8, n=2, G=3, random δ and
c), differs from ours (float32) by at most 1.9e-8.

Masks:
  - kv_mask (padding): exact (statistics and normalisation over real tokens only).
  - is_causal: refused. μ, σ² and the normalisation are whole-sequence statistics; a causal
    form would need prefix statistics, which the paper does not define.
  - segment ids (packing): refused (per-segment statistics not implemented).
  - bias: refused (no logits). dropout: refused (the weights are not attention probabilities
    over keys, and the authors apply none).

Omitted tensors (tests): δ = 0, c = 1 (the initial values).

Complexity: O(T·D·G) time, O(T·D) memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxattn.attention import core

KIND = "gaam"
EPS = 1e-8  # the authors' variance eps


def gaam_mixing(
    x: jax.Array,
    *,
    is_causal: bool = False,
    kv_mask: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    bias: jax.Array | None = None,
    dropout_rate: float = 0.0,
    dropout_rng: jax.Array | None = None,
    num_heads: int = 2,
    num_gaussians: int = 4,
    mean_offsets: jax.Array | None = None,
    scales: jax.Array | None = None,
) -> jax.Array:
    """GAAM on x [B, T, D]: y = x ⊙ (product of Gaussians of standardised x, normalised over T).

    Args:
      x: [B, T, D].
      is_causal: unsupported (raises): whole-sequence statistics.
      kv_mask: [B, T] bool, True = real token (exact); padded rows return x.
      q_segment_ids, kv_segment_ids: unsupported (packing raises).
      bias: unsupported (raises).
      dropout_rate, dropout_rng: unsupported: a rate > 0 raises.
      num_heads: n, feature slices of E = D / n with their own δ and c.
      num_gaussians: G.
      mean_offsets: δ [n, G] (declared; init 0).
      scales: c [n, G] (declared; init 1).

    Returns:
      [B, T, D] in x.dtype.
    """
    if is_causal:
        raise core.unsupported(KIND, "is_causal=True (mean and variance are over the whole axis)")
    if q_segment_ids is not None or kv_segment_ids is not None:
        raise core.unsupported(KIND, "q_segment_ids/kv_segment_ids (packing)")
    if bias is not None:
        raise core.unsupported(KIND, "bias (no attention logits)")
    core.reject_dropout(KIND, dropout_rate, "its Gaussian weights are not probabilities over keys")
    if x.ndim != 3:
        raise ValueError(f"{KIND}: x must be [B, T, D]; got {x.shape}")
    B, T, D = x.shape
    if D % num_heads:
        raise ValueError(f"{KIND}: num_heads={num_heads} must divide D={D}")
    if kv_mask is not None and kv_mask.shape != (B, T):
        raise ValueError(f"{KIND}: kv_mask must be [B, T] = {(B, T)}; got {kv_mask.shape}")
    f32 = jnp.float32
    if mean_offsets is None:
        mean_offsets = jnp.zeros((num_heads, num_gaussians), f32)
    if scales is None:
        scales = jnp.ones((num_heads, num_gaussians), f32)
    if mean_offsets.shape != (num_heads, num_gaussians) or scales.shape != mean_offsets.shape:
        raise ValueError(
            f"{KIND}: mean_offsets and scales must be {(num_heads, num_gaussians)}; got "
            f"{mean_offsets.shape}, {scales.shape}"
        )
    E = D // num_heads
    x32 = x.astype(f32).reshape(B, T, num_heads, E)  # [B, T, n, E]
    valid = jnp.ones((B, T), bool) if kv_mask is None else kv_mask.astype(bool)
    w = valid.astype(f32)[:, :, None, None]  # [B, T, 1, 1]
    count = jnp.sum(w, axis=1)  # [B, 1, 1]
    mean = jnp.sum(x32 * w, axis=1) / jnp.maximum(count, 1.0)  # [B, n, E]
    centred = (x32 - mean[:, None]) * w
    var = jnp.sum(centred**2, axis=1) / jnp.maximum(count - 1.0, 1.0) + EPS  # unbiased, as torch
    delta = mean_offsets.astype(f32)[None, None, :, None, :]  # [1, 1, n, 1, G]
    c2 = jnp.square(scales.astype(f32))[None, None, :, None, :]
    z = (x32[..., None] - mean[:, None, :, :, None] - delta) / jnp.sqrt(var)[:, None, :, :, None]
    log_density = jnp.sum(-jnp.square(z) / (2.0 * c2), axis=-1)  # [B, T, n, E]
    log_density = jnp.where(valid[:, :, None, None], log_density, core.MASK_VALUE)
    weights = jax.nn.softmax(log_density, axis=1)  # over tokens
    y = jnp.where(valid[:, :, None, None], x32 * weights, x32)
    return y.reshape(B, T, D).astype(x.dtype)


def param_specs(
    hparams: Mapping[str, Any], *, num_heads: int, num_kv_heads: int, head_dim: int, kv_length: int
) -> dict[str, core.ParamSpec]:
    """δ [n, G] (zeros) and c [n, G] (ones); n, G are the kind's hyper-parameters."""
    del num_heads, num_kv_heads, head_dim, kv_length
    shape = (hparams.get("num_heads", 2), hparams.get("num_gaussians", 4))
    return {
        "mean_offsets": core.ParamSpec(shape, jax.nn.initializers.zeros, (None, None)),
        "scales": core.ParamSpec(shape, jax.nn.initializers.ones, (None, None)),
    }
