"""Stochastically Subsampled self-Attention (SSA): in training each query attends to a random,
locality-biased subset of its keys; at evaluation it attends to all of them.

Hussain, Zaki, Subramanian 2023, "The Information Pathways Hypothesis: Transformers are Dynamic
Self-Ensembles", arXiv:2306.01705 (KDD 2023).

Per batch b, query head n (kv head n // G), query t and key s, with positions p(t), p(s) counted
from the start of their packed segment (plain positions when not packed):

    d        = |p(t) − p(s)|
    kept     = allowed(t, s) and (d <= local_window or u(b, n, p(t), p(s)) < keep_prob)   training
             = allowed(t, s)                                                             evaluation
    out[t]   = Σ_s softmax over kept s of (Q[t]·K[s]·scale + bias) · V[s]

u is a uniform draw from a counter-based hash of (rng, b, n, p(t), p(s)) (`sample_mask`): the
same rng gives the same subset, and a subset never depends on the inputs, on the sequence length
or on where a segment sits in a packed row, so every mask is honoured exactly and a packed row
equals its segments run alone. The softmax is renormalised over the kept keys (the paper's
subsampled attention); each far key survives with probability keep_prob, so about
(2·local_window + 1) + keep_prob·S keys per query are kept.

This module is the dense reference: it forms the [B, N, T, S] logits and masks them, so it saves
no compute (O(T·S·H)); the 4-8x saving of the paper needs a kernel that gathers the kept keys.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxattn import errors
from jaxattn.attention import core, local, softmax

KIND = "ssa"


def ssa_attention(
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
    keep_prob: float = 0.25,
    local_window: int = 8,
    rng: jax.Array | None = None,
    training: bool = False,
) -> jax.Array:
    """SSA: softmax attention over a random locality-biased key subset (training), dense (eval).

    Paper: Hussain et al. 2023, arXiv:2306.01705.

    Args:
      query: [B, T, N, H].
      key, value: [B, S, K, H]; K divides N (GQA/MQA). T != S is cross-attention (distances
        between query and key positions, both counted from 0).
      is_causal, kv_mask, q_segment_ids, kv_segment_ids: exact; the subset is drawn among the
        allowed keys only (the sample is ANDed with the mask), so no masked, future or other-
        segment key is ever kept.
      bias: additive logits bias broadcastable to [B, N, T, S].
      scale: logits scale, default 1/sqrt(H).
      dropout_rate, dropout_rng: attention-probability dropout on top of the subsampling, with
        softmax's keep mask `softmax.dropout_mask(dropout_rng, rate, B, N, T, S)`.
      keep_prob: the probability that a key farther than local_window is kept in training
        (1.0: dense, exactly softmax).
      local_window: keys with |p(t) − p(s)| <= local_window are always kept (the locality bias;
        it also keeps a query's own key, so a real row is never empty).
      rng: PRNG key of the subset (the layer passes a new one every training step,
        `AttentionSpec.needs_rng`); required when training with keep_prob < 1.
      training: passed by the layer (`AttentionSpec.needs_training`): True subsamples, False
        (evaluation, the default) attends densely, i.e. exactly softmax.

    Returns:
      [B, T, N, H] in value.dtype; a row with no kept key returns zeros.

    Masks: causal, key padding, packing, bias, GQA, cross-attention, dropout.

    Deviation: our sampler (a fixed local band plus independent Bernoulli(keep_prob) far keys)
    is a simple instance of the paper's "locality-biased" subsampling, chosen by us; the paper's
    samplers (per task, e.g. blocked windows for images and graphs) and its evaluation-time
    ensemble of subsampled passes are not reproduced, and no reference implementation was run.
    Evaluation is the paper's dense inference.
    """
    B, T, S, N, K, H = core.check_inputs(
        KIND,
        query,
        key,
        value,
        kv_mask=kv_mask,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
    )
    if not 0.0 < float(keep_prob) <= 1.0:
        raise errors.ConfigError(f"{KIND}: keep_prob must be in (0, 1]; got {keep_prob!r}")
    if not isinstance(local_window, int) or local_window < 0:
        raise errors.ConfigError(f"{KIND}: local_window must be an int >= 0; got {local_window!r}")
    q_ids, kv_ids = core.resolve_segment_ids(KIND, q_segment_ids, kv_segment_ids, T, S)
    use_dropout = core.check_dropout(KIND, dropout_rate, dropout_rng)
    G = N // K
    scale = core.default_scale(scale, H)

    q = query.reshape(B, T, K, G, H)
    logits = jnp.einsum("BTKGH,BSKH->BKGTS", q, key, preferred_element_type=jnp.float32) * scale
    if bias is not None:
        logits = logits + softmax._group_heads(jnp.asarray(bias, jnp.float32), K, G)
    keep = core.make_keep_mask(
        T, S, is_causal=is_causal, kv_mask=kv_mask, q_segment_ids=q_ids, kv_segment_ids=kv_ids
    )
    keep = jnp.ones((1, 1, T, S), bool) if keep is None else keep  # [B|1, 1, T, S]
    keep = jnp.broadcast_to(keep, (keep.shape[0], N, T, S))
    if training and float(keep_prob) < 1.0:
        if rng is None:
            raise ValueError(f"{KIND}: training with keep_prob < 1 needs rng (the layer's)")
        q_pos = jnp.arange(T)[None] if q_ids is None else local._run_positions(q_ids)  # [B|1, T]
        kv_pos = jnp.arange(S)[None] if kv_ids is None else local._run_positions(kv_ids)
        sampled = sample_mask(rng, B, N, q_pos, kv_pos, float(keep_prob), local_window)
        keep = keep & sampled  # [B, N, T, S]
    keep = keep.reshape(keep.shape[0], K, G, T, S)
    logits = jnp.where(keep, logits, core.MASK_VALUE)
    probs = jnp.where(keep, jax.nn.softmax(logits, axis=-1), 0.0)  # an empty row -> zeros
    if use_dropout:
        kept = softmax.dropout_mask(dropout_rng, dropout_rate, B, N, T, S).reshape(B, K, G, T, S)
        probs = core.apply_dropout(probs, kept, dropout_rate)
    out = jnp.einsum(
        "BKGTS,BSKH->BTKGH", probs.astype(value.dtype), value, preferred_element_type=jnp.float32
    )
    return out.reshape(B, T, N, H).astype(value.dtype)


def sample_mask(
    rng: jax.Array,
    B: int,
    N: int,
    q_pos: jax.Array,  # [B|1, T] int
    kv_pos: jax.Array,  # [B|1, S] int
    keep_prob: float,
    local_window: int,
) -> jax.Array:
    """bool [B, N, T, S]: the locality band |p(t) − p(s)| <= local_window, plus each other key
    with probability keep_prob, from a hash of (rng, b, n, p(t), p(s)) alone."""
    words = jax.random.key_data(rng) if jnp.issubdtype(rng.dtype, jax.dtypes.prng_key) else rng
    words = words.reshape(-1).astype(jnp.uint32)
    h = _mix32(words[0] ^ jnp.uint32(0x85EBCA6B))
    h = _mix32(h ^ words[-1])
    b = jnp.arange(B, dtype=jnp.uint32)[:, None, None, None]
    n = jnp.arange(N, dtype=jnp.uint32)[None, :, None, None]
    t = q_pos.astype(jnp.uint32)[:, None, :, None]
    s = kv_pos.astype(jnp.uint32)[:, None, None, :]
    for coordinate in (b, n, t, s):
        h = _mix32(h ^ _mix32(coordinate + jnp.uint32(0x9E3779B9)))
    uniform = (h >> 8).astype(jnp.float32) * (1.0 / (1 << 24))  # [B, N, T, S] in [0, 1)
    distance = jnp.abs(q_pos[:, None, :, None] - kv_pos[:, None, None, :])
    return (distance <= local_window) | (uniform < keep_prob)


def _mix32(x: jax.Array) -> jax.Array:
    # A 32-bit integer finaliser with full avalanche, as core.dropout_keep's.
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)
