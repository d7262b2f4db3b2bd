"""The shared battery, part 1: shapes and dtypes, the exact limit against softmax, padding
invariance, causality and packing, over every 'attention' kind in the registry. Cases and
helpers: battery_cases.py; part 2: battery_contract_test.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn.attention import REGISTRY
from tests.attention import battery_cases as cases


def test_every_kind_is_covered():
    """This battery checks the 'attention' family; other families need their own battery file."""
    for kind in cases.KINDS:
        family = REGISTRY[kind].family
        assert family == "attention" or family in cases.COVERED_ELSEWHERE, (
            f"kind '{kind}' has family '{family}': add battery checks for it"
        )


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("kind", cases.tiered(cases.ATTENTION_KINDS))
def test_shapes_and_dtypes(kind, dtype):
    B, T, N, K, H = cases.small_shape(kind)
    fn = cases.bind(kind)
    params = cases.declared_params(fn, N=N, K=K, H=H, S=T)
    q, k, v = cases.qkv(B, T, T, N, K, H, dtype=dtype)
    kv_mask = cases.padding_mask(B, T)
    out = cases.run(fn, q, k, v, cases.mask_kwargs(kind, kv_mask), params)
    assert out.shape == (B, T, N, H)
    assert out.dtype == dtype
    assert bool(jnp.all(jnp.isfinite(out.astype(jnp.float32))))


# Every kind's float32 limit is its defining check: the default tier for all kinds (bf16: tiered).
@pytest.mark.parametrize(
    ("kind", "dtype"),
    [(kind, jnp.float32) for kind in cases.ATTENTION_KINDS]
    + cases.tiered([(kind, jnp.bfloat16) for kind in cases.ATTENTION_KINDS]),
    ids=lambda x: x if isinstance(x, str) else ("f32" if x == jnp.float32 else "bf16"),
)
def test_exact_limit_equals_softmax(kind, dtype):
    if kind not in cases.EXACT_LIMIT:
        pytest.fail(
            f"kind '{kind}' has no cases.EXACT_LIMIT entry: add the hyper-parameters at which it equals softmax"
        )
    limit = cases.EXACT_LIMIT[kind]
    B, T, N, H = 3, 16, 4, 8
    fn = cases.bind(kind, limit.hparams(T, T))
    q, k, v = cases.qkv(B, T, T, N, N, H, seed=1)
    q, k = q * limit.input_scale, k * limit.input_scale
    params = limit.params(fn, q, k, v)
    kv_mask = cases.padding_mask(B, T)
    masks = cases.mask_kwargs(kind, kv_mask)
    expected = limit.expected(q, k, v, masks)  # float32 reference
    qd, kd, vd = (x.astype(dtype) for x in (q, k, v))
    out = cases.run(fn, qd, kd, vd, masks, params)
    atol = limit.atol_f32 if dtype == jnp.float32 else limit.atol_bf16
    cases.assert_close(
        cases.real_rows(out, kv_mask),
        cases.real_rows(expected, kv_mask),
        atol,
        f"{kind} vs softmax",
    )


def _garbage_in_padding(x: jax.Array, kv_mask: jax.Array, seed: int) -> jax.Array:
    noise = 50.0 * np.random.default_rng(seed).normal(size=x.shape)
    return jnp.where(kv_mask[:, :, None, None], x, jnp.asarray(noise, x.dtype))


@pytest.mark.parametrize("kind", cases.tiered(cases.kinds_with("padding")))
def test_padding_invariance(kind):
    """Random garbage in the padded positions of q, k and v never changes real query rows."""
    fn, params, q, k, v, kv_mask = cases.small_inputs(kind, seed=2)
    out = cases.run(fn, q, k, v, {"kv_mask": kv_mask}, params)
    dirty = (_garbage_in_padding(x, kv_mask, seed) for seed, x in enumerate((q, k, v)))
    out2 = cases.run(fn, *dirty, {"kv_mask": kv_mask}, params)
    assert bool(jnp.all(jnp.isfinite(out2)))
    cases.assert_close(
        cases.real_rows(out2, kv_mask), cases.real_rows(out, kv_mask), 1e-5, "garbage in padding"
    )


@pytest.mark.parametrize("kind", cases.tiered(cases.kinds_with("padding")))
def test_example_without_real_keys_stays_finite(kind):
    """An example whose keys are all padding (a fully masked row everywhere) gives finite
    outputs and gradients, and leaves the other examples' outputs unchanged."""
    fn, params, q, k, v, kv_mask = cases.small_inputs(kind, seed=9)
    B = q.shape[0]
    empty = kv_mask.at[1].set(False)  # example 1: no real key at all

    def loss(q, k, v):
        return jnp.sum(cases.run(fn, q, k, v, {"kv_mask": empty}, params) ** 2)

    out = cases.run(fn, q, k, v, {"kv_mask": empty}, params)
    grads = jax.grad(loss, argnums=(0, 1, 2))(q, k, v)
    assert bool(jnp.all(jnp.isfinite(out))), f"{kind}: non-finite output"
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads), f"{kind}: non-finite gradient"
    reference = cases.run(fn, q, k, v, {"kv_mask": kv_mask}, params)
    others = np.arange(B) != 1
    cases.assert_close(
        cases.real_rows(out, kv_mask)[others],
        cases.real_rows(reference, kv_mask)[others],
        1e-5,
        kind,
    )


@pytest.mark.parametrize("kind", cases.tiered(cases.kinds_with("causal")))
def test_causality(kind):
    """Perturbing tokens at positions >= t0 never changes outputs at positions < t0."""
    B, T, N, K, H = cases.small_shape(kind)
    t0 = 9
    fn = cases.bind(kind)
    params = cases.declared_params(fn, N=N, K=K, H=H, S=T)
    q, k, v = cases.qkv(B, T, T, N, K, H, seed=3)
    q2, k2, v2 = cases.qkv(B, T, T, N, K, H, seed=4)
    future = (jnp.arange(T) >= t0)[None, :, None, None]
    out = cases.run(fn, q, k, v, {}, params, is_causal=True)
    perturbed = (jnp.where(future, b, a) for a, b in ((q, q2), (k, k2), (v, v2)))
    out2 = cases.run(fn, *perturbed, {}, params, is_causal=True)
    cases.assert_close(out2[:, :t0], out[:, :t0], 1e-5, "past outputs after perturbing the future")
    assert float(jnp.max(jnp.abs(out2[:, t0:] - out[:, t0:]))) > 1e-3  # the perturbation is visible


@pytest.mark.parametrize("kind", cases.tiered(cases.kinds_with("packing")))
@pytest.mark.parametrize("is_causal", [False, True], ids=["bidirectional", "causal"])
def test_packing(kind, is_causal):
    """A packed batch (segment ids, 0 = padding) equals each segment run on its own."""
    if is_causal and not REGISTRY[kind].causal:
        pytest.skip(f"{kind} does not declare causal")
    B, T, N, K, H = cases.small_shape(kind)
    bounds = [(0, 5), (5, 12), (12, 15)]  # position 15 is padding
    ids = np.zeros((B, T), np.int32)
    for i, (a, b) in enumerate(bounds):
        ids[:, a:b] = i + 1
    fn = cases.bind(kind)
    params = cases.declared_params(fn, N=N, K=K, H=H, S=T)
    q, k, v = cases.qkv(B, T, T, N, K, H, seed=5)
    out = cases.run(fn, q, k, v, {"q_segment_ids": jnp.asarray(ids)}, params, is_causal=is_causal)
    for a, b in bounds:
        alone = cases.run(fn, q[:, a:b], k[:, a:b], v[:, a:b], {}, params, is_causal=is_causal)
        cases.assert_close(out[:, a:b], alone, 1e-5, f"segment [{a}, {b})")
