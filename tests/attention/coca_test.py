"""CoCA: the factorised features equal the paper's per-pair construction (k_ij = t_j ⊙ q_i, then
RoPE); for fixed content the scores depend only on i − j; packed positions restart per segment."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxattn.attention import coca
from tests.attention import battery_cases as cases

_coca = jax.jit(coca.coca_attention, static_argnames=("is_causal", "rope_base"))
_naive = jax.jit(coca.naive_coca_attention, static_argnames=("is_causal", "rope_base"))


def test_equals_the_naive_per_pair_construction():
    B, T, N, K, H = 2, 12, 4, 2, 8
    q, k, v = cases.qkv(B, T, T, N, K, H, seed=0)
    kv_mask = cases.padding_mask(B, T)
    for masks in ({}, {"is_causal": True}, {"kv_mask": kv_mask}):
        out = _coca(q, k, v, rope_base=100.0, **masks)
        ref = _naive(q, k, v, rope_base=100.0, **masks)
        cases.assert_close(out, ref, 1e-5, str(list(masks)))  # measured 4.8e-7


def test_scores_depend_only_on_the_offset():
    """The same query content at position i and key content at j: the score is a function of
    i − j (shifting both positions by p changes nothing), and it does change with i − j."""
    q, k, _ = cases.qkv(1, 1, 1, 1, 1, 16, seed=1)
    scores = {}
    for i in range(0, 40, 3):
        for j in range(0, 40, 5):
            qf, kf = coca.coca_features(
                q, k, jnp.asarray([[i]]), jnp.asarray([[j]]), rope_base=50.0
            )
            scores[i, j] = float(jnp.sum(qf * kf))
    by_offset = {}
    for (i, j), s in scores.items():
        by_offset.setdefault(i - j, []).append(s)
    spread = max(max(v) - min(v) for v in by_offset.values())
    assert spread < 1e-4, spread  # measured ~1e-5 (float32 angles up to 40 rad)
    assert np.ptp([v[0] for v in by_offset.values()]) > 1e-2


def test_packed_segments_restart_their_positions():
    B, T, N, H = 1, 14, 2, 8
    q, k, v = cases.qkv(B, T, T, N, N, H, seed=2)
    ids = jnp.asarray([[1] * 6 + [2] * 5 + [3] * 3], jnp.int32)
    np.testing.assert_array_equal(
        coca.segment_positions(ids)[0], [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 0, 1, 2]
    )
    out = _coca(q, k, v, q_segment_ids=ids, is_causal=True)
    for a, b in ((0, 6), (6, 11), (11, 14)):
        alone = _naive(q[:, a:b], k[:, a:b], v[:, a:b], is_causal=True)
        cases.assert_close(out[:, a:b], alone, 1e-5, f"segment [{a}, {b})")


def test_keys_are_non_negative_multiples_of_the_query_per_plane():
    """t >= 0: a key whose two halves average to negative values contributes 0 in that plane."""
    q = jnp.ones((1, 1, 1, 4))
    k = jnp.asarray([[[[-1.0, 2.0, -1.0, 0.0]]]])  # plane 0: mean -1 -> t = 0; plane 1: t = 1
    qf, kf = coca.coca_features(q, k, jnp.zeros((1, 1), int), jnp.zeros((1, 1), int))
    np.testing.assert_allclose(np.asarray(kf)[0, 0, 0], [0.0, 1.0, 0.0, 0.0])
    assert float(jnp.sum(qf * kf)) == 2.0  # |q_1|² · t_1 = 2
