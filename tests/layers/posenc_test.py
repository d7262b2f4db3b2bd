"""Positional schemes in attention: RoPE, ALiBi, T5 buckets, Shaw and Huang relative logits."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import common
from jaxattn import errors, models
from jaxattn.attention import REGISTRY, core, get_attention_fn, softmax
from jaxattn.layers import attention, posenc

RELATIVE = [name for name in posenc.SCHEMES if name != "none"]
LEARNED = {"t5": "t5_table", "shaw": "shaw_table", "huang": "huang_table"}


def normal(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def layer(scheme="none", kind="softmax", *, N=4, K=None, H=8, max_distance=6, num_buckets=16):
    """A MultiHeadAttention with a relative scheme (small tables for the test shapes)."""
    relative = posenc.RelativePosition(
        scheme=scheme, max_distance=max_distance, num_buckets=num_buckets
    )
    return attention.MultiHeadAttention(
        attention=get_attention_fn({"kind": kind}),
        num_heads=N,
        num_kv_heads=K,
        head_dim=H,
        relative=relative,
    )


def init(module, x, **kwargs):
    return module.init(jax.random.PRNGKey(0), x, **kwargs)


def without_relative(params):
    """The same projections, minus the relative table (the params of the scheme 'none')."""
    inner = {k: v for k, v in params["params"].items() if k != "relative"}
    return {"params": inner}


def zero_relative(params):
    inner = dict(params["params"])
    inner["relative"] = jax.tree_util.tree_map(jnp.zeros_like, inner["relative"])
    return {"params": inner}


# --- RoPE ---------------------------------------------------------------------------------------


def test_rope_matches_the_block_rotation_matrix():
    """R_p is block-diagonal with 2x2 rotations by p·θ_i on pairs (2i, 2i+1), θ_i = b^(−2i/H)."""
    H, base, p = 8, 100.0, 3
    x = normal((1, 1, 1, H))
    rotation = np.zeros((H, H))
    for i in range(H // 2):
        angle = p * base ** (-2 * i / H)
        c, s = math.cos(angle), math.sin(angle)
        rotation[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = [[c, -s], [s, c]]
    expected = rotation @ np.asarray(x[0, 0, 0], np.float64)
    got = posenc.apply_rope(x, jnp.array([[p]]), base=base)[0, 0, 0]
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_rope_inner_product_depends_only_on_the_offset_and_keeps_norms():
    H = 16
    q, k = normal((1, 1, 1, H), 0), normal((1, 1, 1, H), 1)

    def score(p, r):
        rq = posenc.apply_rope(q, jnp.array([[p]]))
        rk = posenc.apply_rope(k, jnp.array([[r]]))
        return float(jnp.sum(rq * rk))

    for t in (0, 1, 5, -7):
        scores = [score(p, p + t) for p in (0, 1, 9, 40, 123)]
        np.testing.assert_allclose(scores, scores[0], atol=1e-5)
    assert abs(score(0, 1) - score(0, 5)) > 1e-3  # the offset does matter

    x = normal((2, 12, 3, H))
    positions = jnp.asarray(np.random.default_rng(2).integers(0, 500, (2, 12)))
    norms = jnp.linalg.norm(posenc.apply_rope(x, positions), axis=-1)
    np.testing.assert_allclose(norms, jnp.linalg.norm(x, axis=-1), rtol=1e-6)


def test_rope_needs_an_even_head_dim():
    with pytest.raises(errors.ConfigError, match="even head_dim"):
        posenc.apply_rope(normal((1, 4, 1, 5)), jnp.arange(4)[None])


# --- ALiBi --------------------------------------------------------------------------------------


def test_alibi_slopes():
    np.testing.assert_allclose(posenc.alibi_slopes(8), 2.0 ** -np.arange(1.0, 9.0))
    np.testing.assert_allclose(posenc.alibi_slopes(4), 2.0 ** -np.arange(2.0, 9.0, 2.0))
    # N = 6 (not a power of two): the 4 slopes of N = 4, then every other slope of N = 8.
    np.testing.assert_allclose(
        posenc.alibi_slopes(6), 2.0 ** -np.array([2.0, 4.0, 6.0, 8.0, 1.0, 3.0])
    )


def explicit_alibi(N, T, *, is_causal):
    slopes = posenc.alibi_slopes(N)
    bias = np.zeros((1, N, T, T), np.float32)
    for h in range(N):
        for i in range(T):
            for j in range(T):
                bias[0, h, i, j] = -slopes[h] * ((i - j) if is_causal else abs(i - j))
    return bias


@pytest.mark.parametrize("is_causal", [False, True])
def test_alibi_layer_equals_softmax_with_the_explicit_bias(is_causal):
    N, T = 4, 10
    x = normal((2, T, 16))
    mha = layer("alibi", N=N)
    params = init(mha, x, is_causal=is_causal)
    got = mha.apply(params, x, is_causal=is_causal)
    bias = jnp.asarray(explicit_alibi(N, T, is_causal=is_causal))
    expected = layer("none", N=N).apply(params, x, is_causal=is_causal, bias=bias)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    without = layer("none", N=N).apply(params, x, is_causal=is_causal)
    assert float(jnp.max(jnp.abs(got - without))) > 1e-3


def test_alibi_stays_finite_far_beyond_training_lengths():
    q = normal((1, 512, 2, 8))
    bias = posenc.alibi_bias(
        jnp.arange(512)[None], jnp.arange(512)[None], posenc.alibi_slopes(2), is_causal=True
    )
    out = softmax.softmax_attention(q, q, q, is_causal=True, bias=bias)
    assert np.isfinite(np.asarray(out)).all()


# --- T5 buckets ---------------------------------------------------------------------------------


def reference_bucket(offset, *, is_causal, num_buckets, max_distance):
    """Scalar NumPy/float64 rendering of the T5 bucketing rule."""
    back = -offset
    if is_causal:
        side, per_side, distance = 0, num_buckets, max(back, 0)
    else:
        per_side = num_buckets // 2
        side, distance = (per_side if back < 0 else 0), abs(back)
    exact = per_side // 2
    if distance < exact:
        return side + distance
    far = exact + math.floor(
        math.log(distance / exact) / math.log(max_distance / exact) * (per_side - exact)
    )
    return side + min(far, per_side - 1)


# (offset j − i, bucket) worked out by hand for num_buckets 32, max_distance 128.
BIDIRECTIONAL = [(0, 0), (-3, 3), (-7, 7), (-8, 8), (-16, 10), (-127, 15), (-128, 15),
                 (-1000, 15), (3, 19), (8, 24), (16, 26), (1000, 31)]  # fmt: skip
CAUSAL = [(5, 0), (0, 0), (-5, 5), (-15, 15), (-16, 16), (-32, 21), (-64, 26), (-127, 31),
          (-200, 31)]  # fmt: skip


@pytest.mark.parametrize("is_causal, pairs", [(False, BIDIRECTIONAL), (True, CAUSAL)])
def test_t5_buckets_on_hand_picked_offsets(is_causal, pairs):
    offsets = jnp.array([o for o, _ in pairs])
    got = posenc.t5_buckets(offsets, is_causal=is_causal, num_buckets=32, max_distance=128)
    assert [int(b) for b in got] == [b for _, b in pairs]
    reference = [
        reference_bucket(o, is_causal=is_causal, num_buckets=32, max_distance=128) for o, _ in pairs
    ]
    assert reference == [b for _, b in pairs]


@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("num_buckets, max_distance", [(32, 128), (16, 20), (8, 64)])
def test_t5_buckets_match_the_reference_everywhere(is_causal, num_buckets, max_distance):
    offsets = np.arange(-400, 401)
    got = posenc.t5_buckets(
        jnp.asarray(offsets),
        is_causal=is_causal,
        num_buckets=num_buckets,
        max_distance=max_distance,
    )
    expected = [
        reference_bucket(
            int(o), is_causal=is_causal, num_buckets=num_buckets, max_distance=max_distance
        )
        for o in offsets
    ]
    np.testing.assert_array_equal(np.asarray(got), expected)


@pytest.mark.parametrize("is_causal", [False, True])
def test_t5_bias_is_shift_invariant(is_causal):
    table = normal((16, 3))
    base = jnp.asarray(np.random.default_rng(0).integers(0, 50, (2, 9)))
    a = posenc.t5_bias(table, base, base, is_causal=is_causal, max_distance=20)
    b = posenc.t5_bias(table, base + 1000, base + 1000, is_causal=is_causal, max_distance=20)
    assert a.shape == (2, 3, 9, 9)
    np.testing.assert_array_equal(a, b)


# --- Shaw and Huang: the skew trick against the naive T×S×H gather --------------------------------


def naive_relative_vectors(table, q_positions, kv_positions):
    """a_clip(j−i) gathered densely: [B|1, T, S, H]."""
    M = (table.shape[0] - 1) // 2
    offsets = kv_positions[:, None, :] - q_positions[:, :, None]
    return table[np.clip(offsets, -M, M) + M]


def positions_cases(B, T):
    rng = np.random.default_rng(3)
    packed = np.concatenate([np.arange(T // 2), np.arange(T - T // 2)])  # two packed segments
    return {
        "default": (jnp.arange(T)[None], jnp.arange(T)[None]),
        "per_example": (
            jnp.asarray(np.stack([packed, rng.permutation(T)])[:B]),
            jnp.asarray(np.stack([packed, rng.permutation(T)])[:B]),
        ),
    }


@pytest.mark.parametrize("case", ["default", "per_example"])
def test_shaw_skew_equals_the_naive_gather(case):
    B, T, N, H, M = 2, 12, 3, 8, 4
    q_pos, kv_pos = positions_cases(B, T)[case]
    query, table = normal((B, T, N, H), 0), normal((2 * M + 1, H), 1)
    got = posenc.shaw_bias(query, table, q_pos, kv_pos, scale=0.3)
    a = naive_relative_vectors(table, q_pos, kv_pos)  # [B|1, T, S, H]
    expected = jnp.einsum("BTNH,BTSH->BNTS", query, jnp.broadcast_to(a, (B, T, T, H))) * 0.3
    np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("case", ["default", "per_example"])
@pytest.mark.parametrize("K", [4, 2])
def test_huang_skew_equals_the_naive_gather(case, K):
    B, T, N, H, M = 2, 12, 4, 8, 4
    q_pos, kv_pos = positions_cases(B, T)[case]
    query, key, table = normal((B, T, N, H), 0), normal((B, T, K, H), 1), normal((2 * M + 1, H), 2)
    got = posenc.huang_bias(query, key, table, q_pos, kv_pos, scale=0.3)
    a = jnp.broadcast_to(naive_relative_vectors(table, q_pos, kv_pos), (B, T, T, H))
    key_n = jnp.repeat(key, N // K, axis=2)  # head n reads key head n // (N/K)
    expected = (
        jnp.einsum("BTNH,BTSH->BNTS", query, a) + jnp.einsum("BSNH,BTSH->BNTS", key_n, a)
    ) * 0.3
    np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("scheme", sorted(LEARNED))
def test_zero_tables_reproduce_attention_without_bias(scheme):
    x = normal((2, 10, 16))
    mha = layer(scheme)
    params = init(mha, x)
    zeroed = mha.apply(zero_relative(params), x)
    plain = layer("none").apply(without_relative(params), x)
    np.testing.assert_allclose(zeroed, plain, atol=1e-6)
    assert float(jnp.max(jnp.abs(mha.apply(params, x) - plain))) > 1e-4  # the table matters


# --- the layer: positions, packing, shift invariance, capability checks ----------------------------


@pytest.mark.parametrize("scheme", RELATIVE)
@pytest.mark.parametrize("is_causal", [False, True])
def test_layer_is_invariant_to_shifting_all_positions(scheme, is_causal):
    x = normal((2, 10, 16))
    mha = layer(scheme)
    params = init(mha, x)
    a = mha.apply(params, x, is_causal=is_causal)
    b = mha.apply(params, x, is_causal=is_causal, positions=jnp.arange(10)[None] + 37)
    np.testing.assert_allclose(a, b, atol=2e-5)


@pytest.mark.parametrize("scheme", RELATIVE)
def test_packed_sequences_with_positions_equal_separate_runs(scheme):
    x = normal((1, 14, 16))
    segment_ids = jnp.asarray([[1] * 6 + [2] * 8])
    positions = jnp.asarray([list(range(6)) + list(range(8))])
    mha = layer(scheme)
    params = init(mha, x)
    packed = mha.apply(params, x, q_segment_ids=segment_ids, positions=positions, is_causal=True)
    first = mha.apply(params, x[:, :6], is_causal=True)
    second = mha.apply(params, x[:, 6:], is_causal=True)
    np.testing.assert_allclose(packed, jnp.concatenate([first, second], axis=1), atol=1e-5)


def test_rope_runs_with_a_kind_without_bias_support():
    x = normal((2, 16, 16))
    mha = layer("rope", "nystrom")
    params = init(mha, x)
    out = mha.apply(params, x)
    assert out.shape == x.shape and np.isfinite(np.asarray(out)).all()
    plain = layer("none", "nystrom").apply(params, x)
    assert float(jnp.max(jnp.abs(out - plain))) > 1e-4


@pytest.mark.parametrize("scheme", ["alibi", "t5", "shaw", "huang"])
def test_bias_scheme_on_a_kind_without_bias_raises_naming_both(scheme):
    x = normal((2, 16, 16))
    with pytest.raises(errors.UnsupportedFeatureError, match="nystrom") as raised:
        init(layer(scheme, "nystrom"), x)
    assert scheme in str(raised.value)
    with pytest.raises(errors.UnsupportedFeatureError, match="nystrom") as raised:
        model_with(scheme, "nystrom")
    assert f"relative='{scheme}'" in str(raised.value) and "softmax" in str(raised.value)


def test_rotary_needs_query_and_key():
    mixer = core.AttentionSpec(lambda x: x, family="mixer", bias=True)
    assert not posenc.works_with("rope", mixer) and not posenc.works_with("alibi", mixer)
    assert posenc.works_with("rope", REGISTRY["nystrom"])
    assert not posenc.works_with("shaw", REGISTRY["nystrom"])
    with pytest.raises(errors.UnsupportedFeatureError, match="'fnet'.*rope"):
        posenc.check_scheme("rope", "fnet", mixer)


def test_a_kind_with_its_own_rotary_refuses_the_layers_rotary():
    """CoCA rotates q and k itself: relative='rope' would rotate twice, so the model refuses it
    with one line naming the kind, the scheme and the fix; its bias schemes still work."""
    assert REGISTRY["coca"].own_rotary
    assert not posenc.works_with("rope", REGISTRY["coca"])
    assert posenc.works_with("alibi", REGISTRY["coca"])
    with pytest.raises(errors.UnsupportedFeatureError, match="'coca'.*rope.*relative='none'"):
        model_with("rope", "coca")
    model_with("none", "coca")


def test_unknown_schemes_are_config_errors():
    with pytest.raises(errors.ConfigError, match="rope, alibi"):
        model_with("rotary")
    with pytest.raises(errors.ConfigError, match="learned, sinusoidal, none"):
        model_with("none", positional="rotary")


# --- models ---------------------------------------------------------------------------------------


def model_with(scheme, kind="softmax", **overrides):
    cfg = {
        "name": "encoder_classifier",
        "emb_dim": 16,
        "num_layers": 1,
        "num_heads": 2,
        "head_dim": 8,
        "mlp_dim": 32,
        "positional": "none",
        "relative": scheme,
        "relative_max_distance": 8,
        "relative_num_buckets": 16,
        "attention": common.attention_config(kind),
    }
    cfg.update(overrides)
    return models.build_model(cfg, vocab_size=16, num_classes=5, max_length=32)


@pytest.mark.parametrize(
    "scheme, kind",
    [(s, "softmax") for s in RELATIVE] + [pytest.param("rope", "nystrom", marks=pytest.mark.slow)],
)
def test_model_trains_one_step(scheme, kind):
    model = model_with(scheme, kind)
    tokens = jnp.asarray(np.random.default_rng(0).integers(1, 16, (2, 24)), jnp.int32)
    tokens = tokens.at[1, 18:].set(0)  # padding
    labels = jnp.array([1, 3])
    params = model.init(jax.random.PRNGKey(0), tokens)["params"]

    def loss_fn(p):
        logits, _ = model.apply({"params": p}, tokens)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    tx = optax.adam(1e-2)
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, _ = tx.update(grads, tx.init(params))
    new_params = optax.apply_updates(params, updates)
    assert np.isfinite(float(loss)) and np.isfinite(float(loss_fn(new_params)))
    if scheme in LEARNED:
        grad = nn.unbox(grads)["encoder"]["block_0"]["attention"]["relative"][LEARNED[scheme]]
        assert float(jnp.max(jnp.abs(grad))) > 0
