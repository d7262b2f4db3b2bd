"""Axial attention: the one-row limit is softmax, general grids (with prefix tokens, padding,
causal, GQA) equal a dense reference that builds the composite weights A_col · A_row explicitly,
gradients match it, raster-order causality holds exactly, and the refusals."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors
from jaxattn.attention import axial, get_attention_fn, softmax
from tests.attention import battery_cases as cases


def _layout(T: int, grid: tuple[int, int]):
    """Per position: is it a prefix token, its grid row and column (-1 for the prefix)."""
    R, C = grid
    P = T - R * C
    g = np.arange(T) - P
    is_prefix = g < 0
    return is_prefix, np.where(is_prefix, -1, g // C), np.where(is_prefix, -1, g % C)


def _masked_softmax(xp, logits, allowed):
    logits = xp.where(allowed, logits, -1e30)
    e = xp.exp(logits - logits.max(axis=-1, keepdims=True))
    e = xp.where(allowed, e, 0.0)
    return e / xp.maximum(e.sum(axis=-1, keepdims=True), 1e-30)


def dense_weights(xp, q, k, grid, *, is_causal=False, kv_mask=None, scale=None):
    """The [B, N, T, T] weights of axial attention, built from the definitions on the flat
    sequence: the row step's and column step's masked softmaxes as T×T matrices, composed as
    W = A_col · A_row for grid queries; prefix queries get one softmax over every key."""
    B, T, N, H = q.shape
    G = N // k.shape[2]
    k = xp.repeat(k, G, axis=2)
    scale = H**-0.5 if scale is None else scale
    logits = xp.einsum("BTNH,BSNH->BNTS", q, k) * scale
    is_prefix, row, col = _layout(T, grid)
    i, j = np.arange(T)[:, None], np.arange(T)[None, :]
    keep = np.ones((T, T), bool) if not is_causal else j <= i
    valid = np.ones((B, T), bool) if kv_mask is None else np.asarray(kv_mask)
    keep = keep[None, None] & valid[:, None, None, :]  # [B, 1, T, S]
    row_step = (is_prefix[None, :] | (row[:, None] == row[None, :])) & ~is_prefix[:, None]
    col_step = ~is_prefix[None, :] & (col[:, None] == col[None, :]) & ~is_prefix[:, None]
    a_full = _masked_softmax(xp, logits, keep)
    a_row = _masked_softmax(xp, logits, keep & row_step)
    a_col = _masked_softmax(xp, logits, keep & col_step)
    return xp.where(is_prefix[:, None], a_full, a_col @ a_row)


def dense_axial(xp, q, k, v, grid, **kwargs):
    w = dense_weights(xp, q, k, grid, **kwargs)
    G = q.shape[2] // k.shape[2]
    return xp.einsum("BNTS,BSNH->BTNH", w, xp.repeat(v, G, axis=2))


def _bind(grid):
    return get_attention_fn({"kind": "axial", "axial": {}}, grid=grid)


GRIDS = {
    "cls_3x5": (16, (3, 5)),
    "no_prefix_4x4": (16, (4, 4)),
    "two_prefix_4x3": (14, (4, 3)),
    "column_5x1": (6, (5, 1)),
}


@pytest.mark.parametrize("is_causal", [False, True], ids=["bidirectional", "causal"])
@pytest.mark.parametrize("T, P", [(12, 0), (13, 1), (14, 2)])
def test_one_row_is_softmax(T, P, is_causal):
    B, N, K, H = 3, 4, 2, 8
    q, k, v = cases.qkv(B, T, T, N, K, H, seed=0)
    kv_mask = cases.padding_mask(B, T)
    out = _bind((1, T - P))(q, k, v, is_causal=is_causal, kv_mask=kv_mask)
    ref = softmax.softmax_attention(q, k, v, is_causal=is_causal, kv_mask=kv_mask)
    cases.assert_close(cases.real_rows(out, kv_mask), cases.real_rows(ref, kv_mask), 1e-6, "1 row")


@pytest.mark.parametrize("is_causal", [False, True], ids=["bidirectional", "causal"])
@pytest.mark.parametrize("name", sorted(GRIDS))
def test_equals_the_dense_composite_reference(name, is_causal):
    T, grid = GRIDS[name]
    B, N, K, H = 3, 4, 2, 8
    q, k, v = cases.qkv(B, T, T, N, K, H, seed=1)
    kv_mask = cases.padding_mask(B, T)
    out = jax.jit(_bind(grid), static_argnames="is_causal")(
        q, k, v, is_causal=is_causal, kv_mask=kv_mask
    )
    f64 = [np.asarray(x, np.float64) for x in (q, k, v)]
    ref = dense_axial(np, *f64, grid, is_causal=is_causal, kv_mask=np.asarray(kv_mask))
    # Measured: <= 3.6e-7 over these grids (float32 vs float64).
    cases.assert_close(cases.real_rows(out, kv_mask), cases.real_rows(ref, kv_mask), 2e-6, name)


def test_every_grid_output_mixes_the_whole_grid_and_the_prefix():
    """The composite weights (A_col · A_row) of every real query are > 0 on every real key and
    sum to 1: one call has the full receptive field."""
    T, grid = GRIDS["cls_3x5"]
    q, k, _ = cases.qkv(2, T, T, 4, 4, 8, seed=2)
    kv_mask = np.asarray(cases.padding_mask(2, T))
    w = dense_weights(np, *(np.asarray(x, np.float64) for x in (q, k)), grid, kv_mask=kv_mask)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-12)
    real = kv_mask[:, None, :, None] & kv_mask[:, None, None, :]
    assert np.all(w[np.broadcast_to(real, w.shape)] > 0)
    assert np.all(w[np.broadcast_to(~kv_mask[:, None, None, :], w.shape)] == 0)


def test_gradients_equal_the_reference():
    T, grid = GRIDS["two_prefix_4x3"]
    B, N, K, H = 2, 4, 2, 8
    q, k, v = cases.qkv(B, T, T, N, K, H, seed=3)
    kv_mask = cases.padding_mask(B, T)
    cot = jnp.asarray(np.random.default_rng(4).normal(size=(B, T, N, H)), jnp.float32)
    weight = kv_mask[:, :, None, None]

    def loss(fn):
        return lambda q, k, v: jnp.sum(jnp.where(weight, fn(q, k, v) * cot, 0.0))

    fn = _bind(grid)
    for is_causal in (False, True):
        ours = jax.jit(jax.grad(loss(lambda q, k, v: fn(q, k, v, is_causal=is_causal, kv_mask=kv_mask)), (0, 1, 2)))(q, k, v)  # fmt: skip
        ref_fn = lambda q, k, v: dense_axial(jnp, q, k, v, grid, is_causal=is_causal, kv_mask=kv_mask)  # noqa: E731  # fmt: skip
        ref = jax.jit(jax.grad(loss(ref_fn), (0, 1, 2)))(q, k, v)
        for name, a, b in zip("qkv", ours, ref, strict=True):
            cases.assert_close(a, b, 1e-5, f"d/d{name} (causal={is_causal})")


def test_causal_receptive_field_is_exactly_the_past_quadrant():
    """Output (r, c) depends on (r' <= r, c' <= c) and on the prefix tokens it follows, nothing
    else: the Jacobian's non-zero pattern, read per position, is exactly that set."""
    T, grid = GRIDS["cls_3x5"]
    B, N, H = 1, 2, 4
    q, k, v = cases.qkv(B, T, T, N, N, H, seed=5)
    fn = _bind(grid)

    def per_position(q, k, v):
        return jnp.sum(fn(q, k, v, is_causal=True), axis=(2, 3))[0]  # [T]

    jac = jax.jit(jax.jacrev(per_position, argnums=(0, 1, 2)))(q, k, v)  # each [T, B, S, N, H]
    depends = sum(jnp.abs(j).sum(axis=(1, 3, 4)) for j in jac) > 0  # [T, S]
    is_prefix, row, col = _layout(T, grid)
    i, j = np.arange(T)[:, None], np.arange(T)[None, :]
    prefix_q = is_prefix[:, None] & (j <= i)
    grid_q = ~is_prefix[:, None] & (
        is_prefix[None, :] | ((row[None, :] <= row[:, None]) & (col[None, :] <= col[:, None]))
    )
    np.testing.assert_array_equal(np.asarray(depends), prefix_q | grid_q)
    assert not np.any(np.asarray(depends) & (j > i))  # nothing from the raster-order future


def test_a_padded_grid_row_and_column_stay_finite_and_invariant():
    """Padding that empties the last grid row: garbage there changes no real output."""
    T, grid = GRIDS["no_prefix_4x4"]
    q, k, v = cases.qkv(2, T, T, 4, 4, 8, seed=6)
    kv_mask = jnp.asarray(np.arange(T)[None] < np.array([[T], [12]]))
    fn = jax.jit(_bind(grid), static_argnames="is_causal")
    noise = [jnp.asarray(50 * np.random.default_rng(s).normal(size=q.shape), q.dtype) for s in range(3)]  # fmt: skip
    dirty = [jnp.where(kv_mask[:, :, None, None], x, n) for x, n in zip((q, k, v), noise, strict=True)]  # fmt: skip
    for is_causal in (False, True):
        out = fn(q, k, v, is_causal=is_causal, kv_mask=kv_mask)
        out2 = fn(*dirty, is_causal=is_causal, kv_mask=kv_mask)
        assert bool(jnp.all(jnp.isfinite(out2)))
        cases.assert_close(cases.real_rows(out2, kv_mask), cases.real_rows(out, kv_mask), 1e-6, "")


def test_refusals_name_the_kind_and_the_flag():
    fn = _bind((3, 5))
    q, k, v = cases.qkv(2, 16, 16, 4, 4, 8)
    ids = jnp.ones((2, 16), jnp.int32)
    for kwargs, flag in (
        ({"q_segment_ids": ids}, "segment_ids"),
        ({"bias": jnp.zeros((1, 4, 16, 16))}, "bias"),
    ):
        with pytest.raises(errors.UnsupportedFeatureError, match=f"'axial'.*{flag}"):
            fn(q, k, v, **kwargs)
    with pytest.raises(errors.UnsupportedFeatureError, match="'axial'.*cross"):
        fn(q, k[:, :12], v[:, :12])
    for need in ("segment_ids", "bias", "cross"):
        with pytest.raises(errors.UnsupportedFeatureError, match=f"'axial'.*{need}"):
            get_attention_fn({"kind": "axial", "axial": {}}, grid=(3, 5), **{need: True})


def test_needs_a_grid_that_fits():
    # A model that offers no grid (a sequence model) is refused before tracing.
    with pytest.raises(errors.UnsupportedFeatureError, match="'axial' needs a 2-D token grid"):
        get_attention_fn({"kind": "axial", "axial": {}})
    q, k, v = cases.qkv(1, 8, 8, 2, 2, 4)
    with pytest.raises(errors.UnsupportedFeatureError, match="'axial' needs a 2-D token grid"):
        axial.axial_attention(q, k, v)
    with pytest.raises(ValueError, match="3 x 3 = 9 tokens does not fit.*T=8"):
        _bind((3, 3))(q, k, v)
    with pytest.raises(errors.ConfigError, match="positive"):
        _bind((0, 3))(q, k, v)


def test_config_has_no_grid_entry():
    """The grid comes from the model; configs cannot set it (it would be overwritten)."""
    from configs import common

    cfg = common.attention_config("axial")
    assert "grid" not in cfg.axial
    bound = get_attention_fn(cfg, grid=(2, 4))
    assert dict(bound.hparams) == {"grid": (2, 4)}
