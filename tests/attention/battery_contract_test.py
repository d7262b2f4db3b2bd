"""The shared battery, part 2: GQA/MQA, cross-attention, gradients, jit/vmap, sharding, refused
features and declared parameters, over every 'attention' kind in the registry. Cases and
helpers: battery_cases.py; part 1: battery_test.py.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors
from jaxattn.attention import REGISTRY, core, get_attention_fn
from tests.attention import battery_cases as cases


def _repeat_heads(params: dict[str, jax.Array], specs: dict[str, core.ParamSpec], K: int, G: int):
    """Expands declared tensors for the MHA twin: axes named 'heads' of size K repeat G times."""
    out = {}
    for name, x in params.items():
        axes = specs[name].axes if name in specs else ()  # `rng` is not a declared tensor
        for axis, axis_name in enumerate(axes):
            if axis_name == "heads" and x.shape[axis] == K:
                x = jnp.repeat(x, G, axis=axis)
        out[name] = x
    return out


@pytest.mark.parametrize("kind", cases.tiered(cases.kinds_with("gqa")))
@pytest.mark.parametrize("K", [2, 1], ids=["gqa", "mqa"])
def test_gqa_equals_repeated_kv_heads(kind, K):
    B, T, N, H = 2, 16, 4, 8
    G = N // K
    fn = cases.bind(kind)
    specs = cases.declared_specs(fn, N=N, K=K, H=H, S=T)
    params = cases.declared_params(fn, N=N, K=K, H=H, S=T)
    mha_params = _repeat_heads(params, specs, K, G)
    mha_specs = cases.declared_specs(fn, N=N, K=N, H=H, S=T)
    assert {n: mha_params[n].shape for n in specs} == {n: s.shape for n, s in mha_specs.items()}
    q, k, v = cases.qkv(B, T, T, N, K, H, seed=6)
    kv_mask = cases.padding_mask(B, T)
    masks = cases.mask_kwargs(kind, kv_mask)
    out = cases.run(fn, q, k, v, masks, params)
    # Query head n reads kv head n // G.
    k_rep, v_rep = jnp.repeat(k, G, axis=2), jnp.repeat(v, G, axis=2)
    expected = cases.run(fn, q, k_rep, v_rep, masks, mha_params)
    cases.assert_close(
        cases.real_rows(out, kv_mask),
        cases.real_rows(expected, kv_mask),
        1e-5,
        "GQA vs repeated MHA",
    )


@pytest.mark.parametrize("kind", cases.tiered(cases.kinds_with("cross")))
def test_cross_attention(kind):
    """T != S with key padding: right shape and, at the exact-limit settings, equal to softmax."""
    if kind not in cases.EXACT_LIMIT:
        pytest.fail(f"kind '{kind}' has no cases.EXACT_LIMIT entry")
    B, T, S, N, H = 3, 24, 16, 4, 8
    limit = cases.EXACT_LIMIT[kind]
    fn = cases.bind(kind, limit.hparams(T, S))
    q, k, v = cases.qkv(B, T, S, N, N, H, seed=7)
    q, k = q * limit.input_scale, k * limit.input_scale
    params = limit.params(fn, q, k, v)
    masks = cases.mask_kwargs(kind, cases.padding_mask(B, S))
    out = cases.run(fn, q, k, v, masks, params)
    assert out.shape == (B, T, N, H)
    expected = limit.expected(q, k, v, masks)
    cases.assert_close(out, expected, limit.atol_f32, f"{kind} cross-attention vs softmax")


@pytest.mark.parametrize("kind", cases.tiered(cases.ATTENTION_KINDS))
def test_gradients_finite(kind):
    """Gradients w.r.t. q, k, v are finite, and zero at padded positions (they cannot matter)."""
    fn, params, q, k, v, kv_mask = cases.small_inputs(kind, seed=8)
    B, T, N, H = q.shape
    masks = cases.mask_kwargs(kind, kv_mask)
    cotangent = jnp.asarray(np.random.default_rng(9).normal(size=(B, T, N, H)), jnp.float32)
    row_weight = kv_mask[:, :, None, None] if masks else jnp.ones((B, T, 1, 1), bool)

    def loss(q, k, v):
        return jnp.sum(
            jnp.where(row_weight, cases.run(fn, q, k, v, masks, params) * cotangent, 0.0)
        )

    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(q, k, v)
    for name, g in zip("qkv", grads, strict=True):
        assert bool(jnp.all(jnp.isfinite(g))), f"d loss / d {name} is not finite"
        if name in cases.UNUSED_INPUTS.get(kind, ""):
            assert float(jnp.max(jnp.abs(g))) == 0, f"{kind} declares {name} unused"
            continue
        assert float(jnp.max(jnp.abs(g))) > 0, f"d loss / d {name} is identically zero"
        if masks:
            padded = jnp.where(kv_mask[:, :, None, None], 0.0, g)
            cases.assert_close(
                padded, jnp.zeros_like(padded), 1e-6, f"d loss / d {name} at padded positions"
            )


@pytest.mark.parametrize("kind", cases.tiered(cases.ATTENTION_KINDS))
def test_jit_and_vmap(kind):
    """Under jit, vmap over an extra leading axis equals a Python loop over it."""
    B, T, N, K, H = cases.small_shape(kind)
    V = 3
    fn = cases.bind(kind)
    params = cases.declared_params(fn, N=N, K=K, H=H, S=T)
    q, k, v = (x.reshape((V, B) + x.shape[1:]) for x in cases.qkv(V * B, T, T, N, K, H, seed=10))
    kv_mask = cases.padding_mask(V * B, T).reshape(V, B, T)
    masks = cases.mask_kwargs(kind, kv_mask)  # [V, B, S]

    @jax.jit
    @jax.vmap
    def batched(q, k, v, masks):
        return cases.output(fn, fn(q, k, v, **masks, **params))

    out = batched(q, k, v, masks)
    looped = [
        cases.run(fn, q[i], k[i], v[i], jax.tree.map(lambda x: x[i], masks), params)
        for i in range(V)
    ]
    cases.assert_close(out, jnp.stack(looped), 1e-5, "vmap vs loop")


@pytest.mark.parametrize("kind", cases.tiered(cases.ATTENTION_KINDS))
def test_sharded_equals_unsharded(kind):
    """Batch sharded over the 8 fake CPU devices gives the unsharded result."""
    devices = jax.devices()
    assert len(devices) == 8, "tests/conftest.py should provide 8 fake CPU devices"
    mesh = jax.sharding.Mesh(np.array(devices), ("data",))
    B, T, N, K, H = 8, 16, 4, 2 if REGISTRY[kind].gqa else 4, 8
    fn = cases.bind(kind)
    params = cases.declared_params(fn, N=N, K=K, H=H, S=T)
    q, k, v = cases.qkv(B, T, T, N, K, H, seed=11)
    kv_mask = cases.padding_mask(B, T)
    masks = cases.mask_kwargs(kind, kv_mask)
    expected = cases.run(fn, q, k, v, masks, params)
    batch = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    q, k, v, masks = jax.device_put((q, k, v, masks), batch)
    out = cases.run(fn, q, k, v, masks, params)
    assert len(out.sharding.device_set) == 8
    cases.assert_close(out, expected, 1e-5, "sharded vs unsharded")


def _unsupported_cases() -> list[tuple[str, str]]:
    return [
        (kind, f)
        for kind in cases.ATTENTION_KINDS
        for f in core.FEATURES
        if not REGISTRY[kind].supports(f)
    ]


def _inputs_needing(feature: str):
    """(q, k, v, keyword arguments) that ask for `feature` and nothing else a kind might lack."""
    B, T, S, N, K, H = 2, 8, 8, 4, 4, 8
    if feature == "gqa":
        K = 2
    if feature == "cross":
        S = 12
    q, k, v = cases.qkv(B, T, S, N, K, H)
    kwargs: dict[str, Any] = {
        "is_causal": {"is_causal": True},
        "kv_mask": {"kv_mask": cases.padding_mask(B, S)},
        "segment_ids": {
            "q_segment_ids": jnp.ones((B, T), jnp.int32),
            "kv_segment_ids": jnp.ones((B, S), jnp.int32),
        },
        "bias": {"bias": jnp.zeros((1, N, T, S))},
        "gqa": {},
        "cross": {},
        "dropout": {"dropout_rate": 0.1, "dropout_rng": jax.random.key(0)},
    }[feature]
    return q, k, v, kwargs, (N, K, H, S)


@pytest.mark.parametrize(("kind", "feature"), _unsupported_cases())
def test_unsupported_feature_raises(kind, feature):
    """From the function itself and from get_attention_fn: the error names the kind and the flag."""
    fn = cases.bind(kind)
    q, k, v, kwargs, (N, K, H, S) = _inputs_needing(feature)
    params = cases.declared_params(fn, N=N, K=K, H=H, S=S)
    with pytest.raises(errors.UnsupportedFeatureError) as raised:
        fn(q, k, v, **kwargs, **params)
    assert f"'{kind}'" in str(raised.value) and feature in str(raised.value), str(raised.value)
    with pytest.raises(errors.UnsupportedFeatureError) as raised:
        get_attention_fn(
            {"kind": kind, kind: cases.BATTERY_HPARAMS.get(kind, {})}, **{feature: True}
        )
    assert f"'{kind}'" in str(raised.value) and feature in str(raised.value), str(raised.value)


@pytest.mark.parametrize("kind", cases.tiered(cases.ATTENTION_KINDS))
def test_declared_params_match_their_specs(kind):
    fn = cases.bind(kind)
    specs = cases.declared_specs(fn, N=4, K=2, H=8, S=16)
    params = cases.declared_params(fn, N=4, K=2, H=8, S=16)
    for name, spec in specs.items():
        assert isinstance(spec, core.ParamSpec)
        assert len(spec.axes) == len(spec.shape), name
        assert params[name].shape == spec.shape, name
        assert bool(jnp.all(jnp.isfinite(params[name]))), name
