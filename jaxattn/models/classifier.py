"""Sequence classifiers: token + position embeddings, the shared Transformer, pooling, MLP head.

`EncoderClassifier` reads one sequence; `DualEncoderClassifier` (LRA Retrieval) runs two
documents through the same encoder and classifies the pair.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxattn.attention.core import BoundAttention
from jaxattn.layers import embeddings
from jaxattn.models import transformer


def mean_pool(x: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean over real tokens: [B, T, D], [B, T] -> [B, D]."""
    weights = mask.astype(x.dtype)[..., None]
    return (x * weights).sum(axis=1) / jnp.maximum(weights.sum(axis=1), 1.0)


def mean_over_length(x: jax.Array, mask: jax.Array) -> jax.Array:
    """Padded positions zeroed, then the mean over all T positions: [B, T, D] -> [B, D]. The
    Nyströmformer LRA code pools this way (model.py zeroes pads after the final LayerNorm,
    model_wrapper.py takes `.mean(dim=1)` over the padded length), so its pooled vector shrinks
    with the share of padding; `mean` divides by the real tokens instead."""
    return (x * mask.astype(x.dtype)[..., None]).mean(axis=1)


POOLING = {
    "cls": lambda x, mask: x[:, 0],
    "mean": mean_pool,
    "mean_over_length": mean_over_length,
    "sum": lambda x, mask: (x * mask.astype(x.dtype)[..., None]).sum(axis=1),
}


class EncoderClassifier(nn.Module):
    """tokens [B, T] (0 = padding) -> logits [B, num_classes] (the LRA encoder classifier).

    `pooling='cls'` prepends a learned, zero-initialised CLS vector (LRA); its mask copies the
    first token's, as in LRA's code. The head is Dense(mlp_dim) -> ReLU -> Dense(num_classes).

    Positions: `positional` is the absolute embedding added to the tokens (learned | sinusoidal |
    none); `relative` the scheme applied inside every attention layer (none | rope | alibi | t5 |
    shaw | huang, see layers/posenc.py) with its settings `relative_max_distance` (T5's largest
    bucketed distance, Shaw/Huang's clip), `relative_num_buckets` (T5) and `rope_base`.
    """

    attention: BoundAttention
    vocab_size: int
    num_classes: int
    max_length: int
    emb_dim: int
    num_layers: int
    num_heads: int
    mlp_dim: int
    num_kv_heads: int | None = None
    head_dim: int | None = None
    pooling: str = "mean"
    positional: str = "learned"
    relative: str = "none"
    relative_max_distance: int = 128
    relative_num_buckets: int = 32
    rope_base: float = 10_000.0
    token_init_stddev: float = 1.0  # LRA-code's N(0, 1); Nyströmformer's code uses 0.02
    position_init_stddev: float = 0.02  # learned positions
    dropout_rate: float = 0.0
    attention_dropout_rate: float = 0.0
    padding_id: int = 0
    causal: bool = False  # causal self-attention inside the encoder (needs a kind that supports it)
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, tokens: jax.Array, *, deterministic: bool = True) -> tuple[jax.Array, dict]:
        pooled = self.encode(tokens, deterministic=deterministic)  # [B, D]
        return self.head(pooled), {}

    def encode(self, tokens: jax.Array, *, deterministic: bool) -> jax.Array:
        """tokens [B, T] -> pooled features [B, D] (float32). Submodules it creates belong to
        the calling module, so a subclass calling it once shares one encoder across inputs."""
        mask = tokens != self.padding_id  # [B, T]
        x = embeddings.TokenEmbedding(
            self.vocab_size,
            self.emb_dim,
            init_stddev=self.token_init_stddev,
            dtype=self.dtype,
            name="embed",
        )(tokens)
        if self.pooling == "cls":
            cls = self.param(
                "cls",
                nn.with_logical_partitioning(nn.initializers.zeros, (None, None, "embed")),
                (1, 1, self.emb_dim),
            )
            x = jnp.concatenate(
                [jnp.broadcast_to(cls, (x.shape[0], 1, self.emb_dim)).astype(x.dtype), x], axis=1
            )
            mask = jnp.concatenate([mask[:, :1], mask], axis=1)
        x = embeddings.PositionalEmbedding(
            self.positional,
            self.max_length + 1,
            init_stddev=self.position_init_stddev,
            name="positions",
        )(x)
        x = nn.with_logical_constraint(x, ("batch", "length", "embed"))
        x = transformer.from_fields(self, "encoder")(
            x, is_causal=self.causal, kv_mask=mask, deterministic=deterministic
        )
        return POOLING[self.pooling](x, mask).astype(jnp.float32)  # [B, D]

    def head(self, features: jax.Array) -> jax.Array:
        """[B, F] -> logits [B, num_classes]: Dense(mlp_dim) -> ReLU -> Dense(num_classes)."""
        h = nn.Dense(self.mlp_dim, name="head_hidden")(features)
        return nn.Dense(self.num_classes, name="head_out")(nn.relu(h))


class DualEncoderClassifier(EncoderClassifier):
    """Two documents -> logits [B, num_classes]: LRA Retrieval's two-tower matcher.

    One encoder (shared weights, no cross-attention) pools each document to u and v; the head
    (Dense(mlp_dim) -> ReLU -> Dense(num_classes)) reads [u, v, u*v, u-v] (LRA paper App. A.1.3;
    the Nyströmformer authors' `SCHeadDual` in LRA/code/model_wrapper.py uses this head). The two
    documents run through the encoder as one batch of 2B rows, so the towers are one set of
    parameters by construction.
    """

    @nn.compact
    def __call__(
        self, tokens: jax.Array, tokens2: jax.Array, *, deterministic: bool = True
    ) -> tuple[jax.Array, dict]:
        if tokens.shape != tokens2.shape:
            raise ValueError(
                f"the two documents must share a shape; got {tokens.shape}, {tokens2.shape}"
            )
        pooled = self.encode(
            jnp.concatenate([tokens, tokens2], axis=0), deterministic=deterministic
        )
        u, v = jnp.split(pooled, 2, axis=0)  # [B, D] each
        return self.head(jnp.concatenate([u, v, u * v, u - v], axis=-1)), {}
