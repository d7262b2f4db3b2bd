"""MRA-2: every block refined equals softmax, block size 1 equals softmax, a float64 numpy
transcription of the two-level equations (coarse blocks + refined blocks, one shared
normaliser) with padding, and refusals."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxattn import errors
from jaxattn.attention import mra, softmax
from tests.attention import battery_cases as cases

# Jitted once per shape and setting: eager vmapped calls compile op by op (seconds each).
_mra = jax.jit(mra.mra_attention, static_argnames=("block_size", "num_blocks_per_row"))
_softmax = jax.jit(softmax.softmax_attention)


def numpy_mra(q, k, v, valid, beta, num):
    """float64 per example and head; `valid` [B, S] marks real keys (and queries, T == S)."""
    B, T, N, H = q.shape
    S = k.shape[1]
    G = N // k.shape[2]
    nq, nk = -(-T // beta), -(-S // beta)
    out = np.zeros((B, T, N, H))
    for b in range(B):
        qv = valid[b] if T == S else np.ones(T, bool)
        kv = valid[b]
        for n in range(N):
            qn, kn, vn = q[b, :, n], k[b, :, n // G], v[b, :, n // G]
            qbar = np.array([qn[i * beta:(i + 1) * beta][qv[i * beta:(i + 1) * beta]].mean(0)
                             if qv[i * beta:(i + 1) * beta].any() else np.zeros(H) for i in range(nq)])  # fmt: skip
            kbar = np.array([kn[j * beta:(j + 1) * beta][kv[j * beta:(j + 1) * beta]].mean(0)
                             if kv[j * beta:(j + 1) * beta].any() else np.zeros(H) for j in range(nk)])  # fmt: skip
            coarse = qbar @ kbar.T / np.sqrt(H)
            ok = np.array([[qv[i * beta:(i + 1) * beta].any() and kv[j * beta:(j + 1) * beta].any()
                            for j in range(nk)] for i in range(nq)])  # fmt: skip
            best = np.where(ok, coarse, -np.inf).max(1, keepdims=True)  # the row's best block
            flat = np.where(ok, coarse - best, -np.inf).ravel()
            order = sorted(range(flat.size), key=lambda x: (-flat[x], x))[:num]
            refined = np.zeros(nq * nk, bool)
            refined[[x for x in order if np.isfinite(flat[x])]] = True
            refined = refined.reshape(nq, nk)
            for t in range(T):
                i = t // beta
                a = np.full(S, -np.inf)
                for s in np.flatnonzero(kv):
                    j = s // beta
                    if ok[i, j]:
                        a[s] = qn[t] @ kn[s] / np.sqrt(H) if refined[i, j] else coarse[i, j]
                if np.isfinite(a).any():
                    w = np.exp(a - a.max())
                    out[b, t, n] = w @ vn / w.sum()
    return out


def _f64(*xs):
    return (np.asarray(x, np.float64) for x in xs)


@pytest.mark.parametrize(
    ("T", "S", "beta", "num"), [(16, 16, 4, 5), (12, 12, 5, 2), (12, 10, 3, 4)]
)
def test_equals_numpy_equations_with_padding(T, S, beta, num):
    B, N, K, H = 2, 4, 2, 8
    q, k, v = cases.qkv(B, T, S, N, K, H, seed=T + beta)
    kv_mask = cases.padding_mask(B, S)
    per_row = -(-num // -(-T // beta))  # num = per_row * nq where it divides
    nq = -(-T // beta)
    out = _mra(q, k, v, kv_mask=kv_mask, block_size=beta, num_blocks_per_row=per_row)
    ref = numpy_mra(*_f64(q, k, v), np.asarray(kv_mask), beta, per_row * nq)
    rows = np.asarray(kv_mask) if T == S else np.ones((B, T), bool)
    err = np.max(np.abs(np.asarray(out)[rows] - ref[rows]))
    assert err < 1e-5, err  # measured 1.7e-7 to 3.7e-7


def test_all_blocks_refined_is_softmax():
    q, k, v = cases.qkv(2, 20, 20, 4, 2, 8, seed=1)
    kv_mask = cases.padding_mask(2, 20)
    out = _mra(q, k, v, kv_mask=kv_mask, block_size=6, num_blocks_per_row=4)
    ref = _softmax(q, k, v, kv_mask=kv_mask)
    cases.assert_close(cases.real_rows(out, kv_mask), cases.real_rows(ref, kv_mask), 1e-5, "all")


def test_block_size_one_is_softmax_even_with_no_refinement():
    q, k, v = cases.qkv(2, 12, 12, 4, 4, 8, seed=2)
    kv_mask = cases.padding_mask(2, 12)
    out = _mra(q, k, v, kv_mask=kv_mask, block_size=1, num_blocks_per_row=1)
    ref = _softmax(q, k, v, kv_mask=kv_mask)
    cases.assert_close(cases.real_rows(out, kv_mask), cases.real_rows(ref, kv_mask), 1e-5, "β=1")


def test_coarse_approximation_differs_but_stays_a_weighted_average():
    """Few refined blocks: not softmax, yet every output is a convex combination of values."""
    q, k, v = cases.qkv(1, 16, 16, 2, 2, 4, seed=3)
    v1 = v.at[...].set(1.0)
    out = _mra(q, k, v1, block_size=4, num_blocks_per_row=1)
    np.testing.assert_allclose(np.asarray(out), 1.0, atol=1e-6)
    out2 = _mra(q, k, v, block_size=4, num_blocks_per_row=1)
    assert float(np.max(np.abs(out2 - _softmax(q, k, v)))) > 1e-3


def test_refusals():
    q, k, v = cases.qkv(1, 8, 8, 2, 2, 4)
    ids = np.ones((1, 8), np.int32)
    for kwargs, flag in [
        ({"is_causal": True}, "is_causal"),
        ({"q_segment_ids": ids}, "segment_ids"),
        ({"bias": np.zeros((1, 2, 8, 8))}, "bias"),
        ({"dropout_rate": 0.1, "dropout_rng": jax.random.key(0)}, "dropout"),
    ]:
        with pytest.raises(errors.UnsupportedFeatureError, match=f"'mra'.*{flag}"):
            mra.mra_attention(q, k, v, **kwargs)
