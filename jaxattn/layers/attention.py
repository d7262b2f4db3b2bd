"""MultiHeadAttention: projections around an injected attention function (any registry kind)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxattn import attention as attention_lib
from jaxattn import errors
from jaxattn.attention import core
from jaxattn.attention.core import BoundAttention
from jaxattn.layers import posenc

Dtype = Any

# The collection a MultiHeadAttention sows its kind's inputs into (query and key after the
# relative scheme, bias, and the kind's tensors and rng) when the caller makes it mutable; never
# at init or in training, so it changes nothing unless asked (experiments/attention_maps.py).
PROBE_COLLECTION = "attention_probe"


class MultiHeadAttention(nn.Module):
    """Projects x to BTNH query/key/value, calls the attention kind, projects back to D.

    Nothing here knows which kind runs: tensors a kind declares (`BoundAttention.param_specs`,
    e.g. Nyström's depthwise conv) are created generically and passed in by name.

    A relative position scheme (`layers/posenc.py`) runs between the projections and the kind:
    RoPE rotates query and key; ALiBi, T5, Shaw and Huang make a bias [B|1, N, T, S] that is added
    to `bias` (so they need a kind with bias support). Its positions are `positions` [B, T] (per
    token, for packed sequences), default 0..T-1; keys of a cross-attention context get 0..S-1.

    Attributes:
      attention: the bound kind from `jaxattn.attention.get_attention_fn`.
      num_heads: N. num_kv_heads: K (default N; K < N is GQA/MQA).
      head_dim: H (default out_dim // num_heads; LRA's qkv_dim / num_heads).
      out_dim: D of the output (default: input D).
      relative: the relative position scheme and its settings (default none).
      dropout_rate: attention-probability dropout (the model's attention_dropout_rate), applied
        by the kind itself when not deterministic, with an rng from the 'dropout' stream;
        deterministic calls (evaluation) need no rng and drop nothing. A rate > 0 on a kind
        without dropout support raises UnsupportedFeatureError, in training and evaluation.

    Decoding: a call with `decode_length=L` takes one token (x [B, 1, D]) and runs the kind's
    `core.Decoder` step on a cache kept in the 'cache' collection (created on the first call,
    sized for L positions; the caller makes 'cache' mutable). `positions` default to the number
    of tokens decoded so far. Kinds without a decoder, bias schemes (ALiBi, T5, Shaw, Huang: the
    bias row against the cache is not built) and cross-attention raise UnsupportedFeatureError.
    """

    attention: BoundAttention
    num_heads: int
    num_kv_heads: int | None = None
    head_dim: int | None = None
    out_dim: int | None = None
    relative: posenc.RelativePosition = posenc.RelativePosition()
    use_bias: bool = False
    dropout_rate: float = 0.0
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    kernel_init: nn.initializers.Initializer = nn.initializers.xavier_uniform()

    @nn.compact
    def __call__(
        self,
        x: jax.Array,  # [B, T, D]
        context: jax.Array | None = None,  # [B, S, D] for cross-attention; default x
        *,
        is_causal: bool = False,
        kv_mask: jax.Array | None = None,  # [B, S]
        q_segment_ids: jax.Array | None = None,  # [B, T]
        kv_segment_ids: jax.Array | None = None,  # [B, S]
        bias: jax.Array | None = None,  # broadcastable to [B, N, T, S]
        positions: jax.Array | None = None,  # [B, T] int, for the relative scheme; default 0..T-1
        deterministic: bool = True,
        decode_length: int | None = None,  # decode one token with a cache of this many positions
    ) -> jax.Array:  # [B, T, D]
        if decode_length is not None:
            index = self._check_decode(x, context, bias)
            positions = (
                jnp.broadcast_to(index.value, (x.shape[0], 1)) if positions is None else positions
            )
        q_positions = posenc.default_positions(positions, x.shape[1])  # [B|1, T]
        kv_positions = (
            q_positions if context is None else posenc.default_positions(None, context.shape[1])
        )
        context = x if context is None else context
        out_dim = self.out_dim or x.shape[-1]
        N = self.num_heads
        K = self.num_kv_heads or N
        H = self.head_dim or out_dim // N

        def projection(name, inputs, heads):
            """[B, L, D] -> [B, L, heads, H] with a [D, heads, H] kernel (logical axes for sharding)."""
            kernel = self.param(
                name,
                nn.with_logical_partitioning(self.kernel_init, ("embed", "heads", "kv")),
                (inputs.shape[-1], heads, H),
                self.param_dtype,
            )
            y = jnp.einsum("BLD,DNH->BLNH", inputs.astype(self.dtype), kernel.astype(self.dtype))
            if self.use_bias:
                b = self.param(
                    f"{name}_bias",
                    nn.with_logical_partitioning(nn.initializers.zeros, ("heads", "kv")),
                    (heads, H),
                    self.param_dtype,
                )
                y = y + b.astype(self.dtype)
            return y

        query = projection("query", x, N)  # [B, T, N, H]
        key = projection("key", context, K)  # [B, S, K, H]
        value = projection("value", context, K)  # [B, S, K, H]
        query = nn.with_logical_constraint(query, ("batch", "length", "heads", "kv"))
        key = nn.with_logical_constraint(key, ("batch", "length", "heads", "kv"))
        value = nn.with_logical_constraint(value, ("batch", "length", "heads", "kv"))

        # A bias scheme on a kind without bias support raises here, naming the kind and scheme.
        posenc.check_scheme(self.relative.scheme, self.attention.kind, self.attention.spec)
        scheme = posenc.get_scheme(self.relative.scheme)
        relative = scheme.module(
            config=self.relative, param_dtype=self.param_dtype, name="relative"
        )
        query, key, relative_bias = relative(
            query,
            key,
            q_positions,
            kv_positions,
            is_causal=is_causal,
            scale=core.default_scale(None, H),
        )
        if relative_bias is not None:
            bias = relative_bias if bias is None else bias + relative_bias  # [B|1, N, T, S]

        shapes = dict(num_heads=N, num_kv_heads=K, head_dim=H, kv_length=context.shape[1])
        tensors = {
            name: self.param(
                name,
                nn.with_logical_partitioning(spec.init, spec.axes),
                spec.shape,
                self.param_dtype,
            )
            for name, spec in self.attention.param_specs(**shapes).items()
        }
        state = {
            name: self.variable(
                "attention_state",
                name,
                lambda spec=spec: spec.init(self.make_rng("params"), spec.shape, jnp.float32),
            )
            for name, spec in self.attention.state_specs(**shapes).items()
        }
        tensors.update({name: variable.value for name, variable in state.items()})
        if self.attention.spec.needs_rng:
            tensors["rng"] = self.make_rng("attention")
        tensors.update(dropout_arguments(self.attention, self.dropout_rate, deterministic, self))
        # Kinds that differ between training and evaluation (AttentionSpec.needs_training).
        mode = {"training": not deterministic} if self.attention.spec.needs_training else {}

        if self.is_mutable_collection(PROBE_COLLECTION) and not self.is_initializing():
            # Only when a caller asks (apply(..., mutable=[PROBE_COLLECTION])): what the kind is
            # called with besides the value, so its weights can be recomputed (attention_maps).
            self.sow(
                PROBE_COLLECTION, "call", {"query": query, "key": key, "bias": bias, **tensors}
            )
        if decode_length is not None:
            out = self._decode_step(query, key, value, index, decode_length, tensors)
        else:
            out = self.attention(
                query,
                key,
                value,
                is_causal=is_causal,
                kv_mask=kv_mask,
                q_segment_ids=q_segment_ids,
                kv_segment_ids=kv_segment_ids,
                bias=bias,
                **tensors,
                **mode,
            )  # [B, T, N, H]
            if self.attention.spec.state is not None:
                out, new_state = out
                if self.is_mutable_collection("attention_state"):
                    for name, variable in state.items():
                        variable.value = new_state[name]
        out = nn.with_logical_constraint(out, ("batch", "length", "heads", "kv"))
        out_kernel = self.param(
            "out",
            nn.with_logical_partitioning(self.kernel_init, ("heads", "kv", "embed")),
            (N, H, out_dim),
            self.param_dtype,
        )
        y = jnp.einsum("BTNH,NHD->BTD", out.astype(self.dtype), out_kernel.astype(self.dtype))
        if self.use_bias:
            b = self.param(
                "out_bias",
                nn.with_logical_partitioning(nn.initializers.zeros, ("embed",)),
                (out_dim,),
                self.param_dtype,
            )
            y = y + b.astype(self.dtype)
        return y

    def _check_decode(self, x: jax.Array, context: jax.Array | None, bias: jax.Array | None):
        """Refuses what decoding cannot do; returns the 'cache' index variable (tokens so far)."""
        kind, spec = self.attention.kind, self.attention.spec
        if spec.decoder is None:
            raise core.unsupported(kind, "decoding", attention_lib.kinds_supporting("decoding"))
        if context is not None:
            raise core.unsupported(kind, "decoding with cross-attention")
        if bias is not None:
            raise core.unsupported(kind, "decoding with a bias")
        if posenc.get_scheme(self.relative.scheme).mechanism == "bias":
            raise errors.UnsupportedFeatureError(
                f"decoding with the relative scheme '{self.relative.scheme}' is not supported "
                "(its bias row against the cache is not built); use relative='rope' or 'none'"
            )
        if x.shape[1] != 1:
            raise ValueError(f"decoding takes one token per call; got x of length {x.shape[1]}")
        return self.variable("cache", "index", lambda: jnp.zeros((), jnp.int32))

    def _decode_step(self, query, key, value, index, decode_length: int, tensors) -> jax.Array:
        """One token through the kind's decoder; the cache lives in the 'cache' collection."""
        decoder = self.attention.spec.decoder
        B, _, N, H = query.shape
        initial = decoder.init(
            dict(self.attention.hparams),
            batch=B,
            max_length=decode_length,
            num_heads=N,
            num_kv_heads=key.shape[2],
            head_dim=H,
            dtype=value.dtype,
        )
        cache = {name: self.variable("cache", name, lambda a=a: a) for name, a in initial.items()}
        tensors = {k: v for k, v in tensors.items() if k not in core.DROPOUT_ARGS}
        out, new_cache = decoder.step(
            query,
            key,
            value,
            {name: variable.value for name, variable in cache.items()},
            index.value,
            **dict(self.attention.hparams),
            **tensors,
        )
        if self.is_mutable_collection("cache"):
            for name, variable in cache.items():
                variable.value = new_cache[name]
            index.value = index.value + 1
        return out


def dropout_arguments(
    bound: BoundAttention, rate: float, deterministic: bool, module: nn.Module
) -> dict[str, Any]:
    """{'dropout_rate', 'dropout_rng'} for a training call with rate > 0, else {}.

    Raises UnsupportedFeatureError for a rate > 0 on a kind that declares no dropout, whether
    deterministic or not, so a config asking for it fails at init rather than at the first step.
    """
    if not 0.0 <= rate < 1.0:
        raise errors.ConfigError(f"attention dropout rate must be in [0, 1); got {rate!r}")
    if rate > 0:
        attention_lib.check_supports(bound.kind, "dropout", f" (attention_dropout_rate={rate})")
    if rate == 0 or deterministic:
        return {}
    return {"dropout_rate": float(rate), "dropout_rng": module.make_rng("dropout")}
