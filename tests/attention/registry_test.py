"""The registry: kind lookup, hyper-parameter binding and checking, capability checks."""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors
from jaxattn.attention import REGISTRY, core, get_attention_fn, nystrom

MASK_ARGS = ["is_causal", "kv_mask", "q_segment_ids", "kv_segment_ids", "bias"]
DROPOUT_ARGS = ["dropout_rate", "dropout_rng"]
# The leading arguments per family (STYLE.md §2): attention takes q/k/v and a scale, a token mixer
# takes x and has no logits to scale; both take the attention-dropout rate and its rng.
COMMON_ARGS = {
    "attention": (["query", "key", "value"], [*MASK_ARGS, "scale", *DROPOUT_ARGS]),
    "mixer": (["x"], [*MASK_ARGS, *DROPOUT_ARGS]),
}


def _cfg(kind: str, **hparams) -> dict:
    return {"kind": kind, "softmax": {}, "nystrom": {}, kind: hparams}


def test_unknown_kind_lists_the_kinds():
    with pytest.raises(errors.ConfigError) as raised:
        get_attention_fn({"kind": "nystromformer"})
    message = str(raised.value)
    assert "nystromformer" in message
    for kind in REGISTRY:
        assert kind in message


def test_unknown_hyper_parameter_is_a_config_error():
    with pytest.raises(errors.ConfigError, match="num_landmark") as raised:
        get_attention_fn(_cfg("nystrom", num_landmark=32))  # typo for num_landmarks
    assert "num_landmarks" in str(raised.value)  # the accepted names are listed
    with pytest.raises(errors.ConfigError, match="softmax"):
        get_attention_fn(_cfg("softmax", num_landmarks=32))


def test_binds_hyper_parameters():
    fn = get_attention_fn(_cfg("nystrom", num_landmarks=4, pinv_iterations=3))
    assert fn.kind == "nystrom"
    assert dict(fn.hparams) == {"num_landmarks": 4, "pinv_iterations": 3}
    rng = np.random.default_rng(0)
    q, k, v = (jnp.asarray(rng.normal(size=(2, 16, 2, 8)), jnp.float32) for _ in range(3))
    out = jax.jit(lambda q, k, v: fn(q, k, v))(q, k, v)
    direct = jax.jit(
        nystrom.nystrom_attention, static_argnames=("num_landmarks", "pinv_iterations")
    )
    np.testing.assert_array_equal(
        np.asarray(out), np.asarray(direct(q, k, v, num_landmarks=4, pinv_iterations=3))
    )
    other = direct(q, k, v, num_landmarks=8, pinv_iterations=3)  # the binding matters
    assert float(jnp.max(jnp.abs(other - out))) > 1e-4


def test_only_the_selected_kind_is_bound():
    cfg = {"kind": "softmax", "softmax": {}, "nystrom": {"num_landmarks": 4}}
    assert get_attention_fn(cfg).hparams == ()


def test_bound_attention_is_hashable():
    a = get_attention_fn(_cfg("nystrom", num_landmarks=4, conv_kernel_size=None))
    b = get_attention_fn(_cfg("nystrom", conv_kernel_size=None, num_landmarks=4))
    assert a == b and hash(a) == hash(b)
    assert a != get_attention_fn(_cfg("nystrom", num_landmarks=8))
    assert len({a, b, get_attention_fn(_cfg("softmax"))}) == 2

    # Usable as a static argument (as a Flax module attribute it must be hashable too).
    g = jax.jit(lambda fn, q: fn(q, q, q), static_argnums=0)
    q = jnp.ones((1, 8, 2, 4))
    assert g(a, q).shape == (1, 8, 2, 4)


def test_param_specs_through_bound_attention():
    fn = get_attention_fn(_cfg("nystrom", conv_kernel_size=35))
    specs = fn.param_specs(num_heads=8, num_kv_heads=2, head_dim=32, kv_length=1024)
    assert specs["conv_kernel"].shape == (35, 2)
    assert (
        get_attention_fn(_cfg("nystrom")).param_specs(
            num_heads=8, num_kv_heads=2, head_dim=32, kv_length=64
        )
        == {}
    )
    assert (
        get_attention_fn(_cfg("softmax")).param_specs(
            num_heads=8, num_kv_heads=2, head_dim=32, kv_length=64
        )
        == {}
    )


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_kind_takes_the_common_signature(kind):
    spec = REGISTRY[kind]
    if spec.family not in COMMON_ARGS:
        pytest.fail(f"{kind}: family '{spec.family}' has no signature check yet")
    inputs, keywords = COMMON_ARGS[spec.family]
    params = inspect.signature(spec.fn).parameters
    assert list(params)[: len(inputs) + len(keywords)] == inputs + keywords
    for name, p in list(params.items())[len(inputs) :]:
        assert (
            p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
        ), name
    assert spec.complexity, f"{kind}: declare its complexity for the capability table"


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_supported_needs_pass(kind):
    spec = REGISTRY[kind]
    needs = {feature: True for feature in core.FEATURES if spec.supports(feature)}
    grid = (2, 3) if spec.grid else None  # grid kinds need the model's token grid
    assert get_attention_fn(_cfg(kind), **needs, grid=grid).kind == kind


def test_unsupported_need_names_kind_flag_and_alternatives():
    with pytest.raises(errors.UnsupportedFeatureError) as raised:
        get_attention_fn(_cfg("nystrom"), is_causal=True)
    message = str(raised.value)
    assert "'nystrom'" in message and "is_causal" in message and "softmax" in message


def test_exact_alias_binds_the_platform_default_exact_kind():
    from jaxattn import attention

    assert attention.resolve_kind("exact", "cpu") == "softmax_chunked"
    assert attention.resolve_kind("exact", "gpu") == "softmax_xla"
    assert attention.resolve_kind("nystrom", "cpu") == "nystrom"  # other kinds pass through
    for kind in attention.DEFAULT_EXACT.values():
        assert kind in REGISTRY and REGISTRY[kind].supports("is_causal")
    bound = get_attention_fn(
        {"kind": "exact", "softmax_chunked": {"block_q": 8}}, is_causal=True, segment_ids=True
    )
    assert bound.kind == attention.resolve_kind("exact")  # this test runs on the CPU backend
    q = jax.random.normal(jax.random.PRNGKey(0), (1, 20, 2, 8))
    ref = REGISTRY["softmax"].fn(q, q, q, is_causal=True)
    np.testing.assert_allclose(bound(q, q, q, is_causal=True), ref, atol=1e-5)
