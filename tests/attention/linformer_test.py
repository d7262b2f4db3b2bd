"""Linformer: the output equals softmax over the explicitly projected keys and values, the
sharing options, and padding rows zeroed before projecting."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn.attention import linformer, softmax

B, T, N, K, H, P = 2, 12, 4, 2, 8, 5


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    q = jnp.asarray(rng.normal(size=(B, T, N, H)), jnp.float32)
    k, v = (jnp.asarray(rng.normal(size=(B, T, K, H)), jnp.float32) for _ in range(2))
    e, f = (jnp.asarray(rng.normal(size=(K, P, T)) / np.sqrt(T), jnp.float32) for _ in range(2))
    return q, k, v, e, f


def test_equals_softmax_over_projected_keys_and_values():
    q, k, v, e, f = _inputs(1)
    out = linformer.linformer_attention(q, k, v, num_projections=P, proj_key=e, proj_value=f)
    k_proj = jnp.einsum("KPS,BSKH->BPKH", e, k)
    v_proj = jnp.einsum("KPS,BSKH->BPKH", f, v)
    np.testing.assert_allclose(out, softmax.softmax_attention(q, k_proj, v_proj), atol=2e-6)


def test_share_kv_and_share_heads():
    q, k, v, e, _ = _inputs(2)
    shared = linformer.linformer_attention(q, k, v, num_projections=P, share_kv=True, proj_key=e)
    explicit = linformer.linformer_attention(q, k, v, num_projections=P, proj_key=e, proj_value=e)
    np.testing.assert_allclose(shared, explicit, atol=1e-6)
    one = e[0]  # [P, S], used by every kv head
    heads = linformer.linformer_attention(
        q, k, v, num_projections=P, share_heads=True, proj_key=one, proj_value=one
    )
    tiled = jnp.broadcast_to(one, (K, P, T))
    np.testing.assert_allclose(
        heads,
        linformer.linformer_attention(q, k, v, num_projections=P, proj_key=tiled, proj_value=tiled),
        atol=1e-6,
    )


def test_padded_rows_are_zeroed_before_projecting():
    q, k, v, e, f = _inputs(3)
    kv_mask = jnp.asarray(np.arange(T)[None] < np.array([[T], [7]]))
    out = linformer.linformer_attention(
        q, k, v, kv_mask=kv_mask, num_projections=P, proj_key=e, proj_value=f
    )
    zero = kv_mask[:, :, None, None]
    expected = linformer.linformer_attention(
        q, jnp.where(zero, k, 0), jnp.where(zero, v, 0), num_projections=P, proj_key=e,
        proj_value=f,
    )  # fmt: skip
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_projection_shorter_than_the_input_raises():
    q, k, v, e, f = _inputs(4)
    with pytest.raises(ValueError, match="exceeds the length"):
        linformer.linformer_attention(
            q, k, v, num_projections=P, proj_key=e[..., :8], proj_value=f[..., :8]
        )
