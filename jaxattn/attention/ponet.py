"""PoNet multi-granularity pooling (Tan et al. 2021, https://arxiv.org/abs/2110.02442), a mixer.

Tan, Chen, Wang, Zhang, Li, "PoNet: Pooling Network for Efficient Token Mixing in Long
Sequences", ICLR 2022, arXiv:2110.02442. The authors' code (PoNetSelfAttention in their BERT-style
model; the same layer in their LRA code) defines what follows. Shape letters (core.py) plus
n = num_heads and E = D / n; five projections of x [B, T, D] (each with a bias):

    q, k, o = x·W_q, x·W_k, x·W_o              [B, T, n, E]    (values are the keys: v = k)
    l, s    = x·W_l, x·W_s                      [B, T, D]

    global aggregation:   g[b, n]    = mean over real t of q[b, t, n]                     [B, n, E]
                          p[b, n, t] = softmax_t(g[b, n] · k[b, t, n] / sqrt(E))          [B, n, T]
                          a[b, n]    = Σ_t p[b, n, t] · k[b, t, n]                        [B, n, E]
    segment max-pooling:  S[b, t]    = max over real t' in t's segment of s[b, t']        [B, T, D]
                          segments: L = T // num_segments + 1 consecutive tokens each
    local max-pooling:    Lo[b, t]   = max over real t' with |t' - t| <= w // 2 of l[b, t']
    fusion:               c[b, t, n] = (a[b, n] + S[b, t, n]) ⊙ o[b, t, n] + Lo[b, t, n]
    output:               y = c · W_out + b_out, zero at padded positions               [B, T, D]

The output projection is the authors' PoNetSelfOutput dense (its residual, dropout and LayerNorm
are the surrounding block's). The segment rule T // num_segments + 1 is the authors' LRA code's
(their pretraining code uses sentence boundaries instead, which an encoder over LRA tokens has
not got). The local window is `local_window` (the authors' 3).

Masks:
  - kv_mask (padding): the mean, the softmax and both max-pools run over real tokens only
    (pads are excluded, never filled with a finite stand-in that a real maximum could lose to),
    and padded rows of the output are zero; real outputs do not depend on pad values.
  - is_causal: refused. The paper's PoNet is an encoder: the global mean, the attention over all
    tokens and the segment max all read the future.
  - segment ids (packing): refused (global and segment pooling would need per-segment
    reductions and segment-relative pooling windows, not implemented).
  - bias: refused (no T×S logits).
  - dropout: applied to the global-aggregation probabilities p, drawn at p's shape [B, n, T].
    The authors' code applies none there; set the model's attention_dropout_rate to 0 to match
    it (configs/lra_ponet.py does).

Omitted tensors (tests only): identity projections and zero biases.

Complexity: O(T·D·(D + w)) time (projections dominate), O(T·D) memory.

Reference implementation: the authors' PoNetSelfAttention (+ the output dense) was re-run here in
torch (float64, a transcription kept outside the repository) on a fixed input with padding;
ours (float32) agrees to a max abs difference of 5.6e-7 on the real rows (B=2, T=16, D=8, n=2,
num_segments=3, one example padded to 11).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxattn.attention import core

KIND = "ponet"
NUM_PROJ = 5  # q, k, o, local, segment (in this order in in_proj / in_bias)


def segment_length(T: int, num_segments: int) -> int:
    """The authors' LRA segmentation: T // num_segments + 1 consecutive tokens per segment."""
    return T // num_segments + 1


def local_max(values: jax.Array, valid: jax.Array, window: int) -> jax.Array:
    """[B, T, D]: the max of `values` over real positions within window // 2 of t (-inf if none)."""
    T = values.shape[1]
    half = window // 2
    neg = jnp.asarray(-jnp.inf, values.dtype)
    best = jnp.full_like(values, -jnp.inf)
    for o in range(-half, half + 1):
        shifted = jnp.roll(values, -o, axis=1)  # shifted[:, t] = values[:, t + o]
        ok = jnp.roll(valid, -o, axis=1)
        inside = (jnp.arange(T) + o >= 0) & (jnp.arange(T) + o < T)
        keep = ok & inside[None, :]
        best = jnp.maximum(best, jnp.where(keep[:, :, None], shifted, neg))
    return best


def segment_max(s: jax.Array, valid: jax.Array, length: int) -> jax.Array:
    """[B, T, D]: the max of s over the real tokens of t's segment of `length` tokens."""
    B, T, D = s.shape
    pad = (-T) % length
    s = jnp.where(valid[:, :, None], s, -jnp.inf)
    s = jnp.pad(s, ((0, 0), (0, pad), (0, 0)), constant_values=-jnp.inf)
    m = jnp.max(s.reshape(B, -1, length, D), axis=2)  # [B, T / L, D]
    return jnp.repeat(m, length, axis=1)[:, :T]


def ponet_mixing(
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
    num_segments: int = 32,
    local_window: int = 3,
    in_proj: jax.Array | None = None,
    in_bias: jax.Array | None = None,
    out_proj: jax.Array | None = None,
    out_bias: jax.Array | None = None,
) -> jax.Array:
    """PoNet's global, segment and local pooling with multiplicative fusion on x [B, T, D].

    Args:
      x: [B, T, D].
      is_causal: unsupported (raises): global and segment pooling read the future.
      kv_mask: [B, T] bool, True = real token (exact; padded output rows are 0).
      q_segment_ids, kv_segment_ids: unsupported (packing raises).
      bias: unsupported (raises).
      dropout_rate, dropout_rng: dropout on the global-aggregation probabilities [B, n, T].
      num_heads: n, heads of the global aggregation (D % n == 0).
      num_segments: segments of T // num_segments + 1 tokens for segment max-pooling.
      local_window: w, the odd width of the local max-pooling window.
      in_proj: [5, D, D] (W_q, W_k, W_o, W_l, W_s); in_bias: [5, D] (declared).
      out_proj: [D, D]; out_bias: [D] (declared).

    Returns:
      [B, T, D] in x.dtype.
    """
    if is_causal:
        raise core.unsupported(KIND, "is_causal=True (global and segment pooling read the future)")
    if q_segment_ids is not None or kv_segment_ids is not None:
        raise core.unsupported(KIND, "q_segment_ids/kv_segment_ids (packing)")
    if bias is not None:
        raise core.unsupported(KIND, "bias (no attention logits over token pairs)")
    use_dropout = core.check_dropout(KIND, dropout_rate, dropout_rng)
    if x.ndim != 3:
        raise ValueError(f"{KIND}: x must be [B, T, D]; got {x.shape}")
    B, T, D = x.shape
    if D % num_heads:
        raise ValueError(f"{KIND}: num_heads={num_heads} must divide D={D}")
    if local_window < 1 or local_window % 2 == 0:
        raise ValueError(f"{KIND}: local_window must be odd and >= 1; got {local_window}")
    if kv_mask is not None and kv_mask.shape != (B, T):
        raise ValueError(f"{KIND}: kv_mask must be [B, T] = {(B, T)}; got {kv_mask.shape}")
    f32 = jnp.float32
    x32 = x.astype(f32)
    if in_proj is None:
        in_proj = jnp.broadcast_to(jnp.eye(D, dtype=f32), (NUM_PROJ, D, D))  # stand-in: x
    h = jnp.einsum("BTD,PDE->PBTE", x32, in_proj.astype(f32))  # [5, B, T, D]
    if in_bias is not None:
        h = h + in_bias.astype(f32)[:, None, None, :]
    E = D // num_heads
    q, k, o = (h[i].reshape(B, T, num_heads, E) for i in range(3))  # [B, T, n, E]
    loc, seg = h[3], h[4]  # [B, T, D]
    valid = jnp.ones((B, T), bool) if kv_mask is None else kv_mask.astype(bool)

    # Global aggregation: the masked mean query attends once over the real tokens.
    w = valid.astype(f32)[:, :, None, None]  # [B, T, 1, 1]
    g = jnp.sum(q * w, axis=1) / jnp.maximum(jnp.sum(w, axis=1), 1.0)  # [B, n, E]
    logits = jnp.einsum("BNE,BTNE->BNT", g, k) * E**-0.5
    logits = jnp.where(valid[:, None, :], logits, core.MASK_VALUE)
    probs = jax.nn.softmax(logits, axis=-1)  # [B, n, T]
    if use_dropout:
        probs = core.dropout(probs, dropout_rate, dropout_rng)
    a = jnp.einsum("BNT,BTNE->BNE", probs, k)  # values are the keys

    seg = segment_max(seg, valid, segment_length(T, num_segments))  # [B, T, D]
    loc = local_max(loc, valid, local_window)  # [B, T, D]
    # A pool with no real token (only at padded rows) is -inf: make it 0 so that no product
    # with -inf (NaN forward, NaN gradients) ever forms.
    seg = jnp.where(jnp.isneginf(seg), 0.0, seg)
    loc = jnp.where(jnp.isneginf(loc), 0.0, loc)
    seg = seg.reshape(B, T, num_heads, E)
    loc = loc.reshape(B, T, num_heads, E)
    c = ((a[:, None] + seg) * o + loc).reshape(B, T, D)
    c = jnp.where(valid[:, :, None], c, 0.0)  # padded rows are 0, as in the authors' code

    y = c if out_proj is None else jnp.einsum("BTD,DE->BTE", c, out_proj.astype(f32))
    if out_bias is not None:
        y = y + out_bias.astype(f32)
    return y.astype(x.dtype)


def param_specs(
    hparams: Mapping[str, Any], *, num_heads: int, num_kv_heads: int, head_dim: int, kv_length: int
) -> dict[str, core.ParamSpec]:
    """The five input projections stacked [5, D, D] (+ biases) and the output dense, D = head_dim."""
    del hparams, num_heads, num_kv_heads, kv_length
    D = head_dim
    dense = jax.nn.initializers.lecun_normal(in_axis=-2, out_axis=-1, batch_axis=(0,))
    zeros = jax.nn.initializers.zeros
    return {
        "in_proj": core.ParamSpec((NUM_PROJ, D, D), dense, (None, "embed", "mlp")),
        "in_bias": core.ParamSpec((NUM_PROJ, D), zeros, (None, "mlp")),
        "out_proj": core.ParamSpec((D, D), jax.nn.initializers.lecun_normal(), ("mlp", "embed")),
        "out_bias": core.ParamSpec((D,), zeros, ("embed",)),
    }
