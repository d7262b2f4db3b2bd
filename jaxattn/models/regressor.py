"""The in-context regressor: attention-only layers over prompt tokens [x_i; y_i], read at the query.

As in "In-Context Linear Regression Demystified" (2025): no embedding, no MLP, no LayerNorm:
Z ← Z + MultiHeadAttention(Z) for `num_layers` layers (the paper: one), each head with its own
query/key/value projections and an output projection back to d + 1; the prediction is the last
coordinate (y) of the query token. Any non-causal registry kind can be the attention (the paper
compares softmax with linear attention).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxattn.attention.core import BoundAttention
from jaxattn.layers import attention as attention_layer


class InContextRegressor(nn.Module):
    """points [B, N + 1, d + 1] (query last, its y = 0) -> predictions [B] of y_q.

    Attributes: num_layers (attention-only residual layers), num_heads, head_dim (default
    d + 1: each head sees the whole token).
    """

    attention: BoundAttention
    num_layers: int = 1
    num_heads: int = 1
    head_dim: int | None = None
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, points: jax.Array, *, deterministic: bool = True) -> tuple[jax.Array, dict]:
        z = points.astype(self.dtype)
        width = z.shape[-1]
        for i in range(self.num_layers):
            z = z + attention_layer.MultiHeadAttention(
                attention=self.attention,
                num_heads=self.num_heads,
                head_dim=self.head_dim or width,
                out_dim=width,
                dtype=self.dtype,
                name=f"attention_{i}",
            )(z, deterministic=deterministic)
        return z[:, -1, -1].astype(jnp.float32), {}
