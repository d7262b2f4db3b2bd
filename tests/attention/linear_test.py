"""Linear attention (elu+1): the chunked causal scan against the prefix-sum reference, chunk-size
independence, and the recurrent decoding step against the parallel causal form."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn.attention import linear

B, T, N, K, H = 2, 13, 4, 2, 8  # T = 13: no chunk size below divides it


def _qkv(seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(B, T, N, H), (B, T, K, H), (B, T, K, H)]
    return tuple(jnp.asarray(rng.normal(size=s), jnp.float32) for s in shapes)


@pytest.mark.parametrize("chunk_size", [1, 4, 5, 13, 64])
def test_chunked_causal_scan_equals_prefix_sums(chunk_size):
    q, k, v = _qkv(1)
    kv_mask = jnp.asarray(np.arange(T)[None] < np.array([[T], [9]]))
    out = linear.linear_attention(q, k, v, is_causal=True, kv_mask=kv_mask, chunk_size=chunk_size)
    phi_q = linear.elu_feature_map(q.reshape(B, T, K, N // K, H))  # default scale: 1
    expected = linear.causal_prefix_sum_attention(
        phi_q, linear.elu_feature_map(k), v, kv_valid=kv_mask
    ).reshape(B, T, N, H)
    np.testing.assert_allclose(out, expected, atol=2e-6)


def test_bidirectional_equals_the_explicit_kernel_matrix():
    q, k, v = _qkv(2)
    kv_mask = jnp.asarray(np.arange(T)[None] < np.array([[T], [7]]))
    out = linear.linear_attention(q, k, v, kv_mask=kv_mask)
    expected = linear.quadratic_linear_attention(q, k, v, kv_mask=kv_mask)
    np.testing.assert_allclose(out, expected, atol=2e-6)


def test_recurrent_step_reproduces_the_causal_parallel_form():
    """Decoding token by token with the O(H²) state gives the causal outputs of the whole
    sequence: the paper's 'transformers are RNNs' identity."""
    q, k, v = _qkv(3)
    full = linear.linear_attention(q, k, v, is_causal=True, chunk_size=4)

    def step(state, inputs):
        return linear.linear_attention_step(state, *inputs)

    state0 = linear.init_linear_attention_state(B, K, H)
    xs = tuple(jnp.moveaxis(x, 1, 0) for x in (q, k, v))  # [T, B, ., H]
    state, outs = jax.lax.scan(step, state0, xs)
    np.testing.assert_allclose(jnp.moveaxis(outs, 0, 1), full, atol=2e-6)
    # The final state is the sum over all positions.
    phi_k = linear.elu_feature_map(k)
    np.testing.assert_allclose(state.k_sum, phi_k.sum(1), rtol=1e-5)
    np.testing.assert_allclose(
        state.kv_sum, jnp.einsum("BSKF,BSKH->BKFH", phi_k, v), rtol=1e-5, atol=1e-5
    )
