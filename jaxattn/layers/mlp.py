"""The position-wise feed-forward network."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATIONS = {"gelu": nn.gelu, "relu": nn.relu, "silu": nn.silu}


class Mlp(nn.Module):
    """Dense(mlp_dim) -> activation -> dropout -> Dense(D) -> dropout (LRA's MlpBlock)."""

    mlp_dim: int
    activation: str = "gelu"
    dropout_rate: float = 0.0
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, deterministic: bool = True) -> jax.Array:  # [B, T, D]
        D = x.shape[-1]
        init = nn.initializers.xavier_uniform()
        h = nn.Dense(
            self.mlp_dim,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            kernel_init=nn.with_logical_partitioning(init, ("embed", "mlp")),
            bias_init=nn.with_logical_partitioning(nn.initializers.normal(1e-6), ("mlp",)),
            name="wi",
        )(x)
        h = nn.with_logical_constraint(h, ("batch", "length", "mlp"))
        h = ACTIVATIONS[self.activation](h)
        h = nn.Dropout(self.dropout_rate)(h, deterministic=deterministic)
        out = nn.Dense(
            D,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            kernel_init=nn.with_logical_partitioning(init, ("mlp", "embed")),
            bias_init=nn.with_logical_partitioning(nn.initializers.normal(1e-6), ("embed",)),
            name="wo",
        )(h)
        return nn.Dropout(self.dropout_rate)(out, deterministic=deterministic)
