"""Local attention: a sliding window or non-overlapping blocks, computed tile by tile in O(T·w).

Two patterns (hyper-parameter `mode`):

* 'sliding': query t sees the keys s with t − left ≤ s ≤ t + right. left = right = window_size
  unless `window_left` / `window_right` override one side; causal sets right = 0. This is the
  banded attention of local self-attention over long text (Hofstätter et al. 2020,
  https://arxiv.org/abs/2005.04908) and, asymmetric, the limited context of Transformer
  Transducer (Zhang et al. 2020, https://arxiv.org/abs/2002.02562).
* 'block': the sequence is cut into non-overlapping blocks of `block_size` and a query sees only
  the keys of its own block: the "Local Attention" baseline of Long Range Arena (Tay et al. 2021,
  https://arxiv.org/abs/2011.04006, after Parmar et al. 2018, https://arxiv.org/abs/1802.05751).

No T×S array is formed. Queries are cut into tiles of C positions; a tile attends to its own key
tile and the nl tiles to its left and nr to its right that the window reaches, i.e. W = (nl + 1 +
nr)·C keys, with an element mask over those [C, W] slots only. In 'block' mode a tile is a block
(nl = nr = 0, W = block_size).

Einsum letters: the house letters (core.py) plus U (query tiles), C (positions in a tile) and W
(the key slots of a tile's window).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxattn import errors
from jaxattn.attention import core, softmax

KIND = "local"
MODES = ("sliding", "block")


def local_attention(
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
    mode: str = "sliding",
    window_size: int = 128,
    window_left: int | None = None,
    window_right: int | None = None,
    block_size: int = 50,
) -> jax.Array:
    """Softmax attention restricted to a sliding window or to non-overlapping blocks.

    Paper: Hofstätter et al. 2020, https://arxiv.org/abs/2005.04908 (sliding windows); LRA's
    "Local Attention" (blocks), Tay et al. 2021, https://arxiv.org/abs/2011.04006.

    Args:
      query: [B, T, N, H].
      key, value: [B, S, K, H] with S == T (self-attention only); K divides N (GQA/MQA).
      is_causal: 'sliding': the right window becomes 0; 'block': causal inside each block.
      kv_mask: [B, S] bool, True = real key.
      q_segment_ids, kv_segment_ids: [B, T] / [B, S] int, packed sequences (contiguous runs of
        equal ids); a query sees only keys of its own segment. In 'block' mode blocks are counted
        from the start of each segment, so a packed batch equals its segments run one by one.
      bias: unsupported (raises UnsupportedFeatureError).
      scale: logits scale, default 1/sqrt(H).
      dropout_rate, dropout_rng: attention-probability dropout on the [C, W] probabilities of
        every tile (`tile_attention`); only the window's slots are ever dropped.
      mode: 'sliding' or 'block'.
      window_size: w, the default of both sides of the sliding window ('sliding' only). With
        w >= T - 1 this is exactly (causal) softmax attention.
      window_left, window_right: override the left / right side of the window ('sliding' only);
        query t sees t - window_left ... t + window_right.
      block_size: the block length ('block' only; LRA: 50). block_size >= T is softmax.

    Returns:
      [B, T, N, H] in value.dtype. A query with no visible key (all masked) returns zeros;
      padded query rows hold finite values.

    Masks: causal, key padding, packing (segment ids), GQA/MQA. No bias, no cross-attention.

    Complexity per (batch, head): 'sliding' O(T·W·H) time and O(T·W) memory, W = (nl + 1 + nr)·C
    < left + right + 3C with C = ceil((left + right) / 4) (W = 1.25·(left + right) when C divides
    both sides); 'block' O(T·block_size·H) time and O(T·block_size) memory (packed: as 'sliding'
    with left = right = block_size − 1).

    Deviation: Hofstätter et al.'s TKL model slides overlapping windows with a stride and pools
    over them; 'sliding' is the per-token band (each token is the centre of its own window).
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
    q_ids, kv_ids = core.resolve_segment_ids(KIND, q_segment_ids, kv_segment_ids, T, S)
    core.check_dropout(KIND, dropout_rate, dropout_rng)
    packed = q_ids is not None
    plan = _plan(
        mode, T, window_size, window_left, window_right, block_size, is_causal, packed=packed
    )
    G = N // K
    scale = core.default_scale(scale, H)

    nb = -(-T // plan.tile)  # number of tiles
    Tp = nb * plan.tile
    q = _pad_length(query.reshape(B, T, K, G, H), Tp).reshape(B, nb, plan.tile, K, G, H)
    k = _neighbours(_pad_length(key, Tp).reshape(B, nb, plan.tile, K, H), plan)  # [B, U, W, K, H]
    v = _neighbours(_pad_length(value, Tp).reshape(B, nb, plan.tile, K, H), plan)

    # Static positions: query (u, c) is at u·C + c; key slot (u, w) at kpos[u, w].
    qpos = np.arange(Tp).reshape(nb, plan.tile)  # [U, C]
    kpos = _neighbour_positions(nb, plan)  # [U, W]
    rel = kpos[:, None, :] - qpos[:, :, None]  # [U, C, W]
    in_range = (kpos >= 0) & (kpos < S)  # [U, W]
    keep = jnp.asarray((rel >= -plan.left) & (rel <= plan.right) & in_range[:, None, :])[None]
    if kv_mask is not None:
        kv_valid = _tiles_of(kv_mask.astype(bool), Tp, plan)  # [B, U, W]
        keep = keep & kv_valid[:, :, None, :]
    if packed:
        q_seg = _pad_length(q_ids, Tp).reshape(B, nb, plan.tile)  # [B, U, C]
        keep = keep & (q_seg[:, :, :, None] == _tiles_of(kv_ids, Tp, plan)[:, :, None, :])
        if plan.block is not None:  # blocks counted from each segment's start
            q_blk = _pad_length(_run_positions(q_ids) // plan.block, Tp).reshape(B, nb, plan.tile)
            k_blk = _tiles_of(_run_positions(kv_ids) // plan.block, Tp, plan)  # [B, U, W]
            keep = keep & (q_blk[:, :, :, None] == k_blk[:, :, None, :])

    out = tile_attention(q, k, v, keep, scale, dropout_rate, dropout_rng)  # [B, U, C, K, G, H]
    return out.reshape(B, Tp, N, H)[:, :T].astype(value.dtype)


def tile_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    keep: jax.Array,
    scale: float,
    dropout_rate: float = 0.0,
    dropout_rng: jax.Array | None = None,
) -> jax.Array:
    """Masked softmax attention of each query tile over its own key window, in float32.

    Args:
      q: [B, U, C, K, G, H]; k, v: [B, U, W, K, H].
      keep: bool, broadcastable to [B, U, C, W], or to [B, K, U, C, W] (a pattern per kv head).
      scale: logits scale.
      dropout_rate, dropout_rng: attention-probability dropout; the keep mask is
        `core.dropout_keep(dropout_rng, dropout_rate, (B, K, G, U, C, W))`.

    Returns:
      [B, U, C, K, G, H] float32; a query whose W slots are all masked gets zeros.
    """
    logits = jnp.einsum("BUCKGH,BUWKH->BKGUCW", q, k, preferred_element_type=jnp.float32) * scale
    keep = keep[:, None, None] if keep.ndim == 4 else keep[:, :, None]  # [B|1, K|1, 1, U, C, W]
    logits = jnp.where(keep, logits, core.MASK_VALUE)
    probs = jnp.where(keep, jax.nn.softmax(logits, axis=-1), 0.0)  # fully masked row -> zeros
    probs = core.dropout(probs, dropout_rate, dropout_rng)  # [B, K, G, U, C, W]
    return jnp.einsum(
        "BKGUCW,BUWKH->BUCKGH", probs.astype(v.dtype), v, preferred_element_type=jnp.float32
    )


@dataclasses.dataclass(frozen=True)
class _Plan:
    """The band [t − left, t + right], the tile length C, the neighbour tiles nl / nr, and the
    block length for packed 'block' mode (None otherwise)."""

    left: int
    right: int
    tile: int
    nl: int
    nr: int
    block: int | None


def _plan(
    mode: str,
    T: int,
    window_size: int,
    window_left: int | None,
    window_right: int | None,
    block_size: int,
    is_causal: bool,
    *,
    packed: bool,
) -> _Plan:
    if mode not in MODES:
        raise errors.ConfigError(f"{KIND}: mode must be one of {MODES}; got {mode!r}")
    for name, value in (
        ("window_size", window_size),
        ("window_left", window_left),
        ("window_right", window_right),
    ):
        if value is not None and (not isinstance(value, int) or value < 0):
            raise errors.ConfigError(f"{KIND}: {name} must be an int >= 0; got {value!r}")
    if not isinstance(block_size, int) or block_size < 1:
        raise errors.ConfigError(f"{KIND}: block_size must be a positive int; got {block_size!r}")

    if mode == "block" and not packed:
        # Tiles are the blocks: a query attends to its own tile only.
        tile = min(block_size, T)
        return _Plan(tile - 1, 0 if is_causal else tile - 1, tile, 0, 0, None)
    if mode == "block":
        # Packed: blocks restart at each segment, so they do not line up with fixed tiles; use
        # the band |t − s| < block_size and compare segment-relative block numbers.
        left = right = block_size - 1
        block = block_size
    else:
        left = window_size if window_left is None else window_left
        right = window_size if window_right is None else window_right
        block = None
    left, right = min(left, T - 1), min(0 if is_causal else right, T - 1)
    # C ≈ (left + right) / 4 keeps W = (nl + 1 + nr)·C below left + right + 3C; smaller tiles
    # waste fewer key slots but give each matmul less to do.
    tile = min(max(1, -(-(left + right) // 4)), T)
    return _Plan(left, right, tile, -(-left // tile), -(-right // tile), block)


def _pad_length(x: jax.Array, length: int) -> jax.Array:
    """Zero-pads axis 1 of x to `length`."""
    pad = [(0, 0)] * x.ndim
    pad[1] = (0, length - x.shape[1])
    return jnp.pad(x, pad)


def _neighbours(tiles: jax.Array, plan: _Plan) -> jax.Array:
    """[B, U, C, ...] -> [B, U, (nl + 1 + nr)·C, ...]: each tile with its neighbour tiles."""
    if plan.nl == plan.nr == 0:
        return tiles
    U = tiles.shape[1]
    pad = [(0, 0)] * tiles.ndim
    pad[1] = (plan.nl, plan.nr)
    padded = jnp.pad(tiles, pad)  # [B, nl + U + nr, C, ...]
    return jnp.concatenate([padded[:, j : j + U] for j in range(plan.nl + 1 + plan.nr)], axis=2)


def _neighbour_positions(U: int, plan: _Plan) -> np.ndarray:
    """[U, W] positions of the key slots of each tile's window; out of range is < 0 or >= Tp."""
    C = plan.tile
    tiles = np.arange(U)[:, None] + np.arange(-plan.nl, plan.nr + 1)[None, :]  # [U, nl + 1 + nr]
    return (tiles[:, :, None] * C + np.arange(C)).reshape(U, -1)


def _tiles_of(x: jax.Array, Tp: int, plan: _Plan) -> jax.Array:
    """A per-key [B, S] array as [B, U, W] key windows (zero/False outside the sequence)."""
    B = x.shape[0]
    return _neighbours(_pad_length(x, Tp).reshape(B, Tp // plan.tile, plan.tile), plan)


def _run_positions(ids: jax.Array) -> jax.Array:
    """[B, T] segment ids -> each position's offset from the start of its run of equal ids."""
    T = ids.shape[1]
    t = jnp.arange(T)
    starts = jnp.concatenate(
        [jnp.ones_like(ids[:, :1], bool), ids[:, 1:] != ids[:, :-1]], axis=1
    )  # [B, T]
    return t - jax.lax.cummax(jnp.where(starts, t, 0), axis=1)


def _window_slots(hparams: Mapping[str, Any], max_length: int) -> int:
    if hparams.get("mode", "sliding") == "block":
        return min(int(hparams.get("block_size", 50)), max_length)
    left = hparams.get("window_left")
    left = int(hparams.get("window_size", 128)) if left is None else int(left)
    return min(left + 1, max_length)


def _decode_init(hparams, *, batch, max_length, num_heads, num_kv_heads, head_dim, dtype):
    """A rolling cache of the keys and values a causal query can see: the left window plus the
    token itself ('sliding'), or one block ('block'), with each slot's position (-1: empty)."""
    del num_heads
    W = _window_slots(hparams, max_length)
    shape = (batch, W, num_kv_heads, head_dim)
    return {
        "key": jnp.zeros(shape, dtype),
        "value": jnp.zeros(shape, dtype),
        "positions": jnp.full((W,), -1, jnp.int32),
    }


def _decode_step(
    query,
    key,
    value,
    cache,
    index,
    *,
    scale=None,
    mode="sliding",
    window_size=128,
    window_left=None,
    block_size=50,
    **unused,
):
    """Causal local attention at position `index` from the rolling cache (`core.Decoder`):
    slot index % W takes the new key, so the cache never holds more than the window."""
    del unused
    W = cache["key"].shape[1]
    slot = index % W
    keys = jax.lax.dynamic_update_slice_in_dim(
        cache["key"], key.astype(cache["key"].dtype), slot, axis=1
    )
    values = jax.lax.dynamic_update_slice_in_dim(
        cache["value"], value.astype(cache["value"].dtype), slot, axis=1
    )
    positions = jax.lax.dynamic_update_slice(
        cache["positions"], index[None].astype(jnp.int32), (slot,)
    )
    if mode == "block":
        seen = (positions >= 0) & (positions // block_size == index // block_size)
    else:
        left = window_size if window_left is None else window_left
        seen = (positions >= 0) & (positions >= index - left)
    B = keys.shape[0]
    out = softmax.softmax_attention(
        query, keys, values, kv_mask=jnp.broadcast_to(seen, (B, W)), scale=scale
    )
    return out, {"key": keys, "value": values, "positions": positions}


DECODER = core.Decoder(init=_decode_init, step=_decode_step)
