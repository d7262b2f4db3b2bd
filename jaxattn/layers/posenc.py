"""Positional schemes applied inside attention: rotary (RoPE) and relative biases (ALiBi, T5, Shaw,
Huang). Absolute embeddings (learned, sinusoidal) live in `layers/embeddings.py`.

The math is plain functions; small Flax modules own the learned tables. Every scheme module has
the same call, so `MultiHeadAttention` runs any of them without knowing which:

    query, key, bias = scheme_module(query, key, q_positions, kv_positions, is_causal=, scale=)

A rotary scheme rotates query [B, T, N, H] and key [B, S, K, H] and returns no bias, so it works
with every attention kind that forms q and k, linear-time ones included. A bias scheme returns a
float32 bias [B|1, N, T, S] that the layer passes to the kind's `bias` argument, so it needs a
kind registered with `bias=True` (checked at model build time and again by the layer).

Positions are int [B|1, T] / [B|1, S] (per-token positions when sequences are packed; 0..L-1 by
default). The relative offset of query i and key j is `kv_positions[j] - q_positions[i]` (j − i).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxattn import errors
from jaxattn.attention import core

# --- positions ------------------------------------------------------------------------------


def default_positions(positions: jax.Array | None, length: int) -> jax.Array:
    """The given [B, L] positions, or [1, L] = 0..L-1."""
    if positions is None:
        return jnp.arange(length, dtype=jnp.int32)[None]
    return positions


def relative_offsets(q_positions: jax.Array, kv_positions: jax.Array) -> jax.Array:
    """j − i: [B|1, T], [B|1, S] -> [B|1, T, S] int32."""
    return (kv_positions[:, None, :] - q_positions[:, :, None]).astype(jnp.int32)


# --- RoPE (Su et al. 2021, arXiv:2104.09864) --------------------------------------------------


def rope_inverse_frequencies(head_dim: int, base: float = 10_000.0) -> jax.Array:
    """θ_i = base^(−2i/H) for the H/2 pairs, float32 [H/2]."""
    if head_dim % 2:
        raise errors.ConfigError(f"rope needs an even head_dim; got {head_dim}")
    return jnp.asarray(
        base ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim), jnp.float32
    )


def apply_rope(x: jax.Array, positions: jax.Array, *, base: float = 10_000.0) -> jax.Array:
    """Rotates each pair (x_2i, x_2i+1) of every head by the angle p·θ_i (RoFormer eq. 13-15).

    Args:
      x: [B, L, N, H] queries or keys (H even).
      positions: [B|1, L] int positions p.
      base: the RoPE base (10000 in RoFormer).

    Returns:
      [B, L, N, H] in x.dtype; computed in float32. ⟨R_p q, R_r k⟩ depends only on r − p.
    """
    inv_freq = rope_inverse_frequencies(x.shape[-1], base)  # [H/2]
    angles = positions.astype(jnp.float32)[..., None] * inv_freq  # [B|1, L, H/2]
    cos = jnp.cos(angles)[:, :, None, :]  # [B|1, L, 1, H/2]
    sin = jnp.sin(angles)[:, :, None, :]
    pairs = x.astype(jnp.float32).reshape(*x.shape[:-1], -1, 2)  # [B, L, N, H/2, 2]
    even, odd = pairs[..., 0], pairs[..., 1]
    rotated = jnp.stack([even * cos - odd * sin, even * sin + odd * cos], axis=-1)
    return rotated.reshape(x.shape).astype(x.dtype)


# --- ALiBi (Press et al. 2021, arXiv:2108.12409) ----------------------------------------------


def alibi_slopes(num_heads: int) -> np.ndarray:
    """Head slopes s_h = 2^(−8h/N), h = 1..N, float32 [N].

    For N not a power of two, the paper's rule (§3): the slopes for the nearest lower power of two
    P, then every other slope of the 2P sequence. For N a power of two both rules agree.
    """

    def geometric(n: int) -> np.ndarray:
        return 2.0 ** (-8.0 * np.arange(1, n + 1) / n)

    lower = 2 ** int(np.floor(np.log2(num_heads)))
    slopes = np.concatenate([geometric(lower), geometric(2 * lower)[::2][: num_heads - lower]])
    return slopes.astype(np.float32)


def alibi_bias(
    q_positions: jax.Array, kv_positions: jax.Array, slopes: jax.Array, *, is_causal: bool
) -> jax.Array:
    """−s_h·|i − j| (bidirectional/encoder) or −s_h·(i − j) (causal): float32 [B|1, N, T, S]."""
    offsets = relative_offsets(q_positions, kv_positions)  # [B|1, T, S], j − i
    distance = -offsets if is_causal else jnp.abs(offsets)  # masked j > i rows don't matter
    return -jnp.asarray(slopes, jnp.float32)[None, :, None, None] * distance[:, None]


# --- T5 relative position buckets (Raffel et al. 2020, arXiv:1910.10683) -----------------------


def t5_buckets(
    offsets: jax.Array, *, is_causal: bool, num_buckets: int = 32, max_distance: int = 128
) -> jax.Array:
    """The bucket of each offset j − i: exact for small distances, log-spaced up to max_distance.

    Bidirectional: half of the buckets for keys after the query (j > i), half for the rest. Causal:
    all buckets for keys at or before the query; keys after it share bucket 0. Within a half of b
    buckets, distances d < b/2 get their own bucket, larger ones
    b/2 + floor(log(d / (b/2)) / log(max_distance / (b/2)) · b/2), capped at b − 1.

    Args:
      offsets: int array of j − i, any shape.

    Returns:
      int32 buckets in [0, num_buckets), same shape.
    """
    back = -offsets  # i − j: positive for keys before the query
    per_side = num_buckets if is_causal else num_buckets // 2
    side = 0 if is_causal else jnp.where(back < 0, per_side, 0)
    distance = jnp.maximum(back, 0) if is_causal else jnp.abs(back)
    exact = per_side // 2
    log_ratio = jnp.log(jnp.maximum(distance, 1).astype(jnp.float32) / exact) / np.log(
        max_distance / exact
    )
    far = exact + (log_ratio * (per_side - exact)).astype(jnp.int32)
    far = jnp.minimum(far, per_side - 1)
    return (side + jnp.where(distance < exact, distance, far)).astype(jnp.int32)


def t5_bias(
    table: jax.Array,
    q_positions: jax.Array,
    kv_positions: jax.Array,
    *,
    is_causal: bool,
    max_distance: int,
) -> jax.Array:
    """A learned scalar per head per bucket: table [num_buckets, N] -> float32 [B|1, N, T, S]."""
    buckets = t5_buckets(
        relative_offsets(q_positions, kv_positions),
        is_causal=is_causal,
        num_buckets=table.shape[0],
        max_distance=max_distance,
    )  # [B|1, T, S]
    bias = jnp.take(table.astype(jnp.float32), buckets, axis=0)  # [B|1, T, S, N]
    return jnp.moveaxis(bias, -1, 1)


# --- Shaw et al. 2018 (arXiv:1803.02155) and Huang et al. 2020 (arXiv:2009.13658) -------------
# Both read a table a [2M+1, H] of vectors for the clipped offsets clip(j − i, −M, M). Instead of
# gathering a [T, S, H] tensor of a_(j−i) and contracting it with q (O(T·S·H) memory), contract q
# with the whole table first (O(T·(2M+1)·H)), then pick, for every (i, j), the column of offset
# j − i: a gather along the table axis (the "skew" of Shaw/Huang/Music Transformer).


def clipped_offset_index(
    q_positions: jax.Array, kv_positions: jax.Array, max_distance: int
) -> jax.Array:
    """clip(j − i, −M, M) + M, the row of the relative table: [B|1, T, S] int32 in [0, 2M]."""
    offsets = relative_offsets(q_positions, kv_positions)
    return jnp.clip(offsets, -max_distance, max_distance) + max_distance


def shaw_bias(
    query: jax.Array,
    table: jax.Array,
    q_positions: jax.Array,
    kv_positions: jax.Array,
    *,
    scale: float,
) -> jax.Array:
    """Shaw key-side relative logits q_i·a_clip(j−i)·scale (the a^K term; no a^V term).

    Args:
      query: [B, T, N, H].
      table: [2M+1, H], row r holds a for offset r − M (shared by the heads, as in the paper).
      q_positions, kv_positions: [B|1, T], [B|1, S].
      scale: the attention logits scale (1/sqrt(H)), so e_ij = q_i·(k_j + a_ij)·scale.

    Returns:
      float32 [B, N, T, S]. Time O(B·N·T·(2M+1)·H + B·N·T·S), memory O(B·N·T·(2M+1 + S)).
    """
    M = (table.shape[0] - 1) // 2
    index = clipped_offset_index(q_positions, kv_positions, M)  # [B|1, T, S]
    q_rel = jnp.einsum(
        "BTNH,RH->BNTR", query, table.astype(query.dtype), preferred_element_type=jnp.float32
    )  # [B, N, T, 2M+1]
    return jnp.take_along_axis(q_rel, index[:, None], axis=-1) * scale  # [B, N, T, S]


def huang_bias(
    query: jax.Array,
    key: jax.Array,
    table: jax.Array,
    q_positions: jax.Array,
    kv_positions: jax.Array,
    *,
    scale: float,
) -> jax.Array:
    """Huang et al. "method 4": (q_i·a_(j−i) + k_j·a_(j−i))·scale, added to q_i·k_j·scale.

    Args:
      query: [B, T, N, H]. key: [B, S, K, H] (K divides N; head n reads key head n // (N/K)).
      table: [2M+1, H] (offsets clipped to ±M), shared by the heads.
      q_positions, kv_positions: [B|1, T], [B|1, S].

    Returns:
      float32 [B, N, T, S]; same cost as `shaw_bias` plus the key side O(B·K·S·(2M+1)·H).
    """
    N, K = query.shape[2], key.shape[2]
    M = (table.shape[0] - 1) // 2
    index = clipped_offset_index(q_positions, kv_positions, M)  # [B|1, T, S]
    q_rel = jnp.einsum(
        "BTNH,RH->BNTR", query, table.astype(query.dtype), preferred_element_type=jnp.float32
    )  # [B, N, T, 2M+1]
    k_rel = jnp.einsum(
        "BSKH,RH->BKSR", key, table.astype(key.dtype), preferred_element_type=jnp.float32
    )  # [B, K, S, 2M+1]
    q_term = jnp.take_along_axis(q_rel, index[:, None], axis=-1)  # [B, N, T, S]
    k_term = jnp.take_along_axis(k_rel, jnp.swapaxes(index, 1, 2)[:, None], axis=-1)  # [B, K, S, T]
    k_term = jnp.repeat(jnp.swapaxes(k_term, 2, 3), N // K, axis=1)  # [B, N, T, S]
    return (q_term + k_term) * scale


# --- Flax modules: one per scheme, one call signature -----------------------------------------


@dataclasses.dataclass(frozen=True)
class RelativePosition:
    """Which relative scheme a layer applies and its settings (hashable: a module attribute).

    scheme: a key of SCHEMES. max_distance: T5's largest bucketed distance and Shaw/Huang's clip
    M. num_buckets: T5's bucket count. rope_base: RoPE's base.
    """

    scheme: str = "none"
    max_distance: int = 128
    num_buckets: int = 32
    rope_base: float = 10_000.0


class _SchemeModule(nn.Module):
    """Base: `(query, key, q_positions, kv_positions, *, is_causal, scale) -> (query, key, bias)`."""

    config: RelativePosition
    param_dtype: Any = jnp.float32

    def relative_table(self, name: str, rows: int, cols: int, axes: tuple[str | None, ...]):
        return self.param(
            name,
            nn.with_logical_partitioning(nn.initializers.normal(0.02), axes),
            (rows, cols),
            self.param_dtype,
        )


class NoScheme(_SchemeModule):
    """No relative positions: query and key unchanged, no bias."""

    @nn.compact
    def __call__(self, query, key, q_positions, kv_positions, *, is_causal, scale):
        return query, key, None


class Rope(_SchemeModule):
    """Rotary position embedding of query and key; works with any kind that forms q and k."""

    @nn.compact
    def __call__(self, query, key, q_positions, kv_positions, *, is_causal, scale):
        base = self.config.rope_base
        return (
            apply_rope(query, q_positions, base=base),
            apply_rope(key, kv_positions, base=base),
            None,
        )


class Alibi(_SchemeModule):
    """ALiBi: a fixed linear distance penalty per head (no parameters)."""

    @nn.compact
    def __call__(self, query, key, q_positions, kv_positions, *, is_causal, scale):
        slopes = alibi_slopes(query.shape[2])
        return query, key, alibi_bias(q_positions, kv_positions, slopes, is_causal=is_causal)


class T5Bias(_SchemeModule):
    """T5 relative bias: table [num_buckets, N] per layer (T5 shares one across layers)."""

    @nn.compact
    def __call__(self, query, key, q_positions, kv_positions, *, is_causal, scale):
        cfg = self.config
        table = self.relative_table("t5_table", cfg.num_buckets, query.shape[2], (None, "heads"))
        bias = t5_bias(
            table, q_positions, kv_positions, is_causal=is_causal, max_distance=cfg.max_distance
        )
        return query, key, bias


class ShawBias(_SchemeModule):
    """Shaw key-side relative logits: table [2M+1, H] per layer, shared by the heads."""

    @nn.compact
    def __call__(self, query, key, q_positions, kv_positions, *, is_causal, scale):
        rows = 2 * self.config.max_distance + 1
        table = self.relative_table("shaw_table", rows, query.shape[-1], (None, "kv"))
        return query, key, shaw_bias(query, table, q_positions, kv_positions, scale=scale)


class HuangBias(_SchemeModule):
    """Huang method-4 relative logits: table [2M+1, H] per layer, shared by the heads."""

    @nn.compact
    def __call__(self, query, key, q_positions, kv_positions, *, is_causal, scale):
        rows = 2 * self.config.max_distance + 1
        table = self.relative_table("huang_table", rows, query.shape[-1], (None, "kv"))
        return query, key, huang_bias(query, key, table, q_positions, kv_positions, scale=scale)


# --- the schemes and what each needs of an attention kind -------------------------------------

# What a mechanism needs of a registry entry. Absolute positions are added to the embeddings, so
# they work with every kind; rotary needs q and k; a bias needs a kind that takes `bias`.
MECHANISM_NEEDS: dict[str, Callable[[core.AttentionSpec], bool]] = {
    "none": lambda spec: True,
    "absolute": lambda spec: True,
    "rotary": lambda spec: spec.family == "attention" and not spec.own_rotary,
    "bias": lambda spec: spec.family == "attention" and spec.bias,
}
MECHANISM_REQUIREMENT = {
    "rotary": "it needs query/key that the kind does not rotate itself; use relative='none'",
    "bias": "it needs bias=True",
}


@dataclasses.dataclass(frozen=True)
class Scheme:
    """A relative scheme: its Flax module, mechanism (a key of MECHANISM_NEEDS) and paper."""

    module: type[_SchemeModule]
    mechanism: str
    paper: str = ""


SCHEMES: dict[str, Scheme] = {
    "none": Scheme(NoScheme, "none"),
    "rope": Scheme(Rope, "rotary", "RoFormer (Su et al. 2021), arXiv:2104.09864"),
    "alibi": Scheme(Alibi, "bias", "ALiBi (Press et al. 2021), arXiv:2108.12409"),
    "t5": Scheme(T5Bias, "bias", "T5 (Raffel et al. 2020), arXiv:1910.10683"),
    "shaw": Scheme(ShawBias, "bias", "Shaw et al. 2018, arXiv:1803.02155"),
    "huang": Scheme(HuangBias, "bias", "Huang et al. 2020 (method 4), arXiv:2009.13658"),
}


def get_scheme(name: str) -> Scheme:
    if name not in SCHEMES:
        raise errors.ConfigError(
            f"unknown relative position scheme '{name}'; choose from {', '.join(SCHEMES)}"
        )
    return SCHEMES[name]


def works_with(name: str, spec: core.AttentionSpec) -> bool:
    """Whether relative scheme `name` can run with the attention kind described by `spec`."""
    return MECHANISM_NEEDS[get_scheme(name).mechanism](spec)


def check_scheme(
    name: str, kind: str, spec: core.AttentionSpec, supported_by: list[str] | None = None
) -> None:
    """Raises UnsupportedFeatureError naming the kind and the scheme if they cannot be combined."""
    if not works_with(name, spec):
        mechanism = SCHEMES[name].mechanism
        raise core.unsupported(
            kind,
            f"relative='{name}' (a {mechanism} scheme: {MECHANISM_REQUIREMENT[mechanism]})",
            supported_by,
        )
