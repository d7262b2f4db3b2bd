"""Block-sparse attention: Sparse Transformer, Longformer and BigBird layouts, active blocks only.

The sequence is cut into nb blocks of `block_size`; a static boolean layout L [nb, nb] says which
key blocks each query block sees. Query t sees key s iff L[t // b, s // b] (∧ s <= t when causal,
∧ key padding). Layouts (hyper-parameter `layout`, built in NumPy at trace time):

* 'bigbird' (Zaheer et al. 2020, https://arxiv.org/abs/2007.14062): window ∪ global ∪ random.
  `num_window_blocks` w around the diagonal, `num_global_blocks` g (the first ceil(g/2) and the
  last floor(g/2) blocks: g = 2 is BigBird-ITC's first and last block) whose rows and columns are
  full, and `num_random_blocks` r per other row drawn without replacement from the blocks not
  already in its window or global set. The random blocks are drawn from the explicit `rng`
  (`random_blocks`), one draw per kv head (the G query heads of a kv head share it): same rng,
  same blocks. The layer passes its 'attention' rng, so every layer draws its own blocks, anew
  every training step, and the trainer's fixed evaluation rng fixes them at evaluation.
* 'longformer' (Beltagy et al. 2020, https://arxiv.org/abs/2004.05150): window ∪ global, as
  above with no random blocks. The window is in blocks (the element-exact sliding window is the
  `local` kind).
* 'strided' (Child et al. 2019, https://arxiv.org/abs/1904.10509, §4.2, both heads merged, in
  blocks): |i − j| < stride or (i − j) mod stride == 0.
* 'fixed' (Child et al. 2019, in blocks): i // stride == j // stride or j mod stride >=
  stride − num_summary_blocks. With block_size = 10, stride = 5, num_summary_blocks = 1 this is
  exactly the paper's element-level fixed pattern with l = 50, c = 10 (LRA's setting).
* 'full': every block; equals softmax attention.

The other layouts are fixed (NumPy, built at trace time) and ignore `rng`. Only active blocks
are computed. Rows of L that are all True (global query blocks, 'full') form
one dense tile over all keys (O(g·b·T)); every other query block gathers its active key blocks,
padded to the row maximum A (O(T·A·b)). No T×S logits exist unless the layout is full.

Einsum letters (in local.tile_attention): the house letters plus U (query tiles), C (positions
in a tile) and W (the gathered key slots of a tile).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxattn import errors
from jaxattn.attention import core, local

KIND = "block_sparse"
# Layouts whose causal version (layout ∧ lower-triangular) is the pattern its paper uses or a
# sensible one. BigBird's random and global blocks assume bidirectional attention: causal raises.
CAUSAL_LAYOUTS = ("full", "longformer", "strided", "fixed")


@dataclasses.dataclass(frozen=True)
class LayoutParams:
    """The layout hyper-parameters (each layout reads the ones its docstring names)."""

    num_window_blocks: int = 3
    num_global_blocks: int = 2
    num_random_blocks: int = 3
    stride: int = 4
    num_summary_blocks: int = 1


def full_layout(num_blocks: int) -> np.ndarray:
    """[nb, nb] all True."""
    return np.ones((num_blocks, num_blocks), bool)


def window_layout(num_blocks: int, num_window_blocks: int) -> np.ndarray:
    """Block i sees the w blocks around it: i − (w − 1 − (w − 1)//2) ... i + (w − 1)//2."""
    right = max(num_window_blocks - 1, 0) // 2
    left = num_window_blocks - 1 - right
    rel = np.arange(num_blocks)[None, :] - np.arange(num_blocks)[:, None]  # [nb, nb]: j − i
    return (rel >= -left) & (rel <= right)


def global_blocks(num_blocks: int, num_global_blocks: int) -> np.ndarray:
    """[nb] bool: the first ceil(g/2) and the last floor(g/2) blocks."""
    g = min(num_global_blocks, num_blocks)
    is_global = np.zeros(num_blocks, bool)
    is_global[: (g + 1) // 2] = True
    is_global[num_blocks - g // 2 :] = True
    return is_global


def longformer_layout(
    num_blocks: int, num_window_blocks: int, num_global_blocks: int
) -> np.ndarray:
    """Window ∪ global: global blocks see every block and every block sees them."""
    is_global = global_blocks(num_blocks, num_global_blocks)
    return window_layout(num_blocks, num_window_blocks) | is_global[:, None] | is_global[None, :]


def random_blocks(
    rng: jax.Array, fixed: np.ndarray, num_random_blocks: int, num_heads: int = 1
) -> tuple[jax.Array, jax.Array]:
    """BigBird's random blocks: per head and row, r blocks not in `fixed`, without replacement.

    Args:
      rng: PRNG key; the same key gives the same blocks.
      fixed: [nb, nb] bool, the blocks a row already sees (window and global blocks).
      num_random_blocks: r; a row with fewer than r blocks left gets all of them.
      num_heads: independent draws (one per kv head).

    Returns:
      (blocks [num_heads, nb, r'] int32, ok [num_heads, nb, r'] bool) with r' = min(r, the most
      blocks any row has left); slots with ok False hold no block (rows with fewer left, and the
      full rows, e.g. global ones). The r' largest of iid uniform scores over a row's
      candidates are a uniformly random r'-subset of them.
    """
    fixed = np.asarray(fixed, bool)
    num_blocks = fixed.shape[0]
    r = min(num_random_blocks, int((~fixed).sum(axis=1).max(initial=0)))
    if r == 0:
        empty = jnp.zeros((num_heads, num_blocks, 0), jnp.int32)
        return empty, jnp.zeros(empty.shape, bool)
    scores = jax.random.uniform(rng, (num_heads, num_blocks, num_blocks))  # [heads, nb, nb]
    scores = jnp.where(jnp.asarray(~fixed)[None], scores, -1.0)  # fixed blocks are never drawn
    top, blocks = jax.lax.top_k(scores, r)  # [heads, nb, r']
    return blocks.astype(jnp.int32), top >= 0


def bigbird_layout(
    rng: jax.Array,
    num_blocks: int,
    num_window_blocks: int,
    num_global_blocks: int,
    num_random_blocks: int,
    num_heads: int = 1,
) -> jax.Array:
    """Window ∪ global ∪ r random blocks per non-global row: [num_heads, nb, nb] bool (jax).

    The random blocks are `random_blocks(rng, ...)`, exactly those `block_sparse_attention`
    uses for the same rng (num_heads = its K); for tests and analysis.
    """
    fixed = longformer_layout(num_blocks, num_window_blocks, num_global_blocks)
    blocks, ok = random_blocks(rng, fixed, num_random_blocks, num_heads)
    drawn = jnp.any(jax.nn.one_hot(blocks, num_blocks, dtype=bool) & ok[..., None], axis=2)
    return jnp.asarray(fixed)[None] | drawn  # [heads, nb, nb]


def strided_layout(num_blocks: int, stride: int) -> np.ndarray:
    """Sparse Transformer 'strided', in blocks: |i − j| < stride or (i − j) mod stride == 0."""
    rel = np.arange(num_blocks)[:, None] - np.arange(num_blocks)[None, :]  # i − j
    return (np.abs(rel) < stride) | (rel % stride == 0)


def fixed_layout(num_blocks: int, stride: int, num_summary_blocks: int) -> np.ndarray:
    """Sparse Transformer 'fixed', in blocks: the same stride window, or a summary column (the
    last num_summary_blocks blocks of every window)."""
    i, j = np.arange(num_blocks)[:, None], np.arange(num_blocks)[None, :]
    return (i // stride == j // stride) | (j % stride >= stride - num_summary_blocks)


# The fixed part of each layout ('bigbird': its window and global blocks; its random blocks come
# from `random_blocks`).
_LAYOUTS = {
    "bigbird": lambda nb, p: longformer_layout(nb, p.num_window_blocks, p.num_global_blocks),
    "longformer": lambda nb, p: longformer_layout(nb, p.num_window_blocks, p.num_global_blocks),
    "strided": lambda nb, p: strided_layout(nb, p.stride),
    "fixed": lambda nb, p: fixed_layout(nb, p.stride, p.num_summary_blocks),
    "full": lambda nb, p: full_layout(nb),
}
LAYOUTS = tuple(_LAYOUTS)


def make_layout(layout: str, num_blocks: int, params: LayoutParams | None = None) -> np.ndarray:
    """The fixed [nb, nb] bool block layout named `layout` (NumPy, a pure function of its
    arguments). For 'bigbird' this is its window and global blocks only: the random blocks are
    drawn from an rng (`random_blocks`; the whole layout: `bigbird_layout`)."""
    if layout not in _LAYOUTS:
        raise errors.ConfigError(f"{KIND}: layout must be one of {LAYOUTS}; got {layout!r}")
    params = LayoutParams() if params is None else params
    _check_params(params)
    return _LAYOUTS[layout](num_blocks, params)


def expand_layout(layout: np.ndarray, block_size: int, T: int) -> np.ndarray:
    """[..., nb, nb] block layout -> the [..., T, T] element mask it stands for (tests and
    analysis; leading axes such as bigbird_layout's heads are kept)."""
    block = np.arange(T) // block_size
    return np.asarray(layout)[..., block[:, None], block[None, :]]


def block_sparse_attention(
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
    layout: str = "bigbird",
    block_size: int = 64,
    num_window_blocks: int = 3,
    num_global_blocks: int = 2,
    num_random_blocks: int = 3,
    stride: int = 4,
    num_summary_blocks: int = 1,
    rng: jax.Array | None = None,
) -> jax.Array:
    """Softmax attention over the active blocks of a static block layout.

    Papers: Sparse Transformer (Child et al. 2019, https://arxiv.org/abs/1904.10509), Longformer
    (Beltagy et al. 2020, https://arxiv.org/abs/2004.05150), BigBird (Zaheer et al. 2020,
    https://arxiv.org/abs/2007.14062). The layouts are described in the module docstring.

    Args:
      query: [B, T, N, H].
      key, value: [B, S, K, H] with S == T (self-attention only); K divides N (GQA/MQA).
      is_causal: layout ∧ lower-triangular, element-exact on the diagonal blocks; for the
        layouts in CAUSAL_LAYOUTS ('bigbird' raises UnsupportedFeatureError).
      kv_mask: [B, S] bool, True = real key.
      q_segment_ids, kv_segment_ids: unsupported (the layout is anchored at absolute block
        positions, so a packed batch could not equal its segments run alone); raises.
      bias: unsupported (raises UnsupportedFeatureError).
      scale: logits scale, default 1/sqrt(H).
      dropout_rate, dropout_rng: attention-probability dropout on the active blocks'
        probabilities (`local.tile_attention`, with fold_in(dropout_rng, 0) for the gathered
        rows and fold_in(dropout_rng, 1) for the full rows).
      layout: 'bigbird', 'longformer', 'strided', 'fixed' or 'full'.
      block_size: b, tokens per block (BigBird on LRA: 64). T need not be a multiple.
      num_window_blocks: w, blocks in the sliding window ('bigbird', 'longformer').
      num_global_blocks: g, global blocks ('bigbird', 'longformer').
      num_random_blocks: r, random blocks per non-global row ('bigbird').
      stride: in blocks ('strided', 'fixed').
      num_summary_blocks: c, summary blocks at the end of every stride window ('fixed').
      rng: PRNG key of BigBird's random blocks (`random_blocks`, one draw per kv head), required
        for 'bigbird' with num_random_blocks > 0 and ignored by the fixed layouts; same rng,
        same output.

    Returns:
      [B, T, N, H] in value.dtype. A query with no visible key returns zeros; padded query rows
      hold finite values.

    Masks: causal (see above), key padding, GQA/MQA. No packing, bias or cross-attention.

    Complexity per (batch, head): O(T·A·b·H) time and O(T·A·b) memory, A = the most active key
    blocks of a non-full row (BigBird: w + g + r), plus O(F·b·T·H) for the F full rows (global
    query blocks).
    """
    if bias is not None:
        raise core.unsupported(KIND, "bias")
    if q_segment_ids is not None or kv_segment_ids is not None:
        raise core.unsupported(KIND, "q_segment_ids/kv_segment_ids (packing)")
    B, T, S, N, K, H = core.check_inputs(KIND, query, key, value, kv_mask=kv_mask)
    if T != S:
        raise core.unsupported(KIND, f"cross-attention (T={T} != S={S}); it is self-attention only")
    if is_causal and layout not in CAUSAL_LAYOUTS:
        raise core.unsupported(
            KIND, f"is_causal=True with layout={layout!r}; causal layouts: {CAUSAL_LAYOUTS}"
        )
    if not isinstance(block_size, int) or block_size < 1:
        raise errors.ConfigError(f"{KIND}: block_size must be a positive int; got {block_size!r}")
    params = LayoutParams(
        num_window_blocks=num_window_blocks,
        num_global_blocks=num_global_blocks,
        num_random_blocks=num_random_blocks,
        stride=stride,
        num_summary_blocks=num_summary_blocks,
    )
    use_dropout = core.check_dropout(KIND, dropout_rate, dropout_rng)
    b = block_size
    nb = -(-T // b)
    Tp = nb * b
    blocks = make_layout(layout, nb, params)  # [nb, nb] static (bigbird: window and global)
    if is_causal:
        blocks = blocks & np.tri(nb, dtype=bool)
    drawn = None  # BigBird's random blocks: ([K, nb, r], [K, nb, r])
    if layout == "bigbird" and num_random_blocks > 0:
        if rng is None:
            raise ValueError(
                f"{KIND}: layout='bigbird' with num_random_blocks={num_random_blocks} needs rng= "
                "for its random blocks; the layer passes one (needs_rng)"
            )
        drawn = random_blocks(rng, blocks, num_random_blocks, K)
        if drawn[0].shape[-1] == 0:
            drawn = None  # no row has a block left to draw
    dropout_rngs = [None, None]
    if use_dropout:
        dropout_rngs = [jax.random.fold_in(dropout_rng, n) for n in (0, 1)]
    G = N // K
    scale = core.default_scale(scale, H)

    q = _pad_length(query.reshape(B, T, K, G, H), Tp).reshape(B, nb, b, K, G, H)
    k = _pad_length(key, Tp)  # [B, Tp, K, H]
    v = _pad_length(value, Tp)
    kv_valid = jnp.asarray(np.arange(Tp) < S)[None]  # [1, Tp]: the padding to Tp is invalid
    if kv_mask is not None:
        kv_valid = kv_valid & _pad_length(kv_mask.astype(bool), Tp)  # [B, Tp]
    qpos = np.arange(Tp).reshape(nb, b)  # [nb, b]

    full_rows = np.flatnonzero(blocks.all(axis=1))
    sparse_rows = np.flatnonzero(~blocks.all(axis=1))
    outs = []
    if sparse_rows.size:
        # Gather each query block's active key blocks, padded to the row maximum A.
        active = blocks[sparse_rows]  # [R, nb]
        A = max(int(active.sum(axis=1).max()), 1)
        order = np.argsort(~active, axis=1, kind="stable")[:, :A]  # active blocks first
        slot_ok = np.take_along_axis(active, order, axis=1)  # [R, A]
        kpos = (order[:, :, None] * b + np.arange(b)).reshape(len(sparse_rows), A * b)  # [R, W]
        keep = jnp.asarray(np.repeat(slot_ok, b, axis=1)[:, None, :])[None]  # [1, R, 1, W]
        keep = keep & kv_valid[:, kpos][:, :, None, :]  # [B|1, R, 1, W]
        if is_causal:
            keep = keep & jnp.asarray(kpos[:, None, :] <= qpos[sparse_rows][:, :, None])[None]
        kb = k.reshape(B, nb, b, K, H)[:, order].reshape(B, len(sparse_rows), A * b, K, H)
        vb = v.reshape(B, nb, b, K, H)[:, order].reshape(B, len(sparse_rows), A * b, K, H)
        if drawn is not None:  # append each kv head's random blocks (never causal)
            rk, rv, rkeep = _gather_random(k, v, kv_valid, drawn, sparse_rows, b)
            kb, vb = jnp.concatenate([kb, rk], axis=2), jnp.concatenate([vb, rv], axis=2)
            keep = jnp.concatenate(
                [jnp.broadcast_to(keep[:, None], rkeep.shape[:-1] + keep.shape[-1:]), rkeep],
                axis=-1,
            )  # [B|1, K, R, 1, W + r·b]
        outs.append(
            local.tile_attention(
                q[:, sparse_rows], kb, vb, keep, scale, dropout_rate, dropout_rngs[0]
            )
        )
    if full_rows.size:
        # Full rows (global query blocks) form one tile of F·b queries over all Tp keys.
        F = len(full_rows)
        keep = kv_valid[:, None, None, :]  # [B|1, 1, 1, Tp]
        if is_causal:
            keep = keep & jnp.asarray(np.arange(Tp)[None, :] <= qpos[full_rows].reshape(-1, 1))
        qf = q[:, full_rows].reshape(B, 1, F * b, K, G, H)
        out = local.tile_attention(
            qf, k[:, None], v[:, None], keep, scale, dropout_rate, dropout_rngs[1]
        )  # [B, 1, F·b, K, G, H]
        outs.append(out.reshape(B, F, b, K, G, H))
    out = jnp.concatenate(outs, axis=1)  # [B, nb, b, K, G, H], rows in (sparse, full) order
    out = out[:, np.argsort(np.concatenate([sparse_rows, full_rows]))]
    return out.reshape(B, Tp, N, H)[:, :T].astype(value.dtype)


def _gather_random(
    k: jax.Array,
    v: jax.Array,
    kv_valid: jax.Array,
    drawn: tuple[jax.Array, jax.Array],
    rows: np.ndarray,
    b: int,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Each kv head's random key/value blocks for the query blocks `rows`.

    k, v: [B, Tp, K, H]; kv_valid: [B|1, Tp]; drawn: (blocks, ok) [K, nb, r] from random_blocks.
    Returns (keys [B, R, r·b, K, H], values alike, keep [B|1, K, R, 1, r·b]).
    """
    B, Tp, K, H = k.shape
    blocks, ok = drawn[0][:, rows], drawn[1][:, rows]  # [K, R, r]
    R, r = blocks.shape[1:]

    def per_head(x):  # [B, Tp, K, H] -> [B, R, r·b, K, H]: head kh reads blocks[kh]
        x = jnp.moveaxis(x.reshape(B, Tp // b, b, K, H), 3, 0)  # [K, B, nb, b, H]
        x = jax.vmap(lambda xh, bh: xh[:, bh])(x, blocks)  # [K, B, R, r, b, H]
        return jnp.moveaxis(x, 0, -2).reshape(B, R, r * b, K, H)

    kpos = (blocks[..., None] * b + jnp.arange(b)).reshape(K, R, r * b)  # [K, R, r·b]
    keep = jnp.repeat(ok, b, axis=-1)[None] & kv_valid[:, kpos]  # [B|1, K, R, r·b]
    return per_head(k), per_head(v), keep[:, :, :, None, :]


def _check_params(p: LayoutParams) -> None:
    for name in ("num_window_blocks", "num_global_blocks", "num_random_blocks"):
        value = getattr(p, name)
        if not isinstance(value, int) or value < 0:
            raise errors.ConfigError(f"{KIND}: {name} must be an int >= 0; got {value!r}")
    if not isinstance(p.stride, int) or p.stride < 1:
        raise errors.ConfigError(f"{KIND}: stride must be a positive int; got {p.stride!r}")
    if not isinstance(p.num_summary_blocks, int) or not 0 <= p.num_summary_blocks <= p.stride:
        raise errors.ConfigError(
            f"{KIND}: num_summary_blocks must be an int in [0, stride={p.stride}]; got "
            f"{p.num_summary_blocks!r}"
        )


def _pad_length(x: jax.Array, length: int) -> jax.Array:
    """Zero-pads axis 1 of x to `length`."""
    pad = [(0, 0)] * x.ndim
    pad[1] = (0, length - x.shape[1])
    return jnp.pad(x, pad)
