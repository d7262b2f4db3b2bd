"""gMLP's spatial gating unit (Liu et al. 2021, https://arxiv.org/abs/2105.08050) as a token mixer.

Liu, Dai, So, Le, "Pay Attention to MLPs", NeurIPS 2021, arXiv:2105.08050. The gMLP block's
channel projections around the spatial gating unit (SGU) form the token-mixing sublayer here
(registry family 'mixer'); the block's pre-norm and residual are the surrounding encoder block's.
Shape letters (core.py) plus F, the width of each half of the expanded channels (ffn_dim / 2):

    Z = GELU(x · in_proj + in_bias)                    [B, T, 2F]
    Z₁, Z₂ = Z[..., :F], Z[..., F:]                     [B, T, F] each
    gate[t] = Σ_s W[t, s] · LN(Z₂)[s] + b[t]            [B, T, F]   (LN over F, affine)
    y = (Z₁ ⊙ gate) · out_proj + out_bias               [B, T, D]

W [T_max, T_max] is initialised near zero (uniform ±1e-3 / T_max, as the common open-source
gMLP code) and b [T_max] to ones, so at initialisation gate ≈ 1 and y ≈ Z₁ · out_proj + out_bias
(the paper's "the SGU starts as an identity on Z₁"). The paper's pseudo-code writes the spatial
product as einsum('bmd,mn->bnd', v, W), i.e. its W[m, n] is our W[n, m]; the two are the same
parameterisation transposed. Sequences shorter than T_max use W[:T, :T] and b[:T]; longer ones
raise (W is tied to absolute positions).

Masks:
  - is_causal: W is made lower-triangular (W[t, s] = 0 for s > t), the paper's causal gMLP for
    autoregressive language modelling; exact.
  - kv_mask (padding): the W columns of padded positions are zeroed, so pads never reach a real
    gate (Z₁ is per token); exact.
  - segment ids (packing): refused. W is indexed by absolute position, so a segment packed at
    offset o would use W[o:, o:] instead of W[:L, :L] and could not equal the segment run alone.
  - bias: refused (no attention logits). dropout: refused (no attention probabilities; the
    paper applies none inside the SGU).

Declared tensors and their stand-ins: a call without tensors (tests; the unit has no
parameter-free form) uses in_proj = [I | I] (F = D), W = 0, b = 1, an identity LayerNorm affine,
out_proj = I and zero biases, so y = GELU(x): the unit's initial behaviour with identity channels.

Complexity: O(T²·F + T·D·F) time, O(T² + T·F) memory.

Reference implementation: the paper gives pseudo-code only (no official code release); the
equations above are the pseudo-code's, and the tests hold the function to them in float64 NumPy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxattn.attention import core

KIND = "sgu"
LN_EPS = 1e-6


def sgu_mixing(
    x: jax.Array,
    *,
    is_causal: bool = False,
    kv_mask: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    bias: jax.Array | None = None,
    dropout_rate: float = 0.0,
    dropout_rng: jax.Array | None = None,
    ffn_dim: int | None = None,
    in_proj: jax.Array | None = None,
    in_bias: jax.Array | None = None,
    ln_scale: jax.Array | None = None,
    ln_bias: jax.Array | None = None,
    spatial_weight: jax.Array | None = None,
    spatial_bias: jax.Array | None = None,
    out_proj: jax.Array | None = None,
    out_bias: jax.Array | None = None,
) -> jax.Array:
    """gMLP's channel expansion, spatial gating unit and output projection on x [B, T, D].

    Args:
      x: [B, T, D].
      is_causal: lower-triangular W (exact).
      kv_mask: [B, T] bool, True = real token; the W columns of pads are zeroed (exact).
      q_segment_ids, kv_segment_ids: unsupported (packing raises; W is positional).
      bias: unsupported (raises).
      dropout_rate, dropout_rng: unsupported: a rate > 0 raises.
      ffn_dim: 2F, the expanded width (default 6·D, the paper's d_ffn); only read by the
        parameter shapes (the tensors carry it).
      in_proj: [D, 2F]; in_bias: [2F]; ln_scale, ln_bias: [F] (LayerNorm of Z₂);
      spatial_weight: W [T_max, T_max]; spatial_bias: b [T_max];
      out_proj: [F, D]; out_bias: [D]. Omitted tensors take the stand-ins of the module docstring.

    Returns:
      [B, T, D] in x.dtype.
    """
    del ffn_dim  # the tensors' shapes carry it
    if q_segment_ids is not None or kv_segment_ids is not None:
        raise core.unsupported(
            KIND, "q_segment_ids/kv_segment_ids (packing: W is indexed by absolute position)"
        )
    if bias is not None:
        raise core.unsupported(KIND, "bias (the spatial gating unit has no attention logits)")
    core.reject_dropout(KIND, dropout_rate, "the spatial gating unit forms no probabilities")
    if x.ndim != 3:
        raise ValueError(f"{KIND}: x must be [B, T, D]; got {x.shape}")
    B, T, D = x.shape
    if kv_mask is not None and kv_mask.shape != (B, T):
        raise ValueError(f"{KIND}: kv_mask must be [B, T] = {(B, T)}; got {kv_mask.shape}")
    f32 = jnp.float32
    x32 = x.astype(f32)

    if in_proj is None:
        z = jnp.concatenate([x32, x32], axis=-1)  # [B, T, 2D]: the identity stand-in
    else:
        z = jnp.einsum("BTD,DE->BTE", x32, in_proj.astype(f32))  # [B, T, 2F]
    if in_bias is not None:
        z = z + in_bias.astype(f32)
    z = jax.nn.gelu(z, approximate=False)
    F = z.shape[-1] // 2
    z1, z2 = z[..., :F], z[..., F:]  # [B, T, F]

    mean = jnp.mean(z2, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(z2 - mean), axis=-1, keepdims=True)
    z2 = (z2 - mean) * jax.lax.rsqrt(var + LN_EPS)
    if ln_scale is not None:
        z2 = z2 * ln_scale.astype(f32)
    if ln_bias is not None:
        z2 = z2 + ln_bias.astype(f32)

    if spatial_weight is None:
        w = jnp.zeros((T, T), f32)
    else:
        if spatial_weight.shape[0] < T or spatial_weight.shape[1] < T:
            raise ValueError(
                f"{KIND}: sequence length {T} exceeds the spatial weight's {spatial_weight.shape}"
            )
        w = spatial_weight[:T, :T].astype(f32)  # [T, S]
    b = jnp.ones((T,), f32) if spatial_bias is None else spatial_bias[:T].astype(f32)
    if is_causal:
        w = jnp.where(jnp.arange(T)[:, None] >= jnp.arange(T)[None, :], w, 0.0)
    w = jnp.broadcast_to(w, (B, T, T))
    if kv_mask is not None:
        w = jnp.where(kv_mask[:, None, :], w, 0.0)  # zero the columns of pads
    gate = jnp.einsum("BTS,BSF->BTF", w, z2) + b[None, :, None]  # [B, T, F]

    h = z1 * gate
    if out_proj is None:
        y = h  # the identity stand-in (F = D)
    else:
        y = jnp.einsum("BTF,FD->BTD", h, out_proj.astype(f32))
    if out_bias is not None:
        y = y + out_bias.astype(f32)
    return y.astype(x.dtype)


def _near_zero(eps: float):
    def init(rng: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        return jax.random.uniform(rng, shape, dtype, -eps, eps)

    return init


def param_specs(
    hparams: Mapping[str, Any], *, num_heads: int, num_kv_heads: int, head_dim: int, kv_length: int
) -> dict[str, core.ParamSpec]:
    """The gMLP sublayer's tensors for D = head_dim and T_max = kv_length (see the docstring)."""
    del num_heads, num_kv_heads
    D, T = head_dim, kv_length
    ffn_dim = hparams.get("ffn_dim") or 6 * D
    if ffn_dim % 2:
        raise ValueError(f"{KIND}: ffn_dim must be even (it is split in two); got {ffn_dim}")
    F = ffn_dim // 2
    dense = jax.nn.initializers.lecun_normal()
    zeros, ones = jax.nn.initializers.zeros, jax.nn.initializers.ones
    return {
        "in_proj": core.ParamSpec((D, 2 * F), dense, ("embed", "mlp")),
        "in_bias": core.ParamSpec((2 * F,), zeros, ("mlp",)),
        "ln_scale": core.ParamSpec((F,), ones, ("mlp",)),
        "ln_bias": core.ParamSpec((F,), zeros, ("mlp",)),
        "spatial_weight": core.ParamSpec((T, T), _near_zero(1e-3 / T), ("length", None)),
        "spatial_bias": core.ParamSpec((T,), ones, ("length",)),
        "out_proj": core.ParamSpec((F, D), dense, ("mlp", "embed")),
        "out_bias": core.ParamSpec((D,), zeros, ("embed",)),
    }
