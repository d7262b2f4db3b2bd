"""Performer / FAVOR+ (Choromanski et al. 2020, https://arxiv.org/abs/2009.14794).

Softmax attention through positive orthogonal random features: with x = q·√scale, y = k·√scale
and r rows w_i of W drawn orthogonal in blocks, with Gaussian-like (chi-distributed) norms,

    φ(x) = exp(W x − ‖x‖²/2) / √r,      E_W[φ(x)·φ(y)] = exp(x·y) = exp(q·k·scale),

so softmax(Q Kᵀ·scale) V ≈ φ(Q)(φ(K)ᵀ V) / φ(Q)(φ(K)ᵀ 1) in O(T·r·H). `kernel='relu'` uses
φ(x) = (relu(W x) + ε)/√r instead (the "generalized" kernel of LRA-code and performer-pytorch).
The forms (bidirectional, chunked causal with prefix sums, packed) are linear.py's.

Einsum letters: house shape letters (core.py) plus R, the r random features.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxattn import errors
from jaxattn.attention import core, linear

KIND = "performer"
# The ReLU kernel's additive ε (kernel_epsilon in LRA-code's fast_attention and performer-pytorch):
# it keeps every denominator positive when relu(W x) is all zero.
RELU_EPSILON = 1e-3


def performer_attention(
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
    num_features: int = 256,
    kernel: str = "softmax",
    chunk_size: int = 64,
    rng: jax.Array | None = None,
) -> jax.Array:
    """FAVOR+ attention: random-feature approximation of softmax (or a ReLU kernel), linear in T.

    Paper: Choromanski et al. 2020, "Rethinking Attention with Performers",
    https://arxiv.org/abs/2009.14794.

    One W [r, H] is drawn from `rng` per call and shared by all heads and batch elements. The
    layer passes a new rng every training step (the features are redrawn each step) and a fixed
    one at evaluation; the same rng gives the same output.

    Numerical stabilisation (the factors cancel between numerator and denominator): each query's
    features are divided by their largest entry; key features carry a log-scale, and the keys a
    query sees are divided by the largest of them (linear.py), a running maximum in the causal
    scan, so a causal output never depends on later tokens.

    Args:
      query: [B, T, N, H].
      key, value: [B, S, K, H]; K divides N (GQA/MQA). T != S is cross-attention.
      is_causal: query t sees keys s <= t, by prefix sums over chunks (linear.feature_attention).
      kv_mask: [B, S] bool, True = real key; padded keys get φ(k) = 0.
      q_segment_ids, kv_segment_ids: packing (T == S, each segment one contiguous run).
      bias: unsupported (no T×S logits); raises UnsupportedFeatureError.
      scale: logits scale, default 1/sqrt(H); q and k are each multiplied by √scale (H^(−1/4)).
      dropout_rate, dropout_rng: unsupported: no attention probabilities are formed, so a rate
        > 0 raises UnsupportedFeatureError. Rate 0 is accepted.
      num_features: r.
      kernel: 'softmax' (positive random features, unbiased for exp(q·k·scale)) or 'relu'.
      chunk_size: C of the causal / packed scan; the result does not depend on it.
      rng: PRNG key for W (required).

    Returns:
      [B, T, N, H] in value.dtype (features, states and normalisers in float32). A query that
      sees no key returns zeros.

    Complexity: bidirectional O((T+S)·r·H) time, O((T+S)·r + r·H) memory per (batch, head);
    causal O(T·(C+H)·r) time, O(T·(C+r) + (T/C)·r·H) memory; drawing W costs O(r·H²).
    """
    if bias is not None:
        raise core.unsupported(KIND, "bias")
    core.reject_dropout(KIND, dropout_rate, "random-feature attention forms no probabilities")
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
    if not isinstance(num_features, int) or num_features < 1:
        raise errors.ConfigError(
            f"{KIND}: num_features must be a positive int; got {num_features!r}"
        )
    feature_map = _feature_map(kernel)
    if rng is None:
        raise ValueError(
            f"{KIND}: rng is required (the random features are drawn from it); the layer passes "
            "one when the spec declares needs_rng"
        )
    w = orthogonal_random_features(rng, num_features, H)  # [R, H]
    data_scale = math.sqrt(core.default_scale(scale, H))
    q = query.reshape(B, T, K, N // K, H)
    phi_q, _ = feature_map(q, w, data_scale)  # a per-query factor cancels: dropped
    phi_k, k_log_scale = feature_map(key, w, data_scale)
    kv_valid = jnp.ones((B, S), bool) if kv_mask is None else kv_mask.astype(bool)
    out = linear.feature_attention(
        phi_q,
        phi_k,
        value,
        kv_valid=kv_valid,
        is_causal=is_causal,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
        chunk_size=chunk_size,
        k_log_scale=k_log_scale,
    )  # [B, T, K, G, H]
    return out.reshape(B, T, N, H).astype(value.dtype)


def orthogonal_random_features(rng: jax.Array, num_features: int, head_dim: int) -> jax.Array:
    """W [r, H]: blocks of H orthonormal rows (QR of Gaussian matrices, sign-corrected so each
    block is Haar-distributed), truncated to r rows, each row scaled by an independent chi_H
    norm (the norm of a Gaussian H-vector). Every row is then marginally N(0, I_H)."""
    blocks_rng, norms_rng = jax.random.split(rng)
    num_blocks = -(-num_features // head_dim)
    gaussian = jax.random.normal(blocks_rng, (num_blocks, head_dim, head_dim), jnp.float32)
    q = orthonormalize_columns(gaussian)  # [blocks, H, H]
    rows = jnp.swapaxes(q, -1, -2).reshape(num_blocks * head_dim, head_dim)[:num_features]
    norms = jnp.linalg.norm(
        jax.random.normal(norms_rng, (num_features, head_dim), jnp.float32), axis=-1
    )  # [R]
    return rows * norms[:, None]


def orthonormalize_columns(a: jax.Array) -> jax.Array:
    """The Q of a = QR with diag(R) > 0, for a batch [b, H, H] of full-rank matrices (Haar
    distributed when a is Gaussian), by Gram-Schmidt with one re-orthogonalisation pass.

    Written in jnp rather than `jnp.linalg.qr`: on jaxlib 0.10's CPU backend the batched LAPACK
    QR splits its batch over the intra-op thread pool and waits for it; two such QRs running at
    once (two layers' features in one step) took both threads of a 2-core machine and deadlocked
    (seen in the Performer eval step: every thread idle, one in BlockingCounter::Wait). O(b·H³).
    """
    H = a.shape[-1]

    def column(j, q):  # columns j.. of q are still zero, so q qᵀ projects on columns < j only
        v = jax.lax.dynamic_index_in_dim(a, j, axis=2, keepdims=False)  # [b, H]
        for _ in range(2):
            v = v - jnp.einsum("bij,bj->bi", q, jnp.einsum("bij,bi->bj", q, v))
        v = v / jnp.linalg.norm(v, axis=-1, keepdims=True)
        return jax.lax.dynamic_update_index_in_dim(q, v, j, axis=2)

    return jax.lax.fori_loop(0, H, column, jnp.zeros_like(a))


def softmax_kernel_features(
    x: jax.Array, w: jax.Array, data_scale: float
) -> tuple[jax.Array, jax.Array]:
    """Positive features of x [..., H]: (ψ [..., R], ℓ [...]) with φ(x) = ψ·exp(ℓ), max ψ = 1.

    log φ_i(x) = w_i·x' − ‖x'‖²/2 − ½ log r with x' = x·data_scale; ℓ is its maximum over i (no
    gradient: any common factor cancels in the attention ratio).
    """
    proj = jnp.einsum("...H,RH->...R", x, w.astype(x.dtype), preferred_element_type=jnp.float32)
    xf = x.astype(jnp.float32) * data_scale
    log_phi = (
        proj * data_scale
        - 0.5 * jnp.sum(xf * xf, axis=-1, keepdims=True)
        - 0.5 * math.log(w.shape[0])
    )  # [..., R]
    log_scale = jax.lax.stop_gradient(jnp.max(log_phi, axis=-1))  # [...]
    return jnp.exp(log_phi - log_scale[..., None]), log_scale


def relu_kernel_features(x: jax.Array, w: jax.Array, data_scale: float) -> tuple[jax.Array, None]:
    """φ(x) = (relu(W x·data_scale) + ε)/√r, [..., R]; no log-scale (nothing overflows)."""
    proj = jnp.einsum("...H,RH->...R", x, w.astype(x.dtype), preferred_element_type=jnp.float32)
    return (jax.nn.relu(proj * data_scale) + RELU_EPSILON) / math.sqrt(w.shape[0]), None


FEATURE_MAPS: dict[str, Callable[..., tuple[jax.Array, jax.Array | None]]] = {
    "softmax": softmax_kernel_features,
    "relu": relu_kernel_features,
}


def _feature_map(kernel: str) -> Callable[..., tuple[jax.Array, jax.Array | None]]:
    if kernel not in FEATURE_MAPS:
        raise errors.ConfigError(
            f"{KIND}: kernel must be one of {sorted(FEATURE_MAPS)}; got {kernel!r}"
        )
    return FEATURE_MAPS[kernel]


def _decode_init(hparams, *, batch, max_length, num_heads, num_kv_heads, head_dim, dtype):
    del max_length, num_heads, dtype
    return linear.feature_state_init(
        batch, num_kv_heads, int(hparams.get("num_features", 256)), head_dim
    )


def _decode_step(
    query,
    key,
    value,
    cache,
    index,
    *,
    scale=None,
    rng=None,
    num_features=256,
    kernel="softmax",
    **unused,
):
    """Causal FAVOR+ at position `index` from the recurrent state (`core.Decoder`): the same
    features as the full pass (drawn from the same `rng`), added one key at a time."""
    del index, unused
    if rng is None:
        raise ValueError(f"{KIND}: rng is required to decode (the full pass's features)")
    B, _, N, H = query.shape
    K = key.shape[2]
    feature_map = _feature_map(kernel)
    w = orthogonal_random_features(rng, num_features, H)  # [R, H]
    data_scale = math.sqrt(core.default_scale(scale, H))
    phi_q, _ = feature_map(query[:, 0].reshape(B, K, N // K, H), w, data_scale)  # [B, K, G, R]
    phi_k, k_log_scale = feature_map(key[:, 0], w, data_scale)  # [B, K, R], [B, K]
    out, state = linear.feature_state_step(cache, phi_q, phi_k, value[:, 0], k_log_scale)
    return out.reshape(B, 1, N, H).astype(value.dtype), state


DECODER = core.Decoder(init=_decode_init, step=_decode_step)
