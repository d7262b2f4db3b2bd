"""CoCA: Collinear Constrained Attention (keys collinear with the query in every rotary plane).

Zhu et al. 2023, "CoCA: Fusing Position Embedding with Collinear Constrained Attention in
Transformers for Long Context Window Extending" (first titled "Cure the headache of
Transformers via Collinear Constrained Attention"), https://arxiv.org/abs/2309.08646; code
github.com/codefuse-ai/Collinear-Constrained-Attention.

The key projection W_K is replaced by W_T: here the `key` input is x_j W_T (the layer's key
projection plays W_T). RoPE planes pair channel c with c + H/2 (the rotate-half layout of the
authors' LLaMA/GPT-NeoX code), θ_c = rope_base^(−2c/H), c < H/2. Per kv head:

    t_jc = relu((key_jc + key_j,c+H/2) / 2)                      [B, S, K, H/2], t >= 0
    k_ij = t_j ⊙ q_i  (t_jc on both coordinates of plane c: k_ij is collinear with q_i per plane)
    s_ij = ⟨R_i q_i, R_j k_ij⟩ · scale = scale · Σ_c |q_ic|² t_jc cos((i − j) θ_c)

where R_p is the RoPE rotation at position p and |q_ic|² = q_ic² + q_i,c+H/2². The last form
factorises into a plain dot product, so this runs `softmax.softmax_attention` on

    Q′_i = |q_i·|² ⊙ [cos iθ, sin iθ],   K′_j = t_j ⊙ [cos jθ, sin jθ]      (both [.., H])

and inherits all of its masks exactly: causal, key padding, packing, bias, GQA, cross, dropout.
`naive_coca_attention` builds k_ij for every pair and rotates it, for tests.

Positions: the kind applies its own rotation with positions 0..T−1 (queries) and 0..S−1 (keys),
restarting at 0 at every segment start when packed (so a packed segment equals the segment
alone). The layer must not rotate q and k first: a model using coca should set its relative
scheme to none (`config.model.relative='none'`, the LRA default).

Reference code: the authors' LLaMA attention computes einsum('bpnd,bpsd,bpnd->bpns', q, R_j t,
R_i q), i.e. Σ_d q_d (R_i q)_d (R_j t)_d, with t copied to both halves. Expanding one plane (q =
(a, b)) gives t·[(a² + b²) cos iθ cos jθ + (b² − a²) cos iθ sin jθ + 2ab sin iθ sin jθ], which is
not the paper's ⟨R_i q, R_j (t ⊙ q)⟩ = t (a² + b²) cos((i − j)θ) and not a function of i − j
alone. This module implements the paper's equation (the catalog's test: the naive per-pair
construction, scores depending on i − j only); it was not run beside the authors' code, and
its numbers would differ from that einsum for the reason above.

Complexity: as `softmax`: O(T·S·H) time, O(T·S) memory; the features cost O((T+S)·H).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxattn.attention import core, softmax

KIND = "coca"


def coca_attention(
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
    rope_base: float = 10000.0,
) -> jax.Array:
    """Softmax attention with CoCA's collinear keys and its own RoPE (positions from 0).

    Args:
      query: [B, T, N, H], H even, NOT rotated by the layer (relative scheme none).
      key: [B, S, K, H], the W_T projection of the keys' tokens; value: [B, S, K, H]. K divides N.
      is_causal, kv_mask, q_segment_ids, kv_segment_ids, bias, dropout_rate, dropout_rng: as
        `softmax.softmax_attention` (all exact; packed positions restart per segment).
      scale: logits scale, default 1/sqrt(H) (the authors' code).
      rope_base: the RoPE base of θ_c = rope_base^(−2c/H).

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
    if H % 2:
        raise ValueError(f"{KIND}: the head dim must be even (RoPE planes); got H={H}")
    q_ids, kv_ids = core.resolve_segment_ids(KIND, q_segment_ids, kv_segment_ids, T, S)
    q_pos = jnp.broadcast_to(jnp.arange(T), (B, T)) if q_ids is None else segment_positions(q_ids)
    k_pos = jnp.broadcast_to(jnp.arange(S), (B, S)) if kv_ids is None else segment_positions(kv_ids)
    q_feat, k_feat = coca_features(query, key, q_pos, k_pos, rope_base=rope_base)
    return softmax.softmax_attention(
        q_feat,
        k_feat,
        value,
        is_causal=is_causal,
        kv_mask=kv_mask,
        q_segment_ids=q_ids,
        kv_segment_ids=kv_ids,
        bias=bias,
        scale=core.default_scale(scale, H),
        dropout_rate=dropout_rate,
        dropout_rng=dropout_rng,
    )


def coca_features(
    query: jax.Array,
    key: jax.Array,
    q_pos: jax.Array,
    k_pos: jax.Array,
    *,
    rope_base: float = 10000.0,
) -> tuple[jax.Array, jax.Array]:
    """(Q′ [B, T, N, H], K′ [B, S, K, H]) float32 with Q′_i·K′_j = Σ_c |q_ic|² t_jc cos((i−j)θ_c).

    q_pos [B, T], k_pos [B, S]: integer positions.
    """
    H = query.shape[-1]
    h = H // 2
    theta = rope_base ** (-jnp.arange(h, dtype=jnp.float32) * 2.0 / H)  # [H/2]
    q = query.astype(jnp.float32)
    k = key.astype(jnp.float32)
    q_norm2 = q[..., :h] ** 2 + q[..., h:] ** 2  # [B, T, N, H/2]
    t = jax.nn.relu((k[..., :h] + k[..., h:]) / 2)  # [B, S, K, H/2]
    q_angle = q_pos.astype(jnp.float32)[:, :, None, None] * theta  # [B, T, 1, H/2]
    k_angle = k_pos.astype(jnp.float32)[:, :, None, None] * theta  # [B, S, 1, H/2]
    q_feat = jnp.concatenate([q_norm2 * jnp.cos(q_angle), q_norm2 * jnp.sin(q_angle)], axis=-1)
    k_feat = jnp.concatenate([t * jnp.cos(k_angle), t * jnp.sin(k_angle)], axis=-1)
    return q_feat, k_feat


def segment_positions(segment_ids: jax.Array) -> jax.Array:
    """[B, T] positions that restart at 0 wherever the segment id changes."""
    T = segment_ids.shape[1]
    idx = jnp.arange(T)
    starts = jnp.concatenate(
        [jnp.ones_like(segment_ids[:, :1], bool), segment_ids[:, 1:] != segment_ids[:, :-1]], 1
    )
    return idx - jax.lax.cummax(jnp.where(starts, idx, 0), axis=1)


def rope(x: jax.Array, pos: jax.Array, rope_base: float = 10000.0) -> jax.Array:
    """The rotate-half RoPE of x [..., P, H] at positions pos [P] (for the naive reference)."""
    H = x.shape[-1]
    h = H // 2
    theta = rope_base ** (-jnp.arange(h, dtype=jnp.float32) * 2.0 / H)
    angle = pos.astype(jnp.float32)[:, None] * theta  # [P, H/2]
    cos = jnp.concatenate([jnp.cos(angle)] * 2, -1)
    sin = jnp.concatenate([jnp.sin(angle)] * 2, -1)
    rotated_half = jnp.concatenate([-x[..., h:], x[..., :h]], -1)
    return x * cos + rotated_half * sin


def naive_coca_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    *,
    is_causal: bool = False,
    kv_mask: jax.Array | None = None,
    rope_base: float = 10000.0,
) -> jax.Array:
    """The paper's construction pair by pair, for tests: k_ij = t_j ⊙ q_i (t on both halves),
    s_ij = ⟨RoPE_i(q_i), RoPE_j(k_ij)⟩ / sqrt(H), masked softmax; kv heads repeated, float32.
    Materialises [B, N, T, S, H]. Returns [B, T, N, H] float32."""
    B, T, N, H = query.shape
    S = key.shape[1]
    G = N // key.shape[2]
    h = H // 2
    q = jnp.transpose(query.astype(jnp.float32), (0, 2, 1, 3))  # [B, N, T, H]
    k, v = (jnp.repeat(x.astype(jnp.float32), G, axis=2) for x in (key, value))
    t = jax.nn.relu((k[..., :h] + k[..., h:]) / 2)
    t = jnp.transpose(jnp.concatenate([t, t], -1), (0, 2, 1, 3))  # [B, N, S, H]
    k_pair = t[:, :, None, :, :] * q[:, :, :, None, :]  # [B, N, T, S, H]
    k_rot = rope(k_pair, jnp.arange(S), rope_base)  # [B, N, T, S, H]: k_ij rotated at j
    q_rot = rope(q, jnp.arange(T), rope_base)  # [B, N, T, H]
    logits = jnp.einsum("BNTH,BNTSH->BNTS", q_rot, k_rot) / jnp.sqrt(H)
    keep = core.make_keep_mask(T, S, is_causal=is_causal, kv_mask=kv_mask)
    if keep is not None:
        logits = jnp.where(keep, logits, core.MASK_VALUE)
    probs = jax.nn.softmax(logits, -1)
    if keep is not None:
        probs = jnp.where(keep, probs, 0.0)
    return jnp.einsum("BNTS,BSNH->BTNH", probs, v)
