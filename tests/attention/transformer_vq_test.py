"""Transformer-VQ: the block (causal) and merged (bidirectional) forms equal dense softmax over the
quantised keys, a codebook holding the keys gives exact softmax, the EMA codebook update formula,
straight-through gradients, refusals."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors
from jaxattn.attention import softmax, transformer_vq
from tests.attention import battery_cases as cases

vq = jax.jit(
    transformer_vq.transformer_vq_attention,
    static_argnames=("is_causal", "block_size", "ema_decay", "num_codes"),
)


def _inputs(B=2, T=16, S=16, N=4, K=2, H=8, C=6, seed=0):
    q, k, v = cases.qkv(B, T, S, N, K, H, seed=seed)
    rng = np.random.default_rng(seed + 10)
    cs = jnp.asarray(rng.normal(size=(K, C, H)), jnp.float32)
    cc = jnp.asarray(rng.uniform(0.5, 3.0, size=(K, C)), jnp.float32)
    return q, k, v, {"codebook_sum": cs, "codebook_count": cc}


@pytest.mark.parametrize("is_causal", [False, True], ids=["merged", "causal_blocks"])
def test_equals_dense_softmax_over_quantised_keys(is_causal):
    q, k, v, state = _inputs()
    kv_mask = cases.padding_mask(2, 16)
    ref = transformer_vq.dense_vq_attention(q, k, v, is_causal=is_causal, kv_mask=kv_mask, **state)
    for L in (3, 4):  # blocks that do not divide T; several blocks of 4
        out, _ = vq(q, k, v, is_causal=is_causal, kv_mask=kv_mask, block_size=L, **state)
        cases.assert_close(
            cases.real_rows(out, kv_mask), cases.real_rows(ref, kv_mask), 1e-5, f"L={L}"
        )  # measured 3.0e-7


def test_codebook_of_the_keys_gives_exact_softmax():
    """C = B·S codewords, one per key (S >= T): quantisation is the identity."""
    B, T, K, H = 2, 16, 2, 8
    q, k, v, _ = _inputs(B=B, T=T, K=K, H=H)
    state = {
        "codebook_sum": jnp.transpose(k, (2, 0, 1, 3)).reshape(K, B * T, H),
        "codebook_count": jnp.ones((K, B * T)),
    }
    for is_causal in (False, True):
        out, _ = vq(q, k, v, is_causal=is_causal, block_size=4, **state)
        ref = softmax.softmax_attention(q, k, v, is_causal=is_causal)
        cases.assert_close(out, ref, 1e-5, f"causal={is_causal}")  # measured 3.0e-7


def test_ema_update_formula():
    q, k, v, state = _inputs(seed=1)
    kv_mask = cases.padding_mask(2, 16)
    gamma = 0.9
    _, new = vq(q, k, v, kv_mask=kv_mask, ema_decay=gamma, **state)
    cs, cc = (np.asarray(state[n], np.float64) for n in ("codebook_sum", "codebook_count"))
    c = cs / np.maximum(cc, 0.01)[..., None]
    kk = np.asarray(k, np.float64)
    real = np.asarray(kv_mask)
    sums, counts = np.zeros_like(cs), np.zeros_like(cc)
    for b in range(2):
        for s in range(16):
            if not real[b, s]:
                continue
            for h in range(2):
                z = np.argmin(((kk[b, s, h] - c[h]) ** 2).sum(-1))
                sums[h, z] += kk[b, s, h]
                counts[h, z] += 1
    cases.assert_close(new["codebook_sum"], gamma * cs + (1 - gamma) * sums, 1e-5, "sum")
    cases.assert_close(new["codebook_count"], gamma * cc + (1 - gamma) * counts, 1e-6, "count")
    _, frozen = vq(q, k, v, ema_decay=1.0, **state)
    np.testing.assert_array_equal(np.asarray(frozen["codebook_sum"]), np.asarray(cs, np.float32))


@pytest.mark.slow
def test_gradients():
    """Values: the same gradient as dense. Keys: straight-through; in the merged form each key gets
    its code's mean, so per code the summed gradient equals dense's straight-through sum."""
    q, k, v, state = _inputs(seed=2)
    ct = jnp.asarray(np.random.default_rng(3).normal(size=q.shape), jnp.float32)

    def loss(fn, **kw):
        return lambda q, k, v: jnp.sum(fn(q, k, v, **kw, **state) * ct)

    dense = jax.grad(loss(transformer_vq.dense_vq_attention), argnums=(1, 2))(q, k, v)
    merged = jax.grad(loss(lambda *a, **kw: vq(*a, **kw)[0]), argnums=(1, 2))(q, k, v)
    cases.assert_close(merged[1], dense[1], 1e-5, "dv merged")
    causal = jax.grad(loss(lambda *a, **kw: vq(*a, is_causal=True, block_size=4, **kw)[0]), 2)
    dense_causal = jax.grad(loss(transformer_vq.dense_vq_attention, is_causal=True), 2)
    cases.assert_close(causal(q, k, v), dense_causal(q, k, v), 1e-5, "dv causal")
    codebook = transformer_vq.codebook_of(state["codebook_sum"], state["codebook_count"])
    member = jax.nn.one_hot(transformer_vq.nearest_code(k, codebook), 6)  # [B, S, K, C]
    per_code = jnp.einsum("BSKC,BSKH->BKCH", member, merged[0])
    cases.assert_close(per_code, jnp.einsum("BSKC,BSKH->BKCH", member, dense[0]), 1e-5, "dk")
    assert float(jnp.max(jnp.abs(dense[0]))) > 1e-3


@pytest.mark.slow
def test_packing_and_cross_attention_use_the_dense_form():
    q, k, v, state = _inputs(seed=4)
    ids = np.zeros((2, 16), np.int32)
    for i, (a, b) in enumerate([(0, 5), (5, 12), (12, 15)]):
        ids[:, a:b] = i + 1
    out, _ = vq(q, k, v, is_causal=True, q_segment_ids=jnp.asarray(ids), **state)
    alone, _ = vq(q[:, 5:12], k[:, 5:12], v[:, 5:12], is_causal=True, block_size=4, **state)
    cases.assert_close(out[:, 5:12], alone, 1e-5, "packed segment")
    q2, k2, v2, _ = _inputs(T=12, S=16, seed=5)
    for is_causal in (False, True):
        out, _ = vq(q2, k2, v2, is_causal=is_causal, **state)
        ref = transformer_vq.dense_vq_attention(q2, k2, v2, is_causal=is_causal, **state)
        cases.assert_close(out, ref, 1e-5, f"cross, causal={is_causal}")


def test_refusals_and_state_specs():
    q, k, v, state = _inputs(T=8, S=8)
    with pytest.raises(errors.UnsupportedFeatureError, match="'transformer_vq'.*bias"):
        transformer_vq.transformer_vq_attention(q, k, v, bias=jnp.zeros((1, 1, 8, 8)), **state)
    with pytest.raises(errors.UnsupportedFeatureError, match="'transformer_vq'.*dropout"):
        transformer_vq.transformer_vq_attention(
            q, k, v, dropout_rate=0.1, dropout_rng=jax.random.key(0), **state
        )
    with pytest.raises(ValueError, match="codebook"):
        transformer_vq.transformer_vq_attention(q, k, v)
    with pytest.raises(errors.ConfigError):
        transformer_vq.transformer_vq_attention(q, k, v, ema_decay=1.5, **state)
    specs = transformer_vq.state_specs(
        {"num_codes": 6}, num_heads=4, num_kv_heads=2, head_dim=8, kv_length=16
    )
    assert specs["codebook_sum"].shape == (2, 6, 8) and specs["codebook_count"].shape == (2, 6)
