"""TokenMixer: runs a registered token mixer (registry family 'mixer', e.g. FNet) on x [B, T, D]."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxattn import attention as attention_lib
from jaxattn.attention import core
from jaxattn.attention.core import BoundAttention
from jaxattn.layers import attention

Dtype = Any


class TokenMixer(nn.Module):
    """Calls the mixer function on x and returns [B, T, D]; it owns the tensors the mixer declares.

    A mixer replaces the whole attention sublayer (no query/key/value or output projections; the
    block's residual dropout still applies). `dropout_rate` (the model's attention_dropout_rate)
    goes to the mixer as for attention kinds: a mixer without dropout support (FNet: it forms no
    attention probabilities) raises UnsupportedFeatureError for a rate > 0. Nothing here knows which mixer
    runs: declared tensors, non-gradient state and the rng are handled as in MultiHeadAttention.
    The shapes given to the mixer's `param_specs` / `state` functions describe x as one head of
    width D: num_heads = num_kv_heads = 1, head_dim = D, kv_length = T.

    Attributes:
      mixer: the bound kind (family 'mixer') from `jaxattn.attention.get_attention_fn`.
      dropout_rate: attention dropout, as MultiHeadAttention.dropout_rate.
    """

    mixer: BoundAttention
    dropout_rate: float = 0.0
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(
        self,
        x: jax.Array,  # [B, T, D]
        *,
        is_causal: bool = False,
        kv_mask: jax.Array | None = None,  # [B, T]
        q_segment_ids: jax.Array | None = None,  # [B, T]
        kv_segment_ids: jax.Array | None = None,  # [B, T]
        bias: jax.Array | None = None,
        positions: jax.Array | None = None,  # unused: relative schemes need attention kinds
        deterministic: bool = True,
        decode_length: int | None = None,
    ) -> jax.Array:  # [B, T, D]
        del positions  # build_model rejects a relative scheme for a mixer
        spec = self.mixer.spec
        if decode_length is not None and spec.decoder is None:
            raise core.unsupported(
                self.mixer.kind, "decoding", attention_lib.kinds_supporting("decoding")
            )
        if spec.family != "mixer":
            raise ValueError(f"TokenMixer runs 'mixer' kinds; '{self.mixer.kind}' is {spec.family}")
        shapes = dict(num_heads=1, num_kv_heads=1, head_dim=x.shape[-1], kv_length=x.shape[1])
        tensors = {
            name: self.param(
                name, nn.with_logical_partitioning(p.init, p.axes), p.shape, self.param_dtype
            )
            for name, p in self.mixer.param_specs(**shapes).items()
        }
        state = {
            name: self.variable(
                "attention_state",
                name,
                lambda p=p: p.init(self.make_rng("params"), p.shape, jnp.float32),
            )
            for name, p in self.mixer.state_specs(**shapes).items()
        }
        tensors.update({name: variable.value for name, variable in state.items()})
        if spec.needs_rng:
            tensors["rng"] = self.make_rng("attention")
        tensors.update(
            attention.dropout_arguments(self.mixer, self.dropout_rate, deterministic, self)
        )

        y = spec.fn(
            x.astype(self.dtype),
            **dict(self.mixer.hparams),
            is_causal=is_causal,
            kv_mask=kv_mask,
            q_segment_ids=q_segment_ids,
            kv_segment_ids=kv_segment_ids,
            bias=bias,
            **tensors,
            **({"training": not deterministic} if spec.needs_training else {}),
        )  # [B, T, D]
        if spec.state is not None:
            y, new_state = y
            if self.is_mutable_collection("attention_state"):
                for name, variable in state.items():
                    variable.value = new_state[name]
        return nn.with_logical_constraint(y, ("batch", "length", "embed"))
