"""Multi-scale window attention: every head attends inside a sliding window of its own size.

Guo, Qiu, Liu, Xue and Zhang 2019, "Multi-Scale Self-Attention for Text Classification",
arXiv:1907.06226 (AAAI 2020). Head h of a layer attends only to the ω_h tokens around each
query, so a layer mixes local (small ω) and global (large ω) heads.

Per batch b, query head n (kv head n // G), query t, with w_n = window_sizes[n % len(window_sizes)]:

    A_n[t, s] = Q[t]·K[s]·scale       for |t − s| <= w_n (and s <= t when causal), else masked
    out[t, n] = Σ_s softmax_s(A_n[t, s]) V[s]

so head n is exactly `local` (mode 'sliding', window_size = w_n) on that head. In the paper's
notation a head of scale ω sees ω = 2·w + 1 tokens (w on each side); its largest scale is the
whole sequence, here any w >= T − 1 (which is exactly softmax).

The heads are grouped by window: each distinct w runs `local.local_attention` once on the query
heads that use it (each with its kv head, so G = 1 inside a group). Time O(B·Σ_n T·W_n·H),
memory O(B·T·W_n) per head, W_n ≈ 1.25·(2·w_n) key slots (local.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxattn import errors
from jaxattn.attention import core, local

KIND = "multiscale_window"


def multiscale_window_attention(
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
    window_sizes: Sequence[int] = (1, 2, 3, 4096),
) -> jax.Array:
    """Sliding-window attention with one window size per head (cycled over the heads).

    Paper: Guo et al. 2019, arXiv:1907.06226 (multi-scale multi-head self-attention).

    Args:
      query: [B, T, N, H].
      key, value: [B, S, K, H] with S == T (self-attention only); K divides N (GQA/MQA).
      is_causal: each head's window keeps its left side only (s <= t).
      kv_mask: [B, S] bool, True = real key.
      q_segment_ids, kv_segment_ids: packed sequences; windows never cross a segment (local.py).
      bias: unsupported (the windows are computed tile by tile; no [T, S] logits exist).
      scale: logits scale, default 1/sqrt(H).
      dropout_rate, dropout_rng: attention-probability dropout inside every head's window; the
        group of heads with the i-th distinct window (in sorted order) draws its mask from
        `jax.random.fold_in(dropout_rng, i)` as `local.tile_attention` does.
      window_sizes: w per head, the keys s with |t − s| <= w (paper's ω = 2·w + 1); head n uses
        window_sizes[n % len(window_sizes)]. Any w >= T − 1 is global (softmax) attention. The
        default (1, 2, 3, 4096) is the paper's ω = 3, 5, 7 and a global head, cycled.

    Returns:
      [B, T, N, H] in value.dtype; a query with no visible key returns zeros.

    Masks: causal, key padding, packing, GQA, dropout (all through `local`). No bias, no
    cross-attention (a window is centred on the query's own position).

    Deviation: the paper also varies the scales by layer (more small-scale heads in lower
    layers). A kind does not know its layer, so every layer gets the same `window_sizes` here.
    Not compared with a reference implementation (the authors released none that we know of);
    tests/attention/multiscale_window_test.py holds each head to `local` with its window and a
    global head to softmax.
    """
    if bias is not None:
        raise core.unsupported(KIND, "bias")
    B, T, S, N, K, H = core.check_inputs(
        KIND,
        query,
        key,
        value,
        kv_mask=kv_mask,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
    )
    if T != S:
        raise core.unsupported(KIND, f"cross-attention (T={T} != S={S}); it is self-attention only")
    use_dropout = core.check_dropout(KIND, dropout_rate, dropout_rng)
    widths = head_windows(window_sizes, N, T)  # [N] one-sided widths, capped at T - 1
    G = N // K

    out = jnp.zeros((B, T, N, H), jnp.float32)
    for i, w in enumerate(sorted(set(widths))):
        heads = np.flatnonzero(np.asarray(widths) == w)  # query heads with this window
        rng = jax.random.fold_in(dropout_rng, i) if use_dropout else None
        part = local.local_attention(
            query[:, :, heads],
            key[:, :, heads // G],  # each query head with its kv head: G = 1 in the group
            value[:, :, heads // G].astype(jnp.float32),
            is_causal=is_causal,
            kv_mask=kv_mask,
            q_segment_ids=q_segment_ids,
            kv_segment_ids=kv_segment_ids,
            scale=scale,
            dropout_rate=dropout_rate,
            dropout_rng=rng,
            mode="sliding",
            window_size=int(w),
        )  # [B, T, n_w, H] float32
        out = out.at[:, :, heads].set(part)
    return out.astype(value.dtype)


def head_windows(window_sizes: Sequence[int], num_heads: int, length: int) -> list[int]:
    """The one-sided window of each of `num_heads` heads (cycled), capped at length − 1."""
    sizes = (window_sizes,) if isinstance(window_sizes, int) else tuple(window_sizes)
    if not sizes or any(not isinstance(w, int) or isinstance(w, bool) or w < 0 for w in sizes):
        raise errors.ConfigError(
            f"{KIND}: window_sizes must be a non-empty sequence of ints >= 0; got {window_sizes!r}"
        )
    return [min(sizes[n % len(sizes)], length - 1) for n in range(num_heads)]
