"""Agent attention: equals a float64 loop of the paper's two softmaxes and the explicit T×S
form; the implied T×S matrix is row-stochastic; padding equals the unpadded sequence; the pooling
is adaptive average pooling over the real tokens."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jaxattn.attention import agent
from tests.attention import battery_cases as cases

B, T, N, K, H, A = 3, 16, 4, 2, 8, 5


def numpy_agent(q, k, v, b1, b2, a):
    """Per example and head in float64: agents by torch's adaptive_avg_pool1d, two softmaxes."""
    Bq, L, Nq, Hq = q.shape
    G = Nq // k.shape[2]
    out = np.zeros(q.shape)
    soft = lambda x: (
        np.exp(x - x.max(-1, keepdims=True))
        / np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True)
    )  # noqa: E501, E731
    for b in range(Bq):
        for n in range(Nq):
            qn, kn, vn = q[b, :, n], k[b, :, n // G], v[b, :, n // G]
            pooled = torch.nn.functional.adaptive_avg_pool1d(torch.tensor(qn.T)[None], a)
            ag = pooled[0].numpy().T  # [a, H]
            va = soft(ag @ kn.T / np.sqrt(Hq) + b1[n, :, :L]) @ vn
            out[b, :, n] = soft(qn @ ag.T / np.sqrt(Hq) + b2[n, :L]) @ va
    return out


def test_equals_two_softmaxes_in_float64_and_the_explicit_matrix():
    q, k, v = cases.qkv(B, T, T, N, K, H, seed=0)
    t = agent.example_tensors(N, A, T)
    out = jax.jit(
        lambda q, k, v: agent.agent_attention(q, k, v, num_agents=A, conv_kernel_size=0, **t)
    )(q, k, v)
    b1, b2 = np.asarray(t["agent_key_bias"]), np.asarray(t["agent_query_bias"])
    ref = numpy_agent(*(np.asarray(x, np.float64) for x in (q, k, v)), b1, b2, A)
    cases.assert_close(out, ref, 1e-5, "agent vs float64 loop")  # measured 4.8e-7
    explicit = agent.explicit_agent_attention(q, k, v, num_agents=A, **t)
    cases.assert_close(out, explicit, 1e-6, "agent vs explicit T×S")  # measured 1.2e-7


def test_implied_matrix_is_row_stochastic():
    """out for v = one-hot columns is the implied T×S matrix M: rows sum to 1, entries >= 0,
    padded columns 0."""
    q, k, _ = cases.qkv(B, T, T, 1, 1, T, seed=1)
    v = jnp.broadcast_to(jnp.eye(T)[None, :, None, :], (B, T, 1, T))  # value s = e_s
    kv_mask = cases.padding_mask(B, T)
    m = agent.agent_attention(q, k, v, kv_mask=kv_mask, num_agents=A, conv_kernel_size=0)
    m = np.asarray(m[:, :, 0])  # [B, T, S]
    np.testing.assert_allclose(m.sum(-1), 1.0, atol=1e-6)
    assert m.min() >= 0
    assert np.all(m[~np.asarray(kv_mask)[:, None, :].repeat(T, 1)] == 0)


@pytest.mark.slow  # 71 s in CI's default tier (2026-12-06 --durations)
def test_padding_equals_the_unpadded_sequence_and_pooling():
    q, k, v = cases.qkv(B, T, T, N, K, H, seed=2)
    kv_mask = cases.padding_mask(B, T)
    t = agent.example_tensors(N, A, T)
    t.update({"dwc_kernel": 0.3 * jnp.ones((K, H, 3)), "dwc_bias": jnp.zeros((K, H))})
    out = agent.agent_attention(q, k, v, kv_mask=kv_mask, num_agents=A, conv_kernel_size=3, **t)
    for b, length in enumerate(np.asarray(kv_mask).sum(1)):
        alone = agent.agent_attention(
            q[b : b + 1, :length], k[b : b + 1, :length], v[b : b + 1, :length],
            num_agents=A, conv_kernel_size=3, **t,
        )  # fmt: skip
        cases.assert_close(out[b : b + 1, :length], alone, 1e-6, f"example {b}")
    # The pooling matrix is torch's adaptive average pooling of the real tokens.
    for b, length in enumerate(np.asarray(kv_mask).sum(1)):
        p = np.asarray(agent.pooling_matrix(kv_mask, A)[b, :, :length])  # [a, L]
        x = torch.eye(int(length), dtype=torch.float64)[None]  # pooling each unit vector
        expected = torch.nn.functional.adaptive_avg_pool1d(x, A)[0].numpy().T  # [a, L]
        np.testing.assert_allclose(p, expected, atol=1e-7)
