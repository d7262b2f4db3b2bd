"""XCiT's local patch interaction (LPI): depthwise convolutions over the patch grid.

El-Nouby et al. 2021, "XCiT: Cross-Covariance Image Transformers", https://arxiv.org/abs/2106.09681
(Sec. 3.2): cross-covariance attention mixes channels, not tokens, so each block adds explicit
communication between neighbouring patches: depthwise 3x3 conv -> GELU -> norm -> depthwise 3x3
conv. Any attention kind can use it here (`TransformerBlock.lpi_grid`).

Normalisation: the paper uses BatchNorm. Its running statistics would be a second mutable
collection threaded through the trainer and differ between train and evaluation; we use a
LayerNorm over channels per patch instead (no state, same at train and test).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


class LocalPatchInteraction(nn.Module):
    """[B, T, D] -> [B, T, D]: the last rows * cols tokens (the patch grid in raster order) go
    through conv -> GELU -> LayerNorm -> conv (depthwise, `kernel_size`, same padding); the
    T - rows * cols prefix tokens (CLS, distillation) get zeros, so a residual leaves them as
    they are."""

    grid: tuple[int, int]
    kernel_size: int = 3
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        B, T, D = x.shape
        rows, cols = self.grid
        prefix = T - rows * cols
        if prefix < 0:
            raise ValueError(
                f"LPI over a {rows}x{cols} grid needs >= {rows * cols} tokens; got {T}"
            )

        def depthwise(name: str) -> nn.Conv:
            k = self.kernel_size
            return nn.Conv(
                D, (k, k), padding="SAME", feature_group_count=D, dtype=self.dtype, name=name
            )

        h = x[:, prefix:].reshape(B, rows, cols, D)  # [B, rows, cols, D]
        h = depthwise("conv1")(h)
        h = nn.gelu(h)
        h = nn.LayerNorm(dtype=self.dtype, name="norm")(h)
        h = depthwise("conv2")(h)
        h = h.reshape(B, rows * cols, D)
        return jnp.concatenate([jnp.zeros((B, prefix, D), h.dtype), h], axis=1)
