"""Combiner-Fixed: with V = I the output is the implied T×T matrix: rows sum to 1, every allowed
entry is > 0 (full support) and equals the paper's factorisation (float64 numpy), masked and
future entries are 0; one span covering everything equals softmax; learned summaries."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors
from jaxattn.attention import combiner, softmax
from tests.attention import battery_cases as cases

_combiner = jax.jit(combiner.combiner_attention, static_argnames=("is_causal", "span_size", "summary"))  # fmt: skip
_softmax = jax.jit(softmax.softmax_attention, static_argnames=("is_causal",))


def _implied(q, k, **kwargs):
    """The implied [B, N, T, S] matrix: value = identity (H = S = T)."""
    B, S, K, _ = k.shape
    v = jnp.broadcast_to(jnp.eye(S)[None, :, None, :], (B, S, K, S))
    return np.asarray(_combiner(q, k, v, **kwargs)).transpose(0, 2, 1, 3)


def numpy_implied(q, k, r, valid, is_causal, wq=None):
    """float64: the paper's p(s|t) = direct softmax mass, or p(span|t)·q(s|span)."""
    B, T, N, H = q.shape
    G = N // k.shape[2]
    P = np.zeros((B, N, T, T))
    for b in range(B):
        for n in range(N):
            qn, kn = q[b, :, n], k[b, :, n // G]
            spans = [np.arange(j, min(j + r, T)) for j in range(0, T, r)]
            qs = []  # within-span distributions over real keys
            for sp in spans:
                real = sp[valid[b, sp]]
                wt = np.zeros(0) if wq is None else kn[real] @ wq[n // G]
                e = np.ones(len(real)) if wq is None else np.exp(wt - wt.max(initial=0))
                qs.append((real, e / e.sum() if len(real) else e))
            for t in range(T):
                u = t // r
                slots, weights = [], []
                for s in spans[u]:
                    if valid[b, s] and (s <= t or not is_causal):
                        slots.append(("d", s))
                        weights.append(qn[t] @ kn[s] / np.sqrt(H))
                for j, (real, dist) in enumerate(qs):
                    if j != u and len(real) and (j < u or not is_causal):
                        slots.append(("r", j))
                        weights.append(qn[t] @ (dist @ kn[real]) / np.sqrt(H))
                if not slots:
                    continue
                p = np.exp(np.array(weights) - max(weights))
                p /= p.sum()
                for (what, x), pw in zip(slots, p, strict=True):
                    if what == "d":
                        P[b, n, t, x] += pw
                    else:
                        real, dist = qs[x]
                        P[b, n, t, real] += pw * dist
    return P


@pytest.mark.parametrize("is_causal", [False, True], ids=["bidirectional", "causal"])
def test_implied_matrix_full_support_and_equations(is_causal):
    B, T, N, K = 2, 12, 4, 2
    q, k, _ = cases.qkv(B, T, T, N, K, T, seed=0)
    kv_mask = cases.padding_mask(B, T)
    P = _implied(q, k, kv_mask=kv_mask, is_causal=is_causal, span_size=4)
    valid = np.asarray(kv_mask)
    allowed = valid[:, None, None, :] & (np.tril(np.ones((T, T), bool)) if is_causal else True)
    real_rows = valid[:, None, :]  # [B, 1, T]
    np.testing.assert_allclose(P.sum(-1)[np.broadcast_to(real_rows, P.shape[:3])], 1.0, atol=1e-5)
    rows = np.broadcast_to(real_rows[..., None], P.shape)
    allowed = np.broadcast_to(allowed, P.shape)
    assert np.all(P[rows & allowed] > 0), "full support: every allowed key has weight"
    assert not np.any(P[~allowed]), "masked or future keys have weight"
    ref = numpy_implied(*(np.asarray(x, np.float64) for x in (q, k)), 4, valid, is_causal)
    err = np.max(np.abs(np.where(rows, P - ref, 0)))
    assert err < 1e-5, err  # measured 8.0e-8 (causal 6.6e-8)


def test_one_span_covering_everything_is_softmax():
    q, k, v = cases.qkv(2, 16, 16, 4, 2, 8, seed=1)
    kv_mask = cases.padding_mask(2, 16)
    for is_causal in (False, True):
        out = _combiner(q, k, v, kv_mask=kv_mask, is_causal=is_causal, span_size=16)
        ref = _softmax(q, k, v, kv_mask=kv_mask, is_causal=is_causal)
        cases.assert_close(
            cases.real_rows(out, kv_mask), cases.real_rows(ref, kv_mask), 1e-6, "one span"
        )


def test_learned_summaries():
    """w = 0 is the mean summary; a non-zero w weights each span's keys by softmax(w·k)."""
    B, T, N, K = 1, 12, 2, 2
    q, k, _ = cases.qkv(B, T, T, N, K, T, seed=2)
    zero = jnp.zeros((K, T))
    mean = _implied(q, k, span_size=3)
    learned0 = _implied(q, k, span_size=3, summary="learned", summary_query=zero)
    np.testing.assert_allclose(learned0, mean, atol=1e-6)
    wq = np.random.default_rng(3).normal(size=(K, T))
    P = _implied(q, k, span_size=3, summary="learned", summary_query=jnp.asarray(wq, jnp.float32))
    ref = numpy_implied(*(np.asarray(x, np.float64) for x in (q, k)), 3, np.ones((B, T), bool),
                        False, wq)  # fmt: skip
    np.testing.assert_allclose(P, ref, atol=1e-5)


def test_refusals_and_param_specs():
    q, k, v = cases.qkv(1, 8, 8, 2, 2, 4)
    with pytest.raises(errors.UnsupportedFeatureError, match="'combiner'.*segment_ids"):
        combiner.combiner_attention(q, k, v, q_segment_ids=jnp.ones((1, 8), jnp.int32))
    with pytest.raises(errors.UnsupportedFeatureError, match="'combiner'.*bias"):
        combiner.combiner_attention(q, k, v, bias=jnp.zeros((1, 2, 8, 8)))
    specs = combiner.param_specs(
        {"summary": "learned"}, num_heads=2, num_kv_heads=1, head_dim=4, kv_length=8
    )
    assert specs["summary_query"].shape == (1, 4)
    assert combiner.param_specs({}, num_heads=2, num_kv_heads=1, head_dim=4, kv_length=8) == {}
