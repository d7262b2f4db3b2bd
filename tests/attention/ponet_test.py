"""ponet: the pooling equations in float64 NumPy, the local max against `lax.reduce_window`,
pad values leave real outputs unchanged, dropout on the global probabilities, refusals."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors
from jaxattn.attention import core, get_attention_fn, ponet
from tests.attention import battery_cases as cases


def numpy_ponet(x, p, *, num_heads, num_segments, local_window, kv_mask=None, probs_scale=None):
    """The module docstring's equations per example in float64, with explicit loops."""
    p = {k: np.asarray(v, np.float64) for k, v in p.items() if k != "rng"}
    x = np.asarray(x, np.float64)
    B, T, D = x.shape
    E = D // num_heads
    mask = np.ones((B, T), bool) if kv_mask is None else np.asarray(kv_mask)
    L = T // num_segments + 1
    out = np.zeros((B, T, D))
    for b in range(B):
        h = np.einsum("td,pde->pte", x[b], p["in_proj"]) + p["in_bias"][:, None]
        q, k, o, loc, seg = h
        real = np.flatnonzero(mask[b])
        c = np.zeros((T, D))
        for n in range(num_heads):
            cols = slice(n * E, (n + 1) * E)
            g = q[real, cols].mean(0)
            logits = k[real, cols] @ g / math.sqrt(E)
            pr = np.exp(logits - logits.max())
            pr /= pr.sum()
            if probs_scale is not None:
                pr = pr * probs_scale[b, n, real]
            a = pr @ k[real, cols]
            for t in real:
                in_seg = [s for s in real if s // L == t // L]
                near = [s for s in real if abs(s - t) <= local_window // 2]
                c[t, cols] = (a + seg[in_seg, cols].max(0)) * o[t, cols] + loc[near, cols].max(0)
        out[b] = c @ p["out_proj"] + p["out_bias"]
    return out


def _setup(B=2, T=16, D=8, seed=0, **hparams):
    hparams = {"num_heads": 2, "num_segments": 3, "local_window": 3, **hparams}
    fn = get_attention_fn({"kind": "ponet", "ponet": hparams})
    params = cases.declared_params(fn, N=1, K=1, H=D, S=T)
    # Non-zero biases so that every term (and the padded rows' output bias) is exercised.
    rng = np.random.default_rng(seed + 50)
    params["in_bias"] = jnp.asarray(0.3 * rng.normal(size=params["in_bias"].shape), jnp.float32)
    params["out_bias"] = jnp.asarray(0.3 * rng.normal(size=params["out_bias"].shape), jnp.float32)
    x = jnp.asarray(np.random.default_rng(seed).normal(size=(B, T, D)), jnp.float32)
    return fn, params, x, hparams


@pytest.mark.parametrize(
    "hparams", [{}, {"local_window": 5, "num_segments": 1, "num_heads": 1}], ids=["w3", "w5"]
)
def test_equals_the_equations_in_float64(hparams):
    fn, params, x, hp = _setup(**hparams)
    kv_mask = cases.padding_mask(2, 16)
    out = jax.jit(lambda x: fn(x, kv_mask=kv_mask, **params))(x)
    ref = numpy_ponet(x, params, kv_mask=kv_mask, **hp)
    cases.assert_close(out, ref, 1e-5, "ponet vs float64 equations")  # measured 4.8e-7


@pytest.mark.parametrize("window", [1, 3, 7])
def test_local_max_equals_reduce_window(window):
    """Without padding, the local pool is max-pooling with stride 1 and -inf 'same' padding."""
    values = jnp.asarray(np.random.default_rng(1).normal(size=(2, 16, 8)), jnp.float32)
    ours = ponet.local_max(values, jnp.ones((2, 16), bool), window)
    ref = jax.lax.reduce_window(
        values, -jnp.inf, jax.lax.max, (1, window, 1), (1, 1, 1),
        [(0, 0), (window // 2, window // 2), (0, 0)],
    )  # fmt: skip
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(ref))
    # With padding: reduce_window over the values with pads set to -inf, on the real rows.
    valid = cases.padding_mask(2, 16)
    masked = ponet.local_max(values, valid, window)
    ref = jax.lax.reduce_window(
        jnp.where(valid[:, :, None], values, -jnp.inf), -jnp.inf, jax.lax.max, (1, window, 1),
        (1, 1, 1), [(0, 0), (window // 2, window // 2), (0, 0)],
    )  # fmt: skip
    np.testing.assert_array_equal(np.asarray(masked)[valid], np.asarray(ref)[valid])


def test_pad_values_leave_real_outputs_unchanged():
    fn, params, x, _ = _setup(seed=3)
    kv_mask = cases.padding_mask(2, 16)
    y = fn(x, kv_mask=kv_mask, **params)
    for fill in (1e4, -1e4):  # a pad larger (or smaller) than every real value in its pools
        y2 = fn(jnp.where(kv_mask[:, :, None], x, fill), kv_mask=kv_mask, **params)
        np.testing.assert_array_equal(np.asarray(y2)[np.asarray(kv_mask)], np.asarray(y)[np.asarray(kv_mask)])  # fmt: skip
    # Padded rows hold only the output bias (the pooled context there is zeroed).
    np.testing.assert_allclose(np.asarray(y[1, 11:]), np.broadcast_to(params["out_bias"], (5, 8)))


def test_gradients_finite_with_padding():
    fn, params, x, _ = _setup(seed=4)
    kv_mask = cases.padding_mask(2, 16)
    grads = jax.grad(lambda x, p: jnp.sum(fn(x, kv_mask=kv_mask, **p) ** 2), argnums=(0, 1))(x, params)  # fmt: skip
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))


def test_dropout_on_the_global_probabilities():
    fn, params, x, hp = _setup(seed=5)
    rng = jax.random.key(9)
    plain = fn(x, **params)
    np.testing.assert_array_equal(fn(x, dropout_rate=0.0, dropout_rng=rng, **params), plain)
    dropped = fn(x, dropout_rate=0.5, dropout_rng=rng, **params)
    np.testing.assert_array_equal(dropped, fn(x, dropout_rate=0.5, dropout_rng=rng, **params))
    keep = np.asarray(core.dropout_keep(rng, 0.5, (2, 2, 16)))  # [B, n, T]
    ref = numpy_ponet(x, params, probs_scale=keep / 0.5, **hp)
    cases.assert_close(dropped, ref, 1e-5, "dropout reference")


def test_refusals():
    fn, params, x, _ = _setup()
    with pytest.raises(errors.UnsupportedFeatureError, match="'ponet'.*is_causal"):
        fn(x, is_causal=True, **params)
    with pytest.raises(errors.UnsupportedFeatureError, match="'ponet'.*packing"):
        fn(x, q_segment_ids=jnp.ones((2, 16), jnp.int32), **params)
    with pytest.raises(ValueError, match="local_window"):
        ponet.ponet_mixing(x, local_window=4)


def battery_exact(fn: core.BoundAttention, x: np.ndarray, params: dict) -> None:
    """mixer_battery_test's EXACT check: the float64 equations with the bound hyper-parameters."""
    hp = {"num_heads": 2, "num_segments": 32, "local_window": 3, **dict(fn.hparams)}
    out = fn(jnp.asarray(x, jnp.float32), **params)
    cases.assert_close(out, numpy_ponet(x, params, **hp), 1e-5, "ponet vs float64 equations")
