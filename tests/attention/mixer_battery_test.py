"""The token-mixer battery: every 'mixer' kind in jaxattn.attention.REGISTRY (x [B, T, D] -> y).

battery_test.py checks the 'attention' family; this file checks the 'mixer' family the same way
(signature, dtypes incl. bf16, jit/vmap, gradients, 8-device sharding, unsupported flags) and
holds each mixer to its exact definition. A new mixer kind must add an EXACT entry (the check
fails, rather than skips, without one). Tensors a mixer declares are created as in the
TokenMixer layer: num_heads = num_kv_heads = 1, head_dim = D, kv_length = T.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors
from jaxattn.attention import REGISTRY, core, get_attention_fn
from tests.attention import battery_cases as cases
from tests.attention import (
    fnet_ar_test,
    gaam_test,
    lightconv_test,
    padre_test,
    ponet_test,
    sgu_test,
)

MIXER_KINDS = sorted(kind for kind, spec in REGISTRY.items() if spec.family == "mixer")
COMMON_ARGS = [
    "x",
    "is_causal",
    "kv_mask",
    "q_segment_ids",
    "kv_segment_ids",
    "bias",
    "dropout_rate",
    "dropout_rng",
]
MIXER_FEATURES = ("is_causal", "kv_mask", "segment_ids", "bias", "dropout")

# Hyper-parameters for the checks below (a kind missing here runs with its defaults).
BATTERY_HPARAMS: dict[str, dict[str, Any]] = {
    "padre": {"degree": 2, "kernel_size": 4},  # an even width: asymmetric centred taps
    "gaam": {"num_heads": 4, "num_gaussians": 2},  # heads of 2 features at D = 8
    # 3 segments of 6 (the last one short) and a 5-wide local window at T = 16.
    "ponet": {"num_heads": 2, "num_segments": 3, "local_window": 5},
    "sgu": {"ffn_dim": 12},  # a gate width (6) other than D = 8
    # An even kernel width (asymmetric centred taps) and 2 kernels of 4 channels at D = 8.
    "lightconv": {"kernel_size": 4, "num_kernels": 2},
    "dynconv": {"kernel_size": 5, "num_kernels": 2},
}

# Kinds whose key padding support is an explicit opt-in that does NOT make real outputs invariant
# to the pads (the pads are mixed in): with their defaults a kv_mask raises; with these
# hyper-parameters it is accepted. Every other padding kind gets the padding-invariance check.
PADDING_OPT_IN: dict[str, dict[str, Any]] = {"fnet": {"allow_padding_mixing": True}}


def _dft(L: int) -> np.ndarray:
    """The L x L DFT matrix F[a, c] = exp(-2πi·a·c / L), in float64."""
    a = np.arange(L)
    return np.exp(-2j * np.pi * np.outer(a, a) / L)


def _fnet_exact(fn: core.BoundAttention, x: np.ndarray, params: dict) -> None:
    """FNet equals Re(F_T · X · F_D) with explicit DFT matrices (float64 reference)."""
    B, T, D = x.shape
    expected = np.real(np.einsum("ts,bsd,de->bte", _dft(T), x.astype(np.float64), _dft(D)))
    out = np.asarray(_run(fn, jnp.asarray(x, jnp.float32), {}, params))
    err = float(np.max(np.abs(out - expected)))
    assert err <= 1e-5, f"fnet vs explicit DFT: max abs error {err:.3g}"  # measured: 1.7e-6


# Each mixer's exact definition, checked on x [B, T, D] = [2, 16, 8] (float32).
EXACT: dict[str, Callable[[core.BoundAttention, np.ndarray, dict], None]] = {
    "fnet": _fnet_exact,
    # FNetAR equals Re(A·X·F_D) with the explicit float64 prefix-DFT matrix A (tests/attention/
    # fnet_ar_test.py: explicit_fnet_ar). Measured: 6.3e-6 (FNet's own check: 1.7e-6).
    "fnet_ar": lambda fn, x, params: _assert_close(
        _run(fn, jnp.asarray(x, jnp.float32), {}, params),
        fnet_ar_test.explicit_fnet_ar(x),
        1e-5,
        "fnet_ar vs explicit prefix DFT",
    ),
    # padre: the float64 polynomial with banded convolution matrices (measured <= 2e-6).
    "padre": padre_test.battery_exact,
    # gaam: a float64 product-of-densities reference with random δ, c (measured 1.5e-8).
    "gaam": gaam_test.battery_exact,
    # ponet: the pooling equations in float64 (measured <= 1e-6).
    "ponet": ponet_test.battery_exact,
    # sgu: the gMLP equations in float64 with W, b away from init (measured <= 1e-6).
    "sgu": sgu_test.battery_exact,
    # lightconv / dynconv: equal explicit banded T x T matrices in float64 (measured <= 1e-6).
    "lightconv": lightconv_test.battery_exact,
    "dynconv": lightconv_test.battery_exact,
}


def _bind(kind: str, hparams: dict[str, Any] | None = None) -> core.BoundAttention:
    hparams = BATTERY_HPARAMS.get(kind, {}) if hparams is None else hparams
    return get_attention_fn({"kind": kind, kind: hparams})


def _params(fn: core.BoundAttention, *, T: int, D: int) -> dict[str, jax.Array]:
    """Declared tensors and state as TokenMixer makes them (one head of width D), and the rng."""
    return cases.declared_params(fn, N=1, K=1, H=D, S=T)


def _x(B: int, T: int, D: int, *, dtype=jnp.float32, seed: int = 0) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).normal(size=(B, T, D)), dtype)


def _kv_mask(B: int, T: int) -> jax.Array:
    lengths = np.maximum(T - 3 * np.arange(B) - (np.arange(B) > 0) * 2, 1)
    return jnp.asarray(np.arange(T)[None, :] < lengths[:, None])


@functools.partial(jax.jit, static_argnames=("fn",))
def _run(fn: core.BoundAttention, x, masks, params) -> jax.Array:
    y = fn.spec.fn(x, **dict(fn.hparams), **masks, **params)
    return y[0] if fn.spec.state is not None else y  # stateful mixers return (y, new_state)


def _assert_close(actual, expected, atol: float, what: str) -> None:
    err = float(np.max(np.abs(np.asarray(actual, np.float32) - np.asarray(expected, np.float32))))
    assert err <= atol, f"{what}: max abs error {err:.3g} > {atol:.3g}"


def test_there_are_mixer_kinds():
    assert MIXER_KINDS, "no 'mixer' kind is registered; this battery checks nothing"


@pytest.mark.parametrize("kind", MIXER_KINDS)
def test_common_mixer_signature(kind):
    spec = REGISTRY[kind]
    params = inspect.signature(spec.fn).parameters
    assert list(params)[: len(COMMON_ARGS)] == COMMON_ARGS
    for name, p in list(params.items())[1:]:
        assert p.kind is inspect.Parameter.KEYWORD_ONLY, name
        assert p.default is not inspect.Parameter.empty, name
    assert not spec.gqa and not spec.cross, f"{kind}: gqa/cross mean nothing for x -> y"
    assert spec.complexity, f"{kind}: declare its complexity for the capability table"


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("kind", cases.tiered(MIXER_KINDS))
def test_shapes_and_dtypes(kind, dtype):
    B, T, D = 2, 16, 8
    fn = _bind(kind)
    y = _run(fn, _x(B, T, D, dtype=dtype), {}, _params(fn, T=T, D=D))
    assert y.shape == (B, T, D)
    assert y.dtype == dtype
    assert bool(jnp.all(jnp.isfinite(y.astype(jnp.float32))))


@pytest.mark.parametrize("kind", MIXER_KINDS)
def test_exact_definition(kind):
    if kind not in EXACT:
        pytest.fail(f"mixer kind '{kind}' has no EXACT entry: add a check of its definition")
    B, T, D = 2, 16, 8
    fn = _bind(kind)
    EXACT[kind](fn, np.random.default_rng(1).normal(size=(B, T, D)), _params(fn, T=T, D=D))


@pytest.mark.parametrize("kind", cases.tiered(MIXER_KINDS))
def test_gradients_finite(kind):
    B, T, D = 2, 16, 8
    fn = _bind(kind)
    params = _params(fn, T=T, D=D)
    cotangent = _x(B, T, D, seed=2)
    grad = jax.jit(jax.grad(lambda x: jnp.sum(_run(fn, x, {}, params) * cotangent)))(
        _x(B, T, D, seed=3)
    )
    assert bool(jnp.all(jnp.isfinite(grad)))
    assert float(jnp.max(jnp.abs(grad))) > 0


@pytest.mark.parametrize("kind", cases.tiered(MIXER_KINDS))
def test_jit_and_vmap(kind):
    V, B, T, D = 3, 2, 16, 8
    fn = _bind(kind)
    params = _params(fn, T=T, D=D)
    x = _x(V * B, T, D, seed=4).reshape(V, B, T, D)
    batched = jax.jit(jax.vmap(lambda x: _run(fn, x, {}, params)))(x)
    looped = jnp.stack([_run(fn, x[i], {}, params) for i in range(V)])
    _assert_close(batched, looped, 1e-5, "vmap vs loop")


@pytest.mark.parametrize("kind", cases.tiered(MIXER_KINDS))
def test_sharded_equals_unsharded(kind):
    devices = jax.devices()
    assert len(devices) == 8, "tests/conftest.py should provide 8 fake CPU devices"
    mesh = jax.sharding.Mesh(np.array(devices), ("data",))
    B, T, D = 8, 16, 8
    fn = _bind(kind)
    params = _params(fn, T=T, D=D)
    x = _x(B, T, D, seed=5)
    expected = _run(fn, x, {}, params)
    x = jax.device_put(x, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data")))
    y = _run(fn, x, {}, params)
    assert len(y.sharding.device_set) == 8
    _assert_close(y, expected, 1e-5, "sharded vs unsharded")


def _feature_kwargs(feature: str, B: int, T: int) -> dict[str, Any]:
    return {
        "is_causal": {"is_causal": True},
        "kv_mask": {"kv_mask": _kv_mask(B, T)},
        "segment_ids": {
            "q_segment_ids": jnp.ones((B, T), jnp.int32),
            "kv_segment_ids": jnp.ones((B, T), jnp.int32),
        },
        "bias": {"bias": jnp.zeros((1, 1, T, T))},
        "dropout": {"dropout_rate": 0.1, "dropout_rng": jax.random.key(0)},
    }[feature]


def _unsupported_cases() -> list[tuple[str, str]]:
    return [
        (kind, f) for kind in MIXER_KINDS for f in MIXER_FEATURES if not REGISTRY[kind].supports(f)
    ]


@pytest.mark.parametrize(("kind", "feature"), _unsupported_cases())
def test_unsupported_feature_raises(kind, feature):
    """From the function and from get_attention_fn: the error names the kind and the flag."""
    B, T, D = 2, 8, 8
    fn = _bind(kind)
    with pytest.raises(errors.UnsupportedFeatureError) as raised:
        fn.spec.fn(
            _x(B, T, D),
            **dict(fn.hparams),
            **_feature_kwargs(feature, B, T),
            **_params(fn, T=T, D=D),
        )
    assert f"'{kind}'" in str(raised.value) and feature in str(raised.value), str(raised.value)
    with pytest.raises(errors.UnsupportedFeatureError) as raised:
        get_attention_fn({"kind": kind, kind: BATTERY_HPARAMS.get(kind, {})}, **{feature: True})
    assert f"'{kind}'" in str(raised.value) and feature in str(raised.value), str(raised.value)


@pytest.mark.parametrize("kind", sorted(PADDING_OPT_IN))
def test_padding_opt_in(kind):
    """A kv_mask raises unless the documented opt-in is set; with it the mixer runs."""
    assert REGISTRY[kind].padding, f"{kind}: an opt-in padding kind must declare padding=True"
    B, T, D = 2, 16, 8
    masks = {"kv_mask": _kv_mask(B, T)}
    fn = _bind(kind)
    with pytest.raises(errors.UnsupportedFeatureError) as raised:
        _run(fn, _x(B, T, D), masks, _params(fn, T=T, D=D))
    assert f"'{kind}'" in str(raised.value) and "kv_mask" in str(raised.value)
    opted = _bind(kind, {**BATTERY_HPARAMS.get(kind, {}), **PADDING_OPT_IN[kind]})
    y = _run(opted, _x(B, T, D), masks, _params(opted, T=T, D=D))
    assert y.shape == (B, T, D) and bool(jnp.all(jnp.isfinite(y)))


@pytest.mark.parametrize(
    "kind",
    cases.tiered([k for k in MIXER_KINDS if REGISTRY[k].padding and k not in PADDING_OPT_IN]),
)
def test_padding_invariance(kind):
    """Garbage in padded positions never changes the real positions' outputs."""
    B, T, D = 2, 16, 8
    fn = _bind(kind)
    params = _params(fn, T=T, D=D)
    kv_mask = _kv_mask(B, T)
    x = _x(B, T, D, seed=6)
    dirty = jnp.where(kv_mask[:, :, None], x, 50.0 * _x(B, T, D, seed=7))
    real = kv_mask[:, :, None]
    y = _run(fn, x, {"kv_mask": kv_mask}, params)
    y2 = _run(fn, dirty, {"kv_mask": kv_mask}, params)
    _assert_close(jnp.where(real, y2, 0), jnp.where(real, y, 0), 1e-5, "garbage in padding")


@pytest.mark.parametrize("kind", cases.tiered(MIXER_KINDS))
def test_declared_params_match_their_specs(kind):
    fn = _bind(kind)
    shapes = dict(num_heads=1, num_kv_heads=1, head_dim=8, kv_length=16)
    params = _params(fn, T=16, D=8)
    for name, spec in {**fn.param_specs(**shapes), **fn.state_specs(**shapes)}.items():
        assert len(spec.axes) == len(spec.shape), name
        assert params[name].shape == spec.shape, name


# --- FNet specifics ---------------------------------------------------------------------------


def test_fnet_is_linear_and_real():
    from jaxattn.attention import fnet

    x1, x2 = _x(2, 12, 6, seed=8), _x(2, 12, 6, seed=9)
    lhs = fnet.fnet_mixing(2.0 * x1 - 3.0 * x2)
    rhs = 2.0 * fnet.fnet_mixing(x1) - 3.0 * fnet.fnet_mixing(x2)
    _assert_close(lhs, rhs, 1e-4, "linearity")
    assert lhs.dtype == jnp.float32


def test_fnet_padding_opt_in_mixes_pads():
    """Documented behaviour of the opt-in: the pads' values do reach the real positions."""
    from jaxattn.attention import fnet

    B, T, D = 2, 16, 8
    kv_mask = _kv_mask(B, T)
    x = _x(B, T, D, seed=10)
    dirty = jnp.where(kv_mask[:, :, None], x, 5.0)
    y = fnet.fnet_mixing(x, kv_mask=kv_mask, allow_padding_mixing=True)
    y2 = fnet.fnet_mixing(dirty, kv_mask=kv_mask, allow_padding_mixing=True)
    np.testing.assert_array_equal(np.asarray(y[0]), np.asarray(y2[0]))  # example 0 has no pads
    assert float(jnp.max(jnp.abs(y2[1] - y[1]))) > 1e-2  # example 1's pads changed its outputs
