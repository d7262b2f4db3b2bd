"""XCiT's cross-covariance attention (XCA): attention over channels instead of tokens.

El-Nouby et al. 2021, "XCiT: Cross-Covariance Image Transformers",
https://arxiv.org/abs/2106.09681; the authors' code is facebookresearch/xcit, xcit.py, class XCA.

Per query head, with q̂ and k̂ the query and key columns L2-normalised along the token axis and τ
the head's learned temperature:

    A = softmax_j(τ · q̂ᵀ k̂)          [H, H]: A[i, j] = softmax over key channels j of τ·⟨q̂_i, k̂_j⟩
    out[t, i] = Σ_j A[i, j] · v[t, j]   (out = v · Aᵀ)

This is the authors' code, `attn = softmax((q̂ @ k̂ᵀ) * temperature, dim=-1); x = attn @ v` on
channel-major [d, N] tensors; the paper writes the same as V · A with A = softmax(K̂ᵀQ̂ / τ)
normalised over the key channels, and its τ divides where the code's `temperature` multiplies: the
code's convention is kept (τ multiplies, init 1.0, one per head). The code applies no 1/sqrt(H):
here `scale` defaults to 1 and multiplies with τ. Einsum letters are the house shape letters
(core.py) plus J, a second head-dim index (the key channels).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxattn.attention import core

KIND = "xca"
# torch.nn.functional.normalize's eps (the authors' code): x / max(‖x‖, eps).
NORM_EPS = 1e-12


def xca_attention(
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
    temperature: jax.Array | None = None,
) -> jax.Array:
    """Cross-covariance attention: an H×H channel attention map per head, applied to v.

    Args:
      query: [B, T, N, H].
      key, value: [B, S, K, H] with S == T (q̂ᵀk̂ sums over one token axis: no cross-attention);
        K divides N (GQA/MQA: query head n uses kv head n // G).
      is_causal: unsupported (raises): the token-axis normalisation and q̂ᵀk̂ see every token.
      kv_mask: [B, S] bool, True = real token. Padded tokens of q, k and v are zeroed before the
        normalisation, so they add nothing to the norms or to q̂ᵀk̂: real outputs are exactly those
        of the unpadded sequence. Padded query rows come out 0.
      q_segment_ids, kv_segment_ids: unsupported (raises): a packed row would need one H×H map per
        segment.
      bias: unsupported (raises): there are no token-token logits.
      scale: multiplies the logits with τ; default 1 (the authors' code has no 1/sqrt(H)).
      dropout_rate, dropout_rng: attention-probability dropout on A, [B, K, G, H, J] (the
        authors' `attn_drop`).
      temperature: [N] the learned per-head τ (param_specs: init 1.0); None means 1.

    Returns:
      [B, T, N, H] in value.dtype.

    Masks: key padding (exact); GQA/MQA. No causal, packing, bias or cross-attention.

    Complexity: O(T·H²) time, O(H²) memory per head (plus the normalised q, k: O(T·H)).
    """
    if is_causal:
        raise core.unsupported(KIND, "is_causal=True: the normalisation and q̂ᵀk̂ see all tokens")
    if q_segment_ids is not None or kv_segment_ids is not None:
        raise core.unsupported(KIND, "q_segment_ids/kv_segment_ids (packing)")
    if bias is not None:
        raise core.unsupported(KIND, "bias: XCA has no token-token logits")
    B, T, S, N, K, H = core.check_inputs(KIND, query, key, value, kv_mask=kv_mask)
    if T != S:
        raise core.unsupported(KIND, f"cross-attention (T={T} != S={S}): q̂ᵀk̂ sums over one axis")
    core.check_dropout(KIND, dropout_rate, dropout_rng)
    G = N // K
    f32 = jnp.float32
    tau = jnp.ones((N,), f32) if temperature is None else temperature.astype(f32)
    if tau.shape != (N,):
        raise ValueError(f"{KIND}: temperature must be [N] = {(N,)}; got {tau.shape}")
    tau = tau.reshape(K, G) * (1.0 if scale is None else scale)

    q, k, v = query.reshape(B, T, K, G, H), key, value
    if kv_mask is not None:
        real = kv_mask.astype(bool)
        q = jnp.where(real[:, :, None, None, None], q, 0)
        k, v = (jnp.where(real[:, :, None, None], x, 0) for x in (k, v))
    q_hat, k_hat = l2_normalize_tokens(q), l2_normalize_tokens(k)  # f32, unit columns
    logits = jnp.einsum("BTKGH,BTKJ->BKGHJ", q_hat, k_hat) * tau[None, :, :, None, None]
    probs = jax.nn.softmax(logits, axis=-1)  # over key channels J
    probs = core.dropout(probs, dropout_rate, dropout_rng).astype(value.dtype)
    out = jnp.einsum("BKGHJ,BTKJ->BTKGH", probs, v, preferred_element_type=f32)
    return out.reshape(B, T, N, H).astype(value.dtype)


def l2_normalize_tokens(x: jax.Array) -> jax.Array:
    """x / max(‖x‖, eps) along the token axis (1), in float32; all-zero columns stay 0 with
    finite gradients (the max is taken on the squared norm)."""
    x = x.astype(jnp.float32)
    sq = jnp.sum(x * x, axis=1, keepdims=True)
    return x * jax.lax.rsqrt(jnp.maximum(sq, NORM_EPS**2))


def channel_major_xca_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    *,
    kv_mask: jax.Array | None = None,
    temperature: jax.Array | None = None,
) -> jax.Array:
    """The authors' formulation step by step (channel-major [B, N, H, T], kv heads repeated, float32),
    for the battery to hold `xca` to. Returns [B, T, N, H] f32."""
    B, T, N, H = query.shape
    G = N // key.shape[2]
    k, v = (jnp.repeat(x, G, axis=2) for x in (key, value))
    q, k, v = (jnp.transpose(x.astype(jnp.float32), (0, 2, 3, 1)) for x in (query, k, v))
    if kv_mask is not None:
        q, k, v = (jnp.where(kv_mask[:, None, None, :], x, 0.0) for x in (q, k, v))
    q, k = (x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), NORM_EPS) for x in (q, k))
    tau = jnp.ones((N,)) if temperature is None else temperature
    attn = jax.nn.softmax(q @ jnp.swapaxes(k, -1, -2) * tau[:, None, None], axis=-1)  # [B, N, H, H]
    return jnp.transpose(attn @ v, (0, 3, 1, 2))


def param_specs(
    hparams: Mapping[str, Any], *, num_heads: int, num_kv_heads: int, head_dim: int, kv_length: int
) -> dict[str, core.ParamSpec]:
    """The per-head temperature τ [N], initialised to 1.0 as in the authors' code."""
    del hparams, num_kv_heads, head_dim, kv_length
    return {"temperature": core.ParamSpec((num_heads,), jax.nn.initializers.ones, ("heads",))}
