"""softmax_chunked: equals `softmax` (forward and gradients) blockwise, skips causal blocks, O(T)."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn.attention import blocking, softmax, softmax_chunked

FWD_ATOL = 1e-5
GRAD_ATOL = 1e-4


@dataclasses.dataclass(frozen=True)
class Case:
    T: int = 16
    S: int = 16
    N: int = 4
    K: int = 4
    block_q: int = 5
    block_k: int = 3
    is_causal: bool = False
    kv_mask: bool = False
    segments: bool = False
    bias_shape: tuple[int, ...] | None = None  # in terms of (B, N, T, S) = (2, N, T, S)


CASES = {
    "blocks_divide": Case(block_q=4, block_k=8),
    "blocks_do_not_divide_causal_padding": Case(T=13, S=13, kv_mask=True, is_causal=True),
    "segments_causal_bias_2d": Case(segments=True, is_causal=True, bias_shape=(16, 16), block_k=6),
    "bias_broadcast_heads_keys_padding": Case(bias_shape=(1, 4, 1, 16), kv_mask=True, block_k=4),
    "gqa_causal_bias_full": Case(K=2, is_causal=True, bias_shape=(2, 4, 16, 16), block_q=3),
    "mqa_segments": Case(K=1, segments=True, block_q=7, block_k=4),
    "cross_long_queries_causal_padding": Case(T=20, S=12, kv_mask=True, is_causal=True, block_q=6),
    "cross_long_keys_all_masks": Case(
        T=9, S=21, K=2, kv_mask=True, segments=True, bias_shape=(2, 4, 9, 21), block_k=4
    ),
    "one_block_defaults": Case(block_q=512, block_k=256, is_causal=True, kv_mask=True),
    # Causal with block_q a multiple of block_k: the diagonal blocks skip their invisible rows.
    "split_diagonal_causal": Case(is_causal=True, block_q=8, block_k=4),
    "split_diagonal_gqa_segments_bias": Case(
        K=2, is_causal=True, segments=True, bias_shape=(2, 4, 16, 16), block_q=6, block_k=2
    ),
    "split_diagonal_padding_bias_broadcast": Case(
        T=13, S=13, kv_mask=True, is_causal=True, bias_shape=(1, 4, 1, 13), block_q=4, block_k=2
    ),
    "split_diagonal_cross_short_keys": Case(
        T=20, S=12, kv_mask=True, is_causal=True, bias_shape=(20, 12), block_q=6, block_k=3
    ),
    "split_diagonal_cross_keys_past_the_queries": Case(
        T=8, S=40, is_causal=True, block_q=4, block_k=2
    ),
    "split_diagonal_cross_long_keys_mqa": Case(
        T=9,
        S=21,
        K=1,
        is_causal=True,
        segments=True,
        bias_shape=(2, 1, 9, 21),
        block_q=4,
        block_k=2,
    ),
}


def _inputs(case: Case, seed: int = 0) -> tuple[tuple[jax.Array, ...], dict[str, jax.Array]]:
    """(q, k, v, bias or None) and the mask keyword arguments for a case, batch 2, H 8."""
    rng = np.random.default_rng(seed)
    B, H = 2, 8
    q = jnp.asarray(rng.normal(size=(B, case.T, case.N, H)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(B, case.S, case.K, H)), jnp.float32)
    v = jnp.asarray(rng.normal(size=(B, case.S, case.K, H)), jnp.float32)
    bias = None
    if case.bias_shape is not None:
        bias = jnp.asarray(rng.normal(size=case.bias_shape), jnp.float32)
    masks = {}
    if case.kv_mask:
        lengths = np.array([case.S, max(case.S - 7, 1)])
        masks["kv_mask"] = jnp.asarray(np.arange(case.S)[None] < lengths[:, None])
    if case.segments:
        # Random packing with some id-0 padding; with T != S some query rows have no key at all.
        masks["q_segment_ids"] = jnp.asarray(np.sort(rng.integers(0, 4, (B, case.T))), jnp.int32)
        masks["kv_segment_ids"] = jnp.asarray(np.sort(rng.integers(0, 4, (B, case.S))), jnp.int32)
    return (q, k, v, bias), masks


def _value_and_grads(fn, case: Case, args, masks, cotangent, **hparams):
    """Output and gradients w.r.t. q, k, v (and bias if given) of sum(out · cotangent)."""

    def loss(q, k, v, bias):
        out = fn(q, k, v, is_causal=case.is_causal, bias=bias, **masks, **hparams)
        return jnp.sum(out * cotangent), out

    argnums = (0, 1, 2, 3) if args[3] is not None else (0, 1, 2)
    (_, out), grads = jax.jit(jax.value_and_grad(loss, argnums=argnums, has_aux=True))(*args)
    return out, grads


@pytest.mark.parametrize("name", sorted(CASES))
def test_equals_softmax_forward_and_gradients(name):
    case = CASES[name]
    args, masks = _inputs(case)
    cotangent = jnp.asarray(np.random.default_rng(1).normal(size=args[0].shape), jnp.float32)
    out, grads = _value_and_grads(
        softmax_chunked.softmax_chunked_attention,
        case,
        args,
        masks,
        cotangent,
        block_q=case.block_q,
        block_k=case.block_k,
    )
    expected, expected_grads = _value_and_grads(
        softmax.softmax_attention, case, args, masks, cotangent
    )
    np.testing.assert_allclose(out, expected, rtol=0, atol=FWD_ATOL)
    assert len(grads) == len(expected_grads)
    for what, g, e in zip(("q", "k", "v", "bias"), grads, expected_grads, strict=False):
        assert g.shape == e.shape, what
        np.testing.assert_allclose(g, e, rtol=0, atol=GRAD_ATOL, err_msg=f"d/d{what}")


def test_fully_masked_rows_are_zero_with_finite_gradients():
    """Example 1 has no real key at all: its rows are zeros, its gradients finite and zero."""
    case = Case(kv_mask=True, is_causal=True, block_q=5, block_k=3)
    (q, k, v, _), _ = _inputs(case)
    kv_mask = jnp.asarray([[True] * 16, [False] * 16])
    fn = lambda q, k, v: softmax_chunked.softmax_chunked_attention(  # noqa: E731
        q, k, v, is_causal=True, kv_mask=kv_mask, block_q=5, block_k=3
    )
    out = jax.jit(fn)(q, k, v)
    np.testing.assert_array_equal(out[1], 0.0)
    loss = lambda q, k, v: jnp.sum(fn(q, k, v) ** 2)
    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(q, k, v)
    for what, g in zip("qkv", grads, strict=True):
        assert bool(jnp.all(jnp.isfinite(g))), what
        np.testing.assert_array_equal(g[1], 0.0, err_msg=what)
        assert float(jnp.max(jnp.abs(g[0]))) > 0, what


@pytest.mark.parametrize(("T", "S"), [(24, 24), (17, 31), (40, 9)])
@pytest.mark.parametrize(("block_q", "block_k"), [(6, 4), (4, 6), (5, 5), (1, 7)])
def test_causal_loop_bounds_visit_exactly_the_blocks_below_the_diagonal(T, S, block_q, block_k):
    """Block (i, j) is visited, forward and backward, iff it is not entirely above the diagonal
    (some query row t of block i and key s of block j have s <= t), and it skips the causal
    comparison iff it lies entirely on or below it (every s <= every t)."""
    cfg = blocking.Blocking(True, block_q, block_k, 1, 1)
    nQ, nK = -(-T // block_q), -(-S // block_k)
    for i in range(nQ):
        for j in range(nK):
            rows = np.arange(i * block_q, (i + 1) * block_q)
            cols = np.arange(j * block_k, (j + 1) * block_k)
            visited = bool(np.any(cols[None, :] <= rows[:, None]))
            unmasked = bool(np.all(cols[None, :] <= rows[:, None]))
            below, end = (int(x) for x in blocking.key_block_range(cfg, i, nK))
            start, full = (int(x) for x in blocking.query_block_range(cfg, j, nQ))
            forward = (j < end, j < below)
            backward = (i >= start, i >= full)
            assert forward == backward == (visited, unmasked), (i, j, forward, backward)


def _causal_inputs():
    case = Case(T=24, S=24, N=2, K=2, is_causal=True, block_q=6, block_k=4)
    (q, k, v, _), _ = _inputs(case, seed=3)
    return q, k, v


def _chunked_causal(q, k, v, block_q=6, block_k=4):
    return softmax_chunked.softmax_chunked_attention(
        q, k, v, is_causal=True, block_q=block_q, block_k=block_k
    )


# (block_q, block_k, first poisoned key, last poisoned key + 1, rows that must stay clean)
POISON = {
    # Query block 0 (rows 0-5) only sees key blocks 0 and 1 (keys 0-7).
    "blocks_above_diagonal": (6, 4, 8, 24, 6),
    # Split diagonal: key block 1 (keys 4-7) is computed for rows 4-7 of query block 0 only.
    "split_diagonal_rows": (8, 4, 4, 8, 4),
}


@pytest.mark.parametrize("name", sorted(POISON))
def test_causal_forward_never_touches_invisible_key_blocks(name):
    """NaN keys/values at the poisoned positions: the clean rows never compute with them. A
    computed-then-masked block would still give NaN (0 · NaN in P V)."""
    block_q, block_k, lo, hi, clean = POISON[name]
    q, k, v = _causal_inputs()
    poison = ((jnp.arange(24) >= lo) & (jnp.arange(24) < hi))[None, :, None, None]
    k_nan, v_nan = jnp.where(poison, jnp.nan, k), jnp.where(poison, jnp.nan, v)
    out = jax.jit(functools.partial(_chunked_causal, block_q=block_q, block_k=block_k))(
        q, k_nan, v_nan
    )
    expected = softmax.softmax_attention(q, k, v, is_causal=True)
    assert bool(jnp.all(jnp.isfinite(out[:, :clean])))
    np.testing.assert_allclose(out[:, :clean], expected[:, :clean], rtol=0, atol=FWD_ATOL)
    assert not bool(jnp.all(jnp.isfinite(out[:, clean:])))  # rows that do see the poison


# (block_q, block_k, poisoned query rows, keys whose gradients must stay clean)
BACKWARD_POISON = {
    # Keys from 8 on (key blocks 2+) are seen by query blocks 1+ (rows 6+) only.
    "blocks_above_diagonal": (6, 4, 6, 8),
    # Split diagonal: key block 1 (keys 4-7) meets rows 4-7 of query block 0, not rows 0-3.
    "split_diagonal_rows": (8, 4, 4, 4),
}


@pytest.mark.parametrize("name", sorted(BACKWARD_POISON))
def test_causal_backward_never_touches_invisible_query_rows(name):
    """NaN queries in the poisoned rows, loss on the other rows: the gradients of the keys those
    rows cannot see stay finite and exact."""
    block_q, block_k, rows, keys = BACKWARD_POISON[name]
    q, k, v = _causal_inputs()
    q_nan = jnp.where((jnp.arange(24) < rows)[None, :, None, None], jnp.nan, q)
    cotangent = jnp.where((jnp.arange(24) >= rows)[None, :, None, None], 1.0, 0.0) * jnp.cos(q)
    chunked = functools.partial(_chunked_causal, block_q=block_q, block_k=block_k)

    def grads(fn, q):
        loss = lambda q, k, v: jnp.sum(jnp.where(cotangent != 0, fn(q, k, v) * cotangent, 0.0))
        return jax.jit(jax.grad(loss, argnums=(1, 2)))(q, k, v)

    dk, dv = grads(chunked, q_nan)
    dk_ref, dv_ref = grads(lambda q, k, v: softmax.softmax_attention(q, k, v, is_causal=True), q)
    assert bool(jnp.all(jnp.isfinite(dk[:, keys:]))) and bool(jnp.all(jnp.isfinite(dv[:, keys:])))
    np.testing.assert_allclose(dk[:, keys:], dk_ref[:, keys:], rtol=0, atol=GRAD_ATOL)
    np.testing.assert_allclose(dv[:, keys:], dv_ref[:, keys:], rtol=0, atol=GRAD_ATOL)


@pytest.mark.parametrize("is_causal", [False, True], ids=["bidirectional", "causal"])
def test_backward_temporary_memory_is_far_below_the_logits(is_causal):
    """fwd+bwd at T = 4096 (compiled, not run): temp memory < 1/8 of one T x T float32 logits
    matrix, while `softmax` needs more than the logits. Measured here: ~3-5 MiB vs 64 MiB."""
    B, T, N, H = 1, 4096, 1, 16
    x = jax.ShapeDtypeStruct((B, T, N, H), jnp.float32)
    mask = jax.ShapeDtypeStruct((B, T), jnp.bool_)
    logits_bytes = B * N * T * T * 4

    def temp_bytes(fn):
        loss = lambda q, k, v, m: jnp.sum(fn(q, k, v, is_causal=is_causal, kv_mask=m))
        compiled = jax.jit(jax.grad(loss, argnums=(0, 1, 2))).lower(x, x, x, mask).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    chunked = temp_bytes(softmax_chunked.softmax_chunked_attention)
    dense = temp_bytes(softmax.softmax_attention)
    assert dense >= logits_bytes, (dense, logits_bytes)  # the measurement sees T² buffers
    assert chunked < logits_bytes / 8, (chunked, logits_bytes)


def test_bfloat16_forward_and_gradients_track_float32():
    case = Case(K=2, kv_mask=True, is_causal=True)
    (q, k, v, _), masks = _inputs(case)
    cotangent = jnp.asarray(np.random.default_rng(2).normal(size=q.shape), jnp.float32)
    args16 = tuple(x.astype(jnp.bfloat16) for x in (q, k, v)) + (None,)
    out, grads = _value_and_grads(
        softmax_chunked.softmax_chunked_attention, case, args16, masks, cotangent, block_q=5
    )
    expected, expected_grads = _value_and_grads(
        softmax.softmax_attention, case, (q, k, v, None), masks, cotangent
    )
    assert out.dtype == jnp.bfloat16 and all(g.dtype == jnp.bfloat16 for g in grads)
    np.testing.assert_allclose(out.astype(jnp.float32), expected, rtol=0, atol=3e-2)
    for what, g, e in zip("qkv", grads, expected_grads, strict=True):
        scale = float(jnp.max(jnp.abs(e)))
        np.testing.assert_allclose(
            g.astype(jnp.float32), e, rtol=0, atol=3e-2 * scale, err_msg=what
        )


def test_bad_arguments_raise():
    (q, k, v, _), _ = _inputs(Case())
    with pytest.raises(ValueError, match="block_q"):
        softmax_chunked.softmax_chunked_attention(q, k, v, block_q=0)
    with pytest.raises(ValueError, match="bias"):
        softmax_chunked.softmax_chunked_attention(q, k, v, bias=jnp.zeros((2, 4, 16, 8)))
