"""The pre-LayerNorm transformer block shared by encoder, decoder-only LM, ViT and forecasters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxattn.attention.core import BoundAttention
from jaxattn.layers import attention, lpi, mixer, mlp, posenc


def layer_norm(name: str, dtype: Any = jnp.float32) -> nn.LayerNorm:
    return nn.LayerNorm(
        dtype=dtype,
        scale_init=nn.with_logical_partitioning(nn.initializers.ones, ("embed",)),
        bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("embed",)),
        name=name,
    )


class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016, https://arxiv.org/abs/1603.09382): in training, each
    example's residual branch [B, ...] is dropped with probability `rate` and the kept ones are
    scaled by 1 / (1 - rate); the identity when deterministic or rate == 0. Masks come from the
    'dropout' rng stream."""

    rate: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, *, deterministic: bool) -> jax.Array:
        if deterministic or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = jax.random.bernoulli(
            self.make_rng("dropout"), keep, (x.shape[0],) + (1,) * (x.ndim - 1)
        )
        return jnp.where(mask, x / keep, 0.0).astype(x.dtype)


class TransformerBlock(nn.Module):
    """x + Drop(Attn(LN(x))), then x + Mlp(LN(x)) (pre-LN, as in LRA and Nyströmformer).

    The same block serves bidirectional encoders (`is_causal=False`) and decoder-only LMs
    (`is_causal=True`); the attention kind is injected, so no variant has its own block. The
    token-mixing layer follows the kind's registry family (MIXING_LAYERS): MultiHeadAttention for
    'attention' kinds, TokenMixer for 'mixer' kinds (FNet), which replace the whole sublayer.

    Options, off by default: `drop_path_rate` drops each residual branch per example in training
    (stochastic depth); `lpi_grid=(rows, cols)` adds XCiT's local patch interaction as a third
    residual sublayer between attention and MLP, x + LPI(LN(x)), over the last rows * cols tokens
    (a patch grid in raster order; prefix tokens such as CLS pass through unchanged).
    """

    attention: BoundAttention
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
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self,
        x: jax.Array,  # [B, T, D]
        *,
        is_causal: bool = False,
        kv_mask: jax.Array | None = None,  # [B, T]
        segment_ids: jax.Array | None = None,  # [B, T]
        bias: jax.Array | None = None,
        positions: jax.Array | None = None,  # [B, T] int, for the relative scheme
        deterministic: bool = True,
        decode_length: int | None = None,  # one-token decoding with a cache (layers/attention.py)
    ) -> jax.Array:
        h = layer_norm("ln_attention", self.dtype)(x)
        h = MIXING_LAYERS[self.attention.spec.family](self)(
            h,
            is_causal=is_causal,
            kv_mask=kv_mask,
            q_segment_ids=segment_ids,
            bias=bias,
            positions=positions,
            deterministic=deterministic,
            decode_length=decode_length,
        )
        h = nn.Dropout(self.dropout_rate)(h, deterministic=deterministic)
        drop_path = DropPath(self.drop_path_rate)
        x = x + drop_path(h, deterministic=deterministic)
        if self.lpi_grid is not None:
            h = layer_norm("ln_lpi", self.dtype)(x)
            h = lpi.LocalPatchInteraction(grid=self.lpi_grid, dtype=self.dtype, name="lpi")(h)
            x = x + drop_path(h, deterministic=deterministic)
        h = layer_norm("ln_mlp", self.dtype)(x)
        h = mlp.Mlp(
            mlp_dim=self.mlp_dim,
            activation=self.activation,
            dropout_rate=self.dropout_rate,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            name="mlp",
        )(h, deterministic=deterministic)
        x = x + drop_path(h, deterministic=deterministic)
        return nn.with_logical_constraint(x, ("batch", "length", "embed"))


def _multi_head_attention(block: TransformerBlock) -> nn.Module:
    return attention.MultiHeadAttention(
        attention=block.attention,
        num_heads=block.num_heads,
        num_kv_heads=block.num_kv_heads,
        head_dim=block.head_dim,
        relative=block.relative,
        dropout_rate=block.attention_dropout_rate,
        dtype=block.dtype,
        param_dtype=block.param_dtype,
        name="attention",
    )


def _token_mixer(block: TransformerBlock) -> nn.Module:
    return mixer.TokenMixer(
        mixer=block.attention,
        dropout_rate=block.attention_dropout_rate,
        dtype=block.dtype,
        param_dtype=block.param_dtype,
        name="mixer",
    )


# The sublayer each registry family gets; both take (x, *, is_causal, kv_mask, q_segment_ids,
# bias, positions, deterministic, decode_length) and return [B, T, D].
MIXING_LAYERS: dict[str, Callable[[TransformerBlock], nn.Module]] = {
    "attention": _multi_head_attention,
    "mixer": _token_mixer,
}
