"""SSA: keep-probability 1 equals dense softmax exactly; the sampled subsets respect the causal,
padding and packing masks and keep the local band; the same rng gives the same subset (another
rng another); evaluation equals softmax; the kept fraction of far keys is about keep_prob."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn.attention import softmax, ssa
from tests.attention import battery_cases as cases

_ssa = jax.jit(
    ssa.ssa_attention, static_argnames=("is_causal", "keep_prob", "local_window", "training")
)
_softmax = jax.jit(softmax.softmax_attention, static_argnames=("is_causal",))


@pytest.mark.parametrize("is_causal", [False, True], ids=["bidirectional", "causal"])
def test_keep_prob_one_and_evaluation_equal_softmax_exactly(is_causal):
    q, k, v = cases.qkv(2, 16, 16, 4, 2, 8, seed=0)
    kv_mask = cases.padding_mask(2, 16)
    ref = _softmax(q, k, v, kv_mask=kv_mask, is_causal=is_causal)
    rng = jax.random.key(0)
    dense = _ssa(q, k, v, kv_mask=kv_mask, is_causal=is_causal, rng=rng, training=True,
                 keep_prob=1.0)  # fmt: skip
    evaluation = _ssa(q, k, v, kv_mask=kv_mask, is_causal=is_causal, rng=rng, keep_prob=0.3)
    np.testing.assert_array_equal(np.asarray(dense), np.asarray(ref))  # bit-identical
    np.testing.assert_array_equal(np.asarray(evaluation), np.asarray(ref))


@functools.partial(jax.jit, static_argnames=("keep_prob", "is_causal"))
def _subset(q, k, rng, kv_mask, q_segment_ids, keep_prob, is_causal):
    """The kept keys [B, N, T, S] as the weights of V = I (scale 0: uniform over the subset)."""
    B, S, K, _ = k.shape
    v = jnp.broadcast_to(jnp.eye(S)[None, :, None, :], (B, S, K, S))
    out = ssa.ssa_attention(q, k, v, kv_mask=kv_mask, q_segment_ids=q_segment_ids,
                            is_causal=is_causal, rng=rng, training=True, keep_prob=keep_prob,
                            local_window=1, scale=0.0)  # fmt: skip
    return out.transpose(0, 2, 1, 3) > 0


def test_sampled_subsets_respect_masks_and_keep_the_band():
    B, T, N = 2, 24, 2
    q, k, _ = cases.qkv(B, T, T, N, N, T, seed=1)
    kv_mask = cases.padding_mask(B, T)
    ids = np.zeros((B, T), np.int32)
    ids[:, :10], ids[:, 10:21] = 1, 2  # 21..23 padding (segment 0)
    ids = jnp.asarray(ids)
    kept = np.asarray(_subset(q, k, jax.random.key(3), kv_mask, ids, 0.3, True))
    tt, ss = np.meshgrid(np.arange(T), np.arange(T), indexing="ij")
    allowed = (
        (tt >= ss)[None]
        & np.asarray(kv_mask)[:, None, :]
        & (np.asarray(ids)[:, :, None] == np.asarray(ids)[:, None, :])
    )[:, None]  # [B, 1, T, S]
    real = (np.asarray(ids) > 0)[:, None, :, None]  # query rows of a segment (not padding)
    assert not np.any(kept & ~allowed & real), "a masked, future or other-segment key was sampled"
    band = allowed & real & (np.abs(tt - ss) <= 1)[None, None]
    assert np.all(kept[np.broadcast_to(band, kept.shape)]), "the local band is always kept"
    far = np.broadcast_to(allowed & real & (np.abs(tt - ss) > 1)[None, None], kept.shape)
    assert 0 < kept[far].mean() < 1  # a real subsample


def test_same_rng_same_subset_other_rng_other_and_rate():
    B, T, N = 2, 64, 2
    q, k, _ = cases.qkv(B, T, T, N, N, T, seed=2)
    full = jnp.ones((B, T), bool)
    a = np.asarray(_subset(q, k, jax.random.key(5), full, None, 0.25, False))
    b = np.asarray(_subset(q, k, jax.random.key(5), full, None, 0.25, False))
    c = np.asarray(_subset(q, k, jax.random.key(6), full, None, 0.25, False))
    np.testing.assert_array_equal(a, b)
    assert np.any(a != c)
    tt, ss = np.meshgrid(np.arange(T), np.arange(T), indexing="ij")
    far = np.broadcast_to((np.abs(tt - ss) > 1)[None, None], a.shape)
    assert abs(a[far].mean() - 0.25) < 0.02  # measured 0.254 over 15,624 far pairs
    # Independent of the inputs: other q, k give the same subset.
    q2, k2, _ = cases.qkv(B, T, T, N, N, T, seed=3)
    np.testing.assert_array_equal(
        a, np.asarray(_subset(q2, k2, jax.random.key(5), full, None, 0.25, False))
    )


def test_training_subsample_is_renormalised_softmax_over_the_subset():
    """The output equals softmax with the sampled subset as an extra key mask (per head)."""
    B, T, N, H = 1, 16, 2, 16  # H = S: _subset reads the subset through V = I
    q, k, v = cases.qkv(B, T, T, N, N, H, seed=4)
    rng = jax.random.key(7)
    out = _ssa(q, k, v, rng=rng, training=True, keep_prob=0.3, local_window=1)
    kept = np.asarray(_subset(q, k, rng, jnp.ones((B, T), bool), None, 0.3, False))
    for n in range(N):
        logits = np.einsum("TH,SH->TS", np.asarray(q[0, :, n], np.float64),
                           np.asarray(k[0, :, n], np.float64)) / np.sqrt(H)  # fmt: skip
        logits = np.where(kept[0, n], logits, -np.inf)
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        ref = p @ np.asarray(v[0, :, n], np.float64)
        np.testing.assert_allclose(np.asarray(out[0, :, n]), ref, atol=1e-5)
