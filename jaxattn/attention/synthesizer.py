"""Synthesizer attention (Tay et al. 2020, https://arxiv.org/abs/2005.00743), dense and random.

The attention logits are synthesized instead of computed from query-key dot products:

    random: logits[n, t, s] = R[n, t, s]                    R: [N, T_max, S_max], learned or fixed
    dense:  logits[n, t, :] = W₂ relu(W₁ q_t + b₁) + b₂      W₁: [N, H, F], W₂: [N, F, S_max]
    out = softmax(masked logits) · V

The paper's dense synthesizer reads the layer input x_t ∈ R^D. The attention contract passes
query/key/value, not x, so here it reads the projected query q_t = x_t W_q (one per head n); W_q
followed by W₁ composes to one linear map of x_t, so it is the paper's F(x_t) = W₂ relu(W₁ x_t + b₁)
+ b₂ with W₁ factored through W_q (LRA's code also projects x to [N, H] before the relu).

Einsum letters are the house shape letters (core.py) plus F, the dense synthesizer's hidden width,
and M, the synthesized length axis (S_max) before columns are picked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxattn import errors
from jaxattn.attention import core

KIND = "synthesizer"
MODES = ("random", "dense")

# LRA initialises R (and the dense layers) with flax's default lecun_normal: std 1/sqrt(fan_in).
_random_init = jax.nn.initializers.variance_scaling(
    1.0, "fan_in", "truncated_normal", in_axis=-1, out_axis=-2, batch_axis=0
)
_dense_init = jax.nn.initializers.variance_scaling(
    1.0, "fan_in", "truncated_normal", in_axis=-2, out_axis=-1, batch_axis=0
)


def synthesizer_attention(
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
    mode: str = "random",
    trainable_random: bool = True,
    dense_hidden_dim: int | None = None,
    max_query_length: int | None = None,
    random_logits: jax.Array | None = None,
    dense_w1: jax.Array | None = None,
    dense_b1: jax.Array | None = None,
    dense_w2: jax.Array | None = None,
    dense_b2: jax.Array | None = None,
) -> jax.Array:
    """Softmax attention over synthesized (query-key free) logits, random or dense.

    Paper: Tay et al. 2020, "Synthesizer: Rethinking Self-Attention in Transformer Models",
    https://arxiv.org/abs/2005.00743. LRA uses mode='random' (LRA.md §3.2).

    The synthesized logits are indexed by position: query t, key s read R[n, t, s] (random) or
    column s of the dense output. With packing, t and s are positions *within their segment*, so
    a packed batch equals each segment run on its own. The keys are never read.

    Args:
      query: [B, T, N, H]; read only in dense mode (the per-token input of the synthesizer).
      key: [B, S, K, H]; not read (shape-checked only).
      value: [B, S, K, H]; K divides N (GQA/MQA: query head n reads kv head n // G).
      is_causal: mask logits with s > t (nothing else can leak: a dense row reads only q_t).
      kv_mask: [B, S] bool, True = real key; padded keys are masked out of the softmax.
      q_segment_ids, kv_segment_ids: [B, T] / [B, S] packing (contiguous segments, 0 = padding).
      bias: broadcastable to [B, N, T, S], added to the synthesized logits.
      scale: not used (there is no dot product); accepted for the common signature.
      dropout_rate, dropout_rng: attention-probability dropout on the [B, N, T, S]
        synthesized attention weights (mask `core.dropout_keep(dropout_rng, dropout_rate,
        (B, N, T, S))`).
      mode: 'random' (R is the logit table) or 'dense' (two-layer MLP per query token).
      trainable_random: random mode: False stops the gradient into R (the paper's fixed random
        synthesizer). An optimizer's weight decay still shrinks R unless it is masked out.
      dense_hidden_dim: F, the dense hidden width; default H (the paper's d → d → S_max per head).
      max_query_length: T_max of R (random mode); default S_max = the layer's kv length. Needed
        only for cross-attention with T > S.
      random_logits: [N, T_max, S_max] (the declared tensor, param_specs), or per example
        [B, N, T_max, S_max]; setting it to q·kᵀ·scale gives exactly softmax attention.
      dense_w1: [N, H, F]; dense_b1: [N, F]; dense_w2: [N, F, S_max]; dense_b2: [N, S_max].

    Returns:
      [B, T, N, H] in value.dtype. A row with no allowed key is finite (uniform over its masked
      keys); padded query rows hold finite values.

    Masks: causal, key padding, packing, bias, GQA/MQA, cross-attention (T <= T_max, S <= S_max).

    Complexity per (batch, head): O(T·S·H) time and O(T·S) memory like softmax (dense mode adds
    O(T·F·(H + S_max)) for the MLP); parameters O(T_max·S_max) (random) or O(F·(H + S_max))
    (dense) per head.
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
    del scale  # no dot product
    use_dropout = core.check_dropout(KIND, dropout_rate, dropout_rng)
    q_segment_ids, kv_segment_ids = core.resolve_segment_ids(
        KIND, q_segment_ids, kv_segment_ids, T, S
    )
    _check_mode(mode)
    if q_segment_ids is None:
        q_pos = k_pos = None
    else:
        q_pos = segment_positions(q_segment_ids)  # [B, T]
        k_pos = segment_positions(kv_segment_ids)  # [B, S]

    if mode == "random":
        logits = _random_logits(random_logits, trainable_random, T, S, q_pos, k_pos)
    else:
        logits = _dense_logits(query, (dense_w1, dense_b1, dense_w2, dense_b2), S, k_pos)
    if bias is not None:
        logits = logits + bias.astype(jnp.float32)  # [B|1, N, T, S]

    keep = core.make_keep_mask(
        T,
        S,
        is_causal=is_causal,
        kv_mask=kv_mask,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
    )  # [B|1, 1, T, S] or None
    if keep is not None:
        logits = jnp.where(keep, logits, core.MASK_VALUE)
    probs = jax.nn.softmax(logits, axis=-1)  # [B|1, N, T, S] float32
    probs = jnp.broadcast_to(probs, (B, N, T, S))
    if use_dropout:
        probs = core.dropout(probs, dropout_rate, dropout_rng)
    probs = probs.reshape(B, K, N // K, T, S)
    out = jnp.einsum(
        "BKGTS,BSKH->BTKGH", probs.astype(value.dtype), value, preferred_element_type=jnp.float32
    )  # [B, T, K, G, H]
    return out.reshape(B, T, N, H).astype(value.dtype)


def segment_positions(segment_ids: jax.Array) -> jax.Array:
    """Position of each token within its (contiguous) segment: [B, L] int -> [B, L] int32."""
    L = segment_ids.shape[1]
    idx = jnp.arange(L, dtype=jnp.int32)  # [L]
    first = jnp.concatenate(
        [jnp.ones_like(segment_ids[:, :1], bool), segment_ids[:, 1:] != segment_ids[:, :-1]],
        axis=1,
    )  # [B, L]: True where a segment starts
    start = jax.lax.cummax(jnp.where(first, idx, 0), axis=1)  # [B, L]
    return idx - start


def _random_logits(
    table: jax.Array | None,
    trainable: bool,
    T: int,
    S: int,
    q_pos: jax.Array | None,
    k_pos: jax.Array | None,
) -> jax.Array:
    """R[n, t, s] (or R[b, n, t, s]) for the positions in use: [1|B, N, T, S] float32."""
    if table is None:
        raise ValueError(
            f"{KIND}: mode='random' needs random_logits=[N, T_max, S_max]; the layer creates it "
            "from param_specs()"
        )
    if table.ndim not in (3, 4):
        raise ValueError(
            f"{KIND}: random_logits must be [N, T_max, S_max] or [B, N, T_max, S_max]; got "
            f"{table.shape}"
        )
    t_max, s_max = table.shape[-2:]
    if T > t_max or S > s_max:
        raise ValueError(
            f"{KIND}: random_logits covers T_max={t_max}, S_max={s_max}, but the input has T={T}, "
            f"S={S}; build the layer for the longest sequence (or set max_query_length)"
        )
    table = table.astype(jnp.float32)
    if not trainable:
        table = jax.lax.stop_gradient(table)
    if table.ndim == 3:
        table = table[None]  # [1, N, T_max, S_max]
    if q_pos is None:
        return table[:, :, :T, :S]
    rows = jnp.take_along_axis(table, q_pos[:, None, :, None], axis=2)  # [B, N, T, S_max]
    return jnp.take_along_axis(rows, k_pos[:, None, None, :], axis=3)  # [B, N, T, S]


def _dense_logits(
    query: jax.Array, weights: tuple[jax.Array | None, ...], S: int, k_pos: jax.Array | None
) -> jax.Array:
    """W₂ relu(W₁ q_t + b₁) + b₂, columns picked by key position: [B, N, T, S] float32."""
    if any(w is None for w in weights):
        raise ValueError(
            f"{KIND}: mode='dense' needs dense_w1, dense_b1, dense_w2, dense_b2; the layer creates "
            "them from param_specs()"
        )
    w1, b1, w2, b2 = weights
    N, H = query.shape[2:]
    if w1.shape[:2] != (N, H) or w2.shape[:2] != (N, w1.shape[2]):
        raise ValueError(
            f"{KIND}: dense_w1 must be [N, H, F] = [{N}, {H}, F] and dense_w2 [N, F, S_max]; got "
            f"{w1.shape}, {w2.shape}"
        )
    s_max = w2.shape[2]
    if S > s_max:
        raise ValueError(
            f"{KIND}: dense_w2 synthesizes S_max={s_max} columns, but the input has S={S}; build "
            "the layer for the longest sequence"
        )
    # The MLP runs in float32: its weights are float32 parameters and it is small next to the
    # O(T·S) attention (XLA:CPU also has no bf16 x bf16 -> f32 kernel for these batched dots).
    f32 = jnp.float32
    hidden = jnp.einsum("BTNH,NHF->BTNF", query.astype(f32), w1.astype(f32))  # [B, T, N, F]
    hidden = jax.nn.relu(hidden + b1.astype(f32))
    if k_pos is None:  # only the first S columns are needed
        w2, b2 = w2[:, :, :S], b2[:, :S]
    logits = jnp.einsum("BTNF,NFM->BNTM", hidden, w2.astype(f32))  # [B, N, T, S or S_max]
    logits = logits + b2.astype(jnp.float32)[None, :, None, :]
    if k_pos is None:
        return logits
    return jnp.take_along_axis(logits, k_pos[:, None, None, :], axis=3)  # [B, N, T, S]


def param_specs(
    hparams: Mapping[str, Any], *, num_heads: int, num_kv_heads: int, head_dim: int, kv_length: int
) -> dict[str, core.ParamSpec]:
    """random: R [N, T_max, S_max]; dense: W₁ [N, H, F], b₁ [N, F], W₂ [N, F, S_max], b₂ [N, S_max].

    S_max is the layer's kv_length (the longest sequence it will see); T_max defaults to S_max.
    """
    del num_kv_heads  # the logits are per query head
    mode = hparams.get("mode", "random")
    _check_mode(mode)
    N, s_max = num_heads, kv_length
    if mode == "random":
        t_max = hparams.get("max_query_length") or s_max
        return {
            "random_logits": core.ParamSpec((N, t_max, s_max), _random_init, ("heads", None, None))
        }
    F = hparams.get("dense_hidden_dim") or head_dim
    zeros = jax.nn.initializers.zeros
    return {
        "dense_w1": core.ParamSpec((N, head_dim, F), _dense_init, ("heads", "kv", "mlp")),
        "dense_b1": core.ParamSpec((N, F), zeros, ("heads", "mlp")),
        "dense_w2": core.ParamSpec((N, F, s_max), _dense_init, ("heads", "mlp", None)),
        "dense_b2": core.ParamSpec((N, s_max), zeros, ("heads", None)),
    }


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise errors.ConfigError(f"{KIND}: mode must be one of {MODES}; got {mode!r}")
