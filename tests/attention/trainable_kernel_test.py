"""Trainable-kernel linear attention: φ frozen to elu + 1 (W₂ = 0, b₂ = 0) reproduces `linear`,
and with a random MLP the scan (bidirectional, causal, packed, cross) equals the explicit
quadratic form; the features stay positive."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn.attention import linear, trainable_kernel
from tests.attention import battery_cases as cases

R = 6


def _mlp(K, H, seed=0, w2_scale=0.5):
    rngs = jax.random.split(jax.random.key(seed), 4)
    return {
        "kernel_w1": jax.random.normal(rngs[0], (K, H, R)),
        "kernel_b1": jax.random.normal(rngs[1], (K, R)),
        "kernel_w2": w2_scale * jax.random.normal(rngs[2], (K, R, H)),
        "kernel_b2": 0.3 * jax.random.normal(rngs[3], (K, H)),
    }


def _ids(B, T):
    ids = np.zeros((B, T), np.int32)
    ids[:, :5], ids[:, 5:12], ids[:, 12:15] = 1, 2, 3
    return jnp.asarray(ids)


MASKS = {
    "none": lambda B, T: {},
    "causal": lambda B, T: {"is_causal": True},
    "padding": lambda B, T: {"kv_mask": cases.padding_mask(B, T)},
    "packed_causal": lambda B, T: {"q_segment_ids": _ids(B, T), "is_causal": True},
}


@pytest.mark.parametrize("masks", list(MASKS))
def test_frozen_elu_plus_one_reproduces_linear(masks):
    q, k, v = cases.qkv(2, 16, 16, 4, 2, 8, seed=0)
    kw = MASKS[masks](2, 16)
    tensors = {**_mlp(2, 8), "kernel_w2": jnp.zeros((2, R, 8)), "kernel_b2": jnp.zeros((2, 8))}
    out = trainable_kernel.trainable_kernel_attention(q, k, v, chunk_size=4, **kw, **tensors)
    ref = linear.linear_attention(q, k, v, chunk_size=4, **kw)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(ref))  # measured: bitwise equal


@pytest.mark.parametrize("masks", list(MASKS))
def test_linear_form_equals_quadratic_form(masks):
    q, k, v = cases.qkv(3, 16, 16, 4, 2, 8, seed=1)
    kw = MASKS[masks](3, 16)
    tensors = _mlp(2, 8, seed=1)
    fn = jax.jit(lambda q, k, v: trainable_kernel.trainable_kernel_attention(
        q, k, v, chunk_size=4, **kw, **tensors))  # fmt: skip
    out = fn(q, k, v)
    ref = trainable_kernel.quadratic_trainable_kernel_attention(q, k, v, **kw, **tensors)
    if "kv_mask" in kw:
        out, ref = cases.real_rows(out, kw["kv_mask"]), cases.real_rows(ref, kw["kv_mask"])
    cases.assert_close(out, ref, 1e-6, masks)  # measured <= 3.6e-7


def test_cross_attention_and_positive_features():
    q, k, v = cases.qkv(2, 24, 16, 4, 2, 8, seed=2)
    tensors = _mlp(2, 8, seed=2, w2_scale=3.0)  # a large residual: φ far from elu + 1
    out = trainable_kernel.trainable_kernel_attention(q, k, v, **tensors)
    ref = trainable_kernel.quadratic_trainable_kernel_attention(q, k, v, **tensors)
    cases.assert_close(out, ref, 1e-6, "cross")
    mlp = tuple(tensors[n] for n in trainable_kernel.TENSORS)
    # Positive in exact arithmetic; elu(x) + 1 rounds to 0 in float32 below x ≈ -17 (this large
    # residual gets there), never below 0.
    assert bool(jnp.all(trainable_kernel.feature_map(10.0 * k, mlp, head_axis=2) >= 0))
