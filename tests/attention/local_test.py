"""Local attention: equals dense softmax with the explicit band / block mask built in NumPy."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors
from jaxattn.attention import core, local, softmax
from tests.attention import dense_reference

T = 23  # no tile or block size used below divides it


def _qkv(B=2, T=T, N=4, K=2, H=8, *, seed=0):
    rng = np.random.default_rng(seed)
    shapes = ((B, T, N, H), (B, T, K, H), (B, T, K, H))
    return tuple(jnp.asarray(rng.normal(size=shape), jnp.float32) for shape in shapes)


def _kv_mask(B=2, T=T):
    lengths = np.maximum(T - 6 * np.arange(B), 1)
    return np.arange(T)[None] < lengths[:, None]  # [B, T]


def _band(T: int, left: int, right: int) -> np.ndarray:
    rel = np.arange(T)[None, :] - np.arange(T)[:, None]  # [T, S]: s − t
    return (rel >= -left) & (rel <= right)


def _run_positions(ids: np.ndarray) -> np.ndarray:
    """Offset of each position from the start of its run of equal ids (NumPy, loop)."""
    out = np.zeros_like(ids)
    for b in range(ids.shape[0]):
        for t in range(1, ids.shape[1]):
            out[b, t] = out[b, t - 1] + 1 if ids[b, t] == ids[b, t - 1] else 0
    return out


_local = jax.jit(
    local.local_attention,
    static_argnames=(
        "is_causal",
        "mode",
        "window_size",
        "window_left",
        "window_right",
        "block_size",
    ),
)


@pytest.mark.parametrize(
    ("window_size", "window_left", "window_right", "is_causal"),
    [
        (4, None, None, False),
        (4, None, None, True),
        (5, 7, 1, False),  # asymmetric: long left, short right (Transformer Transducer)
        (3, 0, 5, False),  # look-ahead only
        (2, None, 9, True),  # causal drops the right side whatever it is
        (0, None, None, False),  # each query sees itself only
    ],
)
def test_sliding_equals_band_mask(window_size, window_left, window_right, is_causal):
    q, k, v = _qkv()
    kv_mask = _kv_mask()
    left = window_size if window_left is None else window_left
    right = 0 if is_causal else window_size if window_right is None else window_right
    mask = _band(T, left, right)[None] & kv_mask[:, None, :]
    out = _local(
        q,
        k,
        v,
        kv_mask=jnp.asarray(kv_mask),
        is_causal=is_causal,
        mode="sliding",
        window_size=window_size,
        window_left=window_left,
        window_right=window_right,
    )
    assert (
        dense_reference.max_err(
            dense_reference.real_rows(out, kv_mask),
            dense_reference.real_rows(dense_reference.dense_softmax(q, k, v, mask), kv_mask),
        )
        <= 1e-5
    )


@pytest.mark.parametrize("is_causal", [False, True], ids=["bidirectional", "causal"])
@pytest.mark.parametrize("block_size", [1, 5, 8])
def test_block_equals_block_diagonal_mask(block_size, is_causal):
    q, k, v = _qkv()
    kv_mask = _kv_mask()
    blocks = np.arange(T) // block_size
    mask = blocks[:, None] == blocks[None, :]
    if is_causal:
        mask &= np.tri(T, dtype=bool)
    mask = mask[None] & kv_mask[:, None, :]
    out = _local(
        q,
        k,
        v,
        kv_mask=jnp.asarray(kv_mask),
        is_causal=is_causal,
        mode="block",
        block_size=block_size,
    )
    assert (
        dense_reference.max_err(
            dense_reference.real_rows(out, kv_mask),
            dense_reference.real_rows(dense_reference.dense_softmax(q, k, v, mask), kv_mask),
        )
        <= 1e-5
    )


@pytest.mark.parametrize("is_causal", [False, True], ids=["bidirectional", "causal"])
@pytest.mark.parametrize(
    "hparams",
    [
        {"mode": "sliding", "window_size": T - 1},
        {"mode": "sliding", "window_size": 10 * T},
        {"mode": "block", "block_size": T},
        {"mode": "block", "block_size": 100},
    ],
    ids=["window=T-1", "window=10T", "block=T", "block=100"],
)
def test_covering_window_is_softmax(hparams, is_causal):
    q, k, v = _qkv(seed=1)
    kv_mask = jnp.asarray(_kv_mask())
    out = _local(q, k, v, kv_mask=kv_mask, is_causal=is_causal, **hparams)
    expected = softmax.softmax_attention(q, k, v, kv_mask=kv_mask, is_causal=is_causal)
    assert (
        dense_reference.max_err(
            dense_reference.real_rows(out, kv_mask), dense_reference.real_rows(expected, kv_mask)
        )
        <= 1e-5
    )


@pytest.mark.parametrize("is_causal", [False, True], ids=["bidirectional", "causal"])
@pytest.mark.parametrize(
    "hparams",
    [{"mode": "sliding", "window_size": 3, "window_right": 2}, {"mode": "block", "block_size": 3}],
    ids=["sliding", "block"],
)
def test_packing_equals_mask_and_segments_alone(hparams, is_causal):
    """Blocks restart at each segment: a packed row equals its segments run one by one."""
    bounds = [(0, 7), (7, 16), (16, 21)]  # positions 21, 22 are padding (id 0)
    ids = np.zeros((2, T), np.int32)
    for i, (a, b) in enumerate(bounds):
        ids[:, a:b] = i + 1
    q, k, v = _qkv(seed=2)
    out = _local(q, k, v, q_segment_ids=jnp.asarray(ids), is_causal=is_causal, **hparams)

    mask = ids[:, :, None] == ids[:, None, :]
    if hparams["mode"] == "sliding":
        mask &= _band(T, 3, 0 if is_causal else 2)[None]
    else:
        blocks = _run_positions(ids) // 3
        mask &= blocks[:, :, None] == blocks[:, None, :]
        if is_causal:
            mask &= np.tri(T, dtype=bool)[None]
    assert dense_reference.max_err(out, dense_reference.dense_softmax(q, k, v, mask)) <= 1e-5
    for a, b in bounds:
        alone = _local(q[:, a:b], k[:, a:b], v[:, a:b], is_causal=is_causal, **hparams)
        assert dense_reference.max_err(out[:, a:b], alone) <= 1e-5, (a, b)


def test_window_zero_returns_own_value():
    q, k, v = _qkv(N=4, K=4)
    out = _local(q, k, v, mode="sliding", window_size=0)
    assert dense_reference.max_err(out, v) <= 1e-6


def test_gradients_equal_masked_softmax():
    """d/d(q, k, v) equal those of softmax with the band given as an additive bias."""
    q, k, v = _qkv(N=4, K=4, seed=3)
    kv_mask = _kv_mask()
    band = jnp.asarray(_band(T, 5, 0))
    bias = jnp.where(band, 0.0, core.MASK_VALUE)[None, None]  # [1, 1, T, S]
    cot = jnp.asarray(np.random.default_rng(4).normal(size=q.shape), jnp.float32)
    rows = jnp.asarray(kv_mask)[:, :, None, None]

    def loss(fn, q, k, v):
        return jnp.sum(jnp.where(rows, fn(q, k, v) * cot, 0.0))

    ours = functools.partial(
        _local, kv_mask=jnp.asarray(kv_mask), is_causal=True, mode="sliding", window_size=5
    )
    theirs = functools.partial(
        softmax.softmax_attention, kv_mask=jnp.asarray(kv_mask), is_causal=True, bias=bias
    )
    g_ours = jax.grad(functools.partial(loss, ours), argnums=(0, 1, 2))(q, k, v)
    g_theirs = jax.grad(functools.partial(loss, theirs), argnums=(0, 1, 2))(q, k, v)
    for name, a, b in zip("qkv", g_ours, g_theirs, strict=True):
        assert dense_reference.max_err(a, b) <= 1e-5, name


@pytest.mark.parametrize(
    "hparams",
    [{"mode": "sliding", "window_size": 8}, {"mode": "block", "block_size": 16}],
    ids=["sliding", "block"],
)
def test_no_dense_logits(hparams):
    """O(T·w): nothing of the size of the [B, N, T, S] logits is ever formed."""
    B, T_long, N = 1, 512, 2
    q, k, v = _qkv(B=B, T=T_long, N=N, K=N)
    fn = functools.partial(local.local_attention, is_causal=True, **hparams)
    assert dense_reference.largest_intermediate(fn, q, k, v) <= B * N * T_long * T_long // 8


def test_bad_inputs_raise():
    q, k, v = _qkv(T=8)
    with pytest.raises(errors.ConfigError, match="mode"):
        local.local_attention(q, k, v, mode="dilated")
    with pytest.raises(errors.ConfigError, match="window_left"):
        local.local_attention(q, k, v, window_left=-1)
    with pytest.raises(errors.ConfigError, match="block_size"):
        local.local_attention(q, k, v, mode="block", block_size=0)
    with pytest.raises(errors.UnsupportedFeatureError, match="'local'.*cross"):
        local.local_attention(q, k[:, :6], v[:, :6])
    with pytest.raises(errors.UnsupportedFeatureError, match="'local'.*bias"):
        local.local_attention(q, k, v, bias=jnp.zeros((1, 1, 8, 8)))
