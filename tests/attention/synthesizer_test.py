"""Synthesizer: both modes against numpy references, random-mode packing/causality, fixed R."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors
from jaxattn.attention import get_attention_fn, softmax, synthesizer
from jaxattn.layers import attention as attention_layer

B, T, N, H = 2, 12, 2, 4


def _inputs(seed: int = 0, S: int = T, K: int = N):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(B, T, N, H))
    k = rng.normal(size=(B, S, K, H))
    v = rng.normal(size=(B, S, K, H))
    return tuple(jnp.asarray(x, jnp.float32) for x in (q, k, v))


def _np_attention(logits: np.ndarray, keep: np.ndarray, v: np.ndarray) -> np.ndarray:
    """softmax over s of the kept logits [B, N, T, S], times v [B, S, N, H] -> [B, T, N, H]."""
    logits = np.where(keep, logits, -1e30)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p = p / p.sum(-1, keepdims=True)
    return np.einsum("bnts,bsnh->btnh", p, v)


def _specs(mode: str, **hparams):
    hparams = {"mode": mode, **hparams}
    specs = synthesizer.param_specs(hparams, num_heads=N, num_kv_heads=N, head_dim=H, kv_length=T)
    rngs = jax.random.split(jax.random.key(0), len(specs))
    return {
        name: spec.init(rng, spec.shape, jnp.float32)
        for rng, (name, spec) in zip(rngs, sorted(specs.items()), strict=True)
    }


def test_random_mode_equals_reference_with_causal_and_padding():
    q, k, v = _inputs()
    params = _specs("random")
    r = np.asarray(params["random_logits"])  # [N, T, T]
    kv_mask = np.arange(T)[None] < np.array([T, 7])[:, None]  # [B, S]
    out = synthesizer.synthesizer_attention(
        q, k, v, is_causal=True, kv_mask=jnp.asarray(kv_mask), **params
    )
    keep = np.tril(np.ones((T, T), bool))[None, None] & kv_mask[:, None, None, :]
    expected = _np_attention(np.broadcast_to(r[None], (B, N, T, T)), keep, np.asarray(v))
    real = kv_mask[:, :, None, None]
    np.testing.assert_allclose(np.where(real, out, 0), np.where(real, expected, 0), atol=1e-6)


def test_dense_mode_equals_reference():
    """logits[n, t] = W₂ relu(W₁ q_t + b₁) + b₂, the first S columns, then softmax · V."""
    q, k, v = _inputs(1)
    params = _specs("dense", dense_hidden_dim=6)
    params["dense_b1"] = 0.1 * jnp.arange(N * 6, dtype=jnp.float32).reshape(N, 6)
    params["dense_b2"] = 0.1 * jnp.arange(N * T, dtype=jnp.float32).reshape(N, T)
    w1, b1, w2, b2 = (
        np.asarray(params[n]) for n in ("dense_w1", "dense_b1", "dense_w2", "dense_b2")
    )
    assert w1.shape == (N, H, 6) and w2.shape == (N, 6, T)
    S = 9  # shorter than S_max = T: the first S synthesized columns are used
    k, v = k[:, :S], v[:, :S]
    out = synthesizer.synthesizer_attention(q, k, v, mode="dense", **params)
    hidden = np.maximum(np.einsum("btnh,nhf->btnf", np.asarray(q), w1) + b1, 0.0)
    logits = np.einsum("btnf,nfs->bnts", hidden, w2[:, :, :S]) + b2[None, :, None, :S]
    expected = _np_attention(logits, np.ones((1, 1, 1, S), bool), np.asarray(v))
    np.testing.assert_allclose(out, expected, atol=1e-5)
    with pytest.raises(ValueError, match="S_max"):
        synthesizer.synthesizer_attention(*_inputs(1, S=T + 1), mode="dense", **params)


@pytest.mark.parametrize("mode", ["random", "dense"])
def test_dense_and_random_ignore_keys(mode):
    q, k, v = _inputs(2)
    params = _specs(mode)
    out = synthesizer.synthesizer_attention(q, k, v, mode=mode, **params)
    out2 = synthesizer.synthesizer_attention(q, 10.0 * k + 3.0, v, mode=mode, **params)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(out2))
    if mode == "random":  # the query is not read either
        out3 = synthesizer.synthesizer_attention(-q, k, v, mode=mode, **params)
        np.testing.assert_array_equal(np.asarray(out), np.asarray(out3))


@pytest.mark.parametrize("is_causal", [False, True])
def test_random_mode_packing_equals_segments_alone(is_causal):
    """Packed rows read R at their position within the segment: R[:len, :len] for each."""
    q, k, v = _inputs(3)
    params = _specs("random")
    bounds = [(0, 4), (4, 11)]  # position 11 is padding
    ids = np.zeros((B, T), np.int32)
    for i, (a, b) in enumerate(bounds):
        ids[:, a:b] = i + 1
    out = synthesizer.synthesizer_attention(
        q, k, v, is_causal=is_causal, q_segment_ids=jnp.asarray(ids), **params
    )
    for a, b in bounds:
        alone = synthesizer.synthesizer_attention(
            q[:, a:b], k[:, a:b], v[:, a:b], is_causal=is_causal, **params
        )
        np.testing.assert_allclose(out[:, a:b], alone, atol=1e-6)


def test_random_mode_causal_leak():
    """Perturbing tokens at positions >= t0 leaves outputs before t0 unchanged."""
    q, k, v = _inputs(4)
    q2, k2, v2 = _inputs(5)
    params = _specs("random")
    t0 = 5
    future = (jnp.arange(T) >= t0)[None, :, None, None]
    out = synthesizer.synthesizer_attention(q, k, v, is_causal=True, **params)
    mixed = (jnp.where(future, b, a) for a, b in ((q, q2), (k, k2), (v, v2)))
    out2 = synthesizer.synthesizer_attention(*mixed, is_causal=True, **params)
    np.testing.assert_allclose(out2[:, :t0], out[:, :t0], atol=1e-6)
    assert float(jnp.max(jnp.abs(out2[:, t0:] - out[:, t0:]))) > 1e-3


def test_per_example_logits_qk_equal_softmax_with_every_mask():
    """R = q·kᵀ·scale reproduces softmax, with causal + packing + GQA + bias together."""
    q, k, v = _inputs(6, K=1)  # MQA
    r = jnp.einsum("BTNH,BSNH->BNTS", q, jnp.repeat(k, N, axis=2)) * H**-0.5
    ids = jnp.asarray(np.repeat([[1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 0]], B, axis=0))
    bias = jnp.asarray(np.random.default_rng(7).normal(size=(1, N, T, T)), jnp.float32)
    kwargs = dict(is_causal=True, q_segment_ids=ids, bias=bias)
    # Under packing, row t of R is read at t's position in its segment, so an R that should act
    # like q·kᵀ of the packed sequence is only position-exact for the first segment; compare there
    # and on the unpacked call everywhere.
    out = synthesizer.synthesizer_attention(q, k, v, is_causal=True, bias=bias, random_logits=r)
    expected = softmax.softmax_attention(q, k, v, is_causal=True, bias=bias)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    out = synthesizer.synthesizer_attention(q, k, v, **kwargs, random_logits=r)
    expected = softmax.softmax_attention(q, k, v, **kwargs)
    np.testing.assert_allclose(out[:, :3], expected[:, :3], atol=1e-6)


def test_fixed_random_gets_no_gradient():
    q, k, v = _inputs(8)
    params = _specs("random")

    def loss(r, trainable):
        out = synthesizer.synthesizer_attention(
            q, k, v, random_logits=r, trainable_random=trainable
        )
        return jnp.sum(out * v[:, :, :, :1])

    r = params["random_logits"]
    assert float(jnp.max(jnp.abs(jax.grad(loss)(r, True)))) > 0
    assert float(jnp.max(jnp.abs(jax.grad(loss)(r, False)))) == 0


def test_segment_positions():
    ids = jnp.asarray([[1, 1, 2, 2, 2, 3, 0, 0], [5, 5, 5, 5, 5, 5, 5, 5]])
    np.testing.assert_array_equal(
        synthesizer.segment_positions(ids), [[0, 1, 0, 1, 2, 0, 0, 1], [0, 1, 2, 3, 4, 5, 6, 7]]
    )


def test_bad_inputs_raise():
    q, k, v = _inputs(9)
    params = _specs("random")
    with pytest.raises(errors.ConfigError, match="mode"):
        synthesizer.synthesizer_attention(q, k, v, mode="factorized", **params)
    with pytest.raises(ValueError, match="random_logits"):
        synthesizer.synthesizer_attention(q, k, v)
    with pytest.raises(ValueError, match="T_max"):
        long = _inputs(9, S=T + 2)
        synthesizer.synthesizer_attention(long[0], long[1], long[2], **params)


@pytest.mark.parametrize(
    ("mode", "names"),
    [("random", {"random_logits"}), ("dense", {"dense_w1", "dense_b1", "dense_w2", "dense_b2"})],
)
def test_layer_creates_the_declared_tensors(mode, names):
    fn = get_attention_fn({"kind": "synthesizer", "synthesizer": {"mode": mode}})
    layer = attention_layer.MultiHeadAttention(attention=fn, num_heads=N, head_dim=H)
    x = jnp.ones((B, T, 8))
    variables = layer.init(jax.random.key(0), x)
    params = nn.unbox(variables["params"])
    assert names <= set(params)
    if mode == "random":
        assert params["random_logits"].shape == (N, T, T)
    y = layer.apply(variables, x, kv_mask=jnp.ones((B, T), bool))
    assert y.shape == (B, T, 8)
