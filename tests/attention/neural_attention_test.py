"""Neural attention: the chunked pair network equals the naive concatenation form, with every
mask and any chunk size; gradients reach every tensor and are finite."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxattn.attention import neural_attention as na
from tests.attention import battery_cases as cases

F = 6
# jit: eager dispatch of the chunked map is most of the time otherwise.
_chunked = jax.jit(na.neural_attention, static_argnames=("hidden_dim", "chunk_size", "activation", "is_causal"))  # fmt: skip
_naive = jax.jit(na.naive_neural_attention, static_argnames=("hidden_dim", "activation", "is_causal"))  # fmt: skip


def _tensors(N, H, seed=0):
    specs = na.param_specs({"hidden_dim": F}, num_heads=N, num_kv_heads=N, head_dim=H, kv_length=0)
    rngs = jax.random.split(jax.random.key(seed), len(specs))
    out = {
        n: s.init(r, s.shape, jnp.float32)
        for r, (n, s) in zip(rngs, sorted(specs.items()), strict=True)
    }
    out["b_hidden"] = 0.3 * jax.random.normal(jax.random.key(seed + 1), (N, F))  # non-zero b
    return out


def test_chunked_equals_naive():
    B, T, N, K, H = 2, 13, 4, 2, 8
    q, k, v = cases.qkv(B, T, T, N, K, H, seed=1)
    params = _tensors(N, H)
    ids = jnp.asarray(np.repeat([[1] * 4 + [2] * 6 + [3] * 2 + [0]], B, 0), jnp.int32)
    bias = jnp.asarray(np.random.default_rng(0).normal(size=(1, N, T, T)), jnp.float32)
    for chunk_size, masks in ((1, {}), (5, {"is_causal": True, "bias": bias}),
                              (13, {"kv_mask": cases.padding_mask(B, T)}),
                              (4, {"q_segment_ids": ids, "is_causal": True})):  # fmt: skip
        out = _chunked(q, k, v, hidden_dim=F, chunk_size=chunk_size, **masks, **params)
        ref = _naive(q, k, v, hidden_dim=F, **masks, **params)
        cases.assert_close(out, ref, 1e-5, f"chunk {chunk_size} {list(masks)}")  # measured 4.8e-7


def test_cross_attention_and_activations_equal_naive():
    q, _, _ = cases.qkv(2, 7, 7, 2, 2, 4, seed=2)
    _, k, v = cases.qkv(2, 11, 11, 2, 2, 4, seed=3)
    params = _tensors(2, 4, seed=3)
    for act in ("relu", "tanh"):
        out = _chunked(q, k, v, hidden_dim=F, chunk_size=3, activation=act, **params)
        ref = _naive(q, k, v, hidden_dim=F, activation=act, **params)
        cases.assert_close(out, ref, 1e-5, act)


def test_gradients_are_finite_and_equal_naive():
    B, T, N, H = 2, 9, 2, 4
    q, k, v = cases.qkv(B, T, T, N, N, H, seed=4)
    params = _tensors(N, H, seed=5)
    kv_mask = cases.padding_mask(B, T).at[1].set(False)  # example 1: no real key

    def loss(fn, params, q, k, v, **kw):
        return jnp.sum(jnp.cos(fn(q, k, v, hidden_dim=F, kv_mask=kv_mask, **kw, **params)))

    g = jax.jit(
        jax.grad(lambda *a: loss(na.neural_attention, *a, chunk_size=4), argnums=(0, 1, 2, 3))
    )
    g_ref = jax.jit(jax.grad(lambda *a: loss(na.naive_neural_attention, *a), argnums=(0, 1, 2, 3)))
    for got, want in zip(
        jax.tree.leaves(g(params, q, k, v)), jax.tree.leaves(g_ref(params, q, k, v)), strict=True
    ):
        assert bool(jnp.all(jnp.isfinite(got)))
        cases.assert_close(got, want, 1e-5, "gradient")
    assert float(jnp.max(jnp.abs(g(params, q, k, v)[0]["w_key"]))) > 0  # reaches W_k
