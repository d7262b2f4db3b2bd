"""Sinkhorn attention: the balancing operator, hard permutations against dense block masks,
padding-length invariance and the layer's declared sorting network."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors
from jaxattn.attention import get_attention_fn, sinkhorn, softmax
from jaxattn.layers import attention as attention_layer

B, T, N, H, b = 2, 16, 2, 8, 4  # 4 blocks of 4
n = T // b


def test_sinkhorn_operator_is_doubly_stochastic_on_the_kept_block():
    logits = jnp.asarray(np.random.default_rng(0).normal(size=(3, 5, 5)) * 3, jnp.float32)
    keep = np.ones((3, 5, 5), bool)
    keep[1, 3:, :] = keep[1, :, 3:] = False  # example 1: only the leading 3 x 3 block is real
    p = np.asarray(sinkhorn.sinkhorn(logits, jnp.asarray(keep), iterations=200))
    np.testing.assert_allclose(p[[0, 2]].sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(p[[0, 2]].sum(-2), 1.0, atol=1e-5)
    np.testing.assert_allclose(p[1, :3, :3].sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(p[1, :3, :3].sum(-2), 1.0, atol=1e-5)
    assert np.all(p[1][~keep[1]] == 0)
    # Zero iterations: exp of the (masked) logits; one 1 x 1 block is exactly 1.
    np.testing.assert_allclose(sinkhorn.sinkhorn(logits, True, 0), jnp.exp(logits), rtol=1e-6)
    one = sinkhorn.sinkhorn(jnp.asarray([[[7.3]]]), True, 3)
    assert float(one[0, 0, 0]) == 1.0


def _inputs(seed: int, perm: list[int], alpha: float = 40.0):
    """q, k, v, and sorting parameters for which P is (numerically) the permutation `perm`.

    Block i's keys sum to alpha·e_i (H >= n), and column j of the sort kernel is e_{perm⁻¹(j)},
    so R[i, j] = alpha·[perm(i) == j].
    """
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(B, T, N, H))
    v = rng.normal(size=(B, T, N, H))
    k = rng.normal(size=(B, n, b, N, H))
    k -= k.mean(axis=2, keepdims=True)
    k += (alpha / b) * np.eye(H)[:n][None, :, None, None, :]  # block sums alpha·e_i
    k = k.reshape(B, T, N, H)
    inverse = np.argsort(perm)
    kernel = np.zeros((N, H, n), np.float32)
    kernel[:, inverse, np.arange(n)] = 1.0  # kernel[:, perm⁻¹(j), j] = 1
    params = {"sort_kernel": jnp.asarray(kernel), "sort_bias": jnp.zeros((N, n))}
    return (*(jnp.asarray(x, jnp.float32) for x in (q, k, v)), params)


def _block_mask_reference(q, k, v, perm, kv_mask=None):
    """Dense softmax where query block i sees key blocks i and perm(i)."""
    block = np.arange(T) // b
    allowed = (block[None, :] == block[:, None]) | (
        block[None, :] == np.asarray(perm)[block][:, None]
    )  # [T, S]
    bias = jnp.where(jnp.asarray(allowed), 0.0, -1e30)[None, None]
    return softmax.softmax_attention(q, k, v, bias=bias, kv_mask=kv_mask)


@pytest.mark.parametrize("perm", [[0, 1, 2, 3], [2, 0, 3, 1]], ids=["identity", "shuffle"])
def test_hard_permutation_equals_block_masked_softmax(perm):
    """Identity permutation = block-local attention; another permutation = own + sorted block."""
    q, k, v, params = _inputs(1, perm)
    out = sinkhorn.sinkhorn_attention(
        q, k, v, block_size=b, temperature=0.05, sinkhorn_iterations=5, **params
    )
    np.testing.assert_allclose(out, _block_mask_reference(q, k, v, perm), atol=1e-5)


def test_uniform_sort_attends_to_the_block_mean():
    """R = 0 gives P = 1/n: the sorted block is the mean of all blocks (keys and values)."""
    rng = np.random.default_rng(2)
    q, k, v = (jnp.asarray(rng.normal(size=(B, T, N, H)), jnp.float32) for _ in range(3))
    params = {"sort_kernel": jnp.zeros((N, H, n)), "sort_bias": jnp.zeros((N, n))}
    out = sinkhorn.sinkhorn_attention(q, k, v, block_size=b, **params)
    kb, vb = (np.asarray(x).reshape(B, n, b, N, H) for x in (k, v))
    keys = np.concatenate([kb, np.broadcast_to(kb.mean(1, keepdims=True), kb.shape)], axis=2)
    values = np.concatenate([vb, np.broadcast_to(vb.mean(1, keepdims=True), vb.shape)], axis=2)
    qb = np.asarray(q).reshape(B, n, b, N, H)
    logits = np.einsum("biqnh,bicnh->binqc", qb, keys) / np.sqrt(H)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    expected = np.einsum("binqc,bicnh->biqnh", p, values).reshape(B, T, N, H)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_padded_equals_unpadded_prefix():
    """A length-L sequence padded to T gives the same real outputs as the length-L run
    (pads are zeroed before sorting and fully padded blocks drop out of P)."""
    rng = np.random.default_rng(3)
    q, k, v = (jnp.asarray(rng.normal(size=(1, T, N, H)), jnp.float32) for _ in range(3))
    spec = sinkhorn.param_specs(
        {"block_size": b}, num_heads=N, num_kv_heads=N, head_dim=H, kv_length=T
    )
    params = {name: s.init(jax.random.key(i), s.shape) for i, (name, s) in enumerate(spec.items())}
    params["sort_bias"] = jnp.asarray(rng.normal(size=(N, n)), jnp.float32)
    for L in (6, 11):  # partial last block; 2 or 1 fully padded blocks
        mask = jnp.arange(T)[None] < L
        padded = sinkhorn.sinkhorn_attention(q, k, v, kv_mask=mask, block_size=b, **params)
        alone = sinkhorn.sinkhorn_attention(q[:, :L], k[:, :L], v[:, :L], block_size=b, **params)
        np.testing.assert_allclose(padded[:, :L], alone, atol=1e-5)


def test_length_not_a_multiple_of_the_block_size():
    q, k, v, params = _inputs(4, [0, 1, 2, 3])
    L = 14  # blocks of 4, 4, 4, 2
    out = sinkhorn.sinkhorn_attention(
        q[:, :L], k[:, :L], v[:, :L], block_size=b, temperature=0.05, **params
    )
    assert out.shape == (B, L, N, H)
    # The internal padding of the last block acts like key padding of a length-16 sequence.
    expected = _block_mask_reference(
        q, k, v, [0, 1, 2, 3], kv_mask=jnp.broadcast_to(jnp.arange(T) < L, (B, T))
    )
    np.testing.assert_allclose(out, expected[:, :L], atol=1e-5)


def test_bad_inputs_raise():
    q, k, v, params = _inputs(5, [0, 1, 2, 3])
    with pytest.raises(errors.ConfigError, match="temperature"):
        sinkhorn.sinkhorn_attention(q, k, v, block_size=b, temperature=0.0, **params)
    with pytest.raises(ValueError, match="longest sequence"):
        sinkhorn.sinkhorn_attention(q, k, v, block_size=2, **params)  # 8 blocks, kernel has 4
    with pytest.raises(ValueError, match="sort_kernel"):
        sinkhorn.sinkhorn_attention(q, k, v, block_size=b)


def test_layer_creates_the_sorting_network():
    fn = get_attention_fn({"kind": "sinkhorn", "sinkhorn": {"block_size": 5}})
    layer = attention_layer.MultiHeadAttention(
        attention=fn, num_heads=4, num_kv_heads=2, head_dim=H
    )
    x = jnp.ones((B, 22, 16))
    variables = layer.init(jax.random.key(0), x)
    params = nn.unbox(variables["params"])
    assert params["sort_kernel"].shape == (2, H, 5)  # ⌈22 / 5⌉ blocks per kv head
    assert params["sort_bias"].shape == (2, 5)
    y = layer.apply(variables, x, kv_mask=jnp.arange(22)[None] < jnp.array([[22], [9]]))
    assert y.shape == (B, 22, 16) and bool(jnp.all(jnp.isfinite(y)))
