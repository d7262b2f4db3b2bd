"""Nyström attention: exact limit, the iterative pinv, landmarks, masks, convolution residual."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors
from jaxattn.attention import nystrom, softmax
from tests.attention import dense_reference


def _qkv(B=2, T=16, S=16, N=4, K=4, H=8, *, seed=0, dtype=jnp.float32):
    rng = np.random.default_rng(seed)
    shapes = ((B, T, N, H), (B, S, K, H), (B, S, K, H))
    return tuple(jnp.asarray(rng.normal(size=shape), dtype) for shape in shapes)


def _kv_mask(B, S):
    lengths = np.maximum(S - 5 * np.arange(B), 1)
    return jnp.asarray(np.arange(S)[None] < lengths[:, None])


@jax.jit
def _softmax(q, k, v, kv_mask):
    return softmax.softmax_attention(q, k, v, kv_mask=kv_mask)


_nystrom = jax.jit(
    nystrom.nystrom_attention,
    static_argnames=("num_landmarks", "pinv_iterations", "pinv_init", "conv_kernel_size"),
)


# ---------------------------------------------------------------- a float64 NumPy reference


def _ns_pinv(a: np.ndarray, iterations: int) -> np.ndarray:
    c = np.abs(a).sum(1).max() * np.abs(a).sum(0).max()
    z = a.T / (c if c else 1.0)
    eye = np.eye(a.shape[0])
    for _ in range(iterations):
        az = a @ z
        z = 0.25 * z @ (13 * eye - az @ (15 * eye - az @ (7 * eye - az)))
    return z


def _landmarks(x: np.ndarray, valid: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Segment j holds positions ceil(j·L/m) <= s < ceil((j+1)·L/m); means of its valid rows."""
    L = x.shape[0]
    means, ok = np.zeros((m, x.shape[1])), np.zeros(m, bool)
    for j in range(m):
        lo, hi = -(-j * L // m), -(-(j + 1) * L // m)
        rows = [s for s in range(lo, hi) if valid[s]]
        if rows:
            means[j], ok[j] = x[rows].mean(0), True
    return means, ok


def _softmax_rows(logits: np.ndarray, keep: np.ndarray) -> np.ndarray:
    keep = np.broadcast_to(keep, logits.shape)
    e = np.where(
        keep,
        np.exp(logits - np.where(keep, logits, -np.inf).max(-1, keepdims=True, initial=-1e300)),
        0,
    )
    total = e.sum(-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def reference_nystrom(q, k, v, *, kv_mask=None, m, iterations, conv_kernel=None):
    """Per (batch, query head) loops in float64, written from the paper's formulas."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    B, T, N, H = q.shape
    S, K = k.shape[1], k.shape[2]
    G = N // K
    kv_valid = np.ones((B, S), bool) if kv_mask is None else np.asarray(kv_mask)
    q_valid = kv_valid if T == S else np.ones((B, T), bool)
    out = np.zeros((B, T, N, H))
    for b, n in np.ndindex(B, N):
        qn, kn, vn = q[b, :, n], k[b, :, n // G], v[b, :, n // G]
        q_lm, q_ok = _landmarks(qn, q_valid[b], m)
        k_lm, k_ok = _landmarks(kn, kv_valid[b], m)
        f = _softmax_rows(qn @ k_lm.T / np.sqrt(H), k_ok[None])
        a = _softmax_rows(q_lm @ k_lm.T / np.sqrt(H), k_ok[None]) * q_ok[:, None]
        bm = _softmax_rows(q_lm @ kn.T / np.sqrt(H), kv_valid[b][None])
        out[b, :, n] = f @ _ns_pinv(a, iterations) @ bm @ vn
        if conv_kernel is not None:
            out[b, :, n] += _numpy_conv(
                vn * kv_valid[b][:, None], np.asarray(conv_kernel, np.float64)[:, n // G]
            )
    return out


def _numpy_conv(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """y[s] = sum_j w[j] x[s + j - (W-1)//2], zeros outside (cross-correlation, 'SAME')."""
    W, left = len(w), (len(w) - 1) // 2
    y = np.zeros_like(x)
    for s in range(x.shape[0]):
        for j in range(W):
            if 0 <= s + j - left < x.shape[0]:
                y[s] += w[j] * x[s + j - left]
    return y


# ---------------------------------------------------------------- exact limit m = S

# Measured max |nystrom − softmax| over the real rows of the cases below (m = S, float32), in
# order: 40 iterations 1.3e-5, 2.8e-5, 7.8e-6 (other seeds up to 1.5e-4: the float32 pinv of an
# ill-conditioned A); 6 iterations 3.1e-2, 3.9e-2, 3.6e-2. With 6 iterations the small singular
# values of A have not converged (each step multiplies them by about 3.25), which is the
# approximation the paper's default accepts.
LIMIT_CASES = [(2, 16, 4, 2, 8), (2, 64, 4, 2, 16), (3, 32, 2, 1, 16)]


@pytest.mark.parametrize(
    ("iterations", "atol"), [(40, 2e-4), (6, 6e-2)], ids=["40_iterations", "6_iterations"]
)
@pytest.mark.parametrize("shape", LIMIT_CASES, ids=lambda s: "B{}T{}N{}K{}H{}".format(*s))
def test_exact_limit_matches_softmax(shape, iterations, atol):
    B, T, N, K, H = shape
    q, k, v = _qkv(B, T, T, N, K, H, seed=T)
    kv_mask = _kv_mask(B, T)
    out = _nystrom(q, k, v, kv_mask=kv_mask, num_landmarks=T, pinv_iterations=iterations)
    err = dense_reference.max_err(
        dense_reference.real_rows(out, kv_mask),
        dense_reference.real_rows(_softmax(q, k, v, kv_mask), kv_mask),
    )
    assert err <= atol, f"max error {err:.3g} with {iterations} iterations"


def test_exact_limit_bfloat16():
    """bf16 in, bf16 out; measured 1.3e-2 from the float32 softmax (bf16 softmax: the same)."""
    q, k, v = _qkv(2, 16, 16, 4, 2, 8, seed=16)
    kv_mask = _kv_mask(2, 16)
    bf16 = [x.astype(jnp.bfloat16) for x in (q, k, v)]
    out = _nystrom(*bf16, kv_mask=kv_mask, num_landmarks=16, pinv_iterations=40)
    assert out.dtype == jnp.bfloat16
    err = dense_reference.max_err(
        dense_reference.real_rows(out, kv_mask),
        dense_reference.real_rows(_softmax(q, k, v, kv_mask), kv_mask),
    )
    assert err <= 3e-2, err


def test_more_landmarks_than_tokens_equals_softmax():
    """S < m: some segments are empty and masked; the rest are single tokens, so it is exact."""
    q, k, v = _qkv(2, 5, 5, 4, 2, 8, seed=3)
    kv_mask = _kv_mask(2, 5)
    out = _nystrom(q, k, v, kv_mask=kv_mask, num_landmarks=8, pinv_iterations=40)
    assert bool(jnp.all(jnp.isfinite(out)))
    assert (
        dense_reference.max_err(
            dense_reference.real_rows(out, kv_mask),
            dense_reference.real_rows(_softmax(q, k, v, kv_mask), kv_mask),
        )
        <= 2e-4
    )


# ---------------------------------------------------------------- the approximation itself


@pytest.mark.parametrize(
    ("T", "S", "m", "K"),
    [(37, 37, 8, 2), (16, 16, 8, 4), (5, 5, 8, 2), (20, 37, 8, 1), (3, 12, 4, 4)],
    ids=["S37_m8", "S16_m8", "S5_m8", "cross_T20_S37", "cross_T3_m4"],
)
def test_matches_numpy_reference(T, S, m, K):
    """Any length (not only multiples of m), S < m, GQA and cross-attention, default 6 steps."""
    B, N, H = 3, 4, 8
    q, k, v = _qkv(B, T, S, N, K, H, seed=T + S)
    kv_mask = _kv_mask(B, S)
    out = _nystrom(q, k, v, kv_mask=kv_mask, num_landmarks=m)
    assert bool(jnp.all(jnp.isfinite(out)))
    expected = reference_nystrom(q, k, v, kv_mask=kv_mask, m=m, iterations=6)
    if T == S:  # padded query rows may hold anything
        out, expected = (
            dense_reference.real_rows(out, kv_mask),
            dense_reference.real_rows(expected, kv_mask),
        )
    assert dense_reference.max_err(out, expected) <= 1e-5  # measured ≤ 1.3e-6


def test_padding_invariance_unaligned_length():
    """S=37, m=8: garbage in padded q, k, v leaves real rows unchanged (padded queries are not landmarks)."""
    q, k, v = _qkv(3, 37, 37, 4, 2, 8, seed=1)
    kv_mask = _kv_mask(3, 37)
    kernel = jax.random.normal(jax.random.key(0), (35, 2))
    garbage = _qkv(3, 37, 37, 4, 2, 8, seed=2)
    dirty = [
        jnp.where(kv_mask[:, :, None, None], x, 100 * g)
        for x, g in zip((q, k, v), garbage, strict=True)
    ]
    kwargs = dict(kv_mask=kv_mask, num_landmarks=8, conv_kernel_size=35, conv_kernel=kernel)
    out, out_dirty = _nystrom(q, k, v, **kwargs), _nystrom(*dirty, **kwargs)
    assert (
        dense_reference.max_err(
            dense_reference.real_rows(out, kv_mask), dense_reference.real_rows(out_dirty, kv_mask)
        )
        <= 1e-5
    )


def test_examples_are_independent():
    """pinv's initial scaling is per [batch, head]: example 0 does not see example 1."""
    q, k, v = _qkv(2, 32, 32, 2, 2, 8, seed=4)
    out = _nystrom(q, k, v, num_landmarks=8)
    scaled = [x.at[1].multiply(4.0) for x in (q, k, v)]  # changes example 1's A (and its col sums)
    out2 = _nystrom(*scaled, num_landmarks=8)
    np.testing.assert_array_equal(np.asarray(out[0]), np.asarray(out2[0]))


def test_example_without_real_keys_returns_zeros():
    q, k, v = _qkv(2, 16, 16, 4, 2, 8)
    kv_mask = jnp.asarray(np.arange(16)[None] < np.array([[16], [0]]))
    kernel = jnp.ones((5, 2))
    kwargs = dict(kv_mask=kv_mask, num_landmarks=4, conv_kernel_size=5, conv_kernel=kernel)
    out = _nystrom(q, k, v, **kwargs)
    assert bool(jnp.all(jnp.isfinite(out)))
    np.testing.assert_array_equal(np.asarray(out[1]), 0.0)
    grads = jax.grad(lambda q, k, v: jnp.sum(_nystrom(q, k, v, **kwargs) ** 2), argnums=(0, 1, 2))(
        q, k, v
    )
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)


# ---------------------------------------------------------------- the iterative pseudo-inverse


def _row_stochastic(batch: int, m: int, seed: int, temperature: float = 1.0) -> np.ndarray:
    logits = np.random.default_rng(seed).normal(size=(batch, m, m)) * temperature
    return np.asarray(jax.nn.softmax(jnp.asarray(logits, jnp.float32), axis=-1))


@pytest.mark.parametrize("init", nystrom.PINV_INITS)
@pytest.mark.parametrize("m", [4, 8, 16])
def test_iterative_pinv_converges_to_pinv(m, init):
    a = _row_stochastic(16, m, seed=m, temperature=2.0)
    z = nystrom.iterative_pinv(jnp.asarray(a), iterations=40, init=init)
    expected = np.linalg.pinv(a.astype(np.float64))
    for i in range(len(a)):
        rel = np.linalg.norm(z[i] - expected[i]) / np.linalg.norm(expected[i])
        cond = np.linalg.cond(a[i].astype(np.float64))
        assert rel <= 1e-6 * cond + 1e-5, f"matrix {i}: relative error {rel:.3g}, cond {cond:.3g}"
    # Moore–Penrose conditions hold in float32 too.
    np.testing.assert_allclose(a @ z @ a, a, atol=1e-4)


def test_iterative_pinv_keeps_zero_rows_and_columns():
    """Zeroed rows/columns (empty landmarks) stay zero: the result is the pinv of the valid block."""
    block = _row_stochastic(1, 5, seed=0, temperature=2.0)[0]
    a = np.zeros((8, 8), np.float32)
    rows, cols = [0, 2, 3, 5, 6], [1, 2, 4, 6, 7]
    a[np.ix_(rows, cols)] = block
    z = np.asarray(nystrom.iterative_pinv(jnp.asarray(a), iterations=40))
    expected = np.zeros((8, 8))
    expected[np.ix_(cols, rows)] = np.linalg.pinv(block.astype(np.float64))
    np.testing.assert_allclose(z, expected, atol=1e-4 * np.abs(expected).max())
    np.testing.assert_array_equal(z[[0, 3, 5]], 0.0)  # rows of Z for the zero columns of A
    np.testing.assert_array_equal(z[:, [1, 4, 7]], 0.0)  # columns of Z for the zero rows of A


def test_iterative_pinv_of_zero_matrix_is_zero():
    z = nystrom.iterative_pinv(jnp.zeros((2, 4, 4)))
    np.testing.assert_array_equal(np.asarray(z), 0.0)


def test_pinv_inits_agree_on_row_stochastic_matrices():
    a = jnp.asarray(_row_stochastic(4, 8, seed=5))
    z_corrected = nystrom.iterative_pinv(a, init="corrected")
    z_original = nystrom.iterative_pinv(a, init="original")
    np.testing.assert_allclose(
        np.asarray(z_corrected), np.asarray(z_original), rtol=1e-5, atol=1e-5
    )


# ---------------------------------------------------------------- convolution residual


@pytest.mark.parametrize("width", [5, 4, 35], ids=["odd", "even", "lra35"])
def test_conv_residual_equals_numpy_convolution(width):
    B, S, N, K, H = 2, 40, 4, 2, 8
    q, k, v = _qkv(B, S, S, N, K, H, seed=width)
    kv_mask = _kv_mask(B, S)
    kernel = jax.random.normal(jax.random.key(width), (width, K))
    with_conv = _nystrom(
        q, k, v, kv_mask=kv_mask, num_landmarks=8, conv_kernel_size=width, conv_kernel=kernel
    )
    without = _nystrom(q, k, v, kv_mask=kv_mask, num_landmarks=8)
    vm = np.asarray(v, np.float64) * np.asarray(kv_mask)[:, :, None, None]
    expected = np.zeros((B, S, N, H))
    for b, n in np.ndindex(B, N):  # query head n uses kv head n // G's filter
        expected[b, :, n] = _numpy_conv(
            vm[b, :, n // (N // K)], np.asarray(kernel, np.float64)[:, n // (N // K)]
        )
    assert dense_reference.max_err(with_conv - without, expected) <= 1e-5
    full = reference_nystrom(q, k, v, kv_mask=kv_mask, m=8, iterations=6, conv_kernel=kernel)
    assert (
        dense_reference.max_err(
            dense_reference.real_rows(with_conv, kv_mask), dense_reference.real_rows(full, kv_mask)
        )
        <= 1e-5
    )


def test_conv_errors():
    q, k, v = _qkv(2, 16, 16, 4, 2, 8)
    with pytest.raises(ValueError, match="no conv_kernel was passed"):
        nystrom.nystrom_attention(q, k, v, num_landmarks=4, conv_kernel_size=5)
    with pytest.raises(ValueError, match=r"conv_kernel must be \[conv_kernel_size, K\]"):
        nystrom.nystrom_attention(
            q, k, v, num_landmarks=4, conv_kernel_size=5, conv_kernel=jnp.ones((5, 4))
        )
    q_cross = _qkv(2, 12, 16, 4, 2, 8)[0]
    with pytest.raises(ValueError, match="T == S"):
        nystrom.nystrom_attention(
            q_cross, k, v, num_landmarks=4, conv_kernel_size=5, conv_kernel=jnp.ones((5, 2))
        )


def test_param_specs():
    assert nystrom.param_specs({}, num_heads=4, num_kv_heads=2, head_dim=8, kv_length=16) == {}
    assert (
        nystrom.param_specs(
            {"conv_kernel_size": None}, num_heads=4, num_kv_heads=2, head_dim=8, kv_length=16
        )
        == {}
    )
    specs = nystrom.param_specs(
        {"conv_kernel_size": 35}, num_heads=4, num_kv_heads=2, head_dim=8, kv_length=16
    )
    assert list(specs) == ["conv_kernel"]
    spec = specs["conv_kernel"]
    assert spec.shape == (35, 2) and spec.axes == (None, "heads")
    kernel = spec.init(jax.random.key(0), spec.shape, jnp.float32)
    assert (
        kernel.shape == (35, 2) and float(jnp.max(jnp.abs(kernel))) <= 35**-0.5
    )  # PyTorch's default range
    with pytest.raises(errors.ConfigError, match="conv_kernel_size"):
        nystrom.param_specs(
            {"conv_kernel_size": 0}, num_heads=4, num_kv_heads=2, head_dim=8, kv_length=16
        )


# ---------------------------------------------------------------- unsupported flags, bad config


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"is_causal": True}, "is_causal"),
        ({"q_segment_ids": jnp.ones((2, 16), jnp.int32)}, "segment_ids"),
        ({"kv_segment_ids": jnp.ones((2, 16), jnp.int32)}, "segment_ids"),
        ({"bias": jnp.zeros((16, 16))}, "bias"),
    ],
    ids=["causal", "q_segment_ids", "kv_segment_ids", "bias"],
)
def test_unsupported_flags_raise(kwargs, flag):
    q, k, v = _qkv()
    with pytest.raises(errors.UnsupportedFeatureError, match=f"'nystrom'.*{flag}"):
        nystrom.nystrom_attention(q, k, v, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_landmarks": 0}, "num_landmarks"),
        ({"pinv_iterations": -1}, "pinv_iterations"),
        ({"pinv_init": "exact"}, "pinv_init"),
    ],
)
def test_bad_hyper_parameters_raise_config_error(kwargs, match):
    q, k, v = _qkv()
    with pytest.raises(errors.ConfigError, match=match):
        nystrom.nystrom_attention(q, k, v, **kwargs)
