"""Routing attention: clusters against a NumPy reference, the EMA update, state in the layer."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors
from jaxattn.attention import get_attention_fn, routing
from jaxattn.layers import attention as attention_layer
from tests.attention import dense_reference


def _qkv(B=2, T=16, S=16, N=4, K=2, H=8, *, seed=0, dtype=jnp.float32):
    rng = np.random.default_rng(seed)
    shapes = ((B, T, N, H), (B, S, K, H), (B, S, K, H))
    return tuple(jnp.asarray(rng.normal(size=shape), dtype) for shape in shapes)


def _kv_mask(B, S):
    lengths = np.maximum(S - 5 * np.arange(B), 1)
    return jnp.asarray(np.arange(S)[None] < lengths[:, None])


def _centroids(K, C, H, seed=0):
    return routing.init_centroids(jax.random.key(seed), (K, C, H))


_routing = jax.jit(
    routing.routing_attention,
    static_argnames=("is_causal", "num_clusters", "window", "ema_decay"),
)


def _unit(x):
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _np_assign(x_hat, mu):
    """Nearest centroid (Euclidean) and the scores x̂·μ_c: x_hat [L, H], mu [C, H]."""
    dist = ((x_hat[:, None, :] - mu[None]) ** 2).sum(-1)  # [L, C]
    return dist.argmin(-1), x_hat @ mu.T


def _np_kept(assign, score, valid, c, w, is_causal=False):
    """Positions routed to cluster c that it keeps: its w best members by score, or with
    is_causal its first w by position."""
    members = np.flatnonzero((assign == c) & valid)
    if is_causal:
        return members[:w]
    return members[np.argsort(-score[members, c], kind="stable")][:w]


def _np_routing(q, k, v, mu, *, kv_mask, is_causal, window=None, scale=None):
    """float64 NumPy: route, keep the top-w members per cluster (causal: the first w), softmax inside each cluster on
    RMS-normalised q and k; queries no cluster keeps get zeros."""
    q, k, v, mu = (np.asarray(x, np.float64) for x in (q, k, v, mu))
    B, T, N, H = q.shape
    S, K, C = k.shape[1], k.shape[2], mu.shape[1]
    G = N // K
    scale = H**-0.5 if scale is None else scale
    w_q, w_k = min(window or -(-T // C), T), min(window or -(-S // C), S)
    kv_valid = np.asarray(kv_mask, bool)
    q_valid = kv_valid if T == S else np.ones((B, T), bool)
    out = np.zeros_like(q)
    for b in range(B):
        for kh in range(K):
            k_hat = _unit(k[b, :, kh])
            k_assign, k_score = _np_assign(k_hat, mu[kh])
            for g in range(G):
                n = kh * G + g
                q_hat = _unit(q[b, :, n])
                q_assign, q_score = _np_assign(q_hat, mu[kh])
                for c in range(C):
                    keys = _np_kept(k_assign, k_score, kv_valid[b], c, w_k, is_causal)
                    for t in _np_kept(q_assign, q_score, q_valid[b], c, w_q, is_causal):
                        seen = keys[keys <= t] if is_causal else keys
                        if len(seen):
                            logits = scale * H * k_hat[seen] @ q_hat[t]
                            p = np.exp(logits - logits.max())
                            out[b, t, n] = (p / p.sum()) @ v[b, seen, kh]
    return out


# ----------------------------------------------------------------------------- clusters


@pytest.mark.parametrize("is_causal", [False, True], ids=["bidirectional", "causal"])
@pytest.mark.parametrize(("T", "S"), [(16, 16), (20, 12)], ids=["self", "cross"])
def test_every_query_attends_only_to_keys_of_its_own_cluster(is_causal, T, S):
    """Against the NumPy reference, with full clusters dropping members (window 3 with 4
    clusters of ~4-5 members), GQA and key padding: a query's output is a softmax over the kept
    keys routed to its own cluster, or zeros when its cluster did not keep it."""
    B, N, K, H, C, w = 2, 4, 2, 8, 4, 3
    q, k, v = _qkv(B, T, S, N, K, H, seed=1)
    kv_mask = _kv_mask(B, S)
    mu = _centroids(K, C, H)
    out, _ = _routing(
        q, k, v, kv_mask=kv_mask, is_causal=is_causal, num_clusters=C, window=w, centroids=mu
    )
    expected = _np_routing(q, k, v, mu, kv_mask=kv_mask, is_causal=is_causal, window=w)
    if T == S:  # padded query rows may hold anything
        expected = np.where(np.asarray(kv_mask)[:, :, None, None], expected, 0.0)
        out = jnp.where(kv_mask[:, :, None, None], out, 0.0)
    assert dense_reference.max_err(out, expected) <= 1e-5
    dropped = np.all(expected == 0.0, axis=-1)  # [B, T, N]
    assert dropped.any() and not dropped.all()  # both paths were exercised


def test_values_of_other_clusters_do_not_matter():
    """Changing the values of every key outside a query's cluster leaves that query unchanged."""
    B, T, N, K, H, C = 1, 16, 2, 2, 8, 3
    q, k, v = _qkv(B, T, T, N, K, H, seed=2)
    mu = _centroids(K, C, H, seed=1)
    run = functools.partial(_routing, num_clusters=C, window=T, centroids=mu)
    out, _ = run(q, k, v)
    k_hat = np.asarray(routing.unit_normalize(k))  # [B, S, K, H]
    q_hat = np.asarray(routing.unit_normalize(q))
    mu_np = np.asarray(mu, np.float64)
    t, n = 5, 1
    kh = n // (N // K)
    q_cluster = _np_assign(q_hat[0, [t], n], mu_np[kh])[0][0]
    k_cluster = _np_assign(k_hat[0, :, kh], mu_np[kh])[0]
    other = jnp.asarray(k_cluster != q_cluster)[None, :, None, None]
    out2, _ = run(q, k, jnp.where(other, 100.0 + v, v))
    assert dense_reference.max_err(out2[0, t, n], out[0, t, n]) <= 1e-5
    assert dense_reference.max_err(out2, out) > 1.0  # other queries did see the change


def test_padding_is_excluded_even_when_clusters_are_full():
    """Garbage in padded q, k, v changes neither the real rows nor the centroid update."""
    B, T, N, K, H, C = 3, 16, 4, 2, 8, 4
    q, k, v = _qkv(B, T, T, N, K, H, seed=3)
    kv_mask = _kv_mask(B, T)
    mu = _centroids(K, C, H)
    run = functools.partial(
        _routing, kv_mask=kv_mask, num_clusters=C, window=2, ema_decay=0.5, centroids=mu
    )
    out, state = run(q, k, v)
    noise = np.random.default_rng(4)
    dirty = [
        jnp.where(kv_mask[:, :, None, None], x, 50.0 * noise.normal(size=x.shape))
        for x in (q, k, v)
    ]
    out2, state2 = run(*dirty)
    real = kv_mask[:, :, None, None]
    assert dense_reference.max_err(jnp.where(real, out2, 0.0), jnp.where(real, out, 0.0)) <= 1e-6
    assert dense_reference.max_err(state2["centroids"], state["centroids"]) <= 1e-6


def test_one_cluster_keeping_everything_is_normalized_softmax():
    q, k, v = _qkv(3, 16, 16, 4, 2, 8, seed=5)
    kv_mask = _kv_mask(3, 16)
    for is_causal in (False, True):
        out, _ = _routing(
            q,
            k,
            v,
            kv_mask=kv_mask,
            is_causal=is_causal,
            num_clusters=1,
            window=16,
            centroids=_centroids(2, 1, 8),
        )
        expected = routing.normalized_softmax_attention(
            q, k, v, kv_mask=kv_mask, is_causal=is_causal
        )
        real = kv_mask[:, :, None, None]
        assert (
            dense_reference.max_err(jnp.where(real, out, 0.0), jnp.where(real, expected, 0.0))
            <= 1e-6
        )


# ----------------------------------------------------------------------------- the EMA state


def _np_assigned_means(q, k, mu, kv_mask):
    """Per kv head and cluster: sum and count of the unit q̂ (all G heads) and k̂ routed to it."""
    q, k, mu = (np.asarray(x, np.float64) for x in (q, k, mu))
    B, T, N, H = q.shape
    K, C = mu.shape[:2]
    G = N // K
    valid = np.asarray(kv_mask, bool)
    sums, counts = np.zeros((K, C, H)), np.zeros((K, C))
    for b in range(B):
        for kh in range(K):
            vectors = [_unit(k[b, :, kh])] + [_unit(q[b, :, kh * G + g]) for g in range(G)]
            for x_hat in vectors:
                assign = _np_assign(x_hat, mu[kh])[0]
                for t in np.flatnonzero(valid[b]):
                    sums[kh, assign[t]] += x_hat[t]
                    counts[kh, assign[t]] += 1
    return sums, counts


@pytest.mark.parametrize("decay", [0.0, 0.7, 1.0])
def test_ema_update(decay):
    """decay 0: the mean of the assigned normalised vectors (mini-batch k-means); in general
    decay·μ + (1 − decay)·mean; an empty cluster keeps its centroid; decay 1 freezes."""
    B, T, N, K, H, C = 2, 16, 4, 2, 8, 6
    q, k, v = _qkv(B, T, T, N, K, H, seed=6)
    kv_mask = _kv_mask(B, T)
    # The last centroid duplicates the first: ties go to the lower index, so it stays empty.
    mu = _centroids(K, C, H, seed=2)
    mu = mu.at[:, -1].set(mu[:, 0])
    _, state = _routing(
        q, k, v, kv_mask=kv_mask, num_clusters=C, window=2, ema_decay=decay, centroids=mu
    )
    sums, counts = _np_assigned_means(q, k, mu, kv_mask)
    mu_np = np.asarray(mu, np.float64)
    means = sums / np.maximum(counts, 1)[..., None]
    expected = np.where(counts[..., None] > 0, decay * mu_np + (1 - decay) * means, mu_np)
    assert dense_reference.max_err(state["centroids"], expected) <= 1e-6
    assert state["centroids"].dtype == jnp.float32
    assert (counts == 0).any() and (counts > 0).any()  # both cases are exercised


def test_state_is_not_trained_by_gradients_and_has_no_hidden_copy():
    """The centroids get no gradient from the output, the new state none from q or k (it moves
    only through the returned dict), and the same inputs give the same outputs and state."""
    q, k, v = _qkv(seed=7)
    mu = _centroids(2, 3, 8)
    run = functools.partial(_routing, num_clusters=3, window=16, ema_decay=0.5)

    g_mu = jax.grad(lambda mu: jnp.sum(run(q, k, v, centroids=mu)[0]))(mu)
    assert float(jnp.max(jnp.abs(g_mu))) == 0.0
    g_q, g_k = jax.grad(
        lambda q, k: jnp.sum(run(q, k, v, centroids=mu)[1]["centroids"]), argnums=(0, 1)
    )(q, k)
    assert float(jnp.max(jnp.abs(g_q))) == 0.0 and float(jnp.max(jnp.abs(g_k))) == 0.0

    out_a, state_a = run(q, k, v, centroids=mu)
    out_b, state_b = run(q, k, v, centroids=mu)
    np.testing.assert_array_equal(np.asarray(out_a), np.asarray(out_b))
    np.testing.assert_array_equal(
        np.asarray(state_a["centroids"]), np.asarray(state_b["centroids"])
    )
    assert dense_reference.max_err(state_a["centroids"], mu) > 1e-3


# ----------------------------------------------------------------------------- in the Flax layer


def test_layer_stores_centroids_only_when_the_collection_is_mutable():
    bound = get_attention_fn(
        {"kind": "routing", "routing": {"num_clusters": 3, "window": 8, "ema_decay": 0.5}}
    )
    layer = attention_layer.MultiHeadAttention(attention=bound, num_heads=2, head_dim=8)
    x = jnp.asarray(np.random.default_rng(8).normal(size=(2, 12, 16)), jnp.float32)
    variables = layer.init(jax.random.key(0), x)
    centroids = variables["attention_state"]["centroids"]
    assert centroids.shape == (2, 3, 8)

    y, updates = layer.apply(variables, x, mutable=["attention_state"])
    new = updates["attention_state"]["centroids"]
    assert new.shape == centroids.shape and dense_reference.max_err(new, centroids) > 1e-3

    y_frozen = layer.apply(variables, x)  # evaluation: not mutable, nothing stored, no error
    np.testing.assert_array_equal(np.asarray(y_frozen), np.asarray(y))  # the old centroids route

    # Training goes on from the stored state, which moves again.
    _, updates2 = layer.apply({**variables, **updates}, x, mutable=["attention_state"])
    assert dense_reference.max_err(updates2["attention_state"]["centroids"], new) > 1e-4


# ----------------------------------------------------------------------------- flags


def test_unsupported_and_bad_settings_raise():
    q, k, v = _qkv()
    mu = _centroids(2, 4, 8)
    with pytest.raises(errors.UnsupportedFeatureError, match="packing"):
        routing.routing_attention(
            q, k, v, q_segment_ids=jnp.ones((2, 16), jnp.int32), num_clusters=4, centroids=mu
        )
    with pytest.raises(errors.UnsupportedFeatureError, match="bias"):
        routing.routing_attention(q, k, v, bias=jnp.zeros((1, 4, 16, 16)), centroids=mu)
    with pytest.raises(ValueError, match="centroids"):
        routing.routing_attention(q, k, v, num_clusters=4)
    with pytest.raises(ValueError, match="centroids"):
        routing.routing_attention(q, k, v, num_clusters=5, centroids=mu)
    with pytest.raises(errors.ConfigError, match="ema_decay"):
        routing.routing_attention(q, k, v, num_clusters=4, ema_decay=1.5, centroids=mu)
