"""sgu: the gMLP equations in float64 NumPy, the gate ≈ 1 at initialisation (output = the Z₁
path), causality (lower-triangular W), padding (zeroed W columns), refusals."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from jaxattn import errors
from jaxattn.attention import core, get_attention_fn, sgu
from tests.attention import battery_cases as cases


def numpy_sgu(x, p, *, is_causal=False, kv_mask=None, spatial_weight=None):
    """The module docstring's equations in float64 (exact GELU via erf)."""
    p = {k: np.asarray(v, np.float64) for k, v in p.items()}
    x = np.asarray(x, np.float64)
    B, T, _ = x.shape
    z = x @ p["in_proj"] + p["in_bias"]
    z = 0.5 * z * (1.0 + special.erf(z / math.sqrt(2.0)))
    F = z.shape[-1] // 2
    z1, z2 = z[..., :F], z[..., F:]
    z2 = (z2 - z2.mean(-1, keepdims=True)) / np.sqrt(z2.var(-1, keepdims=True) + sgu.LN_EPS)
    z2 = z2 * p["ln_scale"] + p["ln_bias"]
    W = p["spatial_weight"][:T, :T] if spatial_weight is None else spatial_weight
    W = np.broadcast_to(np.tril(W) if is_causal else W, (B, T, T)).copy()
    if kv_mask is not None:
        W = W * np.asarray(kv_mask)[:, None, :]
    gate = np.einsum("bts,bsf->btf", W, z2) + p["spatial_bias"][:T, None]
    return (z1 * gate) @ p["out_proj"] + p["out_bias"]


def _setup(B=2, T=16, D=8, seed=0, ffn_dim=12, T_max=None):
    fn = get_attention_fn({"kind": "sgu", "sgu": {"ffn_dim": ffn_dim}})
    params = cases.declared_params(fn, N=1, K=1, H=D, S=T_max or T)
    x = jnp.asarray(np.random.default_rng(seed).normal(size=(B, T, D)), jnp.float32)
    return fn, params, x


def _trained(params, seed=1):
    """Parameters away from initialisation: W and b of order 1, so the gate matters."""
    rng = np.random.default_rng(seed)
    T = params["spatial_weight"].shape[0]
    return dict(
        params,
        spatial_weight=jnp.asarray(rng.normal(size=(T, T)) / math.sqrt(T), jnp.float32),
        spatial_bias=jnp.asarray(rng.normal(size=(T,)), jnp.float32),
        ln_scale=jnp.asarray(rng.uniform(0.5, 1.5, params["ln_scale"].shape), jnp.float32),
    )


@pytest.mark.parametrize("is_causal", [False, True])
def test_equals_the_equations_in_float64(is_causal):
    fn, params, x = _setup()
    params = _trained(params)
    kv_mask = cases.padding_mask(2, 16)
    out = jax.jit(lambda x: fn(x, is_causal=is_causal, kv_mask=kv_mask, **params))(x)
    ref = numpy_sgu(x, params, is_causal=is_causal, kv_mask=kv_mask)
    cases.assert_close(
        out, ref, 1e-5, "sgu vs float64 equations"
    )  # measured 9.5e-7 (causal 7.2e-7)


def test_gate_is_one_at_init_so_the_output_is_the_z1_path():
    """At initialisation W ≈ 0 (±1e-3/T) and b = 1: y equals (Z₁ · out_proj + out_bias) to
    within the W init's reach, and exactly with W = 0."""
    fn, params, x = _setup()
    z1_path = numpy_sgu(x, params, spatial_weight=np.zeros((16, 16)))
    cases.assert_close(fn(x, **params), z1_path, 1e-3, "gate ≈ 1 at init")  # measured 4.9e-4
    exact = fn(x, **dict(params, spatial_weight=jnp.zeros((16, 16))))
    p64 = {k: np.asarray(v, np.float64) for k, v in params.items()}
    z = np.asarray(x, np.float64) @ p64["in_proj"] + p64["in_bias"]
    z1 = 0.5 * z[..., :6] * (1.0 + special.erf(z[..., :6] / math.sqrt(2.0)))
    cases.assert_close(exact, z1 @ p64["out_proj"] + p64["out_bias"], 1e-5, "W = 0")


def test_without_tensors_the_unit_is_gelu():
    x = jnp.asarray(np.random.default_rng(2).normal(size=(2, 8, 4)), jnp.float32)
    cases.assert_close(sgu.sgu_mixing(x), jax.nn.gelu(x, approximate=False), 1e-6, "stand-ins")


def test_causal_future_does_not_leak():
    fn, params, x = _setup()
    params = _trained(params)
    t0 = 7
    y = fn(x, is_causal=True, **params)
    y2 = fn(x.at[:, t0 + 1 :].set(25.0), is_causal=True, **params)
    np.testing.assert_array_equal(np.asarray(y[:, : t0 + 1]), np.asarray(y2[:, : t0 + 1]))
    assert float(jnp.max(jnp.abs(fn(x, **params)[:, t0] - fn(x.at[:, t0 + 1 :].set(25.0), **params)[:, t0]))) > 1e-2  # fmt: skip


def test_padding_and_shorter_sequences():
    """Pads never reach real outputs; a sequence shorter than T_max uses W[:T, :T], so a padded
    example's real rows equal the example cut to its length."""
    fn, params, x = _setup()
    params = _trained(params)
    kv_mask = cases.padding_mask(2, 16)
    out = fn(x, kv_mask=kv_mask, **params)
    length = int(np.asarray(kv_mask)[1].sum())
    cases.assert_close(out[1:, :length], fn(x[1:, :length], **params), 1e-5, "cut")
    with pytest.raises(ValueError, match="exceeds"):
        fn(jnp.ones((1, 17, 8)), **params)


def test_refusals():
    fn, params, x = _setup()
    seg = jnp.ones((2, 16), jnp.int32)
    with pytest.raises(errors.UnsupportedFeatureError, match="'sgu'.*packing"):
        fn(x, q_segment_ids=seg, **params)
    with pytest.raises(errors.UnsupportedFeatureError, match="'sgu'.*dropout"):
        fn(x, dropout_rate=0.1, dropout_rng=jax.random.key(0), **params)


def battery_exact(fn: core.BoundAttention, x: np.ndarray, params: dict) -> None:
    """mixer_battery_test's EXACT check: the float64 equations, unmasked and causal, with the
    declared parameters moved away from initialisation."""
    params = _trained(params)
    for is_causal in (False, True):
        out = fn(jnp.asarray(x, jnp.float32), is_causal=is_causal, **params)
        ref = numpy_sgu(x, params, is_causal=is_causal)
        cases.assert_close(out, ref, 1e-5, "sgu vs float64 equations")  # measured <= 1e-6
