"""Top-k sparse attention: each query keeps only its k largest logits, then a softmax over them.

The top-k sparse global attention of DLGSANet (Li et al. 2023, "DLGSANet: Lightweight Dynamic
Local and Global Self-Attention Networks for Image Super-Resolution", arXiv:2301.02031) and the
core of IceFormer (Mao et al. 2024, "IceFormer: Accelerated Inference with Long-Sequence
Transformers on CPUs", arXiv:2405.02842), which finds the same k keys with a k-NN index.

Per batch b, query head n (kv head n // G), query t:

    A[t, s] = Q[t]·K[s]·scale + bias[n, t, s]          s allowed by the masks
    I(t)    = the min(k, #allowed) keys s with the largest A[t, s]
    P[t, s] = exp(A[t, s]) / Σ_{s' ∈ I(t)} exp(A[t, s'])  for s ∈ I(t), else 0
    out[t]  = Σ_s P[t, s] V[s]

This module is the dense reference: the [B, N, T, S] logits are formed and `lax.top_k` picks the
indices, O(T·S·H + T·S·log k) time and O(T·S) memory per (batch, head). With k >= S (or k >= the
number of allowed keys of every row) it is exactly softmax.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxattn import errors
from jaxattn.attention import core, softmax

KIND = "topk"


def topk_attention(
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
    top_k: int = 32,
) -> jax.Array:
    """Softmax over the `top_k` largest logits of every query row (the others get probability 0).

    Paper: DLGSANet (Li et al. 2023, arXiv:2301.02031), top-k sparse attention; IceFormer (Mao et
    al. 2024, arXiv:2405.02842) uses the same rule at inference with a k-NN search.

    Args:
      query: [B, T, N, H].
      key, value: [B, S, K, H]; K divides N (GQA/MQA). T != S is cross-attention.
      is_causal, kv_mask, q_segment_ids, kv_segment_ids: the keys a query may attend to; the top
        k are chosen among those only, so a row with fewer than k allowed keys keeps all of them
        (and a row with none returns zeros).
      bias: additive logits bias broadcastable to [B, N, T, S], added before the selection.
      scale: logits scale, default 1/sqrt(H).
      dropout_rate, dropout_rng: attention-probability dropout on the sparse [B, N, T, S]
        probabilities; the keep mask is `softmax.dropout_mask(dropout_rng, rate, B, N, T, S)`.
      top_k: k, the number of keys each query keeps (>= 1; k >= S is softmax).

    Returns:
      [B, T, N, H] in value.dtype.

    Selection and ties: exactly min(k, allowed) keys per row have non-zero weight. `lax.top_k`
    breaks ties by position (the lower key index first), so among keys with equal logits the
    earliest are kept; the choice is made in float32 on the scaled, biased logits. The selection
    is a discrete choice: gradients flow through the kept logits only.

    Masks: causal, key padding, packing, bias, GQA, cross-attention and dropout are all exact,
    because the top k are taken per row among the allowed keys only (a causal row never looks at
    a future key; a packed row never at another segment's).

    Complexity: O(B·N·T·S·H) time and O(B·N·T·S) memory (dense reference; IceFormer's k-NN index
    would make it O(T·k·H) plus the search). Not compared with a reference implementation: the
    rule is fully specified by the equations above, and tests/attention/topk_test.py holds it to
    a float64 numpy transcription of them.
    """
    if not isinstance(top_k, int) or top_k < 1:
        raise errors.ConfigError(f"{KIND}: top_k must be a positive int; got {top_k!r}")
    B, T, S, N, K, H = core.check_inputs(
        KIND,
        query,
        key,
        value,
        kv_mask=kv_mask,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
    )
    q_ids, kv_ids = core.resolve_segment_ids(KIND, q_segment_ids, kv_segment_ids, T, S)
    use_dropout = core.check_dropout(KIND, dropout_rate, dropout_rng)
    G = N // K
    scale = core.default_scale(scale, H)

    q = query.reshape(B, T, K, G, H)
    logits = jnp.einsum("BTKGH,BSKH->BKGTS", q, key, preferred_element_type=jnp.float32) * scale
    if bias is not None:
        logits = logits + softmax._group_heads(jnp.asarray(bias, jnp.float32), K, G)
    keep = core.make_keep_mask(
        T, S, is_causal=is_causal, kv_mask=kv_mask, q_segment_ids=q_ids, kv_segment_ids=kv_ids
    )
    allowed = jnp.ones((1, 1, 1, T, S), bool) if keep is None else keep[:, :, None]
    logits = jnp.where(allowed, logits, core.MASK_VALUE)  # [B, K, G, T, S]
    keep = allowed & top_k_mask(logits, top_k)
    logits = jnp.where(keep, logits, core.MASK_VALUE)
    probs = jnp.where(keep, jax.nn.softmax(logits, axis=-1), 0.0)  # fully masked row -> zeros
    if use_dropout:
        kept = softmax.dropout_mask(dropout_rng, dropout_rate, B, N, T, S).reshape(B, K, G, T, S)
        probs = core.apply_dropout(probs, kept, dropout_rate)
    out = jnp.einsum(
        "BKGTS,BSKH->BTKGH", probs.astype(value.dtype), value, preferred_element_type=jnp.float32
    )
    return out.reshape(B, T, N, H).astype(value.dtype)


def top_k_mask(logits: jax.Array, k: int) -> jax.Array:
    """bool [..., S]: True at the k largest entries of each row (ties: lower index first).

    Exactly min(k, S) entries per row are True; masked entries (MASK_VALUE) are chosen only when
    a row has fewer than k others, and the caller ANDs them away.
    """
    S = logits.shape[-1]
    if k >= S:
        return jnp.ones(logits.shape, bool)
    _, idx = jax.lax.top_k(jax.lax.stop_gradient(logits), k)  # [..., k]
    return jnp.put_along_axis(
        jnp.zeros(logits.shape, bool), idx, True, axis=-1, inplace=False
    )  # [..., S]
