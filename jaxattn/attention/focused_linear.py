"""Focused linear attention (FLatten): a sharpened ReLU feature map plus a depthwise conv on V.

Paper: Dongchen Han, Xuran Pan, Yizeng Han, Shiji Song, Gao Huang 2023, "FLatten Transformer:
Vision Transformer using Focused Linear Attention", https://arxiv.org/abs/2308.00442 (§4.1 focused
function, §4.2 rank restoration by depthwise convolution).

With s a learned per-channel scale ([K, H]; query head n uses kv head n // G's):

    r(x)   = (relu(x) + ε) / softplus(s)                            ε = 1e-6, as the authors' code
    f_p(x) = ‖r(x)‖ · r(x)^p / ‖r(x)^p‖                             elementwise power p
    out_t  = Σ_j f_p(q_t)·f_p(k_j) v_j / Σ_j f_p(q_t)·f_p(k_j)  +  DWC(V)_t   (per head)

f_p keeps the norm of r and sharpens its direction towards the largest channels (p = 1: plain
ReLU linear attention). The norms are per head (over the H channels). The authors' code takes
them over the whole token vector (all heads) and adds ε = 1e-6 to the normaliser; with several
heads the all-head focusing can leave a head with features near 1e-6, where that ε dominates (or
float32 underflows), so we keep the per-head form, where neither happens. The linear part runs
through linear.py (parallel sums, or the chunked scan for causal / packed inputs). The paper's DWC is a 2-D depthwise conv on the image grid;
here it is a 1-D depthwise conv over the token axis (kernel `conv_kernel_size`, one filter and
bias per channel of V), which needs no grid and so runs on every sequence model:

    DWC(V)_t = Σ_i w_i · v_(t+o_i) + b,   o_i = i − (k−1)//2 (centred), or i − (k−1) with is_causal

Positions outside the sequence, padded tokens (kv_mask) and tokens of another segment count as
zeros (zero padding before the conv), so a real output never reads a pad or another segment.

Shapes: query [B, T, N, H], key/value [B, T, K, H] -> [B, T, N, H]. Complexity: O(T·H²) time
(causal O(T·(C+H)·H)), O(H²) state per head, plus O(T·k·H) for the conv. Masks: causal (left-only
conv taps), key padding, packing (contiguous segments, exact), GQA. Refused: cross-attention
(DWC(V) lives on the key axis and is added to the query axis), bias (no logits), dropout (no
probabilities are formed).

Reference implementation: LeapLabTHU/FLatten-Transformer, models/flatten_swin.py,
FocusedLinearAttention, run beside ours in float64 on a fixed input (B=2, 16 tokens, one head of
16 channels, qkv = fixed projections, DWC / positional encoding zeroed, proj = identity, random
scale): max abs error 1.6e-6 (outputs up to 1.3; the rest is its normaliser ε). With several
heads the two differ by design (the all-head norms and ε above). Its DWC is 2-D on the window
grid and its kernel is shared by all heads; ours is 1-D per channel, so the conv was not
compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxattn import errors
from jaxattn.attention import core, linear

KIND = "focused_linear"
EPS = 1e-6  # the authors' code adds 1e-6 after the ReLU (no zero feature vectors)


def focused_linear_attention(
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
    focusing_factor: float = 3.0,
    conv_kernel_size: int = 5,
    chunk_size: int = 64,
    focus_scale: jax.Array | None = None,
    dwc_kernel: jax.Array | None = None,
    dwc_bias: jax.Array | None = None,
) -> jax.Array:
    """Focused linear attention plus a 1-D depthwise conv of V (module docstring).

    Args:
      query: [B, T, N, H].
      key, value: [B, T, K, H] (self-attention, S == T); K divides N (GQA/MQA).
      is_causal: query t sees keys s <= t and the conv uses left taps only.
      kv_mask: [B, T] bool, True = real token; pads are left out of the sums and are zeros
        for the conv.
      q_segment_ids, kv_segment_ids: packed contiguous segments: the scan resets per segment and
        the conv reads zeros outside the segment.
      bias: unsupported (raises): no T×S logits.
      scale: multiplies the queries before the map; None = 1 (f_p is nearly homogeneous, so a
        positive scale barely matters: the normalisation cancels it up to ε).
      dropout_rate, dropout_rng: unsupported for a rate > 0 (no probabilities are formed).
      focusing_factor: p, the elementwise power (paper: 3).
      conv_kernel_size: k, the conv's taps; 0 turns the DWC off (and declares no conv tensors).
      chunk_size: C of the causal / packed scan; the result does not depend on it.
      focus_scale: [K, H], the learned s (softplus(s) divides r; init 0 as in the authors' code);
        None means s = 0.
      dwc_kernel, dwc_bias: [K, H, k] and [K, H], the conv; None (both) means no conv.

    Returns:
      [B, T, N, H] in value.dtype.
    """
    if bias is not None:
        raise core.unsupported(KIND, "bias")
    core.reject_dropout(KIND, dropout_rate, "kernelised attention forms no probabilities")
    B, T, S, N, K, H = core.check_inputs(
        KIND,
        query,
        key,
        value,
        kv_mask=kv_mask,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
    )
    if T != S:
        raise core.unsupported(KIND, f"cross-attention (T={T} != S={S}): DWC(V) is per token")
    q_segment_ids, kv_segment_ids = core.resolve_segment_ids(
        KIND, q_segment_ids, kv_segment_ids, T, S
    )
    linear.check_chunk_size(KIND, chunk_size)
    _check_hparams(focusing_factor, conv_kernel_size)
    G = N // K
    kv_valid = jnp.ones((B, S), bool) if kv_mask is None else kv_mask.astype(bool)
    q = query.reshape(B, T, K, G, H).astype(jnp.float32)
    if scale is not None:
        q = q * scale
    s = jnp.zeros((K, H), jnp.float32) if focus_scale is None else focus_scale
    out = linear.feature_attention(
        focused_feature_map(q, s[:, None], focusing_factor),
        focused_feature_map(key, s, focusing_factor),
        value,
        kv_valid=kv_valid,
        is_causal=is_causal,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
        chunk_size=chunk_size,
    )  # [B, T, K, G, H]
    if conv_kernel_size and dwc_kernel is not None:
        conv = depthwise_conv(
            value,
            dwc_kernel,
            dwc_bias,
            kv_valid=kv_valid,
            segment_ids=q_segment_ids,
            is_causal=is_causal,
        )  # [B, T, K, H]
        out = out + conv[:, :, :, None]
    return out.reshape(B, T, N, H).astype(value.dtype)


def _check_hparams(focusing_factor: float, conv_kernel_size: int) -> None:
    if not focusing_factor > 0:
        raise errors.ConfigError(f"{KIND}: focusing_factor must be > 0; got {focusing_factor!r}")
    if not isinstance(conv_kernel_size, int) or conv_kernel_size < 0:
        raise errors.ConfigError(
            f"{KIND}: conv_kernel_size must be an int >= 0; got {conv_kernel_size!r}"
        )


def focused_feature_map(
    x: jax.Array, focus_scale: jax.Array, p: float, axes: tuple[int, ...] = (-1,)
) -> jax.Array:
    """f_p(x) = ‖r‖ · r^p / ‖r^p‖ with the norms over `axes`, r = (relu(x) + ε) / softplus(s),
    float32. The kind takes them per head (the last axis; module docstring).

    r^p / ‖r^p‖ is formed as (r / max r)^p / ‖(r / max r)^p‖ so large inputs do not overflow."""
    s = jax.nn.softplus(focus_scale.astype(jnp.float32))
    r = (jax.nn.relu(x.astype(jnp.float32)) + EPS) / s
    norm = jnp.sqrt(jnp.sum(r * r, axis=axes, keepdims=True))
    rp = (r / jnp.max(r, axis=axes, keepdims=True)) ** p  # largest entry 1: the norm is >= 1
    return norm * rp / jnp.sqrt(jnp.sum(rp * rp, axis=axes, keepdims=True))


def conv_offsets(conv_kernel_size: int, is_causal: bool) -> np.ndarray:
    """o_i: the token offset read by tap i (left-only taps when causal)."""
    i = np.arange(conv_kernel_size)
    return i - (conv_kernel_size - 1) if is_causal else i - (conv_kernel_size - 1) // 2


def depthwise_conv(
    value: jax.Array,
    kernel: jax.Array,
    bias: jax.Array | None,
    *,
    kv_valid: jax.Array,
    segment_ids: jax.Array | None,
    is_causal: bool,
) -> jax.Array:
    """Σ_i w_i · v_(t+o_i) + b per channel, [B, T, K, H] f32; v is zero outside the sequence, at
    pads and outside t's segment."""
    B, T, K, H = value.shape
    v = jnp.where(kv_valid[:, :, None, None], value.astype(jnp.float32), 0.0)
    seg = jnp.zeros((B, T), jnp.int32) if segment_ids is None else segment_ids
    out = jnp.zeros((B, T, K, H), jnp.float32)
    for i, o in enumerate(conv_offsets(kernel.shape[-1], is_causal)):
        o = int(o)
        shifted = jnp.roll(v, -o, axis=1)  # [B, T, K, H]: v_(t+o)
        seg_o = jnp.roll(seg, -o, axis=1)
        inside = (jnp.arange(T) + o >= 0) & (jnp.arange(T) + o < T)  # [T]
        keep = inside[None] & (seg_o == seg)  # [B, T]
        out = out + jnp.where(keep[:, :, None, None], shifted, 0.0) * kernel[:, :, i]
    return out if bias is None else out + bias.astype(jnp.float32)


def quadratic_focused_linear_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    *,
    is_causal: bool = False,
    kv_mask: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    scale: float | None = None,
    focusing_factor: float = 3.0,
    focus_scale: jax.Array | None = None,
    dwc_kernel: jax.Array | None = None,
    dwc_bias: jax.Array | None = None,
    **unused: Any,
) -> jax.Array:
    """The test reference, float32: the same features through the explicit T×S normalised
    kernel matrix, plus the conv as an explicit T×T banded matrix per channel
    (M[t, s] = w_i where s = t + o_i, s real and in t's segment). Returns [B, T, N, H]."""
    del unused
    B, T, N, H = query.shape
    K = key.shape[2]
    s = jnp.zeros((K, H), jnp.float32) if focus_scale is None else focus_scale
    q = query.reshape(B, T, K, N // K, H).astype(jnp.float32) * (1.0 if scale is None else scale)
    out = linear.quadratic_feature_attention(
        focused_feature_map(q, s[:, None], focusing_factor),
        focused_feature_map(key, s, focusing_factor),
        value,
        kv_valid=kv_mask,
        is_causal=is_causal,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
    )  # [B, T, K, G, H]
    if dwc_kernel is not None:
        offsets = conv_offsets(dwc_kernel.shape[-1], is_causal)
        delta = jnp.arange(T)[None, :] - jnp.arange(T)[:, None]  # [T, S]: s - t
        band = jnp.stack([delta == int(o) for o in offsets], axis=-1)  # [T, S, k]
        m = jnp.einsum("TSI,KHI->TSKH", band.astype(jnp.float32), dwc_kernel)  # [T, S, K, H]
        keep = core.make_keep_mask(
            T,
            T,
            kv_mask=kv_mask,
            q_segment_ids=q_segment_ids,
            kv_segment_ids=q_segment_ids if kv_segment_ids is None else kv_segment_ids,
        )
        keep = jnp.ones((1, T, T), bool) if keep is None else keep[:, 0]  # [B|1, T, S]
        m = jnp.where(keep[..., None, None], m[None], 0.0)  # [B|1, T, S, K, H]
        conv = jnp.einsum("BTSKH,BSKH->BTKH", m, value.astype(jnp.float32))
        if dwc_bias is not None:
            conv = conv + dwc_bias
        out = out + conv[:, :, :, None]
    return out.reshape(B, T, N, H)


def example_tensors(num_kv_heads: int, head_dim: int, conv_kernel_size: int) -> dict:
    """Fixed, non-trivial tensors (no rng) for tests that hold the kind to its reference."""
    K, H, k = num_kv_heads, head_dim, conv_kernel_size
    grid = jnp.arange(K * H * k, dtype=jnp.float32)
    return {
        "focus_scale": 0.7 * jnp.sin(grid[: K * H]).reshape(K, H),
        "dwc_kernel": 0.4 * jnp.cos(1.3 * grid).reshape(K, H, k),
        "dwc_bias": 0.1 * jnp.sin(2.1 * grid[: K * H]).reshape(K, H),
    }


def param_specs(
    hparams: Mapping[str, Any], *, num_heads: int, num_kv_heads: int, head_dim: int, kv_length: int
) -> dict[str, core.ParamSpec]:
    """focus_scale [K, H] (zeros, as the authors' code), and with conv_kernel_size k > 0 the
    conv: dwc_kernel [K, H, k] uniform(±1/sqrt(k)) (torch's depthwise Conv default) and dwc_bias
    [K, H] zeros."""
    del num_heads, kv_length
    k = hparams.get("conv_kernel_size", 5)
    _check_hparams(hparams.get("focusing_factor", 3.0), k)
    K, H = num_kv_heads, head_dim
    specs = {
        "focus_scale": core.ParamSpec((K, H), jax.nn.initializers.zeros, ("heads", "kv")),
    }
    if k:
        bound = k**-0.5

        def init_kernel(rng, shape, dtype=jnp.float32):
            return jax.random.uniform(rng, shape, dtype, -bound, bound)

        specs["dwc_kernel"] = core.ParamSpec((K, H, k), init_kernel, ("heads", "kv", None))
        specs["dwc_bias"] = core.ParamSpec((K, H), jax.nn.initializers.zeros, ("heads", "kv"))
    return specs
