"""softmax_attention against an independent float64 NumPy reference."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn.attention import softmax

ATOL = 1e-5  # float32 vs the float64 reference (conftest sets 'highest' matmul precision)


def reference_attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    is_causal: bool = False,
    kv_mask: np.ndarray | None = None,
    q_segment_ids: np.ndarray | None = None,
    kv_segment_ids: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    scale: float | None = None,
) -> np.ndarray:
    """float64 attention with an explicit [B, N, T, S] mask; rows with no key return zeros."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    B, T, N, H = q.shape
    S, K = k.shape[1], k.shape[2]
    k = np.repeat(k, N // K, axis=2)  # query head n reads kv head n // G
    v = np.repeat(v, N // K, axis=2)
    scale = H**-0.5 if scale is None else scale
    logits = np.einsum("btnh,bsnh->bnts", q, k) * scale
    if bias is not None:
        logits = logits + np.broadcast_to(np.asarray(bias, np.float64), (B, N, T, S))
    keep = np.ones((B, N, T, S), bool)
    if is_causal:
        keep &= np.tril(np.ones((T, S), bool))
    if kv_mask is not None:
        keep &= np.asarray(kv_mask, bool)[:, None, None, :]
    if q_segment_ids is not None:
        kv_ids = q_segment_ids if kv_segment_ids is None else kv_segment_ids
        keep &= (np.asarray(q_segment_ids)[:, :, None] == np.asarray(kv_ids)[:, None, :])[:, None]
    out = np.zeros((B, T, N, H))
    for b, n, t in np.ndindex(B, N, T):
        cols = np.flatnonzero(keep[b, n, t])
        if cols.size == 0:
            continue
        row = logits[b, n, t, cols]
        p = np.exp(row - row.max())
        out[b, t, n] = (p / p.sum()) @ v[b, cols, n]
    return out


def _qkv(B=2, T=12, S=12, N=4, K=4, H=8, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(B, T, N, H)),
        rng.normal(size=(B, S, K, H)),
        rng.normal(size=(B, S, K, H)),
    )


def _run(q, k, v, **kwargs) -> np.ndarray:
    f32 = {n: jnp.asarray(x, jnp.float32) for n, x in zip("qkv", (q, k, v), strict=True)}
    kwargs = {n: (jnp.asarray(x) if isinstance(x, np.ndarray) else x) for n, x in kwargs.items()}
    out = softmax.softmax_attention(f32["q"], f32["k"], f32["v"], **kwargs)
    assert out.dtype == jnp.float32
    return np.asarray(out)


def _check(q, k, v, **kwargs) -> np.ndarray:
    out = _run(q, k, v, **kwargs)
    expected = reference_attention(q, k, v, **kwargs)
    np.testing.assert_allclose(out, expected, rtol=0, atol=ATOL)
    return out


def _kv_mask(B, S):
    lengths = np.array([S, S - 4, 3, 1][:B])
    return np.arange(S)[None] < lengths[:, None]


def _segment_ids(B, T):
    ids = np.zeros((B, T), np.int32)
    ids[:, :4], ids[:, 4:9], ids[:, 9 : T - 1] = 1, 2, 3  # last position is padding (0)
    ids[1, 2:4] = 2  # different boundaries per example
    return ids


@pytest.mark.parametrize(
    "masks",
    [
        {},
        {"is_causal": True},
        {"kv_mask": "pad"},
        {"q_segment_ids": "ids"},
        {"is_causal": True, "kv_mask": "pad", "q_segment_ids": "ids"},
        {"scale": 0.3},
    ],
    ids=["none", "causal", "kv_mask", "segments", "all", "scale"],
)
def test_masks_match_reference(masks):
    B, T = 3, 12
    q, k, v = _qkv(B=B, T=T, S=T)
    kwargs = dict(masks)
    if kwargs.get("kv_mask") == "pad":
        kwargs["kv_mask"] = _kv_mask(B, T)
    if kwargs.get("q_segment_ids") == "ids":
        kwargs["q_segment_ids"] = _segment_ids(B, T)
    _check(q, k, v, **kwargs)


def test_explicit_kv_segment_ids():
    q, k, v = _qkv(B=2, T=12, S=12)
    ids = _segment_ids(2, 12)
    _check(q, k, v, q_segment_ids=ids, kv_segment_ids=ids[:, ::-1].copy())


@pytest.mark.parametrize("bias_shape", ["BNTS", "1NTS", "B1TS", "TS"])
def test_bias_broadcasting(bias_shape):
    B, T, S, N = 2, 12, 12, 4
    q, k, v = _qkv(B=B, T=T, S=S, N=N)
    shape = {"BNTS": (B, N, T, S), "1NTS": (1, N, T, S), "B1TS": (B, 1, T, S), "TS": (T, S)}[
        bias_shape
    ]
    bias = np.random.default_rng(1).normal(size=shape)
    out = _check(q, k, v, bias=bias, kv_mask=_kv_mask(B, S))
    no_bias = _run(q, k, v, kv_mask=_kv_mask(B, S))
    assert np.max(np.abs(out - no_bias)) > 1e-2  # the bias is not ignored


@pytest.mark.parametrize("K", [2, 1], ids=["gqa", "mqa"])
def test_gqa_equals_mha_with_repeated_kv_heads(K):
    N = 4
    q, k, v = _qkv(N=N, K=K)
    mask = _kv_mask(2, 12)
    out = _check(q, k, v, kv_mask=mask, is_causal=True)
    repeated = _run(
        q, np.repeat(k, N // K, axis=2), np.repeat(v, N // K, axis=2), kv_mask=mask, is_causal=True
    )
    np.testing.assert_allclose(out, repeated, rtol=0, atol=ATOL)


@pytest.mark.parametrize("T,S", [(7, 12), (12, 5)])
def test_cross_attention(T, S):
    q, k, v = _qkv(T=T, S=S, K=2)
    _check(q, k, v, kv_mask=_kv_mask(2, S))
    _check(q, k, v, is_causal=True)  # top-left aligned: query t sees keys s <= t
    q_ids = np.ones((2, T), np.int32)
    kv_ids = np.where(np.arange(S) < S // 2, 1, 2)[None].repeat(2, 0).astype(np.int32)
    _check(q, k, v, q_segment_ids=q_ids, kv_segment_ids=kv_ids)


def test_cross_attention_packing_needs_kv_segment_ids():
    q, k, v = _qkv(T=7, S=12)
    with pytest.raises(ValueError, match="kv_segment_ids"):
        _run(q, k, v, q_segment_ids=np.ones((2, 7), np.int32))
    with pytest.raises(ValueError, match="without q_segment_ids"):
        _run(q, k, v, kv_segment_ids=np.ones((2, 12), np.int32))


def test_fully_masked_row_returns_zeros_and_finite_gradients():
    B, T = 2, 12
    q, k, v = _qkv(B=B, T=T, S=T)
    mask = np.ones((B, T), bool)
    mask[1] = False  # example 1 has no real key
    ids = np.ones((B, T), np.int32)
    kv_ids = ids.copy()
    kv_ids[0, :] = 2
    kv_ids[0, :3] = 1
    q_ids = ids.copy()
    q_ids[0, 5] = 7  # a query whose segment has no key
    out = _check(q, k, v, kv_mask=mask, q_segment_ids=q_ids, kv_segment_ids=kv_ids)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[1], 0.0)
    np.testing.assert_array_equal(out[0, 5], 0.0)

    def loss(q, k, v):
        return jnp.sum(
            softmax.softmax_attention(
                q,
                k,
                v,
                kv_mask=jnp.asarray(mask),
                q_segment_ids=jnp.asarray(q_ids),
                kv_segment_ids=jnp.asarray(kv_ids),
            )
            ** 2
        )

    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(
        *(jnp.asarray(x, jnp.float32) for x in (q, k, v))
    )
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)


def test_bfloat16_in_bfloat16_out():
    q, k, v = _qkv()
    mask = _kv_mask(2, 12)
    out = softmax.softmax_attention(
        *(jnp.asarray(x, jnp.bfloat16) for x in (q, k, v)), kv_mask=jnp.asarray(mask)
    )
    assert out.dtype == jnp.bfloat16
    expected = reference_attention(q, k, v, kv_mask=mask)
    np.testing.assert_allclose(np.asarray(out, np.float32), expected, rtol=0, atol=2e-2)


def test_bad_shapes_raise():
    q, k, v = _qkv(N=4, K=3)
    with pytest.raises(ValueError, match="multiple"):
        _run(q, k, v)
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="kv_mask"):
        _run(q, k, v, kv_mask=np.ones((2, 5), bool))
