"""Lightweight and dynamic convolutions (Wu et al. 2019, https://arxiv.org/abs/1901.10430).

Wu, Fan, Baevski, Dauphin, Auli, "Pay Less Attention with Lightweight and Dynamic Convolutions",
ICLR 2019, arXiv:1901.10430. Two token mixers (registry family 'mixer') in one module, because
the dynamic convolution IS the lightweight convolution with a kernel predicted per position: both
kinds run the same banded depthwise convolution (`banded_conv`), so masks, causality and packing
are handled once, and "dynconv with a constant predicted kernel equals lightconv" is a test of the
predictor path alone.

Shape letters (core.py) plus C = D / num_kernels (channels per kernel), k = kernel_size, J a tap.
The D channels are split into `num_kernels` contiguous groups of C channels; every channel of
group h uses kernel h (the paper's weight sharing, its H). A kernel is softmax-normalised over its
k taps. Tap j reads position t + j - p, with p = k - 1 when causal (left taps only) and
p = (k - 1) // 2 otherwise (centred for odd k, as fairseq's encoder):

    lightconv:  W[h, :] = softmax_J(kernel[h, :])                            [num_kernels, k]
    dynconv:    W[b, t, h, :] = softmax_J(u[b, t] · kernel_proj[:, h, :] + kernel_bias[h, :])
    conv:       c[b, t, h·C + i] = Σ_j W[(b, t,) h, j] · u[b, t + j - p, h·C + i]

The paper's mechanism sits between two linears, and both are included (a mixer replaces the
whole attention sublayer, so these are its input and output projections; `use_projections=False`
gives the bare convolution):

    u = GLU(x · in_proj) = (x · in_proj[:, :D]) ⊙ sigmoid(x · in_proj[:, D:])    [B, T, D]
    y = c · out_proj                                                            [B, T, D]

The dynamic kernel is predicted from u_t (the convolution's own input), as fairseq's
DynamicConv1dTBC predicts it from its input. No biases on in_proj / out_proj (the paper's
linears have them; the surrounding block's norms and MLP supply the affine shifts).

Masks:
  - kv_mask (padding): u is zeroed at padded positions before the convolution, so padded tokens
    contribute nothing (the kernel is not renormalised, exactly as zeros beyond the sequence
    ends). Real outputs do not depend on pad values.
  - is_causal: left taps only; exact (a position reads only itself and the k - 1 before it; the
    dynamic kernel depends on u_t alone).
  - segment ids (packing): a tap that reads another segment (or segment 0 = padding) reads zero,
    which is what the segment's own sequence end would give: a packed row equals its segments
    run separately, exactly.
  - bias: refused (there are no attention logits).
  - dropout: the paper's DropConnect on the normalised kernel W ("weight dropout"), with the
    keep mask drawn at W's shape: [num_kernels, k] for lightconv (one mask for the whole batch,
    as fairseq's LightweightConv1dTBC), [B, T, num_kernels, k] for dynconv.

Complexity: O(T·k·D) time plus the projections O(T·D²) (dynconv: O(T·D·num_kernels·k) for the
predictor); O(T·D) memory (taps are accumulated one at a time; dynconv also holds its
[B, T, num_kernels, k] kernels).

Reference implementation: fairseq (lightconv_layer, LightweightConv1dTBC / DynamicConv1dTBC) is
not run beside ours: fairseq is not installed here and its CUDA kernels do not run on CPU. The
tests hold the convolution to an explicit banded T×T matrix built in NumPy instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxattn.attention import core

LIGHT = "lightconv"
DYNAMIC = "dynconv"


def tap_offsets(kernel_size: int, is_causal: bool) -> range:
    """The relative positions t + o each output t reads: left-only when causal, else centred."""
    left = kernel_size - 1 if is_causal else (kernel_size - 1) // 2
    return range(-left, kernel_size - left)


def _taps(x: jax.Array, offsets: range, fill) -> jax.Array:
    """[B, T, ...] -> [B, T, k, ...]: tap j holds x[:, t + offsets[j]] (`fill` outside 0..T-1)."""
    T = x.shape[1]
    start, xp = _padded(x, offsets, fill)
    return jnp.stack([xp[:, start + o : start + o + T] for o in offsets], axis=2)


def _padded(x: jax.Array, offsets: range, fill=0.0) -> tuple[int, jax.Array]:
    """x padded along T with `fill` so that every tap's slice is in range; (start, padded)."""
    left, right = -offsets[0], offsets[-1]
    widths = [(0, 0), (max(left, 0), max(right, 0))] + [(0, 0)] * (x.ndim - 2)
    return max(left, 0), jnp.pad(x, widths, constant_values=fill)


def tap_mask(
    B: int,
    T: int,
    offsets: range,
    *,
    kv_mask: jax.Array | None,
    segment_ids: jax.Array | None,
) -> jax.Array:
    """[B, T, k] bool: tap j of position t reads a real token of t's own segment."""
    valid = jnp.ones((B, T), bool) if kv_mask is None else kv_mask.astype(bool)
    ok = _taps(valid, offsets, False)  # [B, T, k]: inside the sequence and not padding
    if segment_ids is not None:
        seg = segment_ids.astype(jnp.int32)
        same = _taps(seg, offsets, -1) == seg[:, :, None]  # [B, T, k]
        ok = ok & same & (seg[:, :, None] != 0)
    return ok


def _shifted(xp: jax.Array, o: int, T: int, start: int) -> jax.Array:
    """The tap at offset o of a `_padded` array: [B, T, ...] with row t = x[:, t + o]."""
    return xp[:, start + o : start + o + T]


def banded_conv(
    u: jax.Array,  # [B, T, D] float32
    weights: jax.Array,  # [B|1, T|1, num_kernels, k], normalised
    offsets: range,
    ok: jax.Array,  # [B, T, k] bool
) -> jax.Array:  # [B, T, D]
    """c[b, t, h·C + i] = Σ_j weights[b, t, h, j] · u[b, t + offsets[j], h·C + i] over valid taps.

    Accumulated one tap at a time (O(T·D) live memory, not the O(T·k·D) of stacked taps).
    """
    B, T, D = u.shape
    num_kernels = weights.shape[-2]
    start, xp = _padded(u, offsets)
    w = jnp.where(ok[:, :, None, :], weights, 0.0)  # [B, T, h, k]: invalid taps weigh 0
    out = jnp.zeros((B, T, num_kernels, D // num_kernels), u.dtype)
    for j, o in enumerate(offsets):
        tap = _shifted(xp, o, T, start).reshape(B, T, num_kernels, D // num_kernels)
        out = out + w[..., j, None] * tap
    return out.reshape(B, T, D)


def depthwise_conv(
    u: jax.Array,  # [B, T, D]
    kernel: jax.Array,  # [k, D], one kernel per channel (not normalised)
    offsets: range,
    ok: jax.Array,  # [B, T, k] bool
) -> jax.Array:  # [B, T, D]
    """c[b, t, d] = Σ_j kernel[j, d] · u[b, t + offsets[j], d] over valid taps (padre's mixer),
    accumulated one tap at a time."""
    B, T, D = u.shape
    start, xp = _padded(u, offsets)
    out = jnp.zeros_like(u)
    for j, o in enumerate(offsets):
        tap = jnp.where(ok[:, :, j, None], _shifted(xp, o, T, start), 0.0)
        out = out + kernel[j] * tap
    return out


def _check(
    kind: str,
    x: jax.Array,
    num_kernels: int,
    kernel_size: int,
    kv_mask: jax.Array | None,
    q_segment_ids: jax.Array | None,
    kv_segment_ids: jax.Array | None,
    bias: jax.Array | None,
) -> jax.Array | None:
    if bias is not None:
        raise core.unsupported(kind, "bias (a convolution has no attention logits)")
    if x.ndim != 3:
        raise ValueError(f"{kind}: x must be [B, T, D]; got {x.shape}")
    B, T, D = x.shape
    if num_kernels < 1 or D % num_kernels:
        raise ValueError(f"{kind}: num_kernels={num_kernels} must divide D={D}")
    if kernel_size < 1:
        raise ValueError(f"{kind}: kernel_size must be >= 1; got {kernel_size}")
    if kv_mask is not None and kv_mask.shape != (B, T):
        raise ValueError(f"{kind}: kv_mask must be [B, T] = {(B, T)}; got {kv_mask.shape}")
    # A token mixer mixes x with itself: kv_segment_ids default to q's and describe the same
    # packing (the layer passes the same array for both); q_segment_ids is the one read.
    q_ids, kv_ids = core.resolve_segment_ids(kind, q_segment_ids, kv_segment_ids, T, T)
    if q_ids is not None and (q_ids.shape != (B, T) or kv_ids.shape != (B, T)):
        raise ValueError(f"{kind}: segment ids must be [B, T] = {(B, T)}")
    return q_ids


def _glu_in(x: jax.Array, in_proj: jax.Array | None, use_projections: bool, kind: str):
    x = x.astype(jnp.float32)
    if not use_projections:
        return x
    if in_proj is None:
        raise ValueError(f"{kind}: in_proj [D, 2D] is required with use_projections=True")
    D = x.shape[-1]
    h = jnp.einsum("BTD,DE->BTE", x, in_proj.astype(jnp.float32))  # [B, T, 2D]
    return h[..., :D] * jax.nn.sigmoid(h[..., D:])


def _project_out(c: jax.Array, out_proj: jax.Array | None, use_projections: bool, kind: str):
    if not use_projections:
        return c
    if out_proj is None:
        raise ValueError(f"{kind}: out_proj [D, D] is required with use_projections=True")
    return jnp.einsum("BTD,DE->BTE", c, out_proj.astype(jnp.float32))


def _mask_input(u: jax.Array, kv_mask: jax.Array | None, segment_ids: jax.Array | None):
    # Padded tokens (kv_mask False, segment 0) are zeroed before any convolution or prediction.
    if kv_mask is not None:
        u = jnp.where(kv_mask[:, :, None], u, 0.0)
    if segment_ids is not None:
        u = jnp.where((segment_ids != 0)[:, :, None], u, 0.0)
    return u


def lightconv_mixing(
    x: jax.Array,
    *,
    is_causal: bool = False,
    kv_mask: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    bias: jax.Array | None = None,
    dropout_rate: float = 0.0,
    dropout_rng: jax.Array | None = None,
    kernel_size: int = 3,
    num_kernels: int = 4,
    use_projections: bool = True,
    kernel: jax.Array | None = None,
    in_proj: jax.Array | None = None,
    out_proj: jax.Array | None = None,
) -> jax.Array:
    """Lightweight convolution: a depthwise conv with softmax-normalised kernels shared by groups.

    Args:
      x: [B, T, D].
      is_causal: left taps only (exact).
      kv_mask: [B, T] bool, True = real token; pads are zeroed before the convolution.
      q_segment_ids, kv_segment_ids: [B, T] int, packing; taps never cross segments (exact).
      bias: unsupported (raises).
      dropout_rate, dropout_rng: DropConnect on the normalised kernel [num_kernels, k].
      kernel_size: k, the taps per kernel (the paper uses 3 to 31 by layer).
      num_kernels: kernels shared across D / num_kernels channels each (the paper's H = 16).
      use_projections: apply the GLU input projection and the output projection.
      kernel: [num_kernels, k] pre-softmax kernel weights (declared).
      in_proj: [D, 2D] GLU input projection (declared when use_projections).
      out_proj: [D, D] output projection (declared when use_projections).

    Returns:
      [B, T, D] in x.dtype.
    """
    segment_ids = _check(
        LIGHT, x, num_kernels, kernel_size, kv_mask, q_segment_ids, kv_segment_ids, bias
    )
    use_dropout = core.check_dropout(LIGHT, dropout_rate, dropout_rng)
    if kernel is None:
        raise ValueError(f"{LIGHT}: kernel [num_kernels, kernel_size] is required")
    if kernel.shape != (num_kernels, kernel_size):
        raise ValueError(
            f"{LIGHT}: kernel must be {(num_kernels, kernel_size)}; got {kernel.shape}"
        )
    B, T, _ = x.shape
    u = _mask_input(_glu_in(x, in_proj, use_projections, LIGHT), kv_mask, segment_ids)
    weights = jax.nn.softmax(kernel.astype(jnp.float32), axis=-1)  # [h, k]
    if use_dropout:
        weights = core.dropout(weights, dropout_rate, dropout_rng)
    offsets = tap_offsets(kernel_size, is_causal)
    ok = tap_mask(B, T, offsets, kv_mask=kv_mask, segment_ids=segment_ids)
    c = banded_conv(u, weights[None, None], offsets, ok)  # [B, T, D]
    return _project_out(c, out_proj, use_projections, LIGHT).astype(x.dtype)


def dynconv_mixing(
    x: jax.Array,
    *,
    is_causal: bool = False,
    kv_mask: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    bias: jax.Array | None = None,
    dropout_rate: float = 0.0,
    dropout_rng: jax.Array | None = None,
    kernel_size: int = 3,
    num_kernels: int = 4,
    use_projections: bool = True,
    kernel_proj: jax.Array | None = None,
    kernel_bias: jax.Array | None = None,
    in_proj: jax.Array | None = None,
    out_proj: jax.Array | None = None,
) -> jax.Array:
    """Dynamic convolution: the lightweight convolution with a kernel predicted per position.

    W[b, t, h, :] = softmax_J(u[b, t] · kernel_proj[:, h, :] + kernel_bias[h, :]), then the
    same banded convolution as `lightconv_mixing` (see the module docstring).

    Args:
      x, is_causal, kv_mask, q_segment_ids, kv_segment_ids, bias, kernel_size, num_kernels,
        use_projections, in_proj, out_proj: as `lightconv_mixing`.
      dropout_rate, dropout_rng: DropConnect on the predicted kernels [B, T, num_kernels, k].
      kernel_proj: [D, num_kernels, k], the kernel predictor (declared).
      kernel_bias: [num_kernels, k], its bias (declared).

    Returns:
      [B, T, D] in x.dtype.
    """
    segment_ids = _check(
        DYNAMIC, x, num_kernels, kernel_size, kv_mask, q_segment_ids, kv_segment_ids, bias
    )
    use_dropout = core.check_dropout(DYNAMIC, dropout_rate, dropout_rng)
    if kernel_proj is None or kernel_bias is None:
        raise ValueError(f"{DYNAMIC}: kernel_proj and kernel_bias are required")
    B, T, D = x.shape
    if kernel_proj.shape != (D, num_kernels, kernel_size):
        raise ValueError(
            f"{DYNAMIC}: kernel_proj must be {(D, num_kernels, kernel_size)}; "
            f"got {kernel_proj.shape}"
        )
    u = _mask_input(_glu_in(x, in_proj, use_projections, DYNAMIC), kv_mask, segment_ids)
    logits = jnp.einsum("BTD,DhJ->BThJ", u, kernel_proj.astype(jnp.float32))
    weights = jax.nn.softmax(logits + kernel_bias.astype(jnp.float32), axis=-1)  # [B, T, h, k]
    if use_dropout:
        weights = core.dropout(weights, dropout_rate, dropout_rng)
    offsets = tap_offsets(kernel_size, is_causal)
    ok = tap_mask(B, T, offsets, kv_mask=kv_mask, segment_ids=segment_ids)
    c = banded_conv(u, weights, offsets, ok)  # [B, T, D]
    return _project_out(c, out_proj, use_projections, DYNAMIC).astype(x.dtype)


def _projection_specs(hparams: Mapping[str, Any], D: int) -> dict[str, core.ParamSpec]:
    if not hparams.get("use_projections", True):
        return {}
    init = jax.nn.initializers.lecun_normal()
    return {
        "in_proj": core.ParamSpec((D, 2 * D), init, ("embed", "mlp")),
        "out_proj": core.ParamSpec((D, D), init, ("mlp", "embed")),
    }


def lightconv_param_specs(
    hparams: Mapping[str, Any], *, num_heads: int, num_kv_heads: int, head_dim: int, kv_length: int
) -> dict[str, core.ParamSpec]:
    """kernel [num_kernels, k] (Xavier-uniform, as fairseq) and the two projections (D = head_dim)."""
    del num_heads, num_kv_heads, kv_length
    shape = (hparams.get("num_kernels", 4), hparams.get("kernel_size", 3))
    return {
        "kernel": core.ParamSpec(shape, jax.nn.initializers.xavier_uniform(), (None, None)),
        **_projection_specs(hparams, head_dim),
    }


def dynconv_param_specs(
    hparams: Mapping[str, Any], *, num_heads: int, num_kv_heads: int, head_dim: int, kv_length: int
) -> dict[str, core.ParamSpec]:
    """kernel_proj [D, num_kernels, k], kernel_bias [num_kernels, k] (zeros) and the projections."""
    del num_heads, num_kv_heads, kv_length
    shape = (hparams.get("num_kernels", 4), hparams.get("kernel_size", 3))
    predictor = jax.nn.initializers.variance_scaling(
        1.0, "fan_in", "normal", in_axis=0, out_axis=(1, 2)
    )
    return {
        "kernel_proj": core.ParamSpec((head_dim, *shape), predictor, ("embed", None, None)),
        "kernel_bias": core.ParamSpec(shape, jax.nn.initializers.zeros, (None, None)),
        **_projection_specs(hparams, head_dim),
    }
