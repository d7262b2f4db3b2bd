"""The transformer stack: dropout, N pre-LN blocks, final LayerNorm. Every model family uses it."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxattn.attention.core import BoundAttention
from jaxattn.layers import blocks, posenc


class Transformer(nn.Module):
    """[B, T, D] embeddings -> [B, T, D] states; the model families differ only around it.

    `relative` is the relative position scheme every attention layer applies (layers/posenc.py),
    with `positions` [B, T] (packing) defaulting to 0..T-1.

    Off by default: `drop_path_rate` is stochastic depth's rate at the last block, rising linearly
    from 0 at the first (DeiT's schedule); `lpi_grid` adds XCiT's local patch interaction to every
    block (blocks.TransformerBlock).
    """

    attention: BoundAttention
    num_layers: int
    num_heads: int
    mlp_dim: int
    num_kv_heads: int | None = None
    head_dim: int | None = None
    relative: posenc.RelativePosition = posenc.RelativePosition()
    dropout_rate: float = 0.0
    attention_dropout_rate: float = 0.0
    activation: str = "gelu"
    drop_path_rate: float = 0.0
    lpi_grid: tuple[int, int] | None = None
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self,
        x: jax.Array,  # [B, T, D]
        *,
        is_causal: bool = False,
        kv_mask: jax.Array | None = None,  # [B, T]
        segment_ids: jax.Array | None = None,  # [B, T]
        positions: jax.Array | None = None,  # [B, T] int
        deterministic: bool = True,
        decode_length: int | None = None,  # one-token decoding with caches of this length
    ) -> jax.Array:
        x = nn.Dropout(self.dropout_rate)(x, deterministic=deterministic)
        for i in range(self.num_layers):
            x = blocks.TransformerBlock(
                attention=self.attention,
                num_heads=self.num_heads,
                num_kv_heads=self.num_kv_heads,
                head_dim=self.head_dim,
                relative=self.relative,
                mlp_dim=self.mlp_dim,
                dropout_rate=self.dropout_rate,
                attention_dropout_rate=self.attention_dropout_rate,
                activation=self.activation,
                drop_path_rate=self.drop_path_rate * i / max(self.num_layers - 1, 1),
                lpi_grid=self.lpi_grid,
                dtype=self.dtype,
                name=f"block_{i}",
            )(
                x,
                is_causal=is_causal,
                kv_mask=kv_mask,
                segment_ids=segment_ids,
                positions=positions,
                deterministic=deterministic,
                decode_length=decode_length,
            )
        return blocks.layer_norm("final_ln", self.dtype)(x)


def from_fields(model: nn.Module, name: str, **options: Any) -> Transformer:
    """The Transformer configured from a model family's shared fields (attention, num_layers,
    num_heads, num_kv_heads, head_dim, mlp_dim, the relative-position fields, dropout rates,
    dtype): every family names them the same way. `options` sets the Transformer's optional
    fields (drop_path_rate, lpi_grid)."""
    return Transformer(
        attention=model.attention,
        num_layers=model.num_layers,
        num_heads=model.num_heads,
        num_kv_heads=model.num_kv_heads,
        head_dim=model.head_dim,
        relative=posenc.RelativePosition(
            scheme=model.relative,
            max_distance=model.relative_max_distance,
            num_buckets=model.relative_num_buckets,
            rope_base=model.rope_base,
        ),
        mlp_dim=model.mlp_dim,
        dropout_rate=model.dropout_rate,
        attention_dropout_rate=model.attention_dropout_rate,
        dtype=model.dtype,
        name=name,
        **options,
    )
