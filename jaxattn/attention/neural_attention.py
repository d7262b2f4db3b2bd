"""Neural attention: attention logits from a small feed-forward network on each (query, key) pair.

"Neural Attention: A Novel Mechanism for Enhanced Expressive Power in Transformer Models"
(2025), arXiv:2502.17206 (the id as given in the catalog brief; not checked against arXiv here,
which this machine cannot reach). Instead of the dot product q_i·k_j, each logit is a one-hidden
layer network of the pair, per query head n with hidden width F:

    e_ij = w_nᵀ σ(q_i W_q,n + k_j W_k,n + b_n)           W_q,n, W_k,n [H, F], b_n, w_n [F]
    out_i = Σ_j softmax_j(scale · e_ij + bias_ij + mask) v_j

The first layer acting on the concatenation [q_i; k_j] splits into q_i W_q + k_j W_k, so the
projections cost O((T+S)·H·F) and the pairwise part is a broadcast sum plus σ and a dot with w:
O(T·S·F) time. That part is computed in chunks of `chunk_size` queries (`lax.map`, each chunk
rematerialised in the backward pass by `jax.checkpoint`), so the T×S×F hidden tensor never exists:
memory O(T·S + chunk·S·F). `naive_neural_attention` materialises it, for tests.

Not compared with a reference implementation (none found among public repositories in the time
given); σ is `activation` (default GELU) and the parameters' init (normal, std 1/sqrt(fan-in),
b = 0) are this module's choices, since the paper's were not available here. `scale` multiplies
the logits and defaults to 1 (the network's output needs no 1/sqrt(H)).

Masks: the logits are dense, so every mask is exact: causal, key padding, packing, an additive
`bias`, GQA (W_k,n acts on kv head n // G), cross-attention; dropout on the probabilities.

Complexity: O(T·S·F + (T+S)·H·F + T·S·H) time, O(T·S + chunk·S·F) memory per head.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxattn.attention import core, softmax

KIND = "neural_attention"
ACTIVATIONS = {"gelu": jax.nn.gelu, "relu": jax.nn.relu, "tanh": jnp.tanh}


def neural_attention(
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
    hidden_dim: int = 16,
    chunk_size: int = 128,
    activation: str = "gelu",
    w_query: jax.Array | None = None,
    w_key: jax.Array | None = None,
    b_hidden: jax.Array | None = None,
    w_out: jax.Array | None = None,
) -> jax.Array:
    """Softmax attention whose logits come from a per-head FFN on each (q_i, k_j) pair.

    Args:
      query: [B, T, N, H].
      key, value: [B, S, K, H]; K divides N (GQA/MQA). T != S is cross-attention.
      is_causal, kv_mask, q_segment_ids, kv_segment_ids: the usual masks, applied to the logits.
      bias: additive logits bias broadcastable to [B, N, T, S].
      scale: multiplies the FFN logits; default 1.
      dropout_rate, dropout_rng: probability dropout, keep mask
        `core.dropout_keep(dropout_rng, dropout_rate, (B, K, G, T, S))`.
      hidden_dim: F, the pair network's hidden width (the tensors' last axis).
      chunk_size: queries per chunk of the pairwise computation (memory chunk·S·F per head).
      activation: σ, one of 'gelu', 'relu', 'tanh'.
      w_query, w_key: [N, H, F]; b_hidden, w_out: [N, F] (param_specs).

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
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"{KIND}: activation must be one of {sorted(ACTIVATIONS)}; got {activation!r}"
        )
    if chunk_size < 1:
        raise ValueError(f"{KIND}: chunk_size must be >= 1; got {chunk_size}")
    G = N // K
    qp, kp, w = _projections(query, key, w_query, w_key, b_hidden, w_out, K, G, hidden_dim)
    sigma = ACTIVATIONS[activation]

    # Chunks of c queries: pad T to n·c and map over the chunks (rematerialised in backward).
    c = min(chunk_size, T)
    n = -(-T // c)
    qp = jnp.pad(qp, ((0, 0), (0, 0), (0, 0), (0, n * c - T), (0, 0)))  # [B, K, G, n·c, F]
    qp = jnp.moveaxis(qp.reshape(B, K, G, n, c, -1), 3, 0)  # [n, B, K, G, c, F]

    @jax.checkpoint
    def chunk_logits(q_chunk):  # [B, K, G, c, F] -> [B, K, G, c, S]
        hidden = sigma(q_chunk[:, :, :, :, None, :] + kp[:, :, :, None, :, :])  # [B,K,G,c,S,F]
        return jnp.einsum("BKGcSF,KGF->BKGcS", hidden, w)

    logits = jax.lax.map(chunk_logits, qp)  # [n, B, K, G, c, S]
    logits = jnp.moveaxis(logits, 0, 3).reshape(B, K, G, n * c, S)[:, :, :, :T]
    return _attend(
        logits * (1.0 if scale is None else scale),
        value,
        is_causal=is_causal,
        kv_mask=kv_mask,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
        bias=bias,
        dropout_rate=dropout_rate,
        dropout_rng=dropout_rng,
    )


def naive_neural_attention(
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
    hidden_dim: int = 16,
    activation: str = "gelu",
    w_query: jax.Array | None = None,
    w_key: jax.Array | None = None,
    b_hidden: jax.Array | None = None,
    w_out: jax.Array | None = None,
) -> jax.Array:
    """The same attention with the pair network applied to the concatenation [q_i; k_j] of every
    pair at once (the full [B, N, T, S, F] hidden tensor; kv heads repeated), for tests."""
    B, T, N, H = query.shape
    S, K = key.shape[1], key.shape[2]
    G = N // K
    w_query, w_key, b_hidden, w_out = _tensors(w_query, w_key, b_hidden, w_out, N, H, hidden_dim)
    k = jnp.repeat(key.astype(jnp.float32), G, axis=2)  # [B, S, N, H]
    q = query.astype(jnp.float32)
    pairs = jnp.concatenate(
        [
            jnp.broadcast_to(q[:, :, None], (B, T, S, N, H)),
            jnp.broadcast_to(k[:, None], (B, T, S, N, H)),
        ],
        axis=-1,
    )  # [B, T, S, N, 2H]
    w1 = jnp.concatenate([w_query, w_key], axis=1)  # [N, 2H, F]
    hidden = ACTIVATIONS[activation](jnp.einsum("BTSNI,NIF->BTSNF", pairs, w1) + b_hidden)
    logits = jnp.einsum("BTSNF,NF->BNTS", hidden, w_out) * (1.0 if scale is None else scale)
    if q_segment_ids is not None and kv_segment_ids is None:
        kv_segment_ids = q_segment_ids
    return _attend(
        logits.reshape(B, K, G, T, S),
        value,
        is_causal=is_causal,
        kv_mask=kv_mask,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
        bias=bias,
    )


def _tensors(w_query, w_key, b_hidden, w_out, N, H, F):
    f32 = jnp.float32
    if w_query is None or w_key is None or w_out is None:
        raise ValueError(f"{KIND}: needs the declared tensors w_query, w_key, w_out (param_specs)")
    b_hidden = jnp.zeros((N, F), f32) if b_hidden is None else b_hidden
    for name, x, shape in (
        ("w_query", w_query, (N, H, F)),
        ("w_key", w_key, (N, H, F)),
        ("b_hidden", b_hidden, (N, F)),
        ("w_out", w_out, (N, F)),
    ):
        if x.shape != shape:
            raise ValueError(f"{KIND}: {name} must be {shape} (hidden_dim={F}); got {x.shape}")
    return w_query.astype(f32), w_key.astype(f32), b_hidden.astype(f32), w_out.astype(f32)


def _projections(query, key, w_query, w_key, b_hidden, w_out, K, G, F):
    """q W_q [B, K, G, T, F], k W_k + b [B, K, G, S, F], w [K, G, F], float32."""
    B, T, N, H = query.shape
    w_query, w_key, b_hidden, w_out = _tensors(w_query, w_key, b_hidden, w_out, N, H, F)
    # In float32: XLA:CPU has no bf16 x bf16 -> f32 dot for these batched contractions, and
    # the projections are O((T+S)·H·F), small next to the pairwise part.
    q = query.reshape(B, T, K, G, H).astype(jnp.float32)
    qp = jnp.einsum("BTKGH,KGHF->BKGTF", q, w_query.reshape(K, G, H, F))
    kp = jnp.einsum("BSKH,KGHF->BKGSF", key.astype(jnp.float32), w_key.reshape(K, G, H, F))
    kp = kp + b_hidden.reshape(1, K, G, 1, F)
    return qp, kp, w_out.reshape(K, G, F)


def _attend(
    logits,  # [B, K, G, T, S] float32
    value,
    *,
    is_causal,
    kv_mask,
    q_segment_ids,
    kv_segment_ids,
    bias,
    dropout_rate=0.0,
    dropout_rng=None,
):
    B, K, G, T, S = logits.shape
    H = value.shape[-1]
    if bias is not None:
        logits = logits + softmax._group_heads(jnp.asarray(bias, jnp.float32), K, G)
    keep = core.make_keep_mask(
        T,
        S,
        is_causal=is_causal,
        kv_mask=kv_mask,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
    )
    if keep is not None:
        keep = keep[:, :, None]  # [B|1, 1, 1, T, S]
        logits = jnp.where(keep, logits, core.MASK_VALUE)
    probs = jax.nn.softmax(logits, axis=-1)
    if keep is not None:
        probs = jnp.where(keep, probs, 0.0)  # a fully masked row is 0
    probs = core.dropout(probs, dropout_rate, dropout_rng).astype(value.dtype)
    out = jnp.einsum("BKGTS,BSKH->BTKGH", probs, value, preferred_element_type=jnp.float32)
    return out.reshape(B, T, K * G, H).astype(value.dtype)


def param_specs(
    hparams: Mapping[str, Any], *, num_heads: int, num_kv_heads: int, head_dim: int, kv_length: int
) -> dict[str, core.ParamSpec]:
    """W_q, W_k [N, H, F] and w [N, F] normal with std 1/sqrt(fan-in); b [N, F] zeros."""
    del num_kv_heads, kv_length
    F = int(hparams.get("hidden_dim", 16))
    normal = jax.nn.initializers.normal
    return {
        "w_query": core.ParamSpec((num_heads, head_dim, F), normal(head_dim**-0.5), ("heads", "kv", None)),
        "w_key": core.ParamSpec((num_heads, head_dim, F), normal(head_dim**-0.5), ("heads", "kv", None)),
        "b_hidden": core.ParamSpec((num_heads, F), jax.nn.initializers.zeros, ("heads", None)),
        "w_out": core.ParamSpec((num_heads, F), normal(F**-0.5), ("heads", None)),
    }  # fmt: skip


def example_tensors(num_heads: int, head_dim: int, hidden_dim: int, seed: int = 0):
    """Fixed tensors drawn like `param_specs` (with a non-zero b), for tests and references."""
    N, H, F = num_heads, head_dim, hidden_dim
    r = jax.random.split(jax.random.key(seed), 4)
    return {
        "w_query": jax.random.normal(r[0], (N, H, F)) * H**-0.5,
        "w_key": jax.random.normal(r[1], (N, H, F)) * H**-0.5,
        "b_hidden": jax.random.normal(r[2], (N, F)) * 0.3,
        "w_out": jax.random.normal(r[3], (N, F)) * F**-0.5,
    }


def example_reference(
    query: jax.Array, key: jax.Array, value: jax.Array, *, hidden_dim: int = 8, **masks
) -> jax.Array:
    """`naive_neural_attention` with `example_tensors(N, H, hidden_dim)`: the battery's reference
    (called like a kind, without tensors)."""
    tensors = example_tensors(query.shape[2], query.shape[3], hidden_dim)
    return naive_neural_attention(query, key, value, hidden_dim=hidden_dim, **masks, **tensors)
