"""Decoder-only language model: token embedding, the shared causal Transformer, output logits.

tokens [B, T] -> logits [B, T, V] over the next token at every position. The attention is any
registry kind that declares causal support (the registry refuses the others when the model is
built); `packed` rows (several documents per row, `data/packing.py`) also need a kind that
declares packing, because attention must not cross documents.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxattn.attention.core import BoundAttention
from jaxattn.layers import embeddings
from jaxattn.models import transformer


class DecoderLM(nn.Module):
    """Pre-LN decoder-only LM (GPT-style blocks from `models/transformer.py`).

    Attributes:
      vocab_size: V. max_length: the longest T (learned absolute positions' table size).
      emb_dim, num_layers, num_heads, mlp_dim: D, layers, N, the MLP width.
      num_kv_heads: K < N for GQA (K = 1: MQA); default N.
      head_dim: H (default D // N).
      positional: absolute positions added to the embeddings: 'none' (default: RoPE carries
        positions) | 'learned' | 'sinusoidal'.
      relative: the scheme inside attention (layers/posenc.py): 'rope' (default) | 'alibi' | 't5'
        | 'shaw' | 'huang' | 'none', with `rope_base`, `relative_max_distance`,
        `relative_num_buckets`.
      tie_embeddings: logits from the input embedding table (default) or an untied Dense.
      logit_softcap: if set, logits = c * tanh(logits / c) (Gemma 2's soft-cap).
      packed: rows hold several documents; segment ids go to attention (from the data).
    """

    attention: BoundAttention
    vocab_size: int
    max_length: int
    emb_dim: int
    num_layers: int
    num_heads: int
    mlp_dim: int
    num_kv_heads: int | None = None
    head_dim: int | None = None
    positional: str = "none"
    relative: str = "rope"
    relative_max_distance: int = 128
    relative_num_buckets: int = 32
    rope_base: float = 10_000.0
    tie_embeddings: bool = True
    logit_softcap: float | None = None
    token_init_stddev: float = 0.02
    position_init_stddev: float = 0.02
    dropout_rate: float = 0.0
    attention_dropout_rate: float = 0.0
    packed: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self,
        tokens: jax.Array,  # [B, T]
        segment_ids: jax.Array | None = None,  # [B, T], 1.. per document, 0 = padding
        positions: jax.Array | None = None,  # [B, T] per-document positions
        *,
        deterministic: bool = True,
        decode: bool = False,
    ) -> tuple[jax.Array, dict]:
        """Logits [B, T, V]. With `decode=True`, tokens is [B, 1], the next token of every row,
        and the attention layers decode from caches in the 'cache' collection (mutable; created
        on the first call, sized max_length): token-by-token logits equal the full pass's."""
        if decode:
            index = self.variable("cache", "index", lambda: jnp.zeros((), jnp.int32))
            if positions is None:
                positions = jnp.broadcast_to(index.value, tokens.shape)
            if self.is_mutable_collection("cache"):
                index.value = index.value + tokens.shape[1]
            segment_ids = None
        embed = embeddings.TokenEmbedding(
            self.vocab_size,
            self.emb_dim,
            init_stddev=self.token_init_stddev,
            dtype=self.dtype,
            name="embed",
        )
        x = embed(tokens)  # [B, T, D]
        x = embeddings.PositionalEmbedding(
            self.positional,
            self.max_length,
            init_stddev=self.position_init_stddev,
            name="positions",
        )(x, positions)
        x = nn.with_logical_constraint(x, ("batch", "length", "embed"))
        x = transformer.from_fields(self, "decoder")(
            x,
            is_causal=True,
            segment_ids=segment_ids if self.packed else None,
            positions=positions,
            deterministic=deterministic,
            decode_length=self.max_length if decode else None,
        )  # [B, T, D]
        if self.tie_embeddings:
            logits = embed.attend(x)
        else:
            logits = nn.DenseGeneral(
                self.vocab_size,
                kernel_init=nn.with_logical_partitioning(
                    nn.initializers.lecun_normal(), ("embed", "vocab")
                ),
                dtype=self.dtype,
                name="logits",
            )(x)
        logits = logits.astype(jnp.float32)  # [B, T, V]
        if self.logit_softcap:
            logits = self.logit_softcap * jnp.tanh(logits / self.logit_softcap)
        return logits, {}
