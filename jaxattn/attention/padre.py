"""PADRe, a polynomial attention replacement (Letourneau et al. 2024, arXiv:2407.11306), a mixer.

Letourneau, Singh, Cheng, Han, Shi, Jones, Langston, Cai, Porikli, "PADRe: A Unifying Polynomial
Attention Drop-in Replacement for Efficient Vision Transformer", 2024, arXiv:2407.11306. The
output is a degree-d polynomial of the input, built from cheap linear maps and Hadamard products
(no softmax). The paper's vision instance mixes tokens with 2-D depthwise convolutions; for a
sequence the token mixers here are 1-D depthwise convolutions of width k. Shape letters (core.py)
plus i = 0 .. d-1 (d = degree) and J a tap:

    P_i = x · in_proj[i]                                   [B, T, D]  channel linears
    Y_0 = conv(P_0; mix_a[0])                              degree 1
    Y_i = conv(P_i; mix_a[i]) ⊙ conv(Y_{i-1}; mix_b[i-1])  degree i + 1
    y   = Σ_i Y_i · out_proj[i]                            [B, T, D]  the linear combination

with conv(u; w)[t, d] = Σ_j w[j, d] · u[t + o_j, d] (depthwise, taps o_j as in
lightconv.tap_offsets: centred, or left-only when causal). Y_i is homogeneous of degree i + 1 in
x, so y is a polynomial of degree d with no constant term; `padre_terms` returns the d terms
Y_i · out_proj[i] separately (the tests check degree 1 is linear and that term i scales by
s^(i+1) when x is scaled by s). Anything the paper's vision instance adds around the polynomial
(normalisation, its 2-D token layout) is not reproduced; the block's pre-LayerNorm precedes it.

Masks:
  - is_causal: left taps only in every convolution; exact (all other operations are per token).
  - kv_mask (padding): every convolution reads zeros at padded positions (pads are excluded from
    its taps), so real outputs do not depend on pad values.
  - segment ids (packing): taps never cross a segment boundary (lightconv.tap_mask), so a
    packed row equals its segments run alone; exact.
  - bias: refused (no logits). dropout: refused (no attention probabilities).

Omitted tensors (tests; the kind has no parameter-free form): identity channel linears, identity
kernels (one tap of weight 1 at offset 0) and identity output maps, so y = Σ_i x^(i+1) elementwise.

Complexity: O(T·d·D·(D + k)) time, O(T·d·D) memory (the d terms).

Reference implementation: none was found in this session, so none was compared; the tests hold
the function to the equations above in float64 NumPy with explicit banded matrices.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxattn.attention import core, lightconv

KIND = "padre"


def padre_terms(
    x: jax.Array,
    *,
    is_causal: bool = False,
    kv_mask: jax.Array | None = None,
    segment_ids: jax.Array | None = None,
    degree: int = 3,
    kernel_size: int = 3,
    in_proj: jax.Array | None = None,
    mix_a: jax.Array | None = None,
    mix_b: jax.Array | None = None,
    out_proj: jax.Array | None = None,
) -> list[jax.Array]:
    """The d homogeneous terms Y_i · out_proj[i] (float32, [B, T, D] each); y is their sum."""
    B, T, D = x.shape
    f32 = jnp.float32
    x32 = x.astype(f32)
    offsets = lightconv.tap_offsets(kernel_size, is_causal)
    identity = jnp.zeros((kernel_size, D), f32).at[offsets.index(0)].set(1.0)
    ok = lightconv.tap_mask(B, T, offsets, kv_mask=kv_mask, segment_ids=segment_ids)

    def conv(u, kernels, i):
        w = identity if kernels is None else kernels[i].astype(f32)
        return lightconv.depthwise_conv(u, w, offsets, ok)

    terms, y = [], None
    for i in range(degree):
        p = x32 if in_proj is None else jnp.einsum("BTD,DE->BTE", x32, in_proj[i].astype(f32))
        a = conv(p, mix_a, i)
        y = a if i == 0 else a * conv(y, mix_b, i - 1)  # [B, T, D], degree i + 1
        terms.append(y if out_proj is None else jnp.einsum("BTD,DE->BTE", y, out_proj[i].astype(f32)))  # fmt: skip
    return terms


def padre_mixing(
    x: jax.Array,
    *,
    is_causal: bool = False,
    kv_mask: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    bias: jax.Array | None = None,
    dropout_rate: float = 0.0,
    dropout_rng: jax.Array | None = None,
    degree: int = 3,
    kernel_size: int = 3,
    in_proj: jax.Array | None = None,
    mix_a: jax.Array | None = None,
    mix_b: jax.Array | None = None,
    out_proj: jax.Array | None = None,
) -> jax.Array:
    """PADRe's degree-d polynomial token mixer on x [B, T, D] (see the module docstring).

    Args:
      x: [B, T, D].
      is_causal: left-only convolutions (exact).
      kv_mask: [B, T] bool, True = real token; convolutions skip pads (exact).
      q_segment_ids, kv_segment_ids: [B, T] packing; convolutions stay in segments (exact).
      bias: unsupported (raises).
      dropout_rate, dropout_rng: unsupported: a rate > 0 raises.
      degree: d >= 1, the polynomial's degree.
      kernel_size: k, the depthwise convolutions' width.
      in_proj: [d, D, D]; mix_a: [d, k, D]; mix_b: [d - 1, k, D] (absent for d = 1);
      out_proj: [d, D, D] (declared).

    Returns:
      [B, T, D] in x.dtype.
    """
    if bias is not None:
        raise core.unsupported(KIND, "bias (a polynomial mixer has no attention logits)")
    core.reject_dropout(KIND, dropout_rate, "a polynomial mixer forms no attention probabilities")
    if x.ndim != 3:
        raise ValueError(f"{KIND}: x must be [B, T, D]; got {x.shape}")
    if degree < 1 or kernel_size < 1:
        raise ValueError(
            f"{KIND}: degree and kernel_size must be >= 1; got {degree}, {kernel_size}"
        )
    B, T, _ = x.shape
    if kv_mask is not None and kv_mask.shape != (B, T):
        raise ValueError(f"{KIND}: kv_mask must be [B, T] = {(B, T)}; got {kv_mask.shape}")
    # A token mixer mixes x with itself: kv_segment_ids default to q's, the same packing.
    q_ids, _ = core.resolve_segment_ids(KIND, q_segment_ids, kv_segment_ids, T, T)
    terms = padre_terms(
        x,
        is_causal=is_causal,
        kv_mask=kv_mask,
        segment_ids=q_ids,
        degree=degree,
        kernel_size=kernel_size,
        in_proj=in_proj,
        mix_a=mix_a,
        mix_b=mix_b,
        out_proj=out_proj,
    )
    return sum(terms[1:], terms[0]).astype(x.dtype)


def param_specs(
    hparams: Mapping[str, Any], *, num_heads: int, num_kv_heads: int, head_dim: int, kv_length: int
) -> dict[str, core.ParamSpec]:
    """Channel linears and output maps [d, D, D] (LeCun normal), depthwise kernels [., k, D]
    (variance 1 / k per channel: each convolution keeps its input's scale)."""
    del num_heads, num_kv_heads, kv_length
    d, k, D = hparams.get("degree", 3), hparams.get("kernel_size", 3), head_dim
    dense = jax.nn.initializers.lecun_normal(in_axis=-2, out_axis=-1, batch_axis=(0,))
    kernel = jax.nn.initializers.variance_scaling(
        1.0, "fan_in", "normal", in_axis=-2, out_axis=-1, batch_axis=(0,)
    )
    specs = {
        "in_proj": core.ParamSpec((d, D, D), dense, (None, "embed", "mlp")),
        "mix_a": core.ParamSpec((d, k, D), kernel, (None, None, "mlp")),
        "out_proj": core.ParamSpec((d, D, D), dense, (None, "mlp", "embed")),
    }
    if d > 1:
        specs["mix_b"] = core.ParamSpec((d - 1, k, D), kernel, (None, None, "mlp"))
    return specs
