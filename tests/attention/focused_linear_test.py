"""FLatten's focused linear attention: the focused map keeps ReLU's norm, p = 1 is ReLU linear
attention, and the scan (bidirectional, causal, packed) equals the explicit quadratic form of the
same features plus the conv as a banded matrix."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors
from jaxattn.attention import focused_linear, linear
from tests.attention import battery_cases as cases


def test_focused_map_keeps_the_relu_norm():
    """‖f_p(x)‖ = ‖relu(x) + ε‖ for every p (s = 0 gives softplus(0) = ln 2 as the divisor)."""
    x = jnp.asarray(np.random.default_rng(0).normal(size=(64, 8)) * 3.0, jnp.float32)
    s = jnp.zeros((8,))
    r = (jax.nn.relu(x) + focused_linear.EPS) / jnp.log(2.0)
    for p in (1.0, 2.0, 3.0, 7.0):
        f = focused_linear.focused_feature_map(x, s, p)
        np.testing.assert_allclose(
            jnp.linalg.norm(f, axis=-1), jnp.linalg.norm(r, axis=-1), rtol=1e-6
        )
    # p > 1 sharpens: the largest channel's share grows.
    share = lambda f: jnp.max(f, -1) / jnp.sum(f, -1)  # noqa: E731
    assert bool(jnp.all(share(focused_linear.focused_feature_map(x, s, 3.0)) >= share(r) - 1e-6))


@pytest.mark.parametrize("is_causal", [False, True])
def test_p1_is_relu_linear_attention(is_causal):
    """p = 1, no conv, s = 0: linear attention with φ(x) = relu(x) + ε (the scale cancels)."""
    q, k, v = cases.qkv(2, 16, 16, 4, 2, 8, seed=0)
    out = focused_linear.focused_linear_attention(
        q, k, v, is_causal=is_causal, focusing_factor=1.0, conv_kernel_size=0, chunk_size=4
    )
    relu = lambda x: jax.nn.relu(x) + focused_linear.EPS  # noqa: E731
    ref = linear.quadratic_feature_attention(
        relu(q.reshape(2, 16, 2, 2, 8)), relu(k), v, is_causal=is_causal
    ).reshape(out.shape)
    cases.assert_close(out, ref, 1e-6, "p = 1 vs ReLU linear attention")  # measured 2.4e-7


@pytest.mark.parametrize(
    "masks",
    ["none", "causal", "padding", "packed", "packed_causal"],
)
def test_linear_form_equals_quadratic_form(masks):
    B, T, N, K, H = 3, 16, 4, 2, 8
    q, k, v = cases.qkv(B, T, T, N, K, H, seed=1)
    ids = np.zeros((B, T), np.int32)
    ids[:, :5], ids[:, 5:12], ids[:, 12:15] = 1, 2, 3
    kw = {
        "none": {},
        "causal": {"is_causal": True},
        "padding": {"kv_mask": cases.padding_mask(B, T)},
        "packed": {"q_segment_ids": jnp.asarray(ids)},
        "packed_causal": {"q_segment_ids": jnp.asarray(ids), "is_causal": True},
    }[masks]
    tensors = focused_linear.example_tensors(K, H, 4)
    out = jax.jit(
        lambda q, k, v: focused_linear.focused_linear_attention(
            q, k, v, conv_kernel_size=4, chunk_size=4, **kw, **tensors
        )
    )(q, k, v)
    ref = focused_linear.quadratic_focused_linear_attention(q, k, v, **kw, **tensors)
    if "kv_mask" in kw:
        out, ref = cases.real_rows(out, kw["kv_mask"]), cases.real_rows(ref, kw["kv_mask"])
    cases.assert_close(out, ref, 2e-6, masks)  # measured <= 4.8e-7


def test_refusals():
    q, k, v = cases.qkv(1, 8, 12, 2, 2, 8)
    with pytest.raises(errors.UnsupportedFeatureError, match="'focused_linear'.*cross"):
        focused_linear.focused_linear_attention(q, k, v)
    with pytest.raises(errors.ConfigError):
        focused_linear.param_specs(
            {"conv_kernel_size": -1}, num_heads=2, num_kv_heads=2, head_dim=8, kv_length=8
        )
