"""Linformer (Wang et al. 2020, https://arxiv.org/abs/2006.04768): low-rank projection of the keys
and values along the sequence axis.

    out = softmax(Q (E K)ᵀ · scale) (F V),   E, F ∈ R^(k×S_max) learned,

so attention is T×k instead of T×S. E and F are tensors the layer owns (`param_specs`), created
for the layer's key/value length S_max; a shorter input uses their first S columns, E[:, :S].

Einsum letters: the house shape letters (core.py) plus P, the k projected positions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxattn import errors
from jaxattn.attention import core

KIND = "linformer"
DEFAULT_NUM_PROJECTIONS = 256


def linformer_attention(
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
    num_projections: int = DEFAULT_NUM_PROJECTIONS,
    share_kv: bool = False,
    share_heads: bool = False,
    proj_key: jax.Array | None = None,
    proj_value: jax.Array | None = None,
) -> jax.Array:
    """Softmax attention over k learned projections of the S key/value positions.

    Paper: Wang et al. 2020, "Linformer: Self-Attention with Linear Complexity",
    https://arxiv.org/abs/2006.04768.

    Key padding: padded key/value rows are zeroed before projecting (as in the Nyströmformer
    authors' LRA code). This is the standard approximation, not an exact mask: what is in the
    padding never changes an output, but a projected key is a mix of positions, so the result
    still depends on how many positions there are, and zero-padded inputs of different lengths
    do not give the same output. A projected position that no real key reaches (its row of E is
    zero on every real position, e.g. an identity projection) is masked like a padded key; with
    k = S and E = F = I this makes the function exactly softmax attention, with or without
    padding.

    Args:
      query: [B, T, N, H].
      key, value: [B, S, K, H]; K divides N (GQA/MQA); S <= S_max, the length E was made for.
        T != S (cross-attention) is supported.
      is_causal: unsupported: each projected key mixes every position, future ones included.
      kv_mask: [B, S] bool, True = real key (see above).
      q_segment_ids, kv_segment_ids: unsupported (packing): the projection mixes segments.
      bias: unsupported (there is no T×S logits matrix).
      scale: logits scale, default 1/sqrt(H).
      dropout_rate, dropout_rng: attention-probability dropout on the T×k probabilities over
        the projected keys [B, K, G, T, k] (the paper's fairseq code drops these; the
        Nyströmformer authors' Linformer applies no attention dropout).
      num_projections: k.
      share_kv: one projection for keys and values (E = F), as in LRA-code and the Nyströmformer
        code; then only proj_key is passed.
      share_heads: one projection for every head ([k, S_max]), as in LRA-code; otherwise one per
        kv head ([K, k, S_max]), as in the paper and the Nyströmformer code.
      proj_key: E, [K, k, S_max] or [k, S_max] with share_heads (param_specs).
      proj_value: F, the same shape; absent with share_kv.

    Returns:
      [B, T, N, H] in value.dtype. If no projected position is reachable (no real key), zeros.

    Complexity per (batch, head): O(S·k·H + T·k·H) time, O(T·k + k·H) memory. Parameters
    2·k·S_max per kv head (k·S_max with share_kv, and not per head with share_heads).
    """
    if is_causal:
        raise core.unsupported(KIND, "is_causal=True")
    if q_segment_ids is not None or kv_segment_ids is not None:
        raise core.unsupported(KIND, "q_segment_ids/kv_segment_ids (packing)")
    if bias is not None:
        raise core.unsupported(KIND, "bias")
    B, T, S, N, K, H = core.check_inputs(KIND, query, key, value, kv_mask=kv_mask)
    _check_hparams(num_projections)
    core.check_dropout(KIND, dropout_rate, dropout_rng)
    if share_kv and proj_value is not None:
        raise ValueError(f"{KIND}: share_kv=True takes proj_key only; got proj_value as well")
    e = _projection(proj_key, "proj_key", num_projections, share_heads, K, S)  # [K, P, S]
    f = e if share_kv else _projection(proj_value, "proj_value", num_projections, share_heads, K, S)
    G = N // K
    scale = core.default_scale(scale, H)
    f32 = jnp.float32

    valid = jnp.ones((B, S), bool) if kv_mask is None else kv_mask.astype(bool)  # [B, S]
    rows = valid[:, :, None, None]
    k = jnp.where(rows, key, 0)  # zero padded rows so garbage there cannot leak in
    v = jnp.where(rows, value, 0)
    k_proj = jnp.einsum("KPS,BSKH->BPKH", e.astype(k.dtype), k, preferred_element_type=f32).astype(
        key.dtype
    )  # [B, P, K, H]
    v_proj = jnp.einsum("KPS,BSKH->BPKH", f.astype(v.dtype), v, preferred_element_type=f32).astype(
        value.dtype
    )  # [B, P, K, H]
    # A projected key no real position contributes to is masked.
    reached = jnp.einsum("KPS,BS->BKP", (e != 0).astype(f32), valid.astype(f32)) > 0  # [B, K, P]
    keep = reached[:, :, None, None, :]  # [B, K, 1, 1, P]

    q = query.reshape(B, T, K, G, H)
    logits = jnp.einsum("BTKGH,BPKH->BKGTP", q, k_proj, preferred_element_type=f32) * scale
    probs = jax.nn.softmax(jnp.where(keep, logits, core.MASK_VALUE), axis=-1)
    probs = jnp.where(keep, probs, 0.0)  # [B, K, G, T, P]; nothing reachable -> zeros
    probs = core.dropout(probs, dropout_rate, dropout_rng)
    out = jnp.einsum(
        "BKGTP,BPKH->BTKGH", probs.astype(value.dtype), v_proj, preferred_element_type=f32
    )
    return out.reshape(B, T, N, H).astype(value.dtype)


def param_specs(
    hparams: Mapping[str, Any], *, num_heads: int, num_kv_heads: int, head_dim: int, kv_length: int
) -> dict[str, core.ParamSpec]:
    """E (proj_key) and, unless share_kv, F (proj_value): [K, k, S_max] or [k, S_max].

    Initialised N(0, 1/S_max) (LeCun over the length axis, as LRA-code's Dense kernel; the
    Nyströmformer code's N(0, 0.02²) is the same at S_max = 2048), so a projected key has the
    scale of a key.
    """
    del num_heads, head_dim
    k = hparams.get("num_projections", DEFAULT_NUM_PROJECTIONS)
    _check_hparams(k)
    if hparams.get("share_heads", False):
        shape, axes = (k, kv_length), (None, None)
        init = jax.nn.initializers.variance_scaling(
            1.0, "fan_in", "normal", in_axis=-1, out_axis=-2
        )
    else:
        shape, axes = (num_kv_heads, k, kv_length), ("heads", None, None)
        init = jax.nn.initializers.variance_scaling(
            1.0, "fan_in", "normal", in_axis=-1, out_axis=-2, batch_axis=(0,)
        )
    names = ("proj_key",) if hparams.get("share_kv", False) else ("proj_key", "proj_value")
    return {name: core.ParamSpec(shape, init, axes) for name in names}


def _check_hparams(num_projections: int) -> None:
    if not isinstance(num_projections, int) or num_projections < 1:
        raise errors.ConfigError(
            f"{KIND}: num_projections must be a positive int; got {num_projections!r}"
        )


def _projection(
    proj: jax.Array | None, name: str, k: int, share_heads: bool, K: int, S: int
) -> jax.Array:
    """The projection as [K, k, S]: checked, sliced to the input length, broadcast over heads."""
    if proj is None:
        raise ValueError(
            f"{KIND}: {name} was not passed; the layer must create it from param_specs() and pass "
            f"{name}=[K, num_projections, S_max] (or [num_projections, S_max] with share_heads)"
        )
    expected = (k,) if share_heads else (K, k)
    if proj.shape[:-1] != expected:
        raise ValueError(
            f"{KIND}: {name} must be [{'' if share_heads else 'K, '}num_projections, S_max] = "
            f"{expected + ('S_max',)}; got {proj.shape}"
        )
    if proj.shape[-1] < S:
        raise ValueError(
            f"{KIND}: key/value length S={S} exceeds the length the projection was made for "
            f"(S_max={proj.shape[-1]}); build the layer with the longest input"
        )
    proj = proj[..., :S]
    return jnp.broadcast_to(proj, (K, k, S)) if share_heads else proj
