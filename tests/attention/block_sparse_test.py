"""Block-sparse attention: the layout helpers, BigBird's random blocks from an rng, and equality
with dense softmax under the element mask expanded from each layout (float64 NumPy)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors
from jaxattn.attention import block_sparse, softmax
from tests.attention import dense_reference

T = 45  # blocks of 4 do not divide it: 12 blocks, the last one 1 token long
BLOCK = 4

_attention = jax.jit(
    block_sparse.block_sparse_attention,
    static_argnames=(
        "is_causal",
        "layout",
        "block_size",
        "num_window_blocks",
        "num_global_blocks",
        "num_random_blocks",
        "stride",
        "num_summary_blocks",
    ),
)
RNG = jax.random.key(5)


def _qkv(B=2, T=T, N=4, K=2, H=8, *, seed=0):
    rng = np.random.default_rng(seed)
    shapes = ((B, T, N, H), (B, T, K, H), (B, T, K, H))
    return tuple(jnp.asarray(rng.normal(size=shape), jnp.float32) for shape in shapes)


def _kv_mask(B=2):
    return np.arange(T)[None] < np.array([T, 30])[:B, None]  # [B, T]


# ---------------------------------------------------------------------------- layout helpers


def test_full_and_expand_layout():
    layout = block_sparse.full_layout(3)
    assert layout.shape == (3, 3) and layout.all()
    diagonal = np.eye(3, dtype=bool)
    mask = block_sparse.expand_layout(diagonal, 4, 10)  # blocks [0, 4), [4, 8), [8, 10)
    assert mask.shape == (10, 10)
    blocks = np.arange(10) // 4
    np.testing.assert_array_equal(mask, blocks[:, None] == blocks[None, :])


def test_window_and_global_blocks():
    window = block_sparse.window_layout(6, 3)
    np.testing.assert_array_equal(window, np.abs(np.subtract.outer(range(6), range(6))) <= 1)
    even = block_sparse.window_layout(6, 4)  # even width: the left side gets the extra block
    assert even[3, 1:5].all() and not even[3, 0] and not even[3, 5]
    np.testing.assert_array_equal(block_sparse.global_blocks(6, 1), [1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(block_sparse.global_blocks(6, 2), [1, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(block_sparse.global_blocks(6, 3), [1, 1, 0, 0, 0, 1])


def test_longformer_layout_is_window_or_global():
    nb = 10
    layout = block_sparse.longformer_layout(nb, 3, 1)
    expected = block_sparse.window_layout(nb, 3)
    expected[0, :] = expected[:, 0] = True
    np.testing.assert_array_equal(layout, expected)


def test_bigbird_layout_structure():
    nb, w, g, r, heads = 16, 3, 2, 3, 4
    layouts = np.asarray(block_sparse.bigbird_layout(RNG, nb, w, g, r, num_heads=heads))
    assert layouts.shape == (heads, nb, nb)
    base = block_sparse.longformer_layout(nb, w, g)
    for layout in layouts:
        assert (layout >= base).all(), "window and global blocks are always active"
        assert layout[[0, nb - 1]].all() and layout[:, [0, nb - 1]].all(), "global rows, columns"
        extra = layout & ~base
        assert (extra.sum(axis=1)[1:-1] == r).all(), "exactly r random blocks per non-global row"
        assert not extra[[0, nb - 1]].any()
    assert len({layout.tobytes() for layout in layouts}) == heads, "each head draws its own"
    # With fewer blocks left than r, a row takes all that are left (and the layout is full).
    np.testing.assert_array_equal(
        block_sparse.bigbird_layout(RNG, 5, w, g, 10)[0], np.ones((5, 5), bool)
    )


def test_random_blocks_are_uniform_over_the_candidates():
    """Row 1 of a 6-block window-1 layout has 5 candidates; 2 of them are drawn without
    replacement: over many rngs each candidate is drawn 2/5 of the time, never twice per row."""
    fixed = np.eye(6, dtype=bool)
    blocks, ok = block_sparse.random_blocks(RNG, fixed, 2, num_heads=4000)  # [4000, 6, 2]
    assert bool(ok.all())
    blocks = np.asarray(blocks)
    assert (blocks[..., 0] != blocks[..., 1]).all() and not (blocks == np.arange(6)[:, None]).any()
    frequency = np.bincount(blocks[:, 1].ravel(), minlength=6) / blocks[:, 1].size
    np.testing.assert_allclose(np.delete(frequency, 1), 0.2, atol=0.02)  # measured: < 0.01


def test_random_layout_is_deterministic_given_the_rng_and_changes_with_it():
    make = functools.partial(
        block_sparse.bigbird_layout,
        num_blocks=32,
        num_window_blocks=3,
        num_global_blocks=2,
        num_random_blocks=3,
    )
    np.testing.assert_array_equal(make(jax.random.key(7)), make(jax.random.key(7)))
    assert bool((make(jax.random.key(7)) != make(jax.random.key(8))).any())
    # make_layout is the fixed part: BigBird's window and global blocks.
    np.testing.assert_array_equal(
        block_sparse.make_layout("bigbird", 32), block_sparse.longformer_layout(32, 3, 2)
    )


def test_strided_layout_matches_sparse_transformer():
    """Causal rows: the previous `stride` blocks or every stride-th block (Child et al. §4.2)."""
    nb, stride = 20, 4
    layout = block_sparse.strided_layout(nb, stride) & np.tri(nb, dtype=bool)
    for i in range(nb):
        expected = [j for j in range(i + 1) if i - j < stride or (i - j) % stride == 0]
        np.testing.assert_array_equal(np.flatnonzero(layout[i]), expected)
    assert (
        block_sparse.strided_layout(nb, stride) == block_sparse.strided_layout(nb, stride).T
    ).all()


def test_fixed_layout_equals_the_element_fixed_pattern():
    """Blocks of 10, stride 5, one summary block: the paper's fixed pattern with l = 50, c = 10
    (A(1): same window of l; A(2): j mod l in [l − c, l)), LRA's setting (LRA-code also lets
    j mod l == 0 through and makes it causal)."""
    length, window, c = 200, 50, 10
    layout = block_sparse.fixed_layout(length // 10, stride=5, num_summary_blocks=1)
    i, j = np.arange(length)[:, None], np.arange(length)[None, :]
    expected = (i // window == j // window) | (j % window >= window - c)
    np.testing.assert_array_equal(block_sparse.expand_layout(layout, 10, length), expected)


def test_make_layout_checks_its_arguments():
    with pytest.raises(errors.ConfigError, match="layout"):
        block_sparse.make_layout("bigbirds", 4)
    with pytest.raises(errors.ConfigError, match="stride"):
        block_sparse.make_layout("strided", 4, block_sparse.LayoutParams(stride=0))
    with pytest.raises(errors.ConfigError, match="num_summary_blocks"):
        block_sparse.make_layout("fixed", 4, block_sparse.LayoutParams(num_summary_blocks=5))
    with pytest.raises(errors.ConfigError, match="num_random_blocks"):
        block_sparse.make_layout("bigbird", 4, block_sparse.LayoutParams(num_random_blocks=-1))


# ---------------------------------------------------------------------------- attention

LAYOUT_CASES = [
    ("bigbird", {}),
    ("bigbird", {"num_window_blocks": 1, "num_global_blocks": 1, "num_random_blocks": 2}),
    ("longformer", {"num_window_blocks": 5, "num_global_blocks": 1}),
    ("strided", {"stride": 3}),
    ("fixed", {"stride": 3, "num_summary_blocks": 1}),
    ("full", {}),
]


@pytest.mark.parametrize(
    ("layout", "hparams", "is_causal"),
    [
        (layout, hparams, is_causal)
        for layout, hparams in LAYOUT_CASES
        for is_causal in (False, True)
        if layout in block_sparse.CAUSAL_LAYOUTS or not is_causal  # bigbird: test_unsupported_raise
    ],
    ids=str,
)
def test_equals_dense_softmax_with_expanded_mask(layout, hparams, is_causal):
    q, k, v = _qkv(T=T)  # GQA: N = 4, K = 2
    N, K = q.shape[2], k.shape[2]
    kv_mask = _kv_mask()
    nb = -(-T // BLOCK)
    params = block_sparse.LayoutParams(**hparams)
    if layout == "bigbird":  # the same random blocks the attention draws, one set per kv head
        blocks = np.asarray(
            block_sparse.bigbird_layout(
                RNG,
                nb,
                params.num_window_blocks,
                params.num_global_blocks,
                params.num_random_blocks,
                num_heads=K,
            )
        )  # [K, nb, nb]
        blocks = np.repeat(blocks, N // K, axis=0)  # query head n reads kv head n // G
    else:
        blocks = block_sparse.make_layout(layout, nb, params)[None]  # [1, nb, nb]
    assert not blocks.all() or layout == "full", "the case should exercise a sparse layout"
    mask = block_sparse.expand_layout(blocks, BLOCK, T)  # [N|1, T, T]
    if is_causal:
        mask &= np.tri(T, dtype=bool)
    mask = mask[None] & kv_mask[:, None, None, :]  # [B, N|1, T, S]
    out = _attention(
        q,
        k,
        v,
        kv_mask=jnp.asarray(kv_mask),
        is_causal=is_causal,
        layout=layout,
        block_size=BLOCK,
        rng=RNG,
        **hparams,
    )
    assert (
        dense_reference.max_err(
            dense_reference.real_rows(out, kv_mask),
            dense_reference.real_rows(dense_reference.dense_softmax(q, k, v, mask), kv_mask),
        )
        <= 1e-5
    )


@pytest.mark.parametrize("is_causal", [False, True], ids=["bidirectional", "causal"])
def test_full_layout_is_softmax(is_causal):
    q, k, v = _qkv(T=T, seed=1)
    kv_mask = jnp.asarray(_kv_mask())
    out = _attention(q, k, v, kv_mask=kv_mask, is_causal=is_causal, layout="full", block_size=7)
    expected = softmax.softmax_attention(q, k, v, kv_mask=kv_mask, is_causal=is_causal)
    assert (
        dense_reference.max_err(
            dense_reference.real_rows(out, kv_mask), dense_reference.real_rows(expected, kv_mask)
        )
        <= 1e-5
    )


def test_same_rng_same_output_other_rng_other_output():
    q, k, v = _qkv(T=64, seed=2)
    run = functools.partial(_attention, q, k, v, layout="bigbird", block_size=4)
    key = jax.random.key
    np.testing.assert_array_equal(np.asarray(run(rng=key(3))), np.asarray(run(rng=key(3))))
    assert dense_reference.max_err(run(rng=key(3)), run(rng=key(4))) > 1e-3


def test_rng_is_needed_only_for_random_blocks():
    q, k, v = _qkv(T=32)
    with pytest.raises(ValueError, match="'bigbird'.*rng"):
        block_sparse.block_sparse_attention(q, k, v, layout="bigbird", block_size=4)
    # Fixed layouts, and BigBird without random blocks, run without one and ignore one.
    for layout, hparams in [
        ("longformer", {}),
        ("fixed", {}),
        ("bigbird", {"num_random_blocks": 0}),
    ]:
        run = functools.partial(_attention, q, k, v, layout=layout, block_size=4, **hparams)
        np.testing.assert_array_equal(np.asarray(run()), np.asarray(run(rng=RNG)))


def test_no_dense_logits():
    """Only active blocks: nothing of the size of the [B, N, T, S] logits is formed."""
    B, T_long, N = 1, 1024, 2
    q, k, v = _qkv(B=B, T=T_long, N=N, K=N)
    fn = functools.partial(
        block_sparse.block_sparse_attention, layout="bigbird", block_size=16, rng=RNG
    )
    assert dense_reference.largest_intermediate(fn, q, k, v) <= B * N * T_long * T_long // 4


def test_unsupported_raise():
    q, k, v = _qkv(T=16)
    ids = jnp.ones((2, 16), jnp.int32)
    cases = [
        ({"is_causal": True, "layout": "bigbird"}, "is_causal"),
        ({"q_segment_ids": ids}, "segment_ids"),
        ({"bias": jnp.zeros((1, 1, 16, 16))}, "bias"),
    ]
    for kwargs, flag in cases:
        with pytest.raises(errors.UnsupportedFeatureError, match=f"'block_sparse'.*{flag}"):
            block_sparse.block_sparse_attention(q, k, v, block_size=4, **kwargs)
    with pytest.raises(errors.UnsupportedFeatureError, match="'block_sparse'.*cross"):
        block_sparse.block_sparse_attention(q, k[:, :8], v[:, :8], block_size=4)
    with pytest.raises(errors.ConfigError, match="block_size"):
        block_sparse.block_sparse_attention(q, k, v, block_size=0)
