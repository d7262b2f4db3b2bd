"""LSH attention with shared queries and keys (Reformer; Kitaev et al. 2020, arXiv:2001.04451).

Each query head hashes its queries with random rotations into `num_buckets` buckets, sorts the
positions by (bucket, position), cuts the sorted sequence into chunks and lets every query attend
to the keys of its own bucket inside its own and the previous chunk. `num_hashes` independent
rounds are combined with weights softmax(logsumexp of each round's logits), which, with the
duplicate correction below, is exactly a softmax over the union of the rounds' attended sets.

Shared QK: the keys are the unit-normalised queries (the paper, §2: "shared-QK Transformer"), so
the `key` argument is not used at all (see `reformer_attention`).

Einsum letters: the house letters (core.py) plus R hash rounds, Z random rotations
(num_buckets / 2), C chunks, W positions of a chunk, V key slots of a chunk's window (2W: the
previous chunk, then its own).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxattn import errors
from jaxattn.attention import core, softmax

KIND = "reformer"
# A query's own position gets this much lower logit (trax and HuggingFace use -1e5): with shared
# QK a token is always most similar to itself, so it attends to itself only if nothing else is
# available. A finite penalty, not a mask, so such a query still has one key.
SELF_PENALTY = 1e5


def reformer_attention(
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
    num_hashes: int = 1,
    num_buckets: int = 32,
    chunk_size: int = 64,
    rng: jax.Array | None = None,
) -> jax.Array:
    """Shared-QK LSH attention: attend within the own hash bucket, in sorted chunks.

    Paper: Kitaev, Kaiser, Levskaya 2020, "Reformer: The Efficient Transformer",
    https://arxiv.org/abs/2001.04451, §2 (LSH attention, shared QK, causal masking, multi-round).

    For every query head and round r: bucket_r(t) = argmax([x_t R_r; −x_t R_r]) with a random
    Gaussian R_r [H, num_buckets/2] drawn from `rng` (num_buckets = 1 needs no rotation); sort by
    (bucket, position); chunks of W = min(chunk_size, T) sorted positions; query i attends to key
    j iff j has i's bucket and lies in i's chunk or the one before (no wrap-around), j is a real
    token and, with is_causal, pos_j <= pos_i and j is at most W sorted positions before i (see
    Causal). The logit of i's own position is lowered by SELF_PENALTY. With num_hashes > 1 the
    logit of a pair attended in n_ij rounds is lowered by log n_ij (paper, §2 "Multi-round LSH
    attention"), so the combined output is a softmax over the union of the rounds' sets.

    Args:
      query: [B, T, N, H]. Hashed, and unit-normalised to give the keys (shared QK).
      key: [B, S, K, H]: NOT USED. Reformer shares the query/key projection and uses the
        unit-normalised queries as keys; the common signature still passes a key, which is only
        shape-checked. (The Flax layer still owns an unused key projection: it gets zero
        gradients.)
      value: [B, S, K, H] with S = T; K divides N (GQA: query head n reads value head n // G).
      is_causal: query t sees keys at positions <= t.
      kv_mask: [B, T] bool, True = real token. Padded tokens sort last in a bucket of their own,
        so their content never changes which keys a real query sees.
      q_segment_ids, kv_segment_ids: unsupported (packing raises UnsupportedFeatureError).
      bias: unsupported (raises).
      scale: logits scale, default 1/sqrt(H); logits are scale · q_i · q_j / |q_j|.
      dropout_rate, dropout_rng: attention-probability dropout on each round's chunk
        probabilities [B, N, R, C, W, 2W] (as trax's LSH attention drops its chunk weights);
        the rounds are still combined with the undropped logsumexps.
      num_hashes: hash rounds (LRA-code: 1; the Nyströmformer paper's LRA runs: 2).
      num_buckets: 1 or an even number of buckets per round.
      chunk_size: sorted positions per chunk (LRA-code: 10).
      rng: PRNG key for the random rotations (required when num_buckets > 1); same key, same
        output.

    Returns:
      [B, T, N, H] in value.dtype. Padded query rows hold finite values (zeros).

    Causal: chunk boundaries depend on how many tokens, future ones included, hash to lower
    buckets, so "own or previous chunk" would leak the future into the past. With is_causal the
    window is therefore the W sorted positions before the query (a subset of its own and previous
    chunk; the same keys when chunk_size >= T): within a bucket the sorted order is the position
    order, so that window depends only on earlier tokens and the output is strictly causal.

    Exact limit: num_buckets = 1 and chunk_size >= T (any num_hashes) equals
    `shared_qk_softmax_attention`: softmax with keys = normalised queries and the self penalty.

    Complexity per (batch, head): O(num_hashes · (T·H·num_buckets + T log T + T·2W·H)) time,
    O(num_hashes · T·2W) memory (times num_hashes again for the duplicate counts when > 1).
    Supports: causal, key padding, GQA. Not: packing, bias, cross-attention (shared QK needs
    queries = keys).

    Deviations: trax/HuggingFace/LRA-code let a query attend every key in its chunk window,
    whatever its bucket; this follows the paper's P_i (same bucket only), which causal needs.
    LRA-code also has no self penalty, no padding mask, keys not normalised, logits multiplied
    (not divided) by sqrt(H), a fixed hashing key, and a window that wraps around.
    """
    if bias is not None:
        raise core.unsupported(KIND, "bias")
    if q_segment_ids is not None or kv_segment_ids is not None:
        raise core.unsupported(KIND, "q_segment_ids/kv_segment_ids (packing)")
    B, T, S, N, K, H = core.check_inputs(KIND, query, key, value, kv_mask=kv_mask)
    if T != S:
        raise core.unsupported(
            KIND, f"cross-attention (T={T} != S={S}): shared-QK LSH uses the queries as keys"
        )
    _check_hparams(num_hashes, num_buckets, chunk_size)
    core.check_dropout(KIND, dropout_rate, dropout_rng)
    if num_buckets > 1 and rng is None:
        raise ValueError(f"{KIND}: num_buckets={num_buckets} needs rng= for the random rotations")
    G = N // K
    W = min(chunk_size, T)
    C = -(-T // W)
    scale = core.default_scale(scale, H)
    f32 = jnp.float32

    q = jnp.swapaxes(query, 1, 2)  # [B, N, T, H]
    k = unit_normalize(q).astype(query.dtype)  # [B, N, T, H]: shared-QK keys
    v = jnp.swapaxes(jnp.repeat(value, G, axis=2), 1, 2)  # [B, N, T, H]
    valid = jnp.ones((B, T), bool) if kv_mask is None else kv_mask.astype(bool)  # [B, T]

    if num_buckets == 1:
        buckets = jnp.zeros((B, N, num_hashes, T), jnp.int32)  # [B, N, R, T]
    else:
        rotations = random_rotations(rng, N, H, num_hashes, num_buckets)  # [N, R, H, Z]
        buckets = hash_buckets(q, rotations)  # [B, N, R, T]
    buckets = jnp.where(valid[:, None, None, :], buckets, num_buckets)  # padding sorts last
    perm, rank = sort_by_bucket(buckets)  # [B, N, R, T] each
    buckets = jax.lax.stop_gradient(buckets)

    # Sorted positions, padded to C·W slots; slot_ok marks real slots holding real tokens.
    pad = C * W - T
    pos_s = jnp.pad(perm, ((0, 0), (0, 0), (0, 0), (0, pad)))  # [B, N, R, CW]
    slot_ok = (jnp.arange(C * W) < T) & jnp.take_along_axis(
        valid[:, None, None, :], pos_s, axis=-1
    )  # [B, N, R, CW]
    bucket_s = jnp.take_along_axis(buckets, pos_s, axis=-1)  # [B, N, R, CW]
    qs, ks, vs = (_gather(x, pos_s) for x in (q, k, v))  # [B, N, R, CW, H]

    def chunks(x):  # [B, N, R, CW, ...] -> [B, N, R, C, W, ...]
        return x.reshape(x.shape[:3] + (C, W) + x.shape[4:])

    rank_q = jnp.arange(C * W).reshape(C, W)  # [C, W]: sorted position of each query slot
    rank_k = jnp.arange(C)[:, None] * W - W + jnp.arange(2 * W)[None, :]  # [C, V]
    pos_q, bucket_q = chunks(pos_s), chunks(bucket_s)  # [B, N, R, C, W]
    pos_k, bucket_k, ok_k, k_win, v_win = (
        _look_one_back(chunks(x)) for x in (pos_s, bucket_s, slot_ok, ks, vs)
    )  # [B, N, R, C, V(, H)]; the slots before chunk 0 are not ok

    logits = jnp.einsum("BNRCWH,BNRCVH->BNRCWV", chunks(qs), k_win, preferred_element_type=f32)
    logits = logits * scale
    keep = (bucket_q[..., :, None] == bucket_k[..., None, :]) & ok_k[..., None, :]
    if is_causal:
        keep &= pos_k[..., None, :] <= pos_q[..., :, None]
        keep &= _in_window(rank_q[:, :, None], rank_k[:, None, :], W, is_causal=True)
    if num_hashes > 1:
        counts = _round_counts(buckets, rank, pos_q, pos_k, W, is_causal)  # [B, N, R, C, W, V]
        logits = logits - jnp.log(jnp.maximum(counts, 1).astype(f32))
    logits = jnp.where(pos_k[..., None, :] == pos_q[..., :, None], logits - SELF_PENALTY, logits)
    logits = jnp.where(keep, logits, core.MASK_VALUE)
    lse = jax.nn.logsumexp(logits, axis=-1)  # [B, N, R, C, W]
    probs = jnp.where(keep, jnp.exp(logits - lse[..., None]), 0.0)  # [B, N, R, C, W, V]
    probs = core.dropout(probs, dropout_rate, dropout_rng)
    out_s = jnp.einsum(
        "BNRCWV,BNRCVH->BNRCWH", probs.astype(value.dtype), v_win, preferred_element_type=f32
    )

    # Back to the original order, then combine the rounds by their logsumexp.
    out_r = unsort(out_s.reshape(B, N, num_hashes, C * W, H)[:, :, :, :T], rank)  # [B, N, R, T, H]
    lse_r = unsort(lse.reshape(B, N, num_hashes, C * W)[..., :T], rank)  # [B, N, R, T]
    weights = jax.nn.softmax(lse_r, axis=2)  # [B, N, R, T]
    out = jnp.einsum("BNRT,BNRTH->BTNH", weights, out_r)
    return out.astype(value.dtype)


def shared_qk_softmax_attention(
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
    """The dense O(T²) attention LSH attention approximates (its exact limit; tests use it).

    softmax with keys = unit-normalised queries and the own position's logit lowered by
    SELF_PENALTY; `key` is not used, as in `reformer_attention`. Shapes as there.
    """
    del key
    if bias is not None:
        raise core.unsupported(f"{KIND} reference", "bias")
    T, G = query.shape[1], query.shape[2] // value.shape[2]
    keys = unit_normalize(query).astype(query.dtype)  # [B, T, N, H]
    self_bias = -SELF_PENALTY * jnp.eye(T, dtype=jnp.float32)[None, None]  # [1, 1, T, T]
    return softmax.softmax_attention(
        query,
        keys,
        jnp.repeat(value, G, axis=2),
        is_causal=is_causal,
        kv_mask=kv_mask,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
        bias=self_bias,
        scale=scale,
    )


def unit_normalize(x: jax.Array) -> jax.Array:
    """x / |x| over the last axis, in float32 (a zero vector stays zero)."""
    x = x.astype(jnp.float32)
    return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), 1e-12))


def random_rotations(
    rng: jax.Array, num_heads: int, head_dim: int, num_hashes: int, num_buckets: int
) -> jax.Array:
    """Gaussian rotations [N, R, H, Z], Z = num_buckets / 2, one set per head and round."""
    shape = (num_heads, num_hashes, head_dim, num_buckets // 2)
    return jax.random.normal(rng, shape, jnp.float32)


def hash_buckets(x: jax.Array, rotations: jax.Array) -> jax.Array:
    """Angular LSH: argmax([xR; −xR]) for x [B, N, T, H], rotations [N, R, H, Z] -> [B, N, R, T]."""
    rotated = jnp.einsum(
        "BNTH,NRHZ->BNRTZ", x.astype(jnp.float32), rotations, precision=jax.lax.Precision.HIGHEST
    )
    return jnp.argmax(jnp.concatenate([rotated, -rotated], axis=-1), axis=-1).astype(jnp.int32)


def sort_by_bucket(buckets: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Orders positions by (bucket, position) along the last axis.

    Returns (perm, rank): perm[..., p] is the position at sorted place p, rank its inverse
    (rank[..., t] is the sorted place of position t).
    """
    buckets = jax.lax.stop_gradient(buckets)
    perm = jnp.argsort(buckets, axis=-1, stable=True)  # ties keep position order
    rank = jnp.argsort(perm, axis=-1)
    return perm, rank


def unsort(x_sorted: jax.Array, rank: jax.Array) -> jax.Array:
    """Undoes `sort_by_bucket`: x_sorted [B, N, R, T, ...] in sorted order -> original order."""
    index = rank.reshape(rank.shape + (1,) * (x_sorted.ndim - rank.ndim))
    return jnp.take_along_axis(x_sorted, index, axis=3)


def _gather(x: jax.Array, pos: jax.Array) -> jax.Array:
    """x [B, N, T, H] at positions pos [B, N, R, P] -> [B, N, R, P, H]."""
    return jnp.take_along_axis(x[:, :, None], pos[..., None], axis=3)


def _look_one_back(x: jax.Array) -> jax.Array:
    """[B, N, R, C, W, ...] -> [B, N, R, C, 2W, ...]: the previous chunk (zeros/False before
    chunk 0, no wrap-around), then the chunk itself."""
    previous = jnp.concatenate([jnp.zeros_like(x[:, :, :, :1]), x[:, :, :, :-1]], axis=3)
    return jnp.concatenate([previous, x], axis=4)


def _in_window(rank_q: jax.Array, rank_k: jax.Array, W: int, *, is_causal: bool) -> jax.Array:
    """Whether sorted place rank_k is in the attention window of sorted place rank_q."""
    if is_causal:
        return (rank_k <= rank_q) & (rank_k >= rank_q - W)
    chunk_gap = rank_q // W - rank_k // W
    return (chunk_gap == 0) | (chunk_gap == 1)


def _round_counts(
    buckets: jax.Array,
    rank: jax.Array,
    pos_q: jax.Array,
    pos_k: jax.Array,
    W: int,
    is_causal: bool,
) -> jax.Array:
    """n_ij: in how many rounds key j is in query i's window and bucket.

    buckets, rank: [B, N, R', T] per round; pos_q [B, N, R, C, W], pos_k [B, N, R, C, V] the
    original positions of the window entries of round R. Returns [B, N, R, C, W, V] int32.
    """

    def per_round(x: jax.Array, pos: jax.Array) -> jax.Array:  # -> [B, N, R, C, P, R']
        table = jnp.moveaxis(x, 2, -1)[:, :, None]  # [B, N, 1, T, R']
        flat = pos.reshape(pos.shape[:3] + (-1,))  # [B, N, R, C·P]
        taken = jnp.take_along_axis(table, flat[..., None], axis=3)  # [B, N, R, C·P, R']
        return taken.reshape(pos.shape + (x.shape[2],))

    bq, rq = per_round(buckets, pos_q), per_round(rank, pos_q)  # [B, N, R, C, W, R']
    bk, rk = per_round(buckets, pos_k), per_round(rank, pos_k)  # [B, N, R, C, V, R']
    same = bq[..., :, None, :] == bk[..., None, :, :]  # [B, N, R, C, W, V, R']
    near = _in_window(rq[..., :, None, :], rk[..., None, :, :], W, is_causal=is_causal)
    return jnp.sum(same & near, axis=-1, dtype=jnp.int32)


def _check_hparams(num_hashes: int, num_buckets: int, chunk_size: int) -> None:
    if not isinstance(num_hashes, int) or num_hashes < 1:
        raise errors.ConfigError(f"{KIND}: num_hashes must be a positive int; got {num_hashes!r}")
    if not isinstance(num_buckets, int) or num_buckets < 1 or (num_buckets > 1 and num_buckets % 2):
        raise errors.ConfigError(
            f"{KIND}: num_buckets must be 1 or an even positive int (buckets come in ± pairs); "
            f"got {num_buckets!r}"
        )
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise errors.ConfigError(f"{KIND}: chunk_size must be a positive int; got {chunk_size!r}")
