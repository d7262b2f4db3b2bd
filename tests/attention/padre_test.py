"""padre: the polynomial in float64 NumPy (convolutions as banded matrices), degree 1 is linear,
the degree-d term scales by s^d, causality, packing as the segments run alone, padding."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors
from jaxattn.attention import core, get_attention_fn, padre
from tests.attention import battery_cases as cases


def _conv_matrix(kernel: np.ndarray, T: int, is_causal: bool) -> np.ndarray:
    """[k, D] depthwise kernel -> [D, T, T] banded matrices M[d, t, t + o_j] = kernel[j, d]."""
    k, D = kernel.shape
    left = k - 1 if is_causal else (k - 1) // 2
    M = np.zeros((D, T, T))
    for t in range(T):
        for j in range(k):
            if 0 <= t + j - left < T:
                M[:, t, t + j - left] = kernel[j]
    return M


def numpy_padre(x, p, *, degree, kernel_size, is_causal=False, kv_mask=None):
    """The module docstring's polynomial in float64; pads are zeroed before every convolution."""
    p = {k: np.asarray(v, np.float64) for k, v in p.items()}
    x = np.asarray(x, np.float64)
    B, T, D = x.shape
    m = np.ones((B, T, 1)) if kv_mask is None else np.asarray(kv_mask, np.float64)[:, :, None]

    def conv(u, kernel):
        return np.einsum("dts,bsd->btd", _conv_matrix(kernel, T, is_causal), u * m)

    y, out = None, 0.0
    for i in range(degree):
        a = conv(x @ p["in_proj"][i], p["mix_a"][i])
        y = a if i == 0 else a * conv(y, p["mix_b"][i - 1])
        out = out + y @ p["out_proj"][i]
    return out


def _setup(B=2, T=16, D=8, seed=0, **hparams):
    hparams = {"degree": 3, "kernel_size": 3, **hparams}
    fn = get_attention_fn({"kind": "padre", "padre": hparams})
    params = cases.declared_params(fn, N=1, K=1, H=D, S=T)
    x = jnp.asarray(np.random.default_rng(seed).normal(size=(B, T, D)), jnp.float32)
    return fn, params, x, hparams


@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("degree", [1, 3])
def test_equals_the_polynomial_in_float64(is_causal, degree):
    fn, params, x, hp = _setup(degree=degree, kernel_size=4)
    kv_mask = cases.padding_mask(2, 16)
    out = jax.jit(lambda x: fn(x, is_causal=is_causal, kv_mask=kv_mask, **params))(x)
    ref = numpy_padre(x, params, is_causal=is_causal, kv_mask=kv_mask, **hp)
    cases.assert_close(out, ref, 1e-5, "padre vs float64 polynomial")  # measured 1.4e-6


def test_degree_one_is_linear():
    fn, params, x, _ = _setup(degree=1, kernel_size=5)
    x2 = jnp.asarray(np.random.default_rng(9).normal(size=x.shape), jnp.float32)
    kv_mask = cases.padding_mask(2, 16)
    lhs = fn(2.5 * x - 1.5 * x2, kv_mask=kv_mask, **params)
    rhs = 2.5 * fn(x, kv_mask=kv_mask, **params) - 1.5 * fn(x2, kv_mask=kv_mask, **params)
    cases.assert_close(lhs, rhs, 1e-5, "superposition")  # measured 1.2e-6
    assert set(params) == {"in_proj", "mix_a", "out_proj"}  # no mix_b at degree 1


def test_each_term_is_homogeneous_of_its_degree():
    """Scaling x by s scales term i by s^(i+1); the output is the polynomial Σ_i s^(i+1) T_i."""
    _, params, x, _ = _setup(degree=3)
    s = 1.7
    terms = padre.padre_terms(x, degree=3, kernel_size=3, **params)
    scaled = padre.padre_terms(s * x, degree=3, kernel_size=3, **params)
    for i, (t, ts) in enumerate(zip(terms, scaled, strict=True)):
        cases.assert_close(
            ts, s ** (i + 1) * t, 2e-5 * s**3, f"term {i}"
        )  # measured <= 7.6e-6 (term 2)
    out = padre.padre_mixing(s * x, degree=3, kernel_size=3, **params)
    cases.assert_close(out, sum(s ** (i + 1) * t for i, t in enumerate(terms)), 1e-4, "sum")


def test_causal_future_does_not_leak():
    fn, params, x, _ = _setup(degree=3, kernel_size=3)
    t0 = 8
    y = fn(x, is_causal=True, **params)
    y2 = fn(x.at[:, t0 + 1 :].set(9.0), is_causal=True, **params)
    np.testing.assert_array_equal(np.asarray(y[:, : t0 + 1]), np.asarray(y2[:, : t0 + 1]))
    assert float(jnp.max(jnp.abs(y[:, t0 + 1 :] - y2[:, t0 + 1 :]))) > 1e-2


@pytest.mark.parametrize("is_causal", [False, True])
def test_packing_equals_segments_run_alone(is_causal):
    fn, params, x, _ = _setup(B=1, kernel_size=5)
    seg = jnp.asarray([[1] * 6 + [2] * 4 + [3] * 5 + [0]], jnp.int32)
    out = fn(x, is_causal=is_causal, q_segment_ids=seg, **params)
    for a, b in [(0, 6), (6, 10), (10, 15)]:
        alone = fn(x[:, a:b], is_causal=is_causal, **params)
        cases.assert_close(out[:, a:b], alone, 1e-5, f"segment [{a}, {b})")  # measured 0 (bitwise)


def test_pad_values_do_not_matter():
    fn, params, x, _ = _setup(seed=4)
    kv_mask = cases.padding_mask(2, 16)
    real = np.asarray(kv_mask)
    y = fn(x, kv_mask=kv_mask, **params)
    y2 = fn(jnp.where(kv_mask[:, :, None], x, 40.0), kv_mask=kv_mask, **params)
    np.testing.assert_array_equal(np.asarray(y2)[real], np.asarray(y)[real])


def test_without_tensors_the_polynomial_is_elementwise_powers():
    x = jnp.asarray(np.random.default_rng(3).normal(size=(2, 8, 4)), jnp.float32)
    cases.assert_close(padre.padre_mixing(x), x + x**2 + x**3, 1e-5, "stand-ins")


def test_refusals():
    _, params, x, _ = _setup()
    with pytest.raises(errors.UnsupportedFeatureError, match="'padre'.*bias"):
        padre.padre_mixing(x, bias=jnp.zeros((1, 1, 16, 16)), **params)
    with pytest.raises(errors.UnsupportedFeatureError, match="'padre'.*dropout"):
        padre.padre_mixing(x, dropout_rate=0.1, dropout_rng=jax.random.key(0), **params)


def battery_exact(fn: core.BoundAttention, x: np.ndarray, params: dict) -> None:
    """mixer_battery_test's EXACT check: the float64 polynomial, unmasked and causal."""
    hp = {"degree": 3, "kernel_size": 3, **dict(fn.hparams)}
    for is_causal in (False, True):
        out = fn(jnp.asarray(x, jnp.float32), is_causal=is_causal, **params)
        ref = numpy_padre(x, params, is_causal=is_causal, **hp)
        cases.assert_close(out, ref, 1e-5, "padre vs float64 polynomial")
