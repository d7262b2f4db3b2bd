"""Attention Free Transformer (AFT): per-channel weighted averages of the values, no dot products.

Zhai, Talbott, Srivastava, Huang, Goh, Zhang, Susskind 2021, "An Attention Free Transformer",
https://arxiv.org/abs/2105.14103 (§3). For every query position t and channel h (elementwise over
H), with w a learned [T_max, S_max] matrix of pair biases shared by all heads and channels:

    Y[t] = σ(Q[t]) ⊙ Σ_s exp(K[s] + w[t, s]) ⊙ V[s] / Σ_s exp(K[s] + w[t, s])

Variants (`mode`):
  'full'   w learned (declared parameter `pair_bias` [T_max, S_max]); O(T·S·H) time.
  'local'  w learned inside the band |t − s| < window and 0 outside (the paper's AFT-local: the
           outside keys still count, only their bias is fixed at 0); O(T·S·H) time here.
  'simple' w = 0: the weights are softmax_s(K) per channel, one [H] average per kv head shared by
           every query (O(S·H)); causal by a running-max prefix scan over s (O(T·H)).

AFT has no attention heads in the paper (one "head" of width D). Here it runs per head on the
layer's BTNH projections; w is shared by all heads. The weights depend on K, V and w only, so GQA
is cheap: the average is formed once per kv head and gated by σ(q) of each query head in its
group. `scale` is accepted (the layer always passes it) and unused: there are no dot products.

Numerics: float32. 'full'/'local' factor exp(K[s] + w[t, s]) = exp(w[t, s] − m_t)·exp(K[s] − m_h)
(m_t the row max of the kept w, m_h the per-channel max of the real keys), so the sums are two
[T, S] × [S, H] matmuls; this underflows only when a row's kept K + w spread exceeds ~87 (float32
exp), far outside trained ranges. With is_causal, m_h is taken over all real keys, later ones
included: a later key exceeding every earlier key of a channel by more than ~87 would underflow the
earlier rows of that channel to 0, so causality holds exactly only inside that range (a running
causal max would remove this; not done yet). 'simple' causal carries (max, numerator, denominator) through
`lax.associative_scan` (log-sum-exp merging): exact and stable. A query with no kept key returns 0.

No reference implementation was compared: the paper's code is not public (the authors' AFT was not
released); the tests hold every path to the paper's equation evaluated densely
(`dense_aft_attention`) and the simple mode to its closed form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxattn import errors
from jaxattn.attention import core

KIND = "aft"
MODES = ("simple", "full", "local")


def aft_attention(
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
    mode: str = "simple",
    window: int = 32,
    max_query_length: int | None = None,
    pair_bias: jax.Array | None = None,
) -> jax.Array:
    """AFT-simple / AFT-full / AFT-local (see the module docstring for the equations).

    Args:
      query: [B, T, N, H]; only σ(query) is used (the gate).
      key, value: [B, S, K, H]; K divides N (GQA/MQA: query head n uses kv head n // G).
      is_causal: s <= t only (top-left aligned). Exact in every mode.
      kv_mask: [B, S] bool, True = real key; padded keys get weight 0 (exact).
      q_segment_ids, kv_segment_ids: [B, T] / [B, S] packing: a query sees only its segment's keys,
        and w is indexed by the positions within the segment, so a packed segment equals the
        segment run alone (exact). Packed 'simple' runs the dense O(T·S·H) form.
      bias: unsupported (raises): w is AFT's own pair bias, shared by heads; a per-head additive
        bias would break the per-kv-head sums.
      scale: unused (AFT forms no dot products); accepted because the layer passes it.
      dropout_rate, dropout_rng: unsupported for a rate > 0: the paper uses no attention dropout
        and the linear-time forms never form per-(t, s) weights.
      mode: 'simple', 'full' or 'local'.
      window: AFT-local's band: w[t, s] is used where |t − s| < window (only for 'local').
      max_query_length: T_max of `pair_bias` (default S_max = the layer's kv_length).
      pair_bias: [T_max, S_max] the learned w ('full' and 'local'; param_specs).

    Returns:
      [B, T, N, H] in value.dtype.

    Masks: causal, key padding, packing, GQA, cross-attention. No bias, no dropout.

    Complexity: 'simple' O((T+S)·N·H) time and memory (causal: a prefix scan, O(T·H·log T)
    depth); 'full'/'local' O(T·S·(K·H + 1)) time, O(T·S + (T+S)·N·H) memory.
    """
    if bias is not None:
        raise core.unsupported(KIND, "bias: w is AFT's own pair bias (shared by all heads)")
    core.reject_dropout(KIND, dropout_rate, "AFT forms no attention probabilities to drop")
    _check_mode(mode, window)
    B, T, S, N, K, H = core.check_inputs(
        KIND,
        query,
        key,
        value,
        kv_mask=kv_mask,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
    )
    del scale
    q_ids, kv_ids = core.resolve_segment_ids(KIND, q_segment_ids, kv_segment_ids, T, S)
    G = N // K
    f32 = jnp.float32
    k, v = key.astype(f32), value.astype(f32)

    if mode == "simple" and q_ids is None and not is_causal:
        avg = _global_average(k, v, kv_mask)[:, None]  # [B, 1, K, H]
    elif mode == "simple" and q_ids is None and T == S:
        avg = _causal_average(k, v, kv_mask)  # [B, T, K, H]
    else:
        w = _pair_bias(mode, window, pair_bias, T, S, q_ids, kv_ids)  # [B|1, T, S] or None
        keep = core.make_keep_mask(
            T, S, is_causal=is_causal, kv_mask=kv_mask, q_segment_ids=q_ids, kv_segment_ids=kv_ids
        )  # [B|1, 1, T, S] or None
        keep = None if keep is None else keep[:, 0]
        avg = _factored_average(k, v, w, keep, kv_mask)  # [B, T, K, H]
    gate = jax.nn.sigmoid(query.astype(f32)).reshape(B, T, K, G, H)
    out = gate * avg[:, :, :, None, :]  # [B, T, K, G, H]
    return out.reshape(B, T, N, H).astype(value.dtype)


def _safe_divide(num: jax.Array, den: jax.Array) -> jax.Array:
    """num / den where den > 0, else 0 (no NaN in either branch's gradient)."""
    ok = den > 0
    return jnp.where(ok, num / jnp.where(ok, den, 1.0), 0.0)


def _key_max(k: jax.Array, kv_mask: jax.Array | None) -> jax.Array:
    """Per-channel max over the real keys, [B, 1, K, H]; 0 where an example has none."""
    if kv_mask is not None:
        k = jnp.where(kv_mask[:, :, None, None], k, core.MASK_VALUE)
    m = jnp.max(k, axis=1, keepdims=True)
    return jax.lax.stop_gradient(jnp.where(m > core.MASK_VALUE / 2, m, 0.0))


def _global_average(k: jax.Array, v: jax.Array, kv_mask: jax.Array | None) -> jax.Array:
    """AFT-simple, bidirectional: Σ_s softmax_s(K)·V per channel, [B, K, H]."""
    ek = jnp.exp(k - _key_max(k, kv_mask))  # [B, S, K, H]
    if kv_mask is not None:
        ek = jnp.where(kv_mask[:, :, None, None], ek, 0.0)
    return _safe_divide(jnp.sum(ek * v, axis=1), jnp.sum(ek, axis=1))


def _causal_average(k: jax.Array, v: jax.Array, kv_mask: jax.Array | None) -> jax.Array:
    """AFT-simple, causal: the running softmax-weighted mean of V over s <= t, [B, T, K, H].

    Each key is an element (m, n, d) = (k, v, 1) (padded keys: (MASK_VALUE, 0, 0)) merged by
    (m, n, d) ⊕ (m', n', d') = (M, n·e^(m−M) + n'·e^(m'−M), d·e^(m−M) + d'·e^(m'−M)), M = max(m, m'):
    associative, so an inclusive prefix scan gives Σ_(s<=t) e^(k_s − M_t)·v_s and the denominator.
    """
    real = jnp.ones(k.shape[:2], bool) if kv_mask is None else kv_mask.astype(bool)
    real = real[:, :, None, None]
    m = jnp.where(real, k, core.MASK_VALUE)
    n = jnp.where(real, v, 0.0)
    d = real.astype(jnp.float32) * jnp.ones_like(k)

    def merge(a, b):
        (ma, na, da), (mb, nb, db) = a, b
        mx = jnp.maximum(ma, mb)
        ea, eb = jnp.exp(ma - mx), jnp.exp(mb - mx)
        return mx, na * ea + nb * eb, da * ea + db * eb

    _, num, den = jax.lax.associative_scan(merge, (m, n, d), axis=1)
    return _safe_divide(num, den)


def _pair_bias(
    mode: str,
    window: int,
    pair_bias: jax.Array | None,
    T: int,
    S: int,
    q_ids: jax.Array | None,
    kv_ids: jax.Array | None,
) -> jax.Array | None:
    """w for the kept pairs, [B|1, T, S] float32 (None for 'simple'), indexed by the positions
    within each segment when packed."""
    if mode == "simple":
        return None
    if pair_bias is None:
        raise ValueError(
            f"{KIND}: mode='{mode}' needs pair_bias [T_max, S_max]; the layer creates it from "
            "param_specs()"
        )
    t_max, s_max = pair_bias.shape
    if t_max < T or s_max < S:
        raise ValueError(
            f"{KIND}: pair_bias {pair_bias.shape} is smaller than the inputs (T={T}, S={S}); "
            "raise max_query_length or the layer's kv_length"
        )
    w = pair_bias.astype(jnp.float32)
    if q_ids is None:
        tpos, spos = jnp.arange(T)[None], jnp.arange(S)[None]  # [1, T], [1, S]
    else:
        tpos, spos = _position_in_segment(q_ids), _position_in_segment(kv_ids)  # [B, T], [B, S]
    w = w[tpos[:, :, None], spos[:, None, :]]  # [B|1, T, S]
    if mode == "local":
        near = jnp.abs(tpos[:, :, None] - spos[:, None, :]) < window
        w = jnp.where(near, w, 0.0)
    return w


def _position_in_segment(ids: jax.Array) -> jax.Array:
    """Position of each token within its (contiguous) segment, [B, L] int32."""
    L = ids.shape[1]
    idx = jnp.arange(L)
    start = jnp.concatenate([jnp.ones_like(ids[:, :1], bool), ids[:, 1:] != ids[:, :-1]], axis=1)
    first = jax.lax.cummax(jnp.where(start, idx[None], 0), axis=1)
    return idx[None] - first


def _factored_average(
    k: jax.Array,
    v: jax.Array,
    w: jax.Array | None,
    keep: jax.Array | None,
    kv_mask: jax.Array | None,
) -> jax.Array:
    """Σ_s exp(K[s] + w[t, s])·V[s] / Σ_s exp(K[s] + w[t, s]) over kept pairs, [B, T, K, H]."""
    B, S = k.shape[:2]
    if w is None:
        w = jnp.zeros((1, keep.shape[-2], S), jnp.float32)
    masked = w if keep is None else jnp.where(keep, w, core.MASK_VALUE)
    row_max = jax.lax.stop_gradient(jnp.max(masked, axis=-1, keepdims=True))  # [B|1, T, 1]
    ew = jnp.exp(masked - row_max)  # [B|1, T, S]; masked pairs underflow to 0
    if keep is not None:
        ew = jnp.where(keep, ew, 0.0)
    ek = jnp.exp(k - _key_max(k, kv_mask))  # [B, S, K, H]
    if kv_mask is not None:
        ek = jnp.where(kv_mask[:, :, None, None], ek, 0.0)
    ew = jnp.broadcast_to(ew, (B,) + ew.shape[1:])
    hp = jax.lax.Precision.HIGHEST
    num = jnp.einsum("BTS,BSKH->BTKH", ew, ek * v, precision=hp)
    den = jnp.einsum("BTS,BSKH->BTKH", ew, ek, precision=hp)
    return _safe_divide(num, den)


def dense_aft_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    *,
    is_causal: bool = False,
    kv_mask: jax.Array | None = None,
    pair_bias: jax.Array | None = None,
    window: int | None = None,
) -> jax.Array:
    """The paper's equation evaluated densely, for tests: logits K[s] + w[t, s] per (t, s, channel)
    as a [B, T, S, K, H] tensor, a softmax over s, the weighted sum of V, gated by σ(Q); w = 0
    without pair_bias, w outside |t − s| < window set to 0 with window. Returns [B, T, N, H] f32;
    a query without kept keys gives 0."""
    B, T, N, H = query.shape
    _, S, K, _ = key.shape
    f32 = jnp.float32
    w = jnp.zeros((T, S), f32) if pair_bias is None else pair_bias[:T, :S].astype(f32)
    if window is not None:
        w = jnp.where(jnp.abs(jnp.arange(T)[:, None] - jnp.arange(S)[None]) < window, w, 0.0)
    logits = key.astype(f32)[:, None] + w[None, :, :, None, None]  # [B, T, S, K, H]
    keep = core.make_keep_mask(T, S, is_causal=is_causal, kv_mask=kv_mask)
    keep = jnp.ones((1, 1, T, S), bool) if keep is None else keep
    keep = keep[:, 0, :, :, None, None]  # [B|1, T, S, 1, 1]
    probs = jax.nn.softmax(jnp.where(keep, logits, core.MASK_VALUE), axis=2)
    avg = jnp.einsum("BTSKH,BSKH->BTKH", probs, value.astype(f32))
    avg = jnp.where(jnp.any(keep, axis=2), avg, 0.0)
    gate = jax.nn.sigmoid(query.astype(f32)).reshape(B, T, K, N // K, H)
    return (gate * avg[:, :, :, None]).reshape(B, T, N, H)


def param_specs(
    hparams: Mapping[str, Any], *, num_heads: int, num_kv_heads: int, head_dim: int, kv_length: int
) -> dict[str, core.ParamSpec]:
    """'full'/'local': w [T_max, S_max] (T_max = max_query_length or kv_length), Glorot-uniform
    (the paper states no initialiser); 'simple': nothing."""
    del num_heads, num_kv_heads, head_dim
    mode = hparams.get("mode", "simple")
    _check_mode(mode, hparams.get("window", 32))
    if mode == "simple":
        return {}
    t_max = hparams.get("max_query_length") or kv_length
    init = jax.nn.initializers.glorot_uniform()
    return {"pair_bias": core.ParamSpec((t_max, kv_length), init, (None, None))}


def _check_mode(mode: str, window: int) -> None:
    if mode not in MODES:
        raise errors.ConfigError(f"{KIND}: mode must be one of {MODES}; got {mode!r}")
    if not isinstance(window, int) or window < 1:
        raise errors.ConfigError(f"{KIND}: window must be a positive int; got {window!r}")
