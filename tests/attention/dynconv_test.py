"""dynconv: a constant predicted kernel equals lightconv, the per-position kernels equal explicit
banded T×T matrices (float64), causality, packing, DropConnect on the predicted kernels."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn.attention import core
from tests.attention import battery_cases as cases
from tests.attention.lightconv_test import _setup, banded_matrices, numpy_mixer


@pytest.mark.parametrize("is_causal", [False, True])
def test_constant_predicted_kernel_equals_lightconv(is_causal):
    """kernel_proj = 0 makes the prediction the bias alone, the same kernel at every position."""
    fn, params, x, _ = _setup("dynconv", kernel_size=5)
    light, light_params, _, _ = _setup("lightconv", kernel_size=5)
    kv_mask = cases.padding_mask(2, 16)
    kernel = jax.random.normal(jax.random.key(7), (2, 5))
    dyn_params = dict(params, kernel_proj=jnp.zeros_like(params["kernel_proj"]), kernel_bias=kernel)
    light_params = dict(kernel=kernel, in_proj=params["in_proj"], out_proj=params["out_proj"])
    out = fn(x, is_causal=is_causal, kv_mask=kv_mask, **dyn_params)
    ref = light(x, is_causal=is_causal, kv_mask=kv_mask, **light_params)
    cases.assert_close(out, ref, 1e-6, "dynconv(constant kernel) vs lightconv")  # measured 0


@pytest.mark.parametrize("is_causal", [False, True])
def test_equals_per_position_banded_matrices(is_causal):
    fn, params, x, hp = _setup("dynconv", kernel_size=4)
    kv_mask = cases.padding_mask(2, 16)
    out = jax.jit(lambda x: fn(x, is_causal=is_causal, kv_mask=kv_mask, **params))(x)
    ref = numpy_mixer(x, params, is_causal=is_causal, kv_mask=kv_mask, dynamic=True, **hp)
    cases.assert_close(out, ref, 1e-5, "dynconv vs banded matrices")  # measured 1.8e-7


def test_causal_future_does_not_leak():
    fn, params, x, _ = _setup("dynconv", kernel_size=5)
    t0 = 6
    y = fn(x, is_causal=True, **params)
    y2 = fn(x.at[:, t0 + 1 :].set(-30.0), is_causal=True, **params)
    np.testing.assert_array_equal(np.asarray(y[:, : t0 + 1]), np.asarray(y2[:, : t0 + 1]))
    assert float(jnp.max(jnp.abs(y[:, t0 + 1 :] - y2[:, t0 + 1 :]))) > 1e-2


def test_packing_equals_segments_run_alone():
    fn, params, x, _ = _setup("dynconv", B=1, kernel_size=3)
    seg = jnp.asarray([[1] * 3 + [2] * 9 + [3] * 4], jnp.int32)
    out = fn(x, q_segment_ids=seg, **params)
    for a, b in [(0, 3), (3, 12), (12, 16)]:
        cases.assert_close(out[:, a:b], fn(x[:, a:b], **params), 1e-6, f"segment [{a}, {b})")


def test_dropconnect_on_the_predicted_kernels():
    fn, params, x, hp = _setup("dynconv", use_projections=False, kernel_size=3)
    rng = jax.random.key(5)
    dropped = fn(x, dropout_rate=0.25, dropout_rng=rng, **params)
    np.testing.assert_array_equal(dropped, fn(x, dropout_rate=0.25, dropout_rng=rng, **params))
    np.testing.assert_array_equal(
        fn(x, dropout_rate=0.0, dropout_rng=rng, **params), fn(x, **params)
    )
    # Reproduce: the keep mask is drawn at the predicted kernels' shape [B, T, num_kernels, k].
    keep = np.asarray(core.dropout_keep(rng, 0.25, (2, 16, 2, 3)))
    logits = np.einsum(
        "btd,dhj->bthj", np.asarray(x, np.float64), np.asarray(params["kernel_proj"])
    )
    logits = logits + np.asarray(params["kernel_bias"])
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w = np.where(keep, w / w.sum(-1, keepdims=True) / 0.75, 0.0)
    M = banded_matrices(w, 16, False)  # [B, h, T, T]
    ref = np.einsum("bhts,bshc->bthc", M, np.asarray(x, np.float64).reshape(2, 16, 2, 4))
    cases.assert_close(dropped, ref.reshape(2, 16, 8), 1e-5, "DropConnect reference")
