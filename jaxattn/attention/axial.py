"""Axial attention on a 2-D token grid: a row step, then a column step, in one call.

Ho et al. 2019, "Axial Attention in Multidimensional Transformers",
https://arxiv.org/abs/1912.12180; Wang et al. 2020, "Axial-DeepLab",
https://arxiv.org/abs/2003.07853.

Tokens are `P = T - rows·cols` prefix tokens (CLS, distillation) followed by the grid in raster
order (`AttentionSpec.grid`, core.py). With A_row the row step's probabilities and A_col the
column step's, a grid query's output is `Σ A_col · A_row · v`: every grid output mixes the whole
grid and the prefix in one call.

- Row step: grid query (r, c) attends to the keys of its row and to the P prefix keys, in one
  softmax (the prefix acts as a row shared by every row).
- Column step: grid query (r, c) attends, with the same q and k, to the grid keys of its column
  (r', c), r' = 0 .. rows - 1, whose values are the row step's outputs y(r', c).
- Prefix queries attend to all T keys (one plain softmax: P·T extra work).

So with one row (grid (1, T - P)) the row step is a full softmax over all keys and the column
step has one key (A_col = 1): the kind equals `softmax` exactly, prefix or not.

Einsum letters are the house shape letters (core.py) plus R (grid rows), C (grid columns), D (a
second column index: keys of the row step), E (a second row index: keys of the column step) and
P (prefix tokens).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxattn import errors
from jaxattn.attention import core

KIND = "axial"


def axial_attention(
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
    grid: tuple[int, int] | None = None,
) -> jax.Array:
    """Row attention then column attention over the grid (prefix tokens: see the module docstring).

    Args:
      query: [B, T, N, H]; T = P + rows·cols (P >= 0 prefix tokens, then the grid, raster order).
      key, value: [B, S, K, H] with S == T (self-attention only); K divides N (GQA/MQA).
      is_causal: raster-order causality. Grid query (r, c) sees row keys (r, c' <= c) and the
        prefix in the row step, and column keys (r' <= r, c) in the column step, whose values mix
        (r', c'' <= c): so it depends on tokens (r' <= r, c' <= c) and the prefix only, a subset
        of its past (the axial receptive field, not the whole past). Prefix queries are plain
        causal softmax among the prefix.
      kv_mask: [B, S] bool, True = real token; padded keys are excluded from both steps (a row or
        column of only padded keys stays finite: MASK_VALUE, never -inf).
      q_segment_ids, kv_segment_ids: unsupported (raises): packing has no meaning on one grid.
      bias: unsupported (raises).
      scale: logits scale of both steps, default 1/sqrt(H).
      dropout_rate, dropout_rng: attention-probability dropout, independent masks for the prefix
        queries' probabilities [B, K, G, P, T], the row step's [B, K, G, R, C, C + P] and the
        column step's [B, K, G, C, R, R] (from fold_in(dropout_rng, 0 / 1 / 2)); the output is
        linear in each, so inverted dropout stays unbiased.
      grid: (rows, cols), bound from the model by `get_attention_fn` (AttentionSpec.grid);
        rows·cols <= T.

    Returns:
      [B, T, N, H] in value.dtype; padded query rows hold finite values.

    Masks: key padding, causal (raster order, above); GQA/MQA. No packing, bias or cross.

    Complexity: O(T·(rows + cols + P)·H) time, O(T·(rows + cols + P)) memory per head.
    """
    if q_segment_ids is not None or kv_segment_ids is not None:
        raise core.unsupported(KIND, "q_segment_ids/kv_segment_ids (packing): one grid per row")
    if bias is not None:
        raise core.unsupported(KIND, "bias")
    B, T, S, N, K, H = core.check_inputs(KIND, query, key, value, kv_mask=kv_mask)
    if T != S:
        raise core.unsupported(KIND, f"cross-attention (T={T} != S={S}): one grid for q and k")
    use_dropout = core.check_dropout(KIND, dropout_rate, dropout_rng)
    R, C = check_grid(grid, T)
    P, G = T - R * C, N // K
    scale = core.default_scale(scale, H)
    f32 = jnp.float32

    valid = jnp.ones((B, T), bool) if kv_mask is None else kv_mask.astype(bool)  # [B, T]
    q = query.reshape(B, T, K, G, H)
    qp, kp, vp = q[:, :P], key[:, :P], value[:, :P]
    qg = q[:, P:].reshape(B, R, C, K, G, H)
    kg, vg = (x[:, P:].reshape(B, R, C, K, H) for x in (key, value))
    valid_p, valid_g = valid[:, :P], valid[:, P:].reshape(B, R, C)
    rngs = [jax.random.fold_in(dropout_rng, i) for i in range(3)] if use_dropout else [None] * 3

    def softmax(logits, keep, rng):
        probs = jax.nn.softmax(jnp.where(keep, logits, core.MASK_VALUE), axis=-1)
        return core.dropout(probs, dropout_rate, rng)

    # Prefix queries: one softmax over every key (causal: the prefix keys up to themselves).
    out_p = jnp.zeros((B, 0, K, G, H), f32)
    if P:
        logits = jnp.einsum("BPKGH,BSKH->BKGPS", qp, key, preferred_element_type=f32) * scale
        keep = valid[:, None, None, None, :]  # [B, 1, 1, 1, S]
        if is_causal:
            keep = keep & (jnp.arange(P)[:, None] >= jnp.arange(S)[None, :])
        probs = softmax(logits, keep, rngs[0]).astype(value.dtype)  # [B, K, G, P, S]
        out_p = jnp.einsum("BKGPS,BSKH->BPKGH", probs, value, preferred_element_type=f32)

    # Row step: the row's keys and the prefix keys, one softmax.
    row_logits = jnp.einsum("BRCKGH,BRDKH->BKGRCD", qg, kg, preferred_element_type=f32) * scale
    row_keep = valid_g[:, None, None, :, None, :]  # [B, 1, 1, R, 1, D]
    if is_causal:
        row_keep = row_keep & (jnp.arange(C)[:, None] >= jnp.arange(C)[None, :])  # c' <= c
    if P:
        pre_logits = (
            jnp.einsum("BRCKGH,BPKH->BKGRCP", qg, kp, preferred_element_type=f32) * scale
        )  # [B, K, G, R, C, P]
        row_logits = jnp.concatenate([row_logits, pre_logits], axis=-1)  # [B, K, G, R, C, C + P]
        pre_keep = valid_p[:, None, None, None, None, :]  # [B, 1, 1, 1, 1, P]
        row_keep = jnp.concatenate(
            [jnp.broadcast_to(x, (B, 1, 1, R, C, x.shape[-1])) for x in (row_keep, pre_keep)],
            axis=-1,
        )  # [B, 1, 1, R, C, C + P]
    row_probs = softmax(row_logits, row_keep, rngs[1]).astype(value.dtype)
    y = jnp.einsum(
        "BKGRCD,BRDKH->BRCKGH", row_probs[..., :C], vg, preferred_element_type=f32
    )  # [B, R, C, K, G, H]
    if P:
        y = y + jnp.einsum(
            "BKGRCP,BPKH->BRCKGH", row_probs[..., C:], vp, preferred_element_type=f32
        )
    y = y.astype(value.dtype)

    # Column step: the same q and k over the column's grid keys; values are the row outputs.
    col_logits = jnp.einsum("BRCKGH,BECKH->BKGCRE", qg, kg, preferred_element_type=f32) * scale
    col_keep = jnp.moveaxis(valid_g, 1, 2)[:, None, None, :, None, :]  # [B, 1, 1, C, 1, E]
    if is_causal:
        col_keep = col_keep & (jnp.arange(R)[:, None] >= jnp.arange(R)[None, :])  # r' <= r
    col_probs = softmax(col_logits, col_keep, rngs[2]).astype(value.dtype)  # [B, K, G, C, R, E]
    out_g = jnp.einsum(
        "BKGCRE,BECKGH->BRCKGH", col_probs, y, preferred_element_type=f32
    )  # [B, R, C, K, G, H]

    out = jnp.concatenate([out_p, out_g.reshape(B, R * C, K, G, H)], axis=1)
    return out.reshape(B, T, N, H).astype(value.dtype)


def check_grid(grid: tuple[int, int] | None, T: int) -> tuple[int, int]:
    """(rows, cols) as ints; raises when there is no grid or it does not fit in T tokens."""
    if grid is None:
        raise errors.UnsupportedFeatureError(
            f"attention kind '{KIND}' needs a 2-D token grid (grid=(rows, cols)), bound from a "
            "model that offers one (get_attention_fn(..., grid=...))"
        )
    try:
        R, C = (int(n) for n in grid)
    except (TypeError, ValueError):
        raise errors.ConfigError(f"{KIND}: grid must be (rows, cols); got {grid!r}") from None
    if R < 1 or C < 1:
        raise errors.ConfigError(f"{KIND}: grid (rows, cols) must be positive; got {grid!r}")
    if R * C > T:
        raise ValueError(
            f"{KIND}: grid {R} x {C} = {R * C} tokens does not fit in the sequence of T={T} "
            "(T = prefix tokens + rows·cols)"
        )
    return R, C
