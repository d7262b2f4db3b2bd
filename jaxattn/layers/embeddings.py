"""Token embeddings and absolute positional embeddings (learned or fixed sinusoidal)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


class TokenEmbedding(nn.Module):
    """Token ids [B, T] -> [B, T, D]; N(0, init_stddev) initialisation (LRA: 1.0), no scaling.

    `attend(x)` [B, T, D] -> [B, T, V] multiplies by the same table: tied input and output
    embeddings (the language model's default)."""

    vocab_size: int
    emb_dim: int
    init_stddev: float = 1.0
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def setup(self):
        self.embedding = self.param(
            "embedding",
            nn.with_logical_partitioning(
                nn.initializers.normal(self.init_stddev), ("vocab", "embed")
            ),
            (self.vocab_size, self.emb_dim),
            self.param_dtype,
        )

    def __call__(self, tokens: jax.Array) -> jax.Array:
        return jnp.take(self.embedding, tokens, axis=0).astype(self.dtype)

    def attend(self, x: jax.Array) -> jax.Array:
        return jnp.einsum("BTD,VD->BTV", x, self.embedding.astype(x.dtype))


def sinusoidal_table(length: int, dim: int, max_scale: float = 10_000.0) -> np.ndarray:
    """[length, dim] fixed sin/cos table (Vaswani et al. 2017): sin in the first half, cos in the second."""
    position = np.arange(length, dtype=np.float64)[:, None]
    half = dim // 2
    inv_freq = np.exp(-np.log(max_scale) * np.arange(half, dtype=np.float64) / max(half - 1, 1))
    angles = position * inv_freq[None, :]
    table = np.zeros((length, dim), np.float32)
    table[:, :half] = np.sin(angles)
    table[:, half : 2 * half] = np.cos(angles)
    return table


def _learned_table(module: nn.Module, length: int, dim: int) -> jax.Array:
    return module.param(
        "position_embedding",
        nn.with_logical_partitioning(nn.initializers.normal(module.init_stddev), (None, "embed")),
        (length, dim),
        module.param_dtype,
    )


def _sinusoidal_table(module: nn.Module, length: int, dim: int) -> jax.Array:
    return jnp.asarray(sinusoidal_table(length, dim))


# Absolute schemes: how each makes its [max_length, D] table (created inside PositionalEmbedding).
ABSOLUTE_TABLES = {"learned": _learned_table, "sinusoidal": _sinusoidal_table}
POSITION_KINDS = (*ABSOLUTE_TABLES, "none")


class PositionalEmbedding(nn.Module):
    """Adds absolute positions to [B, T, D]; `positions` [B, T] (packing) defaults to 0..T-1.

    kind: 'learned' (N(0, init_stddev) table of max_length rows), 'sinusoidal' (fixed), or 'none'
    (no absolute positions, e.g. when a relative scheme in attention carries them; see posenc.py).
    """

    kind: str
    max_length: int
    init_stddev: float = 0.02
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, positions: jax.Array | None = None) -> jax.Array:
        T, D = x.shape[-2:]
        if self.kind == "none":
            return x
        if self.kind not in ABSOLUTE_TABLES:
            raise ValueError(
                f"unknown positional embedding kind '{self.kind}'; choose from {POSITION_KINDS}"
            )
        if T > self.max_length:
            raise ValueError(
                f"sequence length {T} exceeds the positional table's max_length {self.max_length}"
            )
        table = ABSOLUTE_TABLES[self.kind](self, self.max_length, D)  # [max_length, D]
        pos = table[:T][None] if positions is None else jnp.take(table, positions, axis=0)
        return x + pos.astype(x.dtype)
