"""Top-k attention: k = S is softmax, exactly min(k, allowed) non-zeros per row, ties keep the
earliest keys, a float64 numpy transcription of the rule, causal rows never select the future."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxattn.attention import softmax, topk
from tests.attention import battery_cases as cases


def numpy_topk(q, k, v, top_k, allowed):
    """float64, per example and head: softmax over the top_k allowed logits (ties: lower index)."""
    B, T, N, H = q.shape
    G = N // k.shape[2]
    out = np.zeros((B, T, N, H))
    for b in range(B):
        for n in range(N):
            logits = q[b, :, n] @ k[b, :, n // G].T / np.sqrt(H)  # [T, S]
            for t in range(T):
                cand = np.flatnonzero(allowed[b, t])
                if cand.size == 0:
                    continue
                order = sorted(cand, key=lambda s, row=logits[t]: (-row[s], s))[:top_k]
                w = np.exp(logits[t, order] - logits[t, order].max())
                out[b, t, n] = (w / w.sum()) @ v[b, order, n // G]
    return out


def test_equals_numpy_rule_with_causal_and_padding():
    B, T, N, K, H = 2, 12, 4, 2, 8
    q, k, v = cases.qkv(B, T, T, N, K, H, seed=0)
    kv_mask = cases.padding_mask(B, T)
    out = jax.jit(topk.topk_attention, static_argnames=("top_k", "is_causal"))(
        q, k, v, kv_mask=kv_mask, is_causal=True, top_k=3
    )
    allowed = np.tril(np.ones((T, T), bool))[None] & np.asarray(kv_mask)[:, None, :]
    ref = numpy_topk(*(np.asarray(x, np.float64) for x in (q, k, v)), 3, allowed)
    real = np.asarray(kv_mask)
    err = np.max(np.abs(np.asarray(out)[real] - ref[real]))
    assert err < 1e-5, err  # measured 2.2e-7


def test_k_equal_s_is_softmax():
    q, k, v = cases.qkv(2, 16, 16, 4, 2, 8, seed=1)
    kv_mask = cases.padding_mask(2, 16)
    out = topk.topk_attention(q, k, v, kv_mask=kv_mask, top_k=16)
    ref = softmax.softmax_attention(q, k, v, kv_mask=kv_mask)
    cases.assert_close(cases.real_rows(out, kv_mask), cases.real_rows(ref, kv_mask), 1e-6, "k=S")


def _probs(q, k, **kwargs):
    """The implied [B, T, S] probabilities of head 0: value = identity (H = S)."""
    B, S = k.shape[0], k.shape[1]
    v = jnp.broadcast_to(jnp.eye(S), (B, S, S))[:, :, None, :]
    return np.asarray(topk.topk_attention(q, k, v, scale=1.0, **kwargs))[:, :, 0]


def test_exactly_min_k_allowed_nonzeros_per_row():
    B, T, S = 2, 10, 10
    rng = np.random.default_rng(2)
    q = jnp.asarray(rng.normal(size=(B, T, 1, S)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(B, S, 1, S)), jnp.float32)
    kv_mask = cases.padding_mask(B, S)
    for top_k in (1, 3, 7):
        p = _probs(q, k, kv_mask=kv_mask, is_causal=True, top_k=top_k)
        allowed = np.tril(np.ones((T, S), bool))[None] & np.asarray(kv_mask)[:, None, :]
        nonzero = (p > 0).sum(-1)
        np.testing.assert_array_equal(nonzero, np.minimum(top_k, allowed.sum(-1)))
        assert not np.any(p[~allowed])  # never a masked or future key
        rows = allowed.any(-1)
        np.testing.assert_allclose(p.sum(-1)[rows], 1.0, atol=1e-6)


def test_ties_keep_the_earliest_keys():
    """All logits equal (zero queries): the k kept keys are the first k allowed ones."""
    B, T, S = 1, 6, 8
    q = jnp.zeros((B, T, 1, S))
    k = jnp.asarray(np.random.default_rng(3).normal(size=(B, S, 1, S)), jnp.float32)
    p = _probs(q, k, top_k=3)
    np.testing.assert_allclose(p[0, :, :3], 1 / 3, atol=1e-6)
    assert not np.any(p[0, :, 3:])
