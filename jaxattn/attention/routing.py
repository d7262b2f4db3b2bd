"""Routing attention (Roy et al. 2020, arXiv:2003.05997): attend within online k-means clusters.

Queries and keys are normalised and routed to the nearest of `num_clusters` centroids; each
cluster keeps its `window` best members (balanced clusters) and attention runs inside each
cluster only. The centroids are not trained by gradients: they are non-gradient state, moved by
an exponential moving average of the vectors assigned to them (online mini-batch k-means). The
kind returns `(out, {'centroids': new_centroids})`; the Flax layer keeps them in the
'attention_state' collection (core.AttentionSpec.state).

Einsum letters: the house letters (core.py) plus C clusters, I query slots of a cluster (its
query window) per query head, Q = G·I the query slots of all G query heads of a kv head, J key
slots of a cluster (its key window).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxattn import errors
from jaxattn.attention import core, softmax

KIND = "routing"


def routing_attention(
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
    num_clusters: int = 16,
    window: int | None = None,
    ema_decay: float = 0.999,
    centroids: jax.Array | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Content-based sparse attention inside balanced k-means clusters, with EMA centroids.

    Paper: Roy, Saffar, Vaswani, Grangier 2020, "Efficient Content-Based Sparse Attention with
    Routing Transformers", https://arxiv.org/abs/2003.05997, §4 (routing attention, online
    k-means with exponential moving averages).

    1. q̂, k̂: q and k normalised to unit length (float32).
    2. Routing: each q̂ and k̂ goes to its nearest centroid μ_c (Euclidean, so centroids of any
       length compare fairly); padded tokens go nowhere.
    3. Balance: cluster c keeps the `window` queries and the `window` keys assigned to it with
       the highest q̂·μ_c (k̂·μ_c); the other members are dropped. With is_causal it keeps the
       first `window` by position instead (see Causal).
    4. Attention inside each cluster: logits = scale · H · q̂·k̂ (q and k RMS-normalised, i.e.
       of length sqrt(H): the reference code's layer norm without gain, so the default scale
       1/sqrt(H) gives logits in [-sqrt(H), sqrt(H)], as for typical unnormalised q and k,
       rather than the nearly uniform ±1/sqrt(H) of unit vectors), masked to the cluster's kept
       keys and, with is_causal, to original positions s <= t.
    5. Outputs go back to the original positions. A query no cluster kept (its cluster was
       full), or whose cluster has no visible key, gets zeros.
    6. New centroids: μ_c ← ema_decay · μ_c + (1 − ema_decay) · mean of the q̂ and k̂ assigned to
       c in step 2 (over the batch and all query heads of the kv head; padding excluded);
       a cluster with nothing assigned keeps μ_c. No gradient flows into or out of them.

    Args:
      query: [B, T, N, H].
      key, value: [B, S, K, H]; K divides N (GQA: query head n uses the centroids and keys of kv
        head n // G). T != S (cross-attention) is supported.
      is_causal: within a cluster, query t sees keys s <= t (top-left aligned). See Causal.
      kv_mask: [B, S] bool, True = real key; padded keys are routed nowhere, never attended and
        left out of the centroid update. In self-attention (T == S) it also marks the padded
        queries, which are routed nowhere either (their rows are zeros).
      q_segment_ids, kv_segment_ids: unsupported (packing raises UnsupportedFeatureError).
      bias: unsupported (raises).
      scale: logits scale, default 1/sqrt(H) (applied to RMS-normalised q, k; see step 4).
      dropout_rate, dropout_rng: attention-probability dropout on the in-cluster probabilities
        [B, K, C, G·w_q, w_k] (routing and the centroid update are unaffected).
      num_clusters: number of centroids C (the paper: about sqrt(T)).
      window: members kept per cluster, for queries and for keys (each capped at T resp. S);
        None = ceil(T / C) for queries and ceil(S / C) for keys.
      ema_decay: centroid EMA decay in [0, 1]; 1 freezes the centroids, 0 replaces them by the
        means of their assigned vectors (plain mini-batch k-means).
      centroids: [K, C, H] float32, the state from `state_specs` (the layer passes it).

    Returns:
      (out [B, T, N, H] in value.dtype, {'centroids': [K, C, H] float32}).

    Causal: no query attends to a later key, and the balancing cannot see the future either:
    ranking a cluster's members by score (the non-causal rule) would let a later token push an
    earlier one out of a full cluster, so the output at t would depend on tokens after t (up to
    ~3 in a 2-layer LM; tests/models/lm_test.py probes the whole model). With is_causal a
    cluster keeps its first `window` members by position, so whether a token is kept depends
    only on the tokens before it; when a cluster overflows, its latest members are dropped
    (zeros). Routing (nearest centroid) is per token and the centroids are state, so the output
    at t is a function of tokens <= t. With window >= T nothing is dropped in either rule.

    Exact limit: num_clusters = 1 and window >= max(T, S) equals `normalized_softmax_attention`
    (softmax on the RMS-normalised q and k).

    Complexity per (batch, head): O((T+S)·C·H) routing and update, O(C·w_q·w_k·H) attention
    (O(T^1.5·H) for C = sqrt(T), w = T/C); memory O((T+S)·C + C·w_q·w_k).
    Supports: causal (see above), key padding, GQA, cross-attention. Not: packing, bias.

    Deviations: the reference code (google-research/routing_transformer) lets each centroid take
    its top-w tokens among all tokens (a token can sit in several clusters or none); here a
    cluster keeps its top-w among the tokens routed to it, so a token is in at most one cluster.
    It layer-normalises (mean subtracted) where this RMS-normalises. The paper's usual mix of
    local and routing heads is not part of this kind.
    """
    if bias is not None:
        raise core.unsupported(KIND, "bias")
    if q_segment_ids is not None or kv_segment_ids is not None:
        raise core.unsupported(KIND, "q_segment_ids/kv_segment_ids (packing)")
    B, T, S, N, K, H = core.check_inputs(KIND, query, key, value, kv_mask=kv_mask)
    _check_hparams(num_clusters, window, ema_decay)
    core.check_dropout(KIND, dropout_rate, dropout_rng)
    C = num_clusters
    if centroids is None:
        raise ValueError(
            f"{KIND}: no centroids were passed; the layer must create them from state_specs() "
            f"and pass centroids=[K, num_clusters, H] = {(K, C, H)}"
        )
    if centroids.shape != (K, C, H):
        raise ValueError(
            f"{KIND}: centroids must be [K, num_clusters, H] = {(K, C, H)}; got {centroids.shape}"
        )
    G = N // K
    w_q = min(window or -(-T // C), T)
    w_k = min(window or -(-S // C), S)
    scale = core.default_scale(scale, H)
    f32 = jnp.float32

    q_hat = jnp.moveaxis(unit_normalize(query).reshape(B, T, K, G, H), 1, 3)  # [B, K, G, T, H]
    k_hat = jnp.swapaxes(unit_normalize(key), 1, 2)  # [B, K, S, H]
    v = jnp.swapaxes(value, 1, 2)  # [B, K, S, H]
    kv_valid = jnp.ones((B, S), bool) if kv_mask is None else kv_mask.astype(bool)  # [B, S]
    q_valid = kv_valid if T == S else jnp.ones((B, T), bool)  # [B, T]

    mu = jax.lax.stop_gradient(centroids.astype(f32))  # [K, C, H]
    q_member, q_score = _route(q_hat, mu, q_valid[:, None, None])  # [B, K, G, C, T] each
    k_member, k_score = _route(k_hat[:, :, None], mu, kv_valid[:, None, None])  # [B, K, 1, C, S]
    k_member, k_score = k_member[:, :, 0], k_score[:, :, 0]  # [B, K, C, S]
    if is_causal:
        # Capacity decided causally: a cluster keeps its first w members by position, so
        # whether token t is kept depends on tokens <= t only (a top-w by score would let a
        # later token push an earlier one out: the future would leak into the past).
        q_score = jnp.broadcast_to(-jnp.arange(T, dtype=f32), q_score.shape)
        k_score = jnp.broadcast_to(-jnp.arange(S, dtype=f32), k_score.shape)
    q_idx, q_kept = _top_members(q_member, q_score, w_q)  # [B, K, G, C, I]
    k_idx, k_kept = _top_members(k_member, k_score, w_k)  # [B, K, C, J]

    # Normalised to length sqrt(H) for the logits (step 4), cast back for the matmuls.
    rms = float(H) ** 0.5
    # The G query heads of a kv head share its clusters: their slots form one axis Q = G·I, so
    # the matmuls are plain batched ones over (B, K, C) (XLA:CPU has no bf16 x bf16 -> f32 dot
    # for the batch layout [B, K, G, C] against [B, K, C]).
    qc = _take(q_hat * rms, q_idx).astype(query.dtype)  # [B, K, G, C, I, H]
    qc = jnp.moveaxis(qc, 2, 3).reshape(B, K, C, G * w_q, H)  # [B, K, C, Q, H]
    q_pos = jnp.moveaxis(q_idx, 2, 3).reshape(B, K, C, G * w_q)  # [B, K, C, Q]
    kc = _take(k_hat * rms, k_idx).astype(key.dtype)  # [B, K, C, J, H]
    vc = _take(v, k_idx)  # [B, K, C, J, H]
    logits = jnp.einsum("BKCQH,BKCJH->BKCQJ", qc, kc, preferred_element_type=f32) * scale
    keep = k_kept[:, :, :, None, :]  # [B, K, C, 1, J]
    if is_causal:
        keep = keep & (k_idx[:, :, :, None, :] <= q_pos[..., None])  # positions s <= t
    probs = jax.nn.softmax(jnp.where(keep, logits, core.MASK_VALUE), axis=-1)
    probs = jnp.where(keep, probs, 0.0)  # a row with no visible key gives zeros
    probs = core.dropout(probs, dropout_rate, dropout_rng)
    out_c = jnp.einsum(
        "BKCQJ,BKCJH->BKCQH", probs.astype(value.dtype), vc, preferred_element_type=f32
    )
    out_c = jnp.moveaxis(out_c.reshape(B, K, C, G, w_q, H), 3, 2)  # [B, K, G, C, I, H]
    out_c = jnp.where(q_kept[..., None], out_c, 0.0)  # dropped slots scatter nothing
    out = _scatter(out_c, q_idx, T)  # [B, K, G, T, H]
    out = jnp.moveaxis(out, 3, 1).reshape(B, T, N, H).astype(value.dtype)

    new_centroids = _ema_update(mu, q_hat, q_member, k_hat, k_member, ema_decay)
    return out, {"centroids": jax.lax.stop_gradient(new_centroids)}


def normalized_softmax_attention(
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
) -> jax.Array:
    """Softmax attention on RMS-normalised q and k (length sqrt(H)): routing's exact limit.

    The dense O(T·S) attention routing attention restricts to clusters; tests compare with it.
    """
    H = query.shape[-1]
    rms = float(H) ** 0.5
    return softmax.softmax_attention(
        (unit_normalize(query) * rms).astype(query.dtype),
        (unit_normalize(key) * rms).astype(key.dtype),
        value,
        is_causal=is_causal,
        kv_mask=kv_mask,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
        bias=bias,
        scale=scale,
    )


def state_specs(
    hparams: Mapping[str, Any], *, num_heads: int, num_kv_heads: int, head_dim: int, kv_length: int
) -> dict[str, core.ParamSpec]:
    """The centroids [K, num_clusters, H]: random unit vectors, one set per kv head."""
    del num_heads, kv_length
    num_clusters = hparams.get("num_clusters", 16)
    if not isinstance(num_clusters, int) or num_clusters < 1:
        raise errors.ConfigError(
            f"{KIND}: num_clusters must be a positive int; got {num_clusters!r}"
        )
    shape = (num_kv_heads, num_clusters, head_dim)
    return {"centroids": core.ParamSpec(shape, init_centroids, ("heads", None, "kv"))}


def init_centroids(rng: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
    """Independent uniformly random unit vectors (normalised Gaussians) along the last axis."""
    return unit_normalize(jax.random.normal(rng, shape, jnp.float32)).astype(dtype)


def unit_normalize(x: jax.Array) -> jax.Array:
    """x / |x| over the last axis, in float32 (a zero vector stays zero)."""
    x = x.astype(jnp.float32)
    return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), 1e-12))


def _route(x_hat: jax.Array, mu: jax.Array, valid: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Nearest-centroid membership and scores of unit vectors x̂ [B, K, G, L, H].

    Returns (member [B, K, G, C, L] bool, score x̂·μ_c [B, K, G, C, L]). valid broadcasts to
    [B, K, G, L]; invalid rows are members of no cluster.
    """
    x_hat = jax.lax.stop_gradient(x_hat)  # routing is discrete: no gradient through it
    score = jnp.einsum("BKGLH,KCH->BKGCL", x_hat, mu, precision=jax.lax.Precision.HIGHEST)
    # Nearest in Euclidean distance: argmax of x̂·μ_c − |μ_c|²/2 (the |x̂|² term is common).
    half_norm = 0.5 * jnp.sum(mu * mu, axis=-1)  # [K, C]
    nearest = jnp.argmax(score - half_norm[None, :, None, :, None], axis=-2)  # [B, K, G, L]
    member = (nearest[..., None, :] == jnp.arange(mu.shape[1])[:, None]) & valid[..., None, :]
    return member, score


def _top_members(member: jax.Array, score: jax.Array, w: int) -> tuple[jax.Array, jax.Array]:
    """Per cluster, the w members with the highest score: (indices [..., C, w], kept [..., C, w]).

    Slots beyond a cluster's member count are not kept (their indices point anywhere).
    """
    ranked = jnp.where(member, score, -jnp.inf)
    top, idx = jax.lax.top_k(jax.lax.stop_gradient(ranked), w)  # [..., C, w]
    return idx, top > -jnp.inf


def _take(x: jax.Array, idx: jax.Array) -> jax.Array:
    """x [B, K, (G,) L, H] at idx [B, K, (G,) C, w] -> [B, K, (G,) C, w, H]."""
    lead = idx.shape[:-2]
    flat = idx.reshape(lead + (-1, 1))  # [..., C·w, 1]
    return jnp.take_along_axis(x, flat, axis=-2).reshape(idx.shape + (x.shape[-1],))


def _scatter(x: jax.Array, idx: jax.Array, length: int) -> jax.Array:
    """Adds x [B, K, G, C, w, H] into zeros [B, K, G, length, H] at positions idx [B, K, G, C, w]."""
    B, K, G, C, w, H = x.shape

    def one(rows: jax.Array, positions: jax.Array) -> jax.Array:  # [C·w, H], [C·w]
        return jnp.zeros((length, H), x.dtype).at[positions].add(rows)

    flat = jax.vmap(one)(x.reshape(B * K * G, C * w, H), idx.reshape(B * K * G, C * w))
    return flat.reshape(B, K, G, length, H)


def _ema_update(
    mu: jax.Array,
    q_hat: jax.Array,
    q_member: jax.Array,
    k_hat: jax.Array,
    k_member: jax.Array,
    decay: float,
) -> jax.Array:
    """μ ← decay·μ + (1 − decay)·mean of the assigned q̂ [B, K, G, T, H] and k̂ [B, K, S, H]."""
    f32 = jnp.float32
    hp = jax.lax.Precision.HIGHEST
    q_hat, k_hat = jax.lax.stop_gradient(q_hat), jax.lax.stop_gradient(k_hat)
    sums = jnp.einsum("BKGCT,BKGTH->KCH", q_member.astype(f32), q_hat, precision=hp)
    sums = sums + jnp.einsum("BKCS,BKSH->KCH", k_member.astype(f32), k_hat, precision=hp)
    counts = jnp.sum(q_member, axis=(0, 2, 4), dtype=f32) + jnp.sum(
        k_member, axis=(0, 3), dtype=f32
    )
    means = sums / jnp.maximum(counts, 1.0)[..., None]  # [K, C, H]
    updated = decay * mu + (1.0 - decay) * means
    return jnp.where(counts[..., None] > 0, updated, mu)


def _check_hparams(num_clusters: int, window: int | None, ema_decay: float) -> None:
    if not isinstance(num_clusters, int) or num_clusters < 1:
        raise errors.ConfigError(
            f"{KIND}: num_clusters must be a positive int; got {num_clusters!r}"
        )
    if window is not None and (not isinstance(window, int) or window < 1):
        raise errors.ConfigError(f"{KIND}: window must be a positive int or None; got {window!r}")
    if not 0.0 <= float(ema_decay) <= 1.0:
        raise errors.ConfigError(f"{KIND}: ema_decay must be in [0, 1]; got {ema_decay!r}")
