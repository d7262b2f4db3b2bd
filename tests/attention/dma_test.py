"""DMA: with w >= S and A = 0 it is (causal) softmax; each row keeps exactly min(w, allowed)
keys, the w most important by δ; the gradient reaches W_Δ through the δ bias."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxattn.attention import core, dma, softmax
from tests.attention import battery_cases as cases


def _tensors(K, H, seed=0, a=0.7):
    r = jax.random.split(jax.random.key(seed), 2)
    return {
        "delta_proj": jax.random.normal(r[0], (K, H)) * 0.5,
        "delta_a": a * (1.0 + jax.random.uniform(r[1], (K,))),
    }


def test_full_window_with_a_zero_is_softmax():
    B, T, N, K, H = 2, 16, 4, 2, 8
    q, k, v = cases.qkv(B, T, T, N, K, H, seed=0)
    kv_mask = cases.padding_mask(B, T)
    tensors = _tensors(K, H, a=0.0)  # A = 0: δ = 1 for every key whatever W_Δ
    for masks in ({"kv_mask": kv_mask}, {"is_causal": True}):
        out = dma.dma_attention(q, k, v, keep_window_size=T, **masks, **tensors)
        ref = softmax.softmax_attention(q, k, v, **masks)
        cases.assert_close(out, ref, 1e-6, str(list(masks)))  # measured 4.8e-7


def test_kept_keys_are_the_top_w_allowed_by_importance():
    B, T, K, H, w = 2, 12, 2, 4, 5
    _, _, v = cases.qkv(B, T, T, K, K, H, seed=1)
    tensors = _tensors(K, H, seed=2)
    kv_mask = cases.padding_mask(B, T)
    delta = np.asarray(dma.key_importance(v, **tensors))  # [B, K, S]
    assert np.unique(delta).size == delta.size  # no ties: the top-w is unambiguous
    for is_causal in (False, True):
        allowed = core.make_keep_mask(T, T, is_causal=is_causal, kv_mask=kv_mask)
        allowed = jnp.broadcast_to(allowed, (B, 1, T, T))
        keep = np.asarray(dma.top_w_mask(jnp.asarray(delta), allowed, w))  # [B, K, T, S]
        allowed = np.broadcast_to(np.asarray(allowed), keep.shape)
        np.testing.assert_array_equal(keep.sum(-1), np.minimum(w, allowed.sum(-1)))
        for b in range(B):
            for kk in range(K):
                for t in range(T):
                    ok = np.flatnonzero(allowed[b, kk, t])
                    top = ok[np.argsort(-delta[b, kk, ok], kind="stable")[:w]]
                    assert set(np.flatnonzero(keep[b, kk, t])) == set(top)


def test_output_is_softmax_over_the_kept_keys_with_the_delta_bias():
    B, T, N, K, H, w = 1, 10, 2, 1, 4, 3
    q, k, v = cases.qkv(B, T, T, N, K, H, seed=3)
    tensors = _tensors(K, H, seed=4)
    out = dma.dma_attention(q, k, v, keep_window_size=w, is_causal=True, **tensors)
    delta = np.asarray(dma.key_importance(v, **tensors))[0, 0]  # [S]
    qn, kn, vn = (np.asarray(x, np.float64)[0] for x in (q, k, v))
    for t in range(T):
        kept = np.argsort(-delta[: t + 1], kind="stable")[:w]
        for n in range(N):
            logits = qn[t, n] @ kn[kept, 0].T / np.sqrt(H) + delta[kept]
            p = np.exp(logits - logits.max())
            p /= p.sum()
            np.testing.assert_allclose(out[0, t, n], p @ vn[kept, 0], atol=1e-5)


def test_gradient_reaches_w_delta():
    B, T, N, K, H = 2, 12, 4, 2, 8
    q, k, v = cases.qkv(B, T, T, N, K, H, seed=5)
    tensors = _tensors(K, H, seed=6)

    def loss(tensors):
        out = dma.dma_attention(q, k, v, keep_window_size=4, is_causal=True, **tensors)
        return jnp.sum(out * jnp.cos(q))

    grads = jax.jit(jax.grad(loss))(tensors)
    for name, g in grads.items():
        assert bool(jnp.all(jnp.isfinite(g))), name
        assert float(jnp.max(jnp.abs(g))) > 1e-4, name
