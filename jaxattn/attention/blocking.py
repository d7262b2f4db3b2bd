"""The block layout of blockwise exact attention (`softmax_chunked`): how queries, keys, values
and masks are cut into blocks, which blocks a causal loop visits, and the rows of a diagonal
block that can see its keys. Einsum letters as in `softmax_chunked`: Z = B·K, R = G·BQ rows of a
query block, C = BK keys of a key block.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Blocking(NamedTuple):
    """Static facts the block loops need (hashable: the custom_vjp's non-differentiable arg)."""

    is_causal: bool
    block_q: int  # BQ
    block_k: int  # C
    num_kv_heads: int  # K
    group: int  # G = N // K
    split_diagonal: bool = False  # causal with BQ = m·BK, m >= 2 (see diagonal_rows)
    dropout_rate: float = 0.0  # attention-probability dropout (masks drawn per block)


def pad_axis(x: jax.Array, axis: int, size: int) -> jax.Array:
    pad = [(0, 0)] * x.ndim
    pad[axis] = (0, size - x.shape[axis])
    return jnp.pad(x, pad)


def query_blocks(query: jax.Array, cfg: Blocking) -> jax.Array:
    """[B, Tp, N, H] -> [nQ, Z, R, H]: row r = g·BQ + t of a block is head k·G + g, position t."""
    B, Tp, _, H = query.shape
    K, G, BQ = cfg.num_kv_heads, cfg.group, cfg.block_q
    q = query.reshape(B, Tp // BQ, BQ, K, G, H)
    q = q.transpose(1, 0, 3, 4, 2, 5)  # [nQ, B, K, G, BQ, H]
    return q.reshape(Tp // BQ, B * K, G * BQ, H)


def unblock_queries(out: jax.Array, cfg: Blocking, B: int) -> jax.Array:
    """The inverse of query_blocks: [nQ, Z, R, H] -> [B, Tp, N, H]."""
    nQ, _, _, H = out.shape
    K, G, BQ = cfg.num_kv_heads, cfg.group, cfg.block_q
    out = out.reshape(nQ, B, K, G, BQ, H).transpose(1, 0, 4, 2, 3, 5)  # [B, nQ, BQ, K, G, H]
    return out.reshape(B, nQ * BQ, K * G, H)


def key_blocks(x: jax.Array, BK: int) -> jax.Array:
    """[B, Sp, K, H] -> [nK, Z, C, H]."""
    B, Sp, K, H = x.shape
    x = x.reshape(B, Sp // BK, BK, K, H).transpose(1, 0, 3, 2, 4)  # [nK, B, K, C, H]
    return x.reshape(Sp // BK, B * K, BK, H)


def mask_blocks(x: jax.Array, block: int) -> jax.Array:
    """[B, L] -> [L // block, B, block]."""
    B, L = x.shape
    return x.reshape(B, L // block, block).transpose(1, 0, 2)


def rows_from(x: jax.Array, cfg: Blocking, start: int, axis: int = 1) -> jax.Array:
    """Rows t >= start of every head group of a query block: [..., G·BQ, ...] on `axis` ->
    [..., G·(BQ - start), ...] (row g·BQ + t of a block is head group g, position t)."""
    if start == 0:
        return x
    G, BQ = cfg.group, cfg.block_q
    x = x.reshape(*x.shape[:axis], G, BQ, *x.shape[axis + 1 :])
    x = jax.lax.slice_in_dim(x, start, BQ, axis=axis + 1)
    return x.reshape(*x.shape[:axis], G * (BQ - start), *x.shape[axis + 2 :])


def set_rows_from(x: jax.Array, cfg: Blocking, start: int, rows: jax.Array, axis: int = 1):
    """x with rows t >= start of every head group replaced by `rows` (the inverse of rows_from)."""
    if start == 0:
        return rows
    G, BQ = cfg.group, cfg.block_q
    grouped = x.reshape(*x.shape[:axis], G, BQ, *x.shape[axis + 1 :])
    head = jax.lax.slice_in_dim(grouped, 0, start, axis=axis + 1)
    rows = rows.reshape(*rows.shape[:axis], G, BQ - start, *rows.shape[axis + 1 :])
    return jnp.concatenate([head, rows], axis=axis + 1).reshape(x.shape)


def diagonal_rows(cfg: Blocking) -> list[int]:
    """First query row (within its block) that can see diagonal key block u = 0 .. m-1 when
    cfg.split_diagonal: key block m·i + u starts at position i·BQ + u·BK, so rows t < u·BK of
    query block i see none of it and are not computed (with BQ = 2·BK, 1/4 of the diagonal
    blocks' logits: 10% of all blocks at T = 2048, BQ 512)."""
    return [u * cfg.block_k for u in range(cfg.block_q // cfg.block_k)]


def key_block_range(cfg: Blocking, i: jax.Array, num_key_blocks: int):
    """(below, end) for query block i: key blocks [0, below) lie wholly on or below the
    diagonal (no causal mask needed), [below, end) straddle it, blocks from `end` on lie above
    it and are never visited. Without causal masking every block is in [0, below)."""
    if not cfg.is_causal:
        return num_key_blocks, num_key_blocks
    first_query, last_query = i * cfg.block_q, i * cfg.block_q + cfg.block_q - 1
    end = jnp.minimum(num_key_blocks, last_query // cfg.block_k + 1)
    below = jnp.minimum(end, (first_query + 1) // cfg.block_k)  # last key <= first query
    return below, end


def query_block_range(cfg: Blocking, j: jax.Array, num_query_blocks: int):
    """(start, below) for key block j: query blocks [start, below) straddle the diagonal,
    [below, nQ) see the whole key block; blocks before `start` never see it."""
    if not cfg.is_causal:
        return 0, 0
    first_key, last_key = j * cfg.block_k, j * cfg.block_k + cfg.block_k - 1
    start = first_key // cfg.block_q  # its last query >= the block's first key
    below = jnp.minimum(num_query_blocks, -(-last_key // cfg.block_q))  # first query >= last key
    return start, jnp.maximum(start, below)


def bias_window(bias: jax.Array, cfg: Blocking, i: jax.Array, j: jax.Array, row_start: int = 0):
    """(start indices, sizes) of block (i, j), rows from row_start, in the padded [b, n, t, s]
    bias (or its grad)."""
    b, n, t, s = bias.shape
    start = (0, 0, i * cfg.block_q + row_start if t > 1 else 0, j * cfg.block_k if s > 1 else 0)
    sizes = (b, n, cfg.block_q - row_start if t > 1 else 1, cfg.block_k if s > 1 else 1)
    return start, sizes
