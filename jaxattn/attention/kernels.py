"""Library fast paths of exact softmax attention, held to `softmax.softmax_attention` by tests.

`softmax_xla` calls `jax.nn.dot_product_attention`: XLA's fused attention everywhere and, with
`implementation='cudnn'`, cuDNN's flash attention on NVIDIA GPUs. It is the same math as
`softmax`; the factorized masks are turned into the dense boolean `mask` that API takes.

`jax.nn.dot_product_attention` has no dropout argument. With `dropout_rate` > 0 this kind
therefore runs `softmax.softmax_attention` (the same dense math XLA's implementation lowers to,
O(T·S) memory, with the same dropout mask as `softmax`); `implementation='cudnn'` raises then.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxattn.attention import core, softmax

KIND = "softmax_xla"
IMPLEMENTATIONS = (None, "xla", "cudnn")


def xla_softmax_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    *,
    is_causal: bool = False,
    kv_mask: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    bias: jax.Array | None = None,
    scale: float | None = None,
    dropout_rate: float = 0.0,
    dropout_rng: jax.Array | None = None,
    implementation: str | None = None,
) -> jax.Array:
    """Exact softmax attention through `jax.nn.dot_product_attention` (JAX's own API).

    Paper: Vaswani et al. 2017, arXiv:1706.03762 (the math); the kernel is XLA's or cuDNN's.

    Args:
      query: [B, T, N, H].
      key, value: [B, S, K, H]; K divides N (GQA/MQA). T != S is cross-attention.
      is_causal: query t sees keys s <= t (top-left aligned, as `softmax`).
      kv_mask: [B, S] bool, True = real key.
      q_segment_ids, kv_segment_ids: [B, T] / [B, S] int, packed sequences.
      bias: additive logits bias broadcastable to [B, N, T, S].
      scale: logits scale, default 1/sqrt(H).
      dropout_rate, dropout_rng: attention-probability dropout. The API has none, so a rate > 0
        runs `softmax.softmax_attention` (mask `softmax.dropout_mask`); with
        implementation='cudnn' it raises UnsupportedFeatureError.
      implementation: None (JAX picks), 'xla', or 'cudnn' (GPU only; it raises elsewhere).

    Returns:
      [B, T, N, H] in value.dtype; a query row whose keys are all masked returns zeros.

    Complexity: O(B·N·T·S·H) time; O(B·N·T·S) memory on XLA:CPU (the logits are materialised),
    O(B·N·T·H) with cuDNN. Supports every mask, bias, GQA and cross-attention; key padding and
    packing become a dense [B, 1, T, S] boolean mask.
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"{KIND}: implementation must be one of {IMPLEMENTATIONS}")
    B, T, S, N, K, H = core.check_inputs(
        KIND,
        query,
        key,
        value,
        kv_mask=kv_mask,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
    )
    q_segment_ids, kv_segment_ids = core.resolve_segment_ids(
        KIND, q_segment_ids, kv_segment_ids, T, S
    )
    if core.check_dropout(KIND, dropout_rate, dropout_rng):
        if implementation == "cudnn":
            raise core.unsupported(
                KIND,
                f"dropout (dropout_rate={dropout_rate}) with implementation='cudnn': "
                "jax.nn.dot_product_attention has no dropout; use implementation=None or 'xla', "
                "or the softmax_chunked kind",
            )
        return softmax.softmax_attention(
            query,
            key,
            value,
            is_causal=is_causal,
            kv_mask=kv_mask,
            q_segment_ids=q_segment_ids,
            kv_segment_ids=kv_segment_ids,
            bias=bias,
            scale=scale,
            dropout_rate=dropout_rate,
            dropout_rng=dropout_rng,
        )
    keep = core.make_keep_mask(
        T, S, kv_mask=kv_mask, q_segment_ids=q_segment_ids, kv_segment_ids=kv_segment_ids
    )  # [B|1, 1, T, S] or None; causal goes to the kernel as a flag
    if bias is not None:
        bias = jnp.asarray(bias, jnp.float32)
        bias = bias.reshape((1,) * (4 - bias.ndim) + bias.shape)  # [B|1, N|1, T|1, S]
    out = jax.nn.dot_product_attention(
        query,
        key,
        value,
        bias=bias,
        mask=keep,
        scale=core.default_scale(scale, H),
        is_causal=is_causal,
        implementation=implementation,
    )  # [B, T, N, H]
    if keep is not None:
        # The kernel averages the values of a row with no visible key; `softmax` returns zeros.
        visible = keep
        if is_causal:
            visible = keep & (jnp.arange(T)[:, None] >= jnp.arange(S)[None, :])  # [B|1, 1, T, S]
        seen = jnp.any(visible, axis=-1)  # [B|1, 1, T]
        out = jnp.where(jnp.moveaxis(seen, 1, -1)[..., None], out, 0)  # [B|1, T, 1, 1]
    return out.astype(value.dtype)
