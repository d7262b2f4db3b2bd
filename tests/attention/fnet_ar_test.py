"""FNetAR: the explicit prefix-DFT definition, causality, the last position equal to FNet, each
position equal to FNet's last row on its prefix, padding and packing, refusals."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors
from jaxattn.attention import fnet, fnet_ar
from tests.attention import battery_cases as cases


def explicit_fnet_ar(x: np.ndarray) -> np.ndarray:
    """Re(A · X · F_D) in float64, A[t, s] = exp(-2πi·t·s/(t + 1)) for s <= t, else 0."""
    B, T, D = x.shape
    t, s = np.arange(T)[:, None], np.arange(T)[None, :]
    a = np.where(s <= t, np.exp(-2j * np.pi * t * s / (t + 1)), 0.0)
    d = np.arange(D)
    f_d = np.exp(-2j * np.pi * np.outer(d, d) / D)
    return np.real(np.einsum("ts,bsd,de->bte", a, np.asarray(x, np.float64), f_d))


def _x(B=2, T=16, D=8, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(B, T, D)), jnp.float32)


mix = jax.jit(fnet_ar.fnet_ar_mixing, static_argnames=("is_causal", "hidden_fft"))


def test_equals_the_explicit_prefix_dft():
    x = _x()
    cases.assert_close(mix(x), explicit_fnet_ar(np.asarray(x)), 1e-5, "vs float64")  # 6.7e-6


def test_perturbing_future_tokens_leaves_past_outputs_unchanged():
    x = _x(seed=1)
    t0 = 9
    y = mix(x, is_causal=True)
    y2 = mix(x.at[:, t0:].set(_x(seed=2)[:, t0:] * 10.0), is_causal=True)
    np.testing.assert_array_equal(np.asarray(y2[:, :t0]), np.asarray(y[:, :t0]))
    assert float(jnp.max(jnp.abs(y2[:, t0:] - y[:, t0:]))) > 1e-2
    # A bidirectional call gets the same (causal) mixing.
    np.testing.assert_array_equal(np.asarray(mix(x, is_causal=False)), np.asarray(y))


def test_last_position_equals_full_fnet_and_each_position_fnet_on_its_prefix():
    x = _x(seed=3)
    y = mix(x)
    cases.assert_close(y[:, -1], fnet.fnet_mixing(x)[:, -1], 1e-5, "last position")  # 2.9e-6
    for t in (0, 1, 6, 11):
        prefix = fnet.fnet_mixing(x[:, : t + 1])[:, -1]
        cases.assert_close(y[:, t], prefix, 1e-5, f"position {t} vs FNet on x[:{t + 1}]")


def test_without_hidden_fft_it_is_the_real_part_of_the_token_mixing():
    x = _x(seed=4)
    T = x.shape[1]
    t, s = np.arange(T)[:, None], np.arange(T)[None, :]
    a = np.where(s <= t, np.exp(-2j * np.pi * t * s / (t + 1)), 0.0)
    expected = np.real(np.einsum("ts,bsd->btd", a, np.asarray(x, np.float64)))
    cases.assert_close(mix(x, hidden_fft=False), expected, 1e-5, "token mixing only")


def test_padding_and_packing():
    x = _x(seed=5)
    B, T, _ = x.shape
    kv_mask = jnp.arange(T)[None] < jnp.array([[T], [11]])
    dirty = jnp.where(kv_mask[:, :, None], x, 50.0)
    y = mix(x, kv_mask=kv_mask)
    y2 = mix(dirty, kv_mask=kv_mask)
    real = kv_mask[:, :, None]
    cases.assert_close(jnp.where(real, y2, 0), jnp.where(real, y, 0), 1e-5, "garbage in pads")
    cases.assert_close(y[1, :11], mix(x[1:, :11])[0], 1e-5, "right padding = unpadded")
    bounds = [(0, 5), (5, 12), (12, 15)]
    ids = np.zeros((B, T), np.int32)
    for i, (a, b) in enumerate(bounds):
        ids[:, a:b] = i + 1
    packed = mix(x, q_segment_ids=jnp.asarray(ids))
    for a, b in bounds:
        cases.assert_close(packed[:, a:b], mix(x[:, a:b]), 1e-5, f"segment [{a}, {b})")


def test_refusals():
    x = _x(T=8)
    with pytest.raises(errors.UnsupportedFeatureError, match="'fnet_ar'.*bias"):
        fnet_ar.fnet_ar_mixing(x, bias=jnp.zeros((1, 1, 8, 8)))
    with pytest.raises(errors.UnsupportedFeatureError, match="'fnet_ar'.*dropout"):
        fnet_ar.fnet_ar_mixing(x, dropout_rate=0.1, dropout_rng=jax.random.key(0))
