"""Linear attention with a trainable feed-forward feature map (Yorsh & Kovalenko 2022).

Paper: Uladzislau Yorsh, Alexander Kovalenko 2022, "Linear Self-Attention Approximation via
Trainable Feedforward Kernel", https://arxiv.org/abs/2211.04076. The kernel exp(q·k) of softmax
attention is replaced by φ(q)·φ(k) with φ a small feed-forward network trained end to end, then
the usual linear-attention sums (linear.py) give O(T·H²) cost.

The map here, per kv head (query head n uses the map of kv head n // G), for x [H]:

    φ(x) = elu(x + W₂ gelu(W₁ x + b₁) + b₂) + 1        W₁ [H, R], b₁ [R], W₂ [R, H], b₂ [H]

a residual MLP whose output goes through elu + 1, so features are positive (the normaliser
Σ_j φ(q_t)·φ(k_j) never vanishes) and F = H. The same φ is applied to queries and keys. W₂
starts small (normal, 0.02) and b₂ at zero, so an untrained layer is close to `linear` (elu+1
linear attention); "φ frozen to elu + 1" is W₂ = 0, b₂ = 0 exactly.
The residual/elu+1 design and sharing one φ between queries and keys are this repository's
choices, not a transcription of one of the paper's kernels; no public reference implementation
was compared (we found none to run beside ours).

    out_t = Σ_j φ(q_t)·φ(k_j) v_j / Σ_j φ(q_t)·φ(k_j)     over the keys query t sees.

Shapes: query [B, T, N, H], key/value [B, S, K, H] -> [B, T, N, H]. Complexity: O((T+S)·H·(R+H))
time, O(H²) state per head; causal O(T·(C+H)·H) (chunked scan, linear.py). Masks: causal, key
padding, packing (linear.py's scan, exact), GQA, cross-attention. No bias (no logits) and no
dropout (no probabilities are formed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxattn import errors
from jaxattn.attention import core, linear

KIND = "trainable_kernel"
TENSORS = ("kernel_w1", "kernel_b1", "kernel_w2", "kernel_b2")


def trainable_kernel_attention(
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
    hidden_dim: int = 32,
    chunk_size: int = 64,
    kernel_w1: jax.Array | None = None,
    kernel_b1: jax.Array | None = None,
    kernel_w2: jax.Array | None = None,
    kernel_b2: jax.Array | None = None,
) -> jax.Array:
    """Linear attention with the trainable residual-MLP feature map φ (module docstring).

    Args:
      query: [B, T, N, H].
      key, value: [B, S, K, H]; K divides N (GQA/MQA). T != S is cross-attention.
      is_causal: query t sees keys s <= t (linear.py's chunked scan).
      kv_mask: [B, S] bool, True = real key; padded keys are left out of the sums.
      q_segment_ids, kv_segment_ids: packed contiguous segments (T == S), exact.
      bias: unsupported (raises): no T×S logits.
      scale: multiplies the queries before φ; None = 1 (as in `linear`).
      dropout_rate, dropout_rng: unsupported for a rate > 0 (no probabilities are formed).
      hidden_dim: R, the MLP's hidden width (param_specs).
      chunk_size: C of the causal / packed scan; the result does not depend on it.
      kernel_w1, kernel_b1, kernel_w2, kernel_b2: [K, H, R], [K, R], [K, R, H], [K, H], the
        declared MLP. None for all four means φ = elu + 1 (`linear`).

    Returns:
      [B, T, N, H] in value.dtype; zeros for a query that sees no key.
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
    linear.check_packing(KIND, q_segment_ids, T, S)
    linear.check_chunk_size(KIND, chunk_size)
    mlp = _check_tensors(K, H, (kernel_w1, kernel_b1, kernel_w2, kernel_b2))
    q = query.reshape(B, T, K, N // K, H).astype(jnp.float32)
    if scale is not None:
        q = q * scale
    kv_valid = jnp.ones((B, S), bool) if kv_mask is None else kv_mask.astype(bool)
    out = linear.feature_attention(
        feature_map(q, mlp, head_axis=2),
        feature_map(key, mlp, head_axis=2),
        value,
        kv_valid=kv_valid,
        is_causal=is_causal,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
        chunk_size=chunk_size,
    )  # [B, T, K, G, H]
    return out.reshape(B, T, N, H).astype(value.dtype)


def _check_tensors(K: int, H: int, mlp):
    given = [x is not None for x in mlp]
    if not any(given):
        return None
    if not all(given):
        raise ValueError(f"{KIND}: give all of {TENSORS} or none")
    w1 = mlp[0]
    if w1.ndim != 3 or w1.shape[:2] != (K, H):
        raise ValueError(f"{KIND}: kernel_w1 must be [K, H, R] = [{K}, {H}, R]; got {w1.shape}")
    return tuple(x.astype(jnp.float32) for x in mlp)


def feature_map(x: jax.Array, mlp, *, head_axis: int) -> jax.Array:
    """φ(x) = elu(x + W₂ gelu(W₁ x + b₁) + b₂) + 1 over the last axis, float32, with the MLP of
    the kv head at `head_axis` (x [B, L, K, H] or [B, L, K, G, H]); mlp None: elu + 1."""
    x = x.astype(jnp.float32)
    if mlp is None:
        return linear.elu_feature_map(x)
    w1, b1, w2, b2 = mlp

    if x.ndim == 4:  # [B, L, K, H]
        h = jax.nn.gelu(jnp.einsum("BLKH,KHR->BLKR", x, w1) + b1)
        delta = jnp.einsum("BLKR,KRH->BLKH", h, w2) + b2
    else:  # [B, L, K, G, H]
        h = jax.nn.gelu(jnp.einsum("BLKGH,KHR->BLKGR", x, w1) + b1[:, None])
        delta = jnp.einsum("BLKGR,KRH->BLKGH", h, w2) + b2[:, None]
    return jax.nn.elu(x + delta) + 1.0


def quadratic_trainable_kernel_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    *,
    is_causal: bool = False,
    kv_mask: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    scale: float | None = None,
    kernel_w1: jax.Array | None = None,
    kernel_b1: jax.Array | None = None,
    kernel_w2: jax.Array | None = None,
    kernel_b2: jax.Array | None = None,
    **unused: Any,
) -> jax.Array:
    """The same φ through the explicit T×S normalised kernel matrix (float32): the test
    reference. Returns [B, T, N, H] f32."""
    del unused
    B, T, N, H = query.shape
    K = key.shape[2]
    mlp = _check_tensors(K, H, (kernel_w1, kernel_b1, kernel_w2, kernel_b2))
    q = query.reshape(B, T, K, N // K, H).astype(jnp.float32) * (1.0 if scale is None else scale)
    out = linear.quadratic_feature_attention(
        feature_map(q, mlp, head_axis=2),
        feature_map(key, mlp, head_axis=2),
        value,
        kv_valid=kv_mask,
        is_causal=is_causal,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
    )
    return out.reshape(B, T, N, H)


def param_specs(
    hparams: Mapping[str, Any], *, num_heads: int, num_kv_heads: int, head_dim: int, kv_length: int
) -> dict[str, core.ParamSpec]:
    """The MLP per kv head: W₁ lecun-normal, W₂ normal(0.02), biases zero, so φ starts close to
    elu + 1 (and the battery's checks exercise the MLP, which an all-zero W₂ would bypass)."""
    del num_heads, kv_length
    R = hparams.get("hidden_dim", 32)
    if not isinstance(R, int) or R < 1:
        raise errors.ConfigError(f"{KIND}: hidden_dim must be a positive int; got {R!r}")
    K, H = num_kv_heads, head_dim
    zeros = jax.nn.initializers.zeros
    return {
        "kernel_w1": core.ParamSpec(
            (K, H, R),
            jax.nn.initializers.lecun_normal(in_axis=1, out_axis=2),
            ("heads", "kv", None),
        ),
        "kernel_b1": core.ParamSpec((K, R), zeros, ("heads", None)),
        "kernel_w2": core.ParamSpec(
            (K, R, H), jax.nn.initializers.normal(0.02), ("heads", None, "kv")
        ),
        "kernel_b2": core.ParamSpec((K, H), zeros, ("heads", "kv")),
    }
