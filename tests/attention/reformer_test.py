"""Reformer LSH attention: sorting, hashing, the exact limit, a dense reference of the LSH sets."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors
from jaxattn.attention import reformer
from tests.attention import dense_reference


def _qkv(B=2, T=16, N=4, K=2, H=8, *, seed=0, dtype=jnp.float32):
    rng = np.random.default_rng(seed)
    shapes = ((B, T, N, H), (B, T, K, H), (B, T, K, H))
    return tuple(jnp.asarray(rng.normal(size=shape), dtype) for shape in shapes)


def _kv_mask(B, T):
    lengths = np.maximum(T - 5 * np.arange(B), 1)
    return jnp.asarray(np.arange(T)[None] < lengths[:, None])


_lsh = jax.jit(
    reformer.reformer_attention,
    static_argnames=("is_causal", "num_hashes", "num_buckets", "chunk_size"),
)
_shared_qk = jax.jit(reformer.shared_qk_softmax_attention, static_argnames=("is_causal",))


# ----------------------------------------------------------------------------- sorting, hashing


def test_sort_unsort_round_trip_is_the_identity():
    rng = np.random.default_rng(0)
    buckets = jnp.asarray(rng.integers(0, 5, size=(2, 3, 2, 37)), jnp.int32)  # many ties
    x = jnp.asarray(rng.normal(size=(2, 3, 2, 37, 4)), jnp.float32)
    perm, rank = reformer.sort_by_bucket(buckets)
    x_sorted = jnp.take_along_axis(x, perm[..., None], axis=3)
    np.testing.assert_array_equal(np.asarray(reformer.unsort(x_sorted, rank)), np.asarray(x))
    # Sorted by (bucket, position): buckets non-decreasing, positions increasing within a bucket.
    b_sorted = np.take_along_axis(np.asarray(buckets), np.asarray(perm), axis=-1)
    assert np.all(np.diff(b_sorted, axis=-1) >= 0)
    same = np.diff(b_sorted, axis=-1) == 0
    assert np.all(np.diff(np.asarray(perm), axis=-1)[same] > 0)


def test_hash_is_angular_lsh():
    """bucket = argmax([xR; -xR]) (checked against NumPy), invariant to positive scaling."""
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(2, 3, 20, 8)), jnp.float32)
    rotations = reformer.random_rotations(jax.random.key(0), 3, 8, 2, 6)  # [N, R, H, Z]
    buckets = np.asarray(reformer.hash_buckets(x, rotations))
    rotated = np.einsum("bnth,nrhz->bnrtz", np.asarray(x, np.float64), np.asarray(rotations))
    np.testing.assert_array_equal(buckets, np.argmax(np.concatenate([rotated, -rotated], -1), -1))
    assert set(np.unique(buckets)) <= set(range(6)) and len(np.unique(buckets)) > 3
    np.testing.assert_array_equal(np.asarray(reformer.hash_buckets(3.7 * x, rotations)), buckets)


# ----------------------------------------------------------------------------- exact limit


@pytest.mark.parametrize("num_hashes", [1, 3])
@pytest.mark.parametrize("is_causal", [False, True], ids=["bidirectional", "causal"])
def test_one_bucket_equals_shared_qk_softmax(num_hashes, is_causal):
    """One bucket and one chunk: shared-QK softmax with the self penalty, for any number of
    rounds (each round attends to everything; the duplicate correction keeps it exact)."""
    q, k, v = _qkv(B=3, T=16, N=4, K=2, seed=2)
    kv_mask = _kv_mask(3, 16)
    out = _lsh(
        q,
        k,
        v,
        kv_mask=kv_mask,
        is_causal=is_causal,
        num_hashes=num_hashes,
        num_buckets=1,
        chunk_size=16,
    )
    expected = _shared_qk(q, k, v, kv_mask=kv_mask, is_causal=is_causal)
    assert (
        dense_reference.max_err(
            dense_reference.real_rows(out, kv_mask), dense_reference.real_rows(expected, kv_mask)
        )
        <= 1e-6
    )


def test_self_is_attended_only_when_alone():
    """Causal position 0 sees only itself: its output is its own value. Elsewhere the own
    position gets (numerically) zero weight."""
    q, k, v = _qkv(B=1, T=8, N=2, K=2, seed=3)
    out = _lsh(q, k, v, is_causal=True, num_buckets=1, chunk_size=8)
    np.testing.assert_allclose(np.asarray(out[:, 0]), np.asarray(v[:, 0]), atol=1e-6)
    # Position 1 then sees only position 0 (its own weight is ~exp(-1e5)).
    np.testing.assert_allclose(np.asarray(out[:, 1]), np.asarray(v[:, 0]), atol=1e-6)


# ----------------------------------------------------------------------------- a dense reference


def _np_lsh(q, v, buckets, *, kv_mask, is_causal, chunk_size, scale):
    """float64 NumPy: the union over rounds of each query's LSH set, then one dense softmax.

    buckets [B, N, R, T] (from the same rotations). Query i sees key j in round r iff both are
    real, same bucket, and j is in i's window of the (bucket, position)-sorted order: own or
    previous chunk (bidirectional), or at most W places before i with pos_j <= pos_i (causal).
    """
    q, v = np.asarray(q, np.float64), np.asarray(v, np.float64)
    B, T, N, H = q.shape
    G = N // v.shape[2]
    W = min(chunk_size, T)
    valid = np.asarray(kv_mask)
    buckets = np.asarray(buckets)
    out = np.zeros_like(q)
    for b in range(B):
        for n in range(N):
            seen = np.zeros((T, T), bool)
            for r in range(buckets.shape[2]):
                bk = np.where(valid[b], buckets[b, n, r], 10**6)
                order = np.lexsort((np.arange(T), bk))  # by bucket, then position
                rank = np.empty(T, int)
                rank[order] = np.arange(T)
                for i in range(T):
                    for j in range(T):
                        if not (valid[b, j] and bk[i] == bk[j]):
                            continue
                        if is_causal:
                            ok = j <= i and rank[i] - W <= rank[j] <= rank[i]
                        else:
                            ok = rank[i] // W - rank[j] // W in (0, 1)
                        seen[i, j] |= ok
            qn = q[b, :, n]  # [T, H]
            keys = qn / np.linalg.norm(qn, axis=-1, keepdims=True)
            logits = scale * qn @ keys.T - 1e5 * np.eye(T)
            for i in range(T):
                if seen[i].any():
                    w = np.exp(logits[i, seen[i]] - logits[i, seen[i]].max())
                    out[b, i, n] = (w / w.sum()) @ v[b, seen[i], n // G]
    return out


@pytest.mark.parametrize("num_hashes", [1, 2])
@pytest.mark.parametrize("is_causal", [False, True], ids=["bidirectional", "causal"])
def test_equals_dense_softmax_over_the_lsh_sets(num_hashes, is_causal):
    """Chunking, bucket masks, padding, rounds and the duplicate correction together: the output
    is a softmax over the union of the rounds' LSH sets (built independently in NumPy)."""
    B, T, N, K, H, nb, W = 2, 22, 2, 1, 8, 4, 4  # 6 chunks of 4, the last one padded
    q, k, v = _qkv(B=B, T=T, N=N, K=K, H=H, seed=4)
    kv_mask = _kv_mask(B, T)
    rng = jax.random.key(7)
    out = _lsh(
        q,
        k,
        v,
        kv_mask=kv_mask,
        is_causal=is_causal,
        num_hashes=num_hashes,
        num_buckets=nb,
        chunk_size=W,
        rng=rng,
    )
    rotations = reformer.random_rotations(rng, N, H, num_hashes, nb)
    buckets = reformer.hash_buckets(jnp.swapaxes(q, 1, 2), rotations)  # [B, N, R, T]
    expected = _np_lsh(
        q, v, buckets, kv_mask=kv_mask, is_causal=is_causal, chunk_size=W, scale=H**-0.5
    )
    assert (
        dense_reference.max_err(
            dense_reference.real_rows(out, kv_mask), dense_reference.real_rows(expected, kv_mask)
        )
        <= 2e-6
    )


# ----------------------------------------------------------------------------- rng, masks, flags


def test_same_rng_same_output_other_rng_other_output():
    q, k, v = _qkv(T=32, seed=6)
    run = functools.partial(_lsh, q, k, v, num_hashes=2, num_buckets=8, chunk_size=4)
    a, b = run(rng=jax.random.key(0)), run(rng=jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert dense_reference.max_err(a, run(rng=jax.random.key(1))) > 1e-3


def test_key_argument_is_not_used():
    q, k, v = _qkv(seed=7)
    run = functools.partial(_lsh, num_buckets=4, chunk_size=4, rng=jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(run(q, k, v)), np.asarray(run(q, 100 * k + 3, v)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_causal_output_never_depends_on_the_future(seed):
    """Strict causality with several chunks: future tokens move the chunk boundaries of the
    sorted order, so this holds only because the causal window is W places back (docstring)."""
    B, T, N, H, t0 = 2, 24, 2, 8, 11
    q, k, v = _qkv(B=B, T=T, N=N, K=N, H=H, seed=10 + seed)
    q2, _, v2 = _qkv(B=B, T=T, N=N, K=N, H=H, seed=20 + seed)
    future = (jnp.arange(T) >= t0)[None, :, None, None]
    run = functools.partial(
        _lsh, is_causal=True, num_hashes=2, num_buckets=4, chunk_size=4, rng=jax.random.key(seed)
    )
    out = run(q, k, v)
    out2 = run(jnp.where(future, q2, q), k, jnp.where(future, v2, v))
    assert dense_reference.max_err(out2[:, :t0], out[:, :t0]) <= 1e-6
    assert dense_reference.max_err(out2[:, t0:], out[:, t0:]) > 1e-3


def test_unsupported_and_bad_settings_raise():
    q, k, v = _qkv()
    with pytest.raises(errors.UnsupportedFeatureError, match="cross"):
        reformer.reformer_attention(q, k[:, :8], v[:, :8], num_buckets=1)
    with pytest.raises(errors.UnsupportedFeatureError, match="packing"):
        reformer.reformer_attention(q, k, v, q_segment_ids=jnp.ones((2, 16), jnp.int32))
    with pytest.raises(errors.UnsupportedFeatureError, match="bias"):
        reformer.reformer_attention(q, k, v, bias=jnp.zeros((1, 4, 16, 16)))
    with pytest.raises(errors.ConfigError, match="num_buckets"):
        reformer.reformer_attention(q, k, v, num_buckets=3, rng=jax.random.key(0))
    with pytest.raises(ValueError, match="rng"):
        reformer.reformer_attention(q, k, v, num_buckets=4)
