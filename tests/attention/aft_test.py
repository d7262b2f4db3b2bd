"""AFT: every mode against the paper's equation evaluated densely, full with w = 0 equals simple,
local with window >= T equals full, simple equals its closed form, the causal prefix scan equals
the masked dense form, packing with w indexed per segment, refusals."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors
from jaxattn.attention import aft
from tests.attention import battery_cases as cases

aft_fn = jax.jit(aft.aft_attention, static_argnames=("is_causal", "mode", "window"))


def _inputs(B=2, T=16, S=16, N=4, K=2, H=8, seed=0):
    q, k, v = cases.qkv(B, T, S, N, K, H, seed=seed)
    w = jnp.asarray(np.random.default_rng(seed + 50).normal(size=(T, S)), jnp.float32)
    return q, k, v, w


def _numpy_aft(q, k, v, w, causal):
    """The paper's equation per example, query, channel, in float64."""
    q, k, v, w = (np.asarray(x, np.float64) for x in (q, k, v, w))
    B, T, N, H = q.shape
    S, K = k.shape[1], k.shape[2]
    out = np.zeros((B, T, N, H))
    for t in range(T):
        s_end = min(t + 1, S) if causal else S
        logits = k[:, :s_end] + w[t, :s_end][None, :, None, None]  # [B, s, K, H]
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        avg = (e * v[:, :s_end]).sum(1) / e.sum(1)  # [B, K, H]
        gate = 1 / (1 + np.exp(-q[:, t]))  # [B, N, H]
        out[:, t] = gate * np.repeat(avg, N // K, axis=1)
    return out


@pytest.mark.parametrize("causal", [False, True])
def test_full_and_simple_equal_the_float64_equation(causal):
    q, k, v, w = _inputs()
    full = aft_fn(q, k, v, is_causal=causal, mode="full", pair_bias=w)
    cases.assert_close(full, _numpy_aft(q, k, v, w, causal), 1e-5, "full")  # 2.4e-7
    simple = aft_fn(q, k, v, is_causal=causal)
    cases.assert_close(simple, _numpy_aft(q, k, v, 0 * w, causal), 1e-5, "simple")  # 1.8e-7


def test_full_with_zero_bias_equals_simple():
    q, k, v, w = _inputs(seed=1)
    kv_mask = cases.padding_mask(2, 16)
    for causal in (False, True):
        full = aft_fn(q, k, v, is_causal=causal, kv_mask=kv_mask, mode="full", pair_bias=0 * w)
        simple = aft_fn(q, k, v, is_causal=causal, kv_mask=kv_mask)
        cases.assert_close(full, simple, 1e-5, f"full(w=0) vs simple, causal={causal}")


def test_simple_equals_its_closed_form():
    """Bidirectional AFT-simple: Y_t = σ(Q_t) ⊙ Σ_s softmax_s(K)_s ⊙ V_s (one average per kv head)."""
    q, k, v, _ = _inputs(seed=2)
    G = q.shape[2] // k.shape[2]
    avg = jnp.sum(jax.nn.softmax(k, axis=1) * v, axis=1)  # [B, K, H]
    expected = jax.nn.sigmoid(q) * jnp.repeat(avg, G, axis=1)[:, None]
    cases.assert_close(aft_fn(q, k, v), expected, 1e-6, "closed form")  # 1.8e-7


@pytest.mark.parametrize("causal", [False, True])
def test_causal_prefix_scan_equals_masked_dense(causal):
    """The simple mode's linear paths (global sums; running-max prefix scan) against the dense
    [B, T, S, K, H] softmax with the causal and padding masks."""
    q, k, v, _ = _inputs(seed=3)
    k = k * 4.0  # a wide spread of logits: the running max matters
    kv_mask = cases.padding_mask(2, 16)
    out = aft_fn(q, k, v, is_causal=causal, kv_mask=kv_mask)
    ref = aft.dense_aft_attention(q, k, v, is_causal=causal, kv_mask=kv_mask)
    cases.assert_close(
        cases.real_rows(out, kv_mask), cases.real_rows(ref, kv_mask), 1e-5, "scan vs dense"
    )  # 2.4e-7


def test_local_with_a_wide_window_equals_full_and_narrow_equals_dense_band():
    q, k, v, w = _inputs(seed=4)
    for causal in (False, True):
        full = aft_fn(q, k, v, is_causal=causal, mode="full", pair_bias=w)
        local = aft_fn(q, k, v, is_causal=causal, mode="local", window=16, pair_bias=w)
        cases.assert_close(local, full, 0.0, "local(window >= T) vs full")
        narrow = aft_fn(q, k, v, is_causal=causal, mode="local", window=3, pair_bias=w)
        ref = aft.dense_aft_attention(q, k, v, is_causal=causal, pair_bias=w, window=3)
        cases.assert_close(narrow, ref, 1e-5, "local(3) vs dense band")
        assert float(jnp.max(jnp.abs(narrow - full))) > 1e-2


@pytest.mark.slow
def test_packing_indexes_the_pair_bias_by_position_in_segment():
    q, k, v, w = _inputs(seed=5)
    ids = np.zeros((2, 16), np.int32)
    bounds = [(0, 5), (5, 12), (12, 15)]
    for i, (a, b) in enumerate(bounds):
        ids[:, a:b] = i + 1
    for mode in ("simple", "full"):
        for causal in (False, True):
            packed = aft_fn(
                q, k, v, is_causal=causal, q_segment_ids=jnp.asarray(ids), mode=mode, pair_bias=w
            )
            for a, b in bounds:
                alone = aft_fn(
                    q[:, a:b], k[:, a:b], v[:, a:b], is_causal=causal, mode=mode, pair_bias=w
                )
                cases.assert_close(packed[:, a:b], alone, 1e-5, f"{mode} segment [{a}, {b})")


@pytest.mark.slow
def test_cross_attention_and_fully_masked_rows():
    q, k, v, w = _inputs(T=12, S=16, seed=6)
    out = aft_fn(q, k, v, mode="full", pair_bias=w)
    cases.assert_close(out, _numpy_aft(q, k, v, w, False), 1e-5, "cross, full")
    none = jnp.zeros((2, 16), bool)
    for mode in ("simple", "full"):
        out = aft_fn(q, k, v, kv_mask=none, mode=mode, pair_bias=w)
        assert bool(jnp.all(out == 0)), mode


def test_refusals_and_params():
    q, k, v, w = _inputs(T=8, S=8)
    with pytest.raises(errors.UnsupportedFeatureError, match="'aft'.*bias"):
        aft.aft_attention(q, k, v, bias=jnp.zeros((1, 1, 8, 8)))
    with pytest.raises(errors.UnsupportedFeatureError, match="'aft'.*dropout"):
        aft.aft_attention(q, k, v, dropout_rate=0.1, dropout_rng=jax.random.key(0))
    with pytest.raises(errors.ConfigError):
        aft.aft_attention(q, k, v, mode="conv")
    with pytest.raises(ValueError, match="pair_bias"):
        aft.aft_attention(q, k, v, mode="full")
    shapes = dict(num_heads=4, num_kv_heads=2, head_dim=8, kv_length=32)
    assert aft.param_specs({}, **shapes) == {}
    assert aft.param_specs({"mode": "local"}, **shapes)["pair_bias"].shape == (32, 32)
    spec = aft.param_specs({"mode": "full", "max_query_length": 8}, **shapes)["pair_bias"]
    assert spec.shape == (8, 32)
