"""XCA: the paper's equations in float64 numpy, the authors' XCA class's numbers on a fixed input,
padding as the unpadded sequence exactly, GQA, gradients, the learned temperature, refusals."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors
from jaxattn.attention import get_attention_fn, xca
from jaxattn.layers import attention as attention_layer
from tests.attention import battery_cases as cases


def numpy_xca(q, k, v, tau):
    """The paper's equations per example and head, float64: q̂, k̂ columns L2-normalised over
    tokens, A[i, j] = softmax_j(τ·⟨q̂_i, k̂_j⟩), out[t, i] = Σ_j A[i, j]·v[t, j]."""
    B, T, N, H = q.shape
    G = N // k.shape[2]
    out = np.zeros((B, T, N, H))
    for b in range(B):
        for n in range(N):
            qn, kn, vn = q[b, :, n], k[b, :, n // G], v[b, :, n // G]  # [T, H]
            q_hat = qn / np.maximum(np.linalg.norm(qn, axis=0), 1e-12)
            k_hat = kn / np.maximum(np.linalg.norm(kn, axis=0), 1e-12)
            logits = tau[n] * q_hat.T @ k_hat  # [H (query channel), H (key channel)]
            a = np.exp(logits - logits.max(axis=1, keepdims=True))
            a /= a.sum(axis=1, keepdims=True)
            out[b, :, n] = vn @ a.T
    return out


def _inputs(B=3, T=16, N=4, K=2, H=8, seed=0):
    q, k, v = cases.qkv(B, T, T, N, K, H, seed=seed)
    tau = jnp.asarray(np.random.default_rng(seed + 100).uniform(0.5, 3.0, N), jnp.float32)
    return q, k, v, tau


def test_equals_the_paper_equations_in_float64():
    q, k, v, tau = _inputs()
    out = jax.jit(xca.xca_attention)(q, k, v, temperature=tau)
    ref = numpy_xca(*(np.asarray(x, np.float64) for x in (q, k, v, tau)))
    cases.assert_close(out, ref, 1e-6, "xca vs float64 equations")  # measured 1.8e-7


def test_padding_equals_the_unpadded_sequence():
    """Zeroing padded tokens before the token-axis normalisation: each example's real outputs
    are XCA of its real tokens alone (exact, not an approximation)."""
    q, k, v, tau = _inputs(seed=1)
    kv_mask = cases.padding_mask(3, 16)
    out = jax.jit(xca.xca_attention)(q, k, v, kv_mask=kv_mask, temperature=tau)
    for b, length in enumerate(np.asarray(kv_mask).sum(axis=1)):
        alone = numpy_xca(*(np.asarray(x[b : b + 1, :length], np.float64) for x in (q, k, v)), np.asarray(tau))  # fmt: skip
        cases.assert_close(out[b : b + 1, :length], alone, 1e-6, f"example {b}")
        assert not np.any(np.asarray(out[b, length:]))  # padded rows are 0


# The authors' XCA class (facebookresearch/xcit, xcit.py, commit 82f5291) run in float64 with
# torch 2.14.1 on this input (proj set to the identity, qkv replaced by these values): heads 2,
# head dim 3, T = 5, temperature (0.5, 2.0). QKV[t][i] = (q, k, v)[i] at token t, [heads, d].
QKV = [
    [[[0.36, 1.51, -1.79], [1.69, -0.05, -0.8]], [[-0.8, -1.08, -0.22], [0.83, 0.58, 0.64]], [[-1.69, -1.57, 1.55], [0.97, 2.18, 1.21]]],
    [[[-1.02, 1.29, 0.63], [0.21, -0.82, 0.0]], [[-0.15, 0.89, 0.12], [1.58, -0.77, 0.47]], [[0.5, -0.86, -1.18], [1.01, 0.52, -0.16]]],
    [[[0.39, -0.68, 0.24], [-0.61, 0.19, 0.99]], [[-0.34, 0.85, -1.03], [-0.29, -1.36, -0.1]], [[0.08, -0.2, -0.27], [1.34, 1.42, -1.22]]],
    [[[1.17, -1.72, -0.73], [-0.17, 0.11, -1.05]], [[-0.72, 0.08, -0.69], [-0.64, 0.67, 0.93]], [[-0.06, 0.02, -0.02], [-0.45, -0.51, -1.04]]],
    [[[0.65, -0.08, -0.14], [0.2, 0.53, 1.42]], [[-0.27, -0.4, 0.2], [-0.85, 1.27, 0.93]], [[0.69, -0.12, 0.74], [1.05, 0.5, -0.28]]],
]  # fmt: skip
OFFICIAL_OUT = [
    [[-0.59183568, -0.35289369, -0.73932051], [1.4400396, 1.83992067, 1.49133868]],
    [[-0.53346526, -0.55371875, -0.46256589], [0.46817952, 0.33472256, 0.36687124]],
    [[-0.13411336, -0.13859904, -0.11932834], [0.52717148, 0.62198779, 0.33719653]],
    [[-0.01836653, -0.02168723, -0.01985008], [-0.66270454, -0.66718738, -0.70864535]],
    [[0.41665291, 0.48517591, 0.41088983], [0.43635153, 0.28699715, 0.32138191]],
]


def test_matches_the_authors_xca_numbers():
    qkv = jnp.asarray(QKV, jnp.float32)[None]  # [1, T, 3, heads, d]
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    out = xca.xca_attention(q, k, v, temperature=jnp.asarray([0.5, 2.0]))
    # Measured 6e-8 (also 8.9e-8 at B=2, T=197, 8 heads x 16 with random weights, in /tmp).
    cases.assert_close(out[0], np.asarray(OFFICIAL_OUT), 1e-6, "vs facebookresearch/xcit XCA")
    qkv64 = np.asarray(QKV, np.float64)[None]
    ref = numpy_xca(qkv64[:, :, 0], qkv64[:, :, 1], qkv64[:, :, 2], np.array([0.5, 2.0]))
    np.testing.assert_allclose(ref[0], OFFICIAL_OUT, rtol=0, atol=1e-8)  # rounded to 1e-8


def test_scale_multiplies_the_temperature_and_defaults_to_one():
    q, k, v, tau = _inputs(seed=2)
    out = xca.xca_attention(q, k, v, temperature=tau, scale=0.5)
    np.testing.assert_allclose(out, xca.xca_attention(q, k, v, temperature=0.5 * tau), atol=1e-6)
    ones = jnp.ones_like(tau)
    np.testing.assert_array_equal(xca.xca_attention(q, k, v), xca.xca_attention(q, k, v, temperature=ones))  # fmt: skip


def test_gradients_equal_the_reference_and_reach_the_temperature():
    q, k, v, tau = _inputs(B=2, seed=3)
    kv_mask = cases.padding_mask(2, 16)
    cot = jnp.asarray(np.random.default_rng(4).normal(size=q.shape), jnp.float32)

    def loss(fn):
        return lambda q, k, v, tau: jnp.sum(fn(q, k, v, kv_mask=kv_mask, temperature=tau) * cot)

    ours = jax.jit(jax.grad(loss(xca.xca_attention), (0, 1, 2, 3)))(q, k, v, tau)
    ref = jax.jit(jax.grad(loss(xca.channel_major_xca_attention), (0, 1, 2, 3)))(q, k, v, tau)
    for name, a, b in zip(["q", "k", "v", "temperature"], ours, ref, strict=True):
        cases.assert_close(a, b, 1e-5, f"d/d{name}")
    assert float(jnp.min(jnp.abs(ours[3]))) > 0  # every head's temperature is learned
    padded = ~kv_mask[:, :, None, None]
    for g in ours[:3]:
        assert float(jnp.max(jnp.abs(jnp.where(padded, g, 0.0)))) == 0.0


def test_the_temperature_is_a_layer_parameter_and_changes_the_output():
    layer = attention_layer.MultiHeadAttention(
        attention=get_attention_fn({"kind": "xca", "xca": {}}), num_heads=4
    )
    x = jax.random.normal(jax.random.key(0), (2, 10, 16))
    variables = layer.init(jax.random.key(1), x)
    tau = variables["params"]["temperature"]
    tau = getattr(tau, "value", tau)  # boxed with its logical axes
    assert tau.shape == (4,)
    np.testing.assert_array_equal(tau, np.ones(4))  # the authors' init
    hotter = jax.tree.map(lambda p: p, variables)
    hotter["params"]["temperature"] = jax.tree.map(lambda t: t * 3.0, variables["params"]["temperature"])  # fmt: skip
    assert float(jnp.max(jnp.abs(layer.apply(hotter, x) - layer.apply(variables, x)))) > 1e-3
    grads = jax.grad(lambda p: jnp.sum(layer.apply({"params": p}, x) ** 2))(variables["params"])
    g = grads["temperature"]
    assert float(jnp.min(jnp.abs(getattr(g, "value", g)))) > 0


def test_dropout_uses_the_keep_mask_of_the_channel_map():
    """The authors drop A (attn_drop): the output equals inverted dropout of A with the mask
    core.dropout_keep draws at A's shape [B, K, G, H, J]."""
    from jaxattn.attention import core

    q, k, v, tau = _inputs(B=2, N=4, K=4, seed=5)
    rng, rate = jax.random.key(6), 0.3
    out = xca.xca_attention(q, k, v, temperature=tau, dropout_rate=rate, dropout_rng=rng)
    keep = np.asarray(core.dropout_keep(rng, rate, (2, 4, 1, 8, 8)))[:, :, 0]  # [B, N, H, J]
    qh, kh = (np.asarray(x, np.float64) for x in (q, k))
    qh, kh = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (qh, kh))
    logits = np.einsum("BTNH,BTNJ->BNHJ", qh, kh) * np.asarray(tau)[None, :, None, None]
    a = np.exp(logits - logits.max(-1, keepdims=True))
    a = a / a.sum(-1, keepdims=True) * keep / (1 - rate)
    ref = np.einsum("BNHJ,BTNJ->BTNH", a, np.asarray(v, np.float64))
    cases.assert_close(out, ref, 1e-5, "dropout")


def test_refusals_name_the_kind_and_the_flag():
    q, k, v, _ = _inputs(B=2, N=4, K=4)
    ids = jnp.ones((2, 16), jnp.int32)
    for kwargs, flag in (
        ({"is_causal": True}, "is_causal"),
        ({"q_segment_ids": ids}, "segment_ids"),
        ({"bias": jnp.zeros((1, 4, 16, 16))}, "bias"),
    ):
        with pytest.raises(errors.UnsupportedFeatureError, match=f"'xca'.*{flag}"):
            xca.xca_attention(q, k, v, **kwargs)
    with pytest.raises(errors.UnsupportedFeatureError, match="'xca'.*cross"):
        xca.xca_attention(q, k[:, :12], v[:, :12])
    for need in ("is_causal", "segment_ids", "bias", "cross"):
        with pytest.raises(errors.UnsupportedFeatureError, match=f"'xca'.*{need}"):
            get_attention_fn({"kind": "xca", "xca": {}}, **{need: True})
    with pytest.raises(ValueError, match="temperature must be"):
        xca.xca_attention(q, k, v, temperature=jnp.ones(3))


def test_a_sequence_kind_needs_no_grid():
    """XCA runs in sequence models (no grid offered) and ignores a grid when one is offered."""
    assert not get_attention_fn({"kind": "xca"}).hparams
    assert not get_attention_fn({"kind": "xca"}, grid=(4, 4)).hparams
