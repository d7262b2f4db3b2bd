"""gaam: a float64 NumPy reference (the product of Gaussian densities, normalised by its sum, as
the authors' code), very large scales give uniform weights, pad values do not matter, refusals."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors
from jaxattn.attention import core, gaam, get_attention_fn
from tests.attention import battery_cases as cases


def numpy_gaam(x, mean_offsets, scales, *, num_heads, kv_mask=None):
    """Per example, head and feature, float64: densities multiplied (with their constants) and
    divided by their sum over the real tokens, as the paper and the authors' code write it."""
    x = np.asarray(x, np.float64)
    delta, c = np.asarray(mean_offsets, np.float64), np.asarray(scales, np.float64)
    B, T, D = x.shape
    E = D // num_heads
    mask = np.ones((B, T), bool) if kv_mask is None else np.asarray(kv_mask)
    y = x.copy()
    for b in range(B):
        real = np.flatnonzero(mask[b])
        for d in range(D):
            h = d // E
            v = x[b, real, d]
            mu, var = v.mean(), v.var(ddof=1) + gaam.EPS
            dens = np.ones_like(v)
            for g in range(delta.shape[1]):
                z = (v - mu - delta[h, g]) / math.sqrt(var)
                dens *= np.exp(-(z**2) / (2 * c[h, g] ** 2)) / math.sqrt(2 * math.pi * c[h, g] ** 2)
            y[b, real, d] = v * dens / dens.sum()
    return y


def _params(n=2, G=3, seed=0):
    rng = np.random.default_rng(seed)
    delta = jnp.asarray(0.4 * rng.normal(size=(n, G)), jnp.float32)
    scales = jnp.asarray(rng.uniform(0.7, 2.0, size=(n, G)), jnp.float32)
    return {"mean_offsets": delta, "scales": scales}


def _x(B=2, T=16, D=8, seed=1):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(B, T, D)), jnp.float32)


@pytest.mark.parametrize("padded", [False, True])
def test_matches_numpy_reference(padded):
    fn = get_attention_fn({"kind": "gaam", "gaam": {"num_heads": 2, "num_gaussians": 3}})
    p, x = _params(), _x()
    kv_mask = cases.padding_mask(2, 16) if padded else None
    out = jax.jit(lambda x: fn(x, kv_mask=kv_mask, **p))(x)
    ref = numpy_gaam(x, p["mean_offsets"], p["scales"], num_heads=2, kv_mask=kv_mask)
    cases.assert_close(out, ref, 1e-6, "gaam vs float64 reference")  # measured 1.9e-8


def test_very_large_scales_give_uniform_weights():
    """c → ∞ flattens every Gaussian: w = 1 / (number of real tokens), y = x / n_real."""
    p = {"mean_offsets": _params()["mean_offsets"], "scales": jnp.full((2, 3), 1e6)}
    x = _x()
    kv_mask = cases.padding_mask(2, 16)
    y = gaam.gaam_mixing(x, kv_mask=kv_mask, num_heads=2, num_gaussians=3, **p)
    n_real = np.asarray(kv_mask).sum(axis=1)[:, None, None]
    expected = np.where(np.asarray(kv_mask)[:, :, None], np.asarray(x) / n_real, np.asarray(x))
    cases.assert_close(y, expected, 1e-7, "uniform weights")  # measured 1.5e-8


def test_pad_values_do_not_matter():
    p, x = _params(seed=2), _x(seed=3)
    kv_mask = cases.padding_mask(2, 16)
    real = np.asarray(kv_mask)
    y = gaam.gaam_mixing(x, kv_mask=kv_mask, num_heads=2, num_gaussians=3, **p)
    for fill in (1e3, -7.0):
        dirty = jnp.where(kv_mask[:, :, None], x, fill)
        y2 = gaam.gaam_mixing(dirty, kv_mask=kv_mask, num_heads=2, num_gaussians=3, **p)
        np.testing.assert_array_equal(np.asarray(y2)[real], np.asarray(y)[real])
    # And each example's real rows equal the example cut to its length, run unpadded.
    cut = gaam.gaam_mixing(x[1:, :11], num_heads=2, num_gaussians=3, **p)
    cases.assert_close(y[1:, :11], cut, 1e-7, "padded vs cut")


def test_weights_are_stable_where_the_density_product_underflows():
    """An outlier 40 standard deviations out: the product of densities underflows in float32,
    the log-space softmax does not (finite, and the weights still sum to 1 over the tokens)."""
    x = _x(B=1).at[0, 3].set(400.0)
    p = {"mean_offsets": jnp.zeros((2, 3)), "scales": jnp.full((2, 3), 0.3)}
    y = gaam.gaam_mixing(x, num_heads=2, num_gaussians=3, **p)
    assert bool(jnp.all(jnp.isfinite(y)))
    w = np.asarray(y) / np.asarray(x)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-5)


def test_gradients_reach_the_offsets_and_scales():
    p, x = _params(), _x()
    grads = jax.grad(lambda p: jnp.sum(gaam.gaam_mixing(x, num_gaussians=3, **p) ** 2))(p)
    assert all(float(jnp.max(jnp.abs(g))) > 0 for g in grads.values())


def test_refusals():
    x = _x()
    with pytest.raises(errors.UnsupportedFeatureError, match="'gaam'.*is_causal"):
        gaam.gaam_mixing(x, is_causal=True)
    with pytest.raises(errors.UnsupportedFeatureError, match="'gaam'.*packing"):
        gaam.gaam_mixing(x, q_segment_ids=jnp.ones((2, 16), jnp.int32))
    with pytest.raises(errors.UnsupportedFeatureError, match="'gaam'.*dropout"):
        gaam.gaam_mixing(x, dropout_rate=0.1, dropout_rng=jax.random.key(0))


def battery_exact(fn: core.BoundAttention, x: np.ndarray, params: dict) -> None:
    """mixer_battery_test's EXACT check: the float64 reference with random δ and c."""
    hp = {"num_heads": 2, "num_gaussians": 4, **dict(fn.hparams)}
    p = _params(hp["num_heads"], hp["num_gaussians"], seed=7)
    out = fn(jnp.asarray(x, jnp.float32), **p)
    ref = numpy_gaam(x, p["mean_offsets"], p["scales"], num_heads=hp["num_heads"])
    cases.assert_close(out, ref, 1e-6, "gaam vs float64 reference")
