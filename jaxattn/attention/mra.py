"""Multi-resolution analysis (MRA) attention: coarse block scores everywhere, full resolution on
the top blocks.

Zeng, Pal, Rao, Singh 2022, "Multi Resolution Analysis (MRA) for Approximate Self-Attention",
arXiv:2207.10284 (ICML 2022); this is the paper's two-level scheme (MRA-2).

Per batch b and query head n (kv head n // G), with blocks of β tokens (queries in block I, keys
in block J; T and S are padded up to multiples of β):

    Q̄[I] = mean of the real queries of block I,  K̄[J] = mean of the real keys of block J
    Ā[I, J] = Q̄[I]·K̄[J]·scale                               coarse scores, [T/β, S/β]
    R = the m = num_blocks_per_row·(T/β) blocks (I, J) with the largest
        Ā[I, J] − max_J' Ā[I, J']                                    refined blocks
    a[t, s] = Q[t]·K[s]·scale        if (block(t), block(s)) ∈ R         full resolution
            = Ā[block(t), block(s)]   otherwise                          coarse approximation
    out[t]  = Σ_s exp(a[t, s] − m_t) V[s] / Σ_s exp(a[t, s] − m_t)       over real keys s

with one shared m_t (the row maximum of a) for the stable exp, so refined and coarse entries are
normalised together. An unrefined block costs O(H) per query (Σ_{s∈J} V[s] is precomputed), a
refined one O(β·H): time O(T·(S/β)·H + m·β²·H) and memory O(T·S/β + m·β²) per (batch, head).
With every block refined (num_blocks_per_row >= S/β), or with β = 1 (coarse = fine), this is
exactly softmax.

Block selection is global over the (T/β)×(S/β) block matrix of each (batch, head), ranking each
coarse score relative to its block row's maximum, as in the authors' "full" approximation mode
(mlpen/mra-attention and Hugging Face's `mra2_attention`: torch.topk over the flattened
row-max-normalised low-resolution logits, `num_blocks = (T/32)·block_per_row`). Ties go to the
lower flat index (lax.top_k); the authors' "full" mode instead refines every block at or above
the k-th score (the same set unless scores tie exactly). Their `initial_prior_*` options (forcing
first or diagonal blocks) are not implemented (their defaults are 0).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxattn import errors
from jaxattn.attention import core

KIND = "mra"


def mra_attention(
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
    block_size: int = 32,
    num_blocks_per_row: int = 4,
) -> jax.Array:
    """MRA-2 attention: coarse block-mean scores, the top blocks refined at full resolution.

    Paper: Zeng et al. 2022, arXiv:2207.10284.

    Args:
      query: [B, T, N, H].
      key, value: [B, S, K, H]; K divides N (GQA/MQA). T != S is cross-attention.
      is_causal: unsupported. A coarse score Ā[I, J] averages the queries of block I, so a
        query's output would depend on the later queries of its block, and the block selection
        on every query: the paper defines no causal form.
      kv_mask: [B, S] bool, True = real key. Block means, block value sums and the fine level
        count real keys only; a block with no real key is never selected and adds nothing. For
        self-attention (T == S) the same mask marks the real queries, so padded queries do not
        enter the query block means either (cross-attention: every query is real).
      q_segment_ids, kv_segment_ids: unsupported (a block mean would mix packed segments).
      bias: unsupported (the coarse level has no per-entry logits to bias).
      scale: logits scale, default 1/sqrt(H).
      dropout_rate: must be 0 (UnsupportedFeatureError otherwise): the coarse level never forms
        per-entry probabilities (a whole block shares one weight) to drop, and the authors' code
        (Hugging Face port) defines an attention dropout but never applies it.
      block_size: β, the block length of both levels (β = 1 is softmax).
      num_blocks_per_row: m / (T/β), the refined blocks per query block on average (selected
        globally). >= S/β refines every block (softmax).

    Returns:
      [B, T, N, H] in value.dtype; a query row with no real key returns zeros.

    Reference implementation: the authors' mlpen/mra-attention runs custom CUDA kernels; not
    compared here (no GPU). tests/attention/mra_test.py holds this to a float64 numpy
    transcription of the equations above and to softmax in its two exact limits.
    """
    if is_causal:
        raise core.unsupported(KIND, "is_causal: coarse block means mix future queries")
    if q_segment_ids is not None or kv_segment_ids is not None:
        raise core.unsupported(KIND, "segment_ids (packing): block means would mix segments")
    if bias is not None:
        raise core.unsupported(KIND, "bias")
    core.reject_dropout(KIND, dropout_rate, "coarse blocks form no per-entry probabilities")
    B, T, S, N, K, H = core.check_inputs(KIND, query, key, value, kv_mask=kv_mask)
    for name, x in (("block_size", block_size), ("num_blocks_per_row", num_blocks_per_row)):
        if not isinstance(x, int) or x < 1:
            raise errors.ConfigError(f"{KIND}: {name} must be a positive int; got {x!r}")
    G = N // K
    scale = core.default_scale(scale, H)
    k_valid = jnp.ones((B, S), bool) if kv_mask is None else kv_mask.astype(bool)
    q_valid = k_valid if (kv_mask is not None and T == S) else jnp.ones((B, T), bool)

    beta = min(block_size, max(T, S))
    nq, nk = -(-T // beta), -(-S // beta)
    num = min(num_blocks_per_row * nq, nq * nk)
    q = _pad(query.astype(jnp.float32), nq * beta).reshape(B, nq, beta, K, G, H)
    k = _pad(key.astype(jnp.float32), nk * beta).reshape(B, nk, beta, K, H)
    v = _pad(value.astype(jnp.float32), nk * beta).reshape(B, nk, beta, K, H)
    qm = _pad(q_valid, nq * beta).reshape(B, nq, beta)
    km = _pad(k_valid, nk * beta).reshape(B, nk, beta)

    one = functools.partial(_mra_one_head, scale=scale, num=num)
    # vmap over batch, then kv heads, then query heads in the group (k, v shared across G).
    per_group = jax.vmap(one, in_axes=(2, None, None, None, None))  # q [nq, β, G, H] -> G
    per_kv = jax.vmap(per_group, in_axes=(2, 2, 2, None, None))  # K
    per_batch = jax.vmap(per_kv, in_axes=(0, 0, 0, 0, 0))  # B
    out = per_batch(q, k, v, qm, km)  # [B, K, G, nq, β, H]
    out = out.transpose(0, 3, 4, 1, 2, 5).reshape(B, nq * beta, N, H)[:, :T]
    return out.astype(value.dtype)


def _mra_one_head(q, k, v, qm, km, *, scale: float, num: int):
    """One (batch, head): q [nq, β, H], k, v [nk, β, H], qm [nq, β], km [nk, β] -> [nq, β, H]."""
    nq, beta, _ = q.shape
    nk = k.shape[0]
    q_cnt = qm.sum(-1)  # [nq]
    k_cnt = km.sum(-1)  # [nk]
    q_bar = jnp.einsum("IcH,Ic->IH", q, qm.astype(q.dtype)) / jnp.maximum(q_cnt, 1)[:, None]
    k_bar = jnp.einsum("JcH,Jc->JH", k, km.astype(k.dtype)) / jnp.maximum(k_cnt, 1)[:, None]
    v_sum = jnp.einsum("JcH,Jc->JH", v, km.astype(v.dtype))  # [nk, H] over real keys
    coarse = jnp.einsum("IH,JH->IJ", q_bar, k_bar) * scale  # [nq, nk]
    allowed = (q_cnt > 0)[:, None] & (k_cnt > 0)[None, :]  # [nq, nk]

    # The top `num` allowed blocks by coarse score minus its block row's maximum, as the authors'
    # code ranks them: every block row's best block comes first (score 0), so with num >= nq
    # each block row refines at least one block. A selected block that is not allowed is
    # dropped below.
    masked = jnp.where(allowed, coarse, core.MASK_VALUE)
    row_best = jnp.max(masked, axis=1, keepdims=True)  # [nq, 1]
    score = jnp.where(allowed, coarse - row_best, core.MASK_VALUE).reshape(-1)
    _, flat = jax.lax.top_k(jax.lax.stop_gradient(score), num)  # [m]
    rows, cols = flat // nk, flat % nk  # [m] block row I, block column J
    sel_ok = allowed.reshape(-1)[flat]  # [m]
    refined = jnp.zeros((nq * nk,), bool).at[flat].set(sel_ok).reshape(nq, nk)

    fine = jnp.einsum("mcH,mdH->mcd", q[rows], k[cols]) * scale  # [m, β, β]
    fine_ok = sel_ok[:, None, None] & km[cols][:, None, :]  # [m, 1, β]
    coarse_ok = allowed & ~refined  # [nq, nk]

    # The shared row maximum m_t over refined entries and coarse blocks (any finite value is
    # exact; this one keeps exp <= 1).
    fine_max = jnp.max(jnp.where(fine_ok, fine, core.MASK_VALUE), axis=-1)  # [m, β]
    row_max = jax.ops.segment_max(fine_max, rows, num_segments=nq)  # [nq, β]
    coarse_max = jnp.max(jnp.where(coarse_ok, coarse, core.MASK_VALUE), axis=-1)  # [nq]
    m_t = jax.lax.stop_gradient(jnp.maximum(row_max, coarse_max[:, None]))
    m_t = jnp.where(m_t > core.MASK_VALUE / 2, m_t, 0.0)  # a row with nothing to attend

    e_fine = jnp.where(fine_ok, jnp.exp(jnp.where(fine_ok, fine - m_t[rows][:, :, None], 0.0)), 0)
    num_fine = jax.ops.segment_sum(
        jnp.einsum("mcd,mdH->mcH", e_fine, v[cols]), rows, num_segments=nq
    )  # [nq, β, H]
    den_fine = jax.ops.segment_sum(e_fine.sum(-1), rows, num_segments=nq)  # [nq, β]
    arg = jnp.where(coarse_ok[:, None, :], coarse[:, None, :] - m_t[:, :, None], 0.0)
    e_coarse = jnp.where(coarse_ok[:, None, :], jnp.exp(arg), 0.0)  # [nq, β, nk]
    num_coarse = jnp.einsum("IcJ,JH->IcH", e_coarse, v_sum)
    den_coarse = jnp.einsum("IcJ,J->Ic", e_coarse, k_cnt.astype(jnp.float32))

    den = den_fine + den_coarse  # [nq, β]
    out = (num_fine + num_coarse) / jnp.where(den > 0, den, 1.0)[:, :, None]
    return jnp.where((den > 0)[:, :, None], out, 0.0)


def _pad(x: jax.Array, length: int) -> jax.Array:
    """Zero (False) pads axis 1 of x to `length`."""
    pad = [(0, 0)] * x.ndim
    pad[1] = (0, length - x.shape[1])
    return jnp.pad(x, pad)
