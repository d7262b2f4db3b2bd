"""Transformer-VQ: softmax attention over vector-quantised keys, in linear time.

Lingle 2023, "Transformer-VQ: Linear-Time Transformers via Vector Quantization",
https://arxiv.org/abs/2309.16354; the author's JAX code is github.com/transformer-vq/transformer_vq
(src/transformer_vq/nn/attn.py VQAttention, nn/vq.py LearnableVQ).

Each key is replaced by the nearest of C codewords of a per-kv-head codebook c [K, C, H] (squared
Euclidean distance), with a straight-through gradient: k̂ = c[z] + (k − sg(k)), z = argmin_c ‖k − c‖².
Attention is ordinary softmax over the quantised keys,

    out[t] = Σ_s exp(scale·q_t·k̂_s)·v_s / Σ_s exp(scale·q_t·k̂_s),

but since k̂_s takes only C values, keys with the same code can be merged: with N_c the number of
keys of code c and U_c = Σ_(z_s = c) v_s, a sum over keys becomes a sum over codes with logits
scale·q·c_c + log N_c and values U_c / N_c (the paper's Theorem 3.7 / the code's aggregated cache).

Causal, O(T·(L + C)·H) (block length L): the sequence is cut into blocks of L; a query in block n
attends directly (exact, causal-masked) to the keys of blocks n − 1 and n, and through the
per-code counts and value sums of blocks 0 … n − 2, all in one softmax (the author's VQAttention
with agg_cache=True: xlcache = the previous block, aggcache = the older ones). This equals causal
softmax over the quantised keys exactly (up to float rounding). Bidirectional, O((T + S)·C·H): the
merged form over every key. Packed sequences and causal cross-attention (T != S) run the dense
O(T·S·H) form over the quantised keys (`dense_vq_attention`), which is exact.

Codebook (non-gradient state, `state_specs`): as in LearnableVQ, c = codebook_sum / max(count,
0.01), updated by an exponential moving average of the keys assigned to each code (k-means):

    codebook_sum ← γ·codebook_sum + (1 − γ)·Σ_(b, s: z = c) k_s,
    codebook_count ← γ·codebook_count + (1 − γ)·#{(b, s): z = c}         (γ = ema_decay)

summed over the global batch (the code scales its per-device sums by the device count, which is
the same), padded keys excluded. The kind returns (out, {'codebook_sum', 'codebook_count'}).

Differences from the author's code: (1) the commitment loss β·‖k − sg(c[z])‖² (c_beta = 1e-4) is
not computed: a kind cannot add a term to the trainer's loss (an attention function returns only
its output and state), so the keys get no pull towards their codes beyond the straight-through
gradient; (2) no Transformer-XL relative-position biases, no q/k layer norm, no output gate (those
belong to the author's layer, not the attention); (3) in the causal form the code part carries no
gradient to the keys (the code's aggregated cache uses sg(c) as well), while in the bidirectional
merged form each key gets the mean straight-through gradient of its code's members (the code
gradient is exact summed over a code); the dense form has the exact straight-through gradient.
The author's attention drops no attention weights (only sinusoids and residuals), so dropout is
refused. Compared with the author's nn/vq.py on a fixed input (B=3, S=32, K=2, H=8, C=10, padded
keys; its static LearnableVQ._get_codebook, get_shortcodes and get_codebook_ema_targets with
n_device = n_block_per_update = 1, run beside ours with chex stubbed): the codebook, the code of
every key and both EMA targets are identical (max difference 0). Its VQAttention was not run: it
is a Flax layer with the parts above fused in (projections, layer norms, XL biases); the tests
hold every attention path to dense softmax over the quantised keys instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxattn import errors
from jaxattn.attention import core

KIND = "transformer_vq"
COUNT_FLOOR = 0.01  # LearnableVQ._get_codebook: c_sum / clip(c_count, 0.01)


def transformer_vq_attention(
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
    num_codes: int = 512,
    block_size: int = 512,
    ema_decay: float = 0.99,
    codebook_sum: jax.Array | None = None,
    codebook_count: jax.Array | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Softmax attention over VQ-quantised keys (see the module docstring).

    Args:
      query: [B, T, N, H].
      key, value: [B, S, K, H]; K divides N (GQA/MQA; one codebook per kv head).
      is_causal: the block form (T == S, no packing): exact causal softmax over quantised keys.
      kv_mask: [B, S] bool, True = real key: padded keys are neither attended to, counted in the
        codes, nor used in the codebook update. A query with no real key gets 0.
      q_segment_ids, kv_segment_ids: packing, via the dense form (exact).
      bias: unsupported (raises): the merged and block forms have no per-pair logits.
      scale: logits multiplier, default 1/sqrt(H).
      dropout_rate, dropout_rng: unsupported for a rate > 0 (the author's attention has none).
      num_codes: C, the codebook size (state_specs; the codebook passed in decides).
      block_size: L, the causal block length.
      ema_decay: γ of the codebook EMA, in [0, 1]; 1 freezes the codebook.
      codebook_sum: [K, C, H] float32 state; codebook_count: [K, C] float32 state.

    Returns:
      (out [B, T, N, H] in value.dtype, {'codebook_sum': [K, C, H], 'codebook_count': [K, C]}).

    Masks: causal, key padding, packing (dense), GQA, cross-attention. No bias, no dropout.

    Complexity: causal O(T·(L + C)·N·H) time, O(T·(L + C) + (T/L)·C·H) memory; bidirectional
    O((T + S)·C·N·H) time, O((T + S)·C) memory; dense fallback O(T·S·N·H).
    """
    if bias is not None:
        raise core.unsupported(KIND, "bias: the merged and block forms have no per-pair logits")
    core.reject_dropout(KIND, dropout_rate, "the author's VQ attention drops no attention weights")
    _check_hparams(num_codes, block_size, ema_decay)
    B, T, S, N, K, H = core.check_inputs(
        KIND,
        query,
        key,
        value,
        kv_mask=kv_mask,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
    )
    if codebook_sum is None or codebook_count is None:
        raise ValueError(
            f"{KIND}: no codebook was passed; the layer must create codebook_sum and "
            "codebook_count from state_specs() and pass them in"
        )
    C = codebook_sum.shape[1]
    if codebook_sum.shape != (K, C, H) or codebook_count.shape != (K, C):
        raise ValueError(
            f"{KIND}: codebook_sum {codebook_sum.shape} / codebook_count {codebook_count.shape} "
            f"must be [K, C, H] / [K, C] with K={K}, H={H}"
        )
    q_ids, kv_ids = core.resolve_segment_ids(KIND, q_segment_ids, kv_segment_ids, T, S)
    scale = core.default_scale(scale, H)
    f32 = jnp.float32
    codebook = codebook_of(codebook_sum, codebook_count)  # [K, C, H], no gradient
    k = key.astype(f32)
    z = nearest_code(k, codebook)  # [B, S, K]
    real = jnp.ones((B, S), bool) if kv_mask is None else kv_mask.astype(bool)
    member = jax.nn.one_hot(z, C, dtype=f32) * real[:, :, None, None]  # [B, S, K, C]
    q = query.astype(f32).reshape(B, T, K, N // K, H)
    v = value.astype(f32)

    if q_ids is not None or (is_causal and T != S):
        k_hat = quantize(k, codebook, z)
        keep = core.make_keep_mask(
            T, S, is_causal=is_causal, kv_mask=kv_mask, q_segment_ids=q_ids, kv_segment_ids=kv_ids
        )
        out = _dense(q, k_hat, v, keep, scale)
    elif is_causal:
        out = _causal_blocks(q, k, v, codebook, member, real, z, scale, block_size)
    else:
        out = _merged(q, k, v, codebook, member, scale)
    new_state = ema_update(codebook_sum, codebook_count, k, member, ema_decay)
    return out.reshape(B, T, N, H).astype(value.dtype), new_state


def codebook_of(codebook_sum: jax.Array, codebook_count: jax.Array) -> jax.Array:
    """c = sum / max(count, 0.01), [K, C, H] float32, without gradient (LearnableVQ)."""
    c = (
        codebook_sum.astype(jnp.float32)
        / jnp.maximum(codebook_count.astype(jnp.float32), COUNT_FLOOR)[..., None]
    )
    return jax.lax.stop_gradient(c)


def nearest_code(k: jax.Array, codebook: jax.Array) -> jax.Array:
    """z = argmin_c ‖k − c‖², [B, S, K] int32 (ties: the lowest index)."""
    k = jax.lax.stop_gradient(k)
    hp = jax.lax.Precision.HIGHEST
    d2 = (
        jnp.sum(k * k, axis=-1)[..., None]
        - 2.0 * jnp.einsum("BSKH,KCH->BSKC", k, codebook, precision=hp)
        + jnp.sum(codebook * codebook, axis=-1)[None, None]
    )  # [B, S, K, C]
    return jnp.argmin(d2, axis=-1).astype(jnp.int32)


def quantize(k: jax.Array, codebook: jax.Array, z: jax.Array) -> jax.Array:
    """k̂ = c[z] + (k − sg(k)): the codeword's value, the identity's gradient. [B, S, K, H]."""
    K = codebook.shape[0]
    cz = codebook[jnp.arange(K)[None, None], z]  # [B, S, K, H]
    return cz + (k - jax.lax.stop_gradient(k))


def _dense(q, k_hat, v, keep, scale):
    """Softmax over the quantised keys, [B, T, K, G, H]; keep [B|1, 1, T, S] or None."""
    hp = jax.lax.Precision.HIGHEST
    logits = jnp.einsum("BTKGH,BSKH->BKGTS", q, k_hat, precision=hp) * scale
    if keep is not None:
        logits = jnp.where(keep[:, :, None], logits, core.MASK_VALUE)
    probs = jax.nn.softmax(logits, axis=-1)
    if keep is not None:
        probs = jnp.where(jnp.any(keep, axis=-1, keepdims=True)[:, :, None], probs, 0.0)
    return jnp.einsum("BKGTS,BSKH->BTKGH", probs, v, precision=hp)


def _log_counts(counts: jax.Array) -> jax.Array:
    """log N_c, MASK_VALUE where N_c = 0 (the code's get_agg_biases)."""
    return jnp.where(counts > 0, jnp.log(jnp.maximum(counts, 1.0)), core.MASK_VALUE)


def _merged(q, k, v, codebook, member, scale):
    """Bidirectional: one softmax over the C codes with logits scale·q·ĉ + log N_c and values
    U_c / N_c; ĉ = c + mean over the code's members of (k − sg(k)) (value c, the members' mean
    straight-through gradient). [B, T, K, G, H]."""
    hp = jax.lax.Precision.HIGHEST
    counts = jnp.sum(member, axis=1)  # [B, K, C]
    denom = jnp.maximum(counts, 1.0)[..., None]
    means = jnp.einsum("BSKC,BSKH->BKCH", member, v, precision=hp) / denom  # [B, K, C, H]
    st = jnp.einsum("BSKC,BSKH->BKCH", member, k - jax.lax.stop_gradient(k), precision=hp)
    c_hat = codebook[None] + st / denom  # [B, K, C, H]
    logits = jnp.einsum("BTKGH,BKCH->BKGTC", q, c_hat, precision=hp) * scale
    logits = logits + _log_counts(counts)[:, :, None, None]
    probs = jax.nn.softmax(logits, axis=-1)
    probs = jnp.where(jnp.any(counts > 0, axis=-1)[:, :, None, None, None], probs, 0.0)
    return jnp.einsum("BKGTC,BKCH->BTKGH", probs, means, precision=hp)


def _causal_blocks(q, k, v, codebook, member, real, z, scale, L):
    """Causal: blocks of L; block n attends directly to blocks n − 1 and n (causal mask) and to
    blocks 0 … n − 2 through per-code counts and value means. [B, T, K, G, H]."""
    B, T, K, G, H = q.shape
    L = min(L, T)
    nb = -(-T // L)
    pad = nb * L - T
    hp = jax.lax.Precision.HIGHEST

    def blocks(x):  # [B, T, ...] -> [B, nb, L, ...], zero-padded
        x = jnp.pad(x, [(0, 0), (0, pad)] + [(0, 0)] * (x.ndim - 2))
        return x.reshape((B, nb, L) + x.shape[2:])

    def with_previous(x):  # [B, nb, L, ...] -> [B, nb, 2L, ...]: block n − 1 then block n
        prev = jnp.pad(x, [(0, 0), (1, 0)] + [(0, 0)] * (x.ndim - 2))[:, :-1]
        return jnp.concatenate([prev, x], axis=2)

    qb = blocks(q)  # [B, nb, L, K, G, H]
    k_hat = blocks(quantize(k, codebook, z))  # [B, nb, L, K, H]
    vb, realb, mb = blocks(v), blocks(real), blocks(member)  # mb [B, nb, L, K, C]
    recent_k, recent_v, recent_real = (with_previous(x) for x in (k_hat, vb, realb))

    # Direct part: [B, nb, K, G, L (query i), 2L (key j)]; key j is at (n − 1)·L + j.
    direct = jnp.einsum("BnLKGH,BnJKH->BnKGLJ", qb, recent_k, precision=hp) * scale
    i, j = jnp.arange(L)[:, None], jnp.arange(2 * L)[None, :]
    keep = (j - L <= i)[None, None] & recent_real[:, :, None, :]  # [B, nb, L, 2L]
    keep = keep[:, :, None, None]  # [B, nb, 1, 1, L, 2L]
    direct = jnp.where(keep, direct, core.MASK_VALUE)

    # Code part: counts and value sums of blocks 0 … n − 2 (cumulative sums shifted by 2).
    counts = jnp.cumsum(jnp.sum(mb, axis=2), axis=1)  # [B, nb, K, C]
    sums = jnp.cumsum(jnp.einsum("BnLKC,BnLKH->BnKCH", mb, vb, precision=hp), axis=1)
    counts = jnp.pad(counts, [(0, 0), (2, 0), (0, 0), (0, 0)])[:, :nb]
    sums = jnp.pad(sums, [(0, 0), (2, 0), (0, 0), (0, 0), (0, 0)])[:, :nb]
    means = sums / jnp.maximum(counts, 1.0)[..., None]  # [B, nb, K, C, H]
    coded = jnp.einsum("BnLKGH,KCH->BnKGLC", qb, codebook, precision=hp) * scale
    coded = coded + _log_counts(counts)[:, :, :, None, None, :]

    # One softmax over [codes; 2L keys], shifted by the joint max.
    top = jax.lax.stop_gradient(jnp.maximum(jnp.max(direct, axis=-1), jnp.max(coded, axis=-1)))[
        ..., None
    ]
    a_direct = jnp.where(keep, jnp.exp(direct - top), 0.0)
    a_coded = jnp.exp(coded - top)  # codes with N_c = 0 underflow to 0
    d = jnp.sum(a_direct, axis=-1) + jnp.sum(a_coded, axis=-1)  # [B, nb, K, G, L]
    num = jnp.einsum("BnKGLJ,BnJKH->BnKGLH", a_direct, recent_v, precision=hp)
    num = num + jnp.einsum("BnKGLC,BnKCH->BnKGLH", a_coded, means, precision=hp)
    ok = (d > 0)[..., None]
    out = jnp.where(ok, num / jnp.where(ok, d[..., None], 1.0), 0.0)
    out = jnp.transpose(out, (0, 1, 4, 2, 3, 5)).reshape(B, nb * L, K, G, H)
    return out[:, :T]


def ema_update(
    codebook_sum: jax.Array,
    codebook_count: jax.Array,
    k: jax.Array,
    member: jax.Array,
    decay: float,
) -> dict[str, jax.Array]:
    """The codebook EMA (LearnableVQ.get_codebook_ema_targets): sum ← γ·sum + (1 − γ)·Σ k of the
    code's members, count ← γ·count + (1 − γ)·#members, over the whole batch, no gradient."""
    hp = jax.lax.Precision.HIGHEST
    k = jax.lax.stop_gradient(k)
    member = jax.lax.stop_gradient(member)
    batch_sum = jnp.einsum("BSKC,BSKH->KCH", member, k, precision=hp)
    batch_count = jnp.sum(member, axis=(0, 1))
    new_sum = decay * codebook_sum.astype(jnp.float32) + (1.0 - decay) * batch_sum
    new_count = decay * codebook_count.astype(jnp.float32) + (1.0 - decay) * batch_count
    return {
        "codebook_sum": jax.lax.stop_gradient(new_sum),
        "codebook_count": jax.lax.stop_gradient(new_count),
    }


def dense_vq_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    *,
    is_causal: bool = False,
    kv_mask: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    scale: float | None = None,
    codebook_sum: jax.Array | None = None,
    codebook_count: jax.Array | None = None,
) -> jax.Array:
    """Reference: plain dense softmax over the quantised keys (T×S logits), [B, T, N, H] f32."""
    B, T, N, H = query.shape
    S, K = key.shape[1], key.shape[2]
    codebook = codebook_of(codebook_sum, codebook_count)
    k = key.astype(jnp.float32)
    k_hat = quantize(k, codebook, nearest_code(k, codebook))
    q_ids, kv_ids = core.resolve_segment_ids(KIND, q_segment_ids, kv_segment_ids, T, S)
    keep = core.make_keep_mask(
        T, S, is_causal=is_causal, kv_mask=kv_mask, q_segment_ids=q_ids, kv_segment_ids=kv_ids
    )
    q = query.astype(jnp.float32).reshape(B, T, K, N // K, H)
    out = _dense(q, k_hat, value.astype(jnp.float32), keep, core.default_scale(scale, H))
    return out.reshape(B, T, N, H)


def state_specs(
    hparams: Mapping[str, Any], *, num_heads: int, num_kv_heads: int, head_dim: int, kv_length: int
) -> dict[str, core.ParamSpec]:
    """codebook_sum [K, C, H] (standard normal: codewords on the scale of unnormalised keys; the
    author's code uses a fan-in normal on layer-normed keys) and codebook_count [K, C] (ones, as
    LearnableVQ), one codebook per kv head."""
    del num_heads, kv_length
    C = hparams.get("num_codes", 512)
    _check_hparams(C, hparams.get("block_size", 512), hparams.get("ema_decay", 0.99))
    return {
        "codebook_sum": core.ParamSpec(
            (num_kv_heads, C, head_dim), jax.nn.initializers.normal(1.0), ("heads", None, "kv")
        ),
        "codebook_count": core.ParamSpec(
            (num_kv_heads, C), jax.nn.initializers.ones, ("heads", None)
        ),
    }


def _check_hparams(num_codes: int, block_size: int, ema_decay: float) -> None:
    if not isinstance(num_codes, int) or num_codes < 1:
        raise errors.ConfigError(f"{KIND}: num_codes must be a positive int; got {num_codes!r}")
    if not isinstance(block_size, int) or block_size < 1:
        raise errors.ConfigError(f"{KIND}: block_size must be a positive int; got {block_size!r}")
    if not 0.0 <= float(ema_decay) <= 1.0:
        raise errors.ConfigError(f"{KIND}: ema_decay must be in [0, 1]; got {ema_decay!r}")
