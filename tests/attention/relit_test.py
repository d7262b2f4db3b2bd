"""ReLiT: the chunk-parallel form equals the sequential recurrence for any chunk size; Γ = 1 with
φ = elu + 1 equals causal (and bidirectional) `linear`; the gate decays old keys; packing resets
exactly."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn.attention import linear, relit
from tests.attention import battery_cases as cases

B, T, N, K, H = 3, 16, 4, 2, 8


def _ids():
    ids = np.zeros((B, T), np.int32)
    ids[:, :5], ids[:, 5:12], ids[:, 12:15] = 1, 2, 3
    return jnp.asarray(ids)


MASKS = {
    "bidirectional": lambda: {},
    "causal": lambda: {"is_causal": True},
    "padding": lambda: {"kv_mask": cases.padding_mask(B, T)},
    "causal_padding": lambda: {"kv_mask": cases.padding_mask(B, T), "is_causal": True},
    "packed": lambda: {"q_segment_ids": _ids()},
    "packed_causal": lambda: {"q_segment_ids": _ids(), "is_causal": True},
}


# 5: several chunks, T not a multiple (default tier); 1, 4 and one chunk of 32 in the slow tier.
@pytest.mark.parametrize(
    "chunk", [5, *(pytest.param(c, marks=pytest.mark.slow) for c in (1, 4, 32))]
)
@pytest.mark.parametrize("masks", list(MASKS))
def test_chunked_form_equals_sequential_recurrence(masks, chunk):
    q, k, v = cases.qkv(B, T, T, N, K, H, seed=0)
    kw = MASKS[masks]()
    gates = relit.example_tensors(K, H)
    out = jax.jit(lambda q, k, v: relit.relit_attention(q, k, v, **kw, **gates, chunk_size=chunk))(
        q, k, v
    )
    ref = relit.sequential_relit_attention(q, k, v, **kw, **gates)
    if "kv_mask" in kw:
        out, ref = cases.real_rows(out, kw["kv_mask"]), cases.real_rows(ref, kw["kv_mask"])
    cases.assert_close(out, ref, 1e-5, masks)  # measured <= 4.8e-7


@pytest.mark.parametrize("masks", list(MASKS))
def test_unit_gate_is_linear_attention(masks):
    q, k, v = cases.qkv(B, T, T, N, K, H, seed=1)
    kw = MASKS[masks]()
    out = relit.relit_attention(q, k, v, **kw, chunk_size=6)
    ref = linear.linear_attention(q, k, v, chunk_size=4, **kw)
    if "kv_mask" in kw:
        out, ref = cases.real_rows(out, kw["kv_mask"]), cases.real_rows(ref, kw["kv_mask"])
    cases.assert_close(out, ref, 1e-6, masks)  # measured <= 3.6e-7


def test_gate_decays_old_keys():
    """With γ = β = c (W = 0, b = logit(c)) key j's weight for query t is c^(t−j) times its
    ungated weight: the explicit decayed kernel matrix."""
    q, k, v = cases.qkv(1, T, T, 2, 2, H, seed=2)
    c = 0.8
    logit = float(np.log(c / (1 - c)))
    gates = {
        "gate_w_feature": jnp.zeros((2, H, H)),
        "gate_b_feature": jnp.full((2, H), logit),
        "gate_w_value": jnp.zeros((2, H, H)),
        "gate_b_value": jnp.full((2, H), 20.0),  # β ≈ 1: only γ decays (num and den alike)
    }
    out = relit.relit_attention(q, k, v, is_causal=True, **gates)
    fq, fk = linear.elu_feature_map(q), linear.elu_feature_map(k)
    t, j = np.arange(T)[:, None], np.arange(T)[None, :]
    decay = jnp.asarray(np.where(j <= t, c ** (t - j).astype(float), 0.0))  # [T, S]
    w = jnp.einsum("BTNH,BSNH->BNTS", fq, fk) * decay
    ref = jnp.einsum("BNTS,BSNH->BTNH", w / w.sum(-1, keepdims=True), v)
    cases.assert_close(out, ref, 1e-5, "decayed kernel")


@pytest.mark.slow  # ~40 s each in CI's default tier (gradients of the sequential reference)
@pytest.mark.parametrize("causal", [True, False])
def test_vanishing_gates_stay_finite_and_exact(causal):
    """γ = β = σ(−100): log gates of −100 a step sum to −1600 over a chunk; the chunked form
    never exponentiates a positive sum, so values and gradients stay finite and match the
    sequential recurrence."""
    q, k, v = cases.qkv(2, 13, 13, 4, 2, H, seed=3)
    gates = {
        "gate_w_feature": jnp.full((2, H, H), 0.1),
        "gate_b_feature": jnp.full((2, H), -100.0),
        "gate_w_value": jnp.zeros((2, H, H)),
        "gate_b_value": jnp.full((2, H), -100.0),
    }

    def run(fn, **extra):
        def f(q, k, v):
            return fn(q, k, v, is_causal=causal, **gates, **extra)

        return f(q, k, v), jax.grad(lambda *a: f(*a).sum(), argnums=(0, 1, 2))(q, k, v)

    out, grads = run(relit.relit_attention, chunk_size=4)
    ref, ref_grads = run(relit.sequential_relit_attention)
    cases.assert_close(out, ref, 1e-5, "vanishing gates")  # measured 4.8e-7
    for g, r in zip(grads, ref_grads, strict=True):
        assert bool(jnp.isfinite(g).all())
        cases.assert_close(g, r, 1e-5, "vanishing gates, gradient")  # measured 7.5e-7
