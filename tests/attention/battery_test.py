"""The shared battery: every kind in jaxattn.attention.REGISTRY against the attention contract.

Kinds added to the registry are picked up automatically. A new kind must add an entry to
EXACT_LIMIT (its hyper-parameters at which it equals softmax); the limit test fails, rather
than skips, for a kind without one. BATTERY_HPARAMS optionally turns on a kind's non-default
paths (for example Nyström's convolution residual) for the other checks. Tensors a kind declares
through `AttentionSpec.params` are created from `BoundAttention.param_specs` with a fixed rng.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors
from jaxattn.attention import REGISTRY, core, get_attention_fn, linear, reformer, routing

KINDS = sorted(REGISTRY)
ATTENTION_KINDS = [kind for kind in KINDS if REGISTRY[kind].family == "attention"]

# Hyper-parameters for every check except the exact limit: small enough for the test shapes and
# switching on optional paths. A kind missing here runs with its defaults.
BATTERY_HPARAMS: dict[str, dict[str, Any]] = {
    "nystrom": {"num_landmarks": 8, "conv_kernel_size": 5},
    # Several blocks that do not divide T = 16: exercises padding, merging and causal skipping.
    "softmax_chunked": {"block_q": 6, "block_k": 5},
    # Dense mode (the non-default path; random mode is in synthesizer_test.py); 4 blocks of 4.
    "synthesizer": {"mode": "dense"},
    "sinkhorn": {"block_size": 4},
    # Asymmetric band (left 6, right 3): tiles of 3 that do not divide T = 16, 2 + 1 neighbours.
    "local": {"mode": "sliding", "window_size": 6, "window_right": 3},
    # A causal-capable layout with both paths: a full (global) row and gathered window rows;
    # blocks of 3 do not divide T = 16. BigBird (random blocks) is in block_sparse_test.py.
    "block_sparse": {
        "layout": "longformer",
        "block_size": 3,
        "num_window_blocks": 3,
        "num_global_blocks": 1,
    },
    # 2 rounds of 4 buckets, chunks of 4 (4 chunks of T = 16): several chunks and duplicate counts.
    "reformer": {"num_hashes": 2, "num_buckets": 4, "chunk_size": 4},
    # 3 clusters; window >= T, so no member is dropped: dropping ranks a full cluster's members by
    # score, which under is_causal can depend on later tokens (routing.py). It is checked in
    # routing_test.py.
    "routing": {"num_clusters": 3, "window": 16, "ema_decay": 0.9},
    # k = 8 < S = 16 (a real compression), separate E and F, one per kv head.
    "linformer": {"num_projections": 8},
    # Chunks of 4: the causal / packed scan carries its state across several chunks.
    "performer": {"num_features": 16, "chunk_size": 4},
    "linear": {"chunk_size": 4},
}

# Inputs a kind never reads: their gradient must be exactly zero (instead of non-zero).
UNUSED_INPUTS: dict[str, str] = {
    "synthesizer": "k",  # synthesized logits never read the keys
    "reformer": "k",  # shared QK: the keys are the normalised queries
}


@dataclasses.dataclass(frozen=True)
class Limit:
    """Hyper-parameters (given T and S) at which a kind equals softmax, and the tolerances."""

    hparams: Callable[[int, int], dict[str, Any]]
    atol_f32: float
    atol_bf16: float
    # Optional: declared tensors set from the float32 (q, k, v) instead of their initialisers.
    tensors: Callable[[jax.Array, jax.Array, jax.Array], dict[str, jax.Array]] | None = None
    # Optional: the dense attention the kind equals at `hparams`, called like a kind, when that is
    # not plain softmax (shared-QK LSH, softmax on normalised q and k). Default: softmax.
    reference: Callable[..., jax.Array] | None = None
    # Optional: q and k are multiplied by this in the limit checks, for kinds that approach the
    # reference only for moderate logits (random-feature estimators, whose variance grows like
    # exp(‖q + k‖²·scale)).
    input_scale: float = 1.0

    def expected(self, q, k, v, masks) -> jax.Array:
        return _run(self.reference or _bind("softmax", {}), q, k, v, masks, {})

    def params(self, fn: core.BoundAttention, q, k, v) -> dict[str, jax.Array]:
        N, K, H, S = q.shape[2], k.shape[2], q.shape[3], k.shape[1]
        params = _params(fn, N=N, K=K, H=H, S=S)
        return params if self.tensors is None else {**params, **self.tensors(q, k, v)}


EXACT_LIMIT: dict[str, Limit] = {
    "softmax": Limit(lambda T, S: {}, atol_f32=1e-6, atol_bf16=2e-2),
    # The same math through jax.nn.dot_product_attention (XLA on CPU).
    "softmax_xla": Limit(lambda T, S: {}, atol_f32=1e-6, atol_bf16=2e-2),
    # m = S: every landmark is one token and F·pinv(A)·B = A·A⁺·A = A; what remains is the
    # float32 pinv of an ill-conditioned A. Measured here: 1.8e-5 (self), 5.3e-5 (cross), bf16
    # 1.3e-2 (the same as bf16 softmax). In cross-attention this needs T >= S (no empty query
    # landmark, so A is invertible).
    "nystrom": Limit(
        lambda T, S: {"num_landmarks": S, "pinv_iterations": 40}, atol_f32=2e-4, atol_bf16=3e-2
    ),
    # Exact at any block size; blocks 5 x 3 do not divide T or S. Measured here: 4.8e-7 (self),
    # 3.0e-7 (cross, T=24, S=16); bf16 8.6e-3 (bf16 softmax: 1.3e-2).
    "softmax_chunked": Limit(
        lambda T, S: {"block_q": 5, "block_k": 3}, atol_f32=2e-6, atol_bf16=2e-2
    ),
    # Random mode with R = q·kᵀ·scale per example is softmax. Measured here: 0 (self), 4.8e-7
    # (cross, T=24, S=16; max_query_length = T); bf16 1.3e-2 (the same as bf16 softmax).
    "synthesizer": Limit(
        lambda T, S: {"mode": "random", "max_query_length": T},
        atol_f32=2e-6,
        atol_bf16=2e-2,
        tensors=lambda q, k, v: {
            "random_logits": jnp.einsum("BTNH,BSNH->BNTS", q, k) * q.shape[-1] ** -0.5
        },
    ),
    # One block covers the sequence (block_size >= S): P = [[1]], ψ(K) = K, and a softmax over
    # [K; K] equals one over K. Measured here: 2.4e-7; bf16 1.3e-2. Self-attention only.
    "sinkhorn": Limit(lambda T, S: {"block_size": S}, atol_f32=1e-6, atol_bf16=2e-2),
    # A window covering the sequence is softmax (block mode with block_size >= T is checked in
    # local_test.py). Measured here: 2.4e-7 (causal: 0); bf16 1.3e-2 (bf16 softmax: 1.3e-2).
    "local": Limit(
        lambda T, S: {"mode": "sliding", "window_size": T}, atol_f32=1e-6, atol_bf16=2e-2
    ),
    # The all-ones layout (blocks of 5 do not divide T = 16) is softmax. Measured here: 4.2e-7
    # (causal: 6e-8); bf16 1.3e-2 (bf16 softmax: 1.3e-2).
    "block_sparse": Limit(
        lambda T, S: {"layout": "full", "block_size": 5}, atol_f32=1e-6, atol_bf16=2e-2
    ),
    # One bucket, one chunk: shared-QK softmax (keys = normalised queries, own position lowered
    # by 1e5). Measured here: 2.4e-7 (causal 4.8e-7; 3 rounds the same); bf16 4.1e-3 (causal
    # 8.7e-3; bf16 softmax: 1.3e-2). Self-attention only.
    "reformer": Limit(
        lambda T, S: {"num_buckets": 1, "chunk_size": T},
        atol_f32=1e-6,
        atol_bf16=2e-2,
        reference=reformer.shared_qk_softmax_attention,
    ),
    # One cluster that keeps every member: softmax on RMS-normalised q and k. Measured here:
    # 2.4e-7 (causal 2.4e-7, cross T=24, S=16: 3.6e-7); bf16 6.8e-3 (causal 1.0e-2).
    "routing": Limit(
        lambda T, S: {"num_clusters": 1, "window": max(T, S)},
        atol_f32=1e-6,
        atol_bf16=2e-2,
        reference=routing.normalized_softmax_attention,
    ),
    # k = S with E = F = I: the projection is the identity and projected keys that no real key
    # reaches (pads) are masked. Measured here: 0 (self and cross); bf16 1.3e-2 (= bf16 softmax).
    "linformer": Limit(
        lambda T, S: {"num_projections": S},
        atol_f32=1e-6,
        atol_bf16=2e-2,
        tensors=lambda q, k, v: {
            name: jnp.broadcast_to(jnp.eye(k.shape[1]), (k.shape[2], k.shape[1], k.shape[1]))
            for name in ("proj_key", "proj_value")
        },
    ),
    # Not exact: FAVOR+ is an unbiased Monte-Carlo estimate of the softmax kernel whose relative
    # error per entry is about sqrt(exp(‖x + y‖²)/r), so it needs moderate logits: q and k are
    # halved (softmax then still differs from a plain average of v by 0.41). Measured here with
    # the battery's fixed rng: 1.0e-2 (self), 1.8e-2 (cross); bf16 1.3e-2. With 4096 features:
    # 3.6e-2, 16384: 1.8e-2; with unit-scale q, k even 65536 features leave errors of 0.5-0.7.
    "performer": Limit(
        lambda T, S: {"num_features": 65536},
        atol_f32=2.5e-2,
        atol_bf16=2.5e-2,
        input_scale=0.5,
    ),
    # Linear attention has no softmax limit: it equals the explicit T×S normalised elu+1 kernel
    # attention. Measured here: 1.8e-7 (self), 2.4e-7 (cross); bf16 2.5e-3.
    "linear": Limit(
        lambda T, S: {},
        atol_f32=1e-6,
        atol_bf16=1e-2,
        reference=linear.quadratic_linear_attention,
    ),
}


def _kinds_with(capability: str) -> list[str]:
    return [kind for kind in ATTENTION_KINDS if getattr(REGISTRY[kind], capability)]


def _bind(kind: str, hparams: dict[str, Any] | None = None) -> core.BoundAttention:
    hparams = BATTERY_HPARAMS.get(kind, {}) if hparams is None else hparams
    return get_attention_fn({"kind": kind, kind: hparams})


def _params(fn: core.BoundAttention, *, N: int, K: int, H: int, S: int) -> dict[str, jax.Array]:
    """The declared tensors and state, created with a fixed rng (as the Flax layer would, in
    float32), plus a fixed `rng` for kinds that declare needs_rng."""
    specs = _declared_specs(fn, N=N, K=K, H=H, S=S)
    rngs = jax.random.split(jax.random.key(1234), len(specs) + 1)
    params = {
        name: spec.init(rng, spec.shape, jnp.float32)
        for rng, (name, spec) in zip(rngs[1:], sorted(specs.items()), strict=True)
    }
    if fn.spec.needs_rng:
        params["rng"] = rngs[0]
    return params


def _qkv(B: int, T: int, S: int, N: int, K: int, H: int, *, dtype=jnp.float32, seed: int = 0):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(B, T, N, H))
    k = rng.normal(size=(B, S, K, H))
    v = rng.normal(size=(B, S, K, H))
    return tuple(jnp.asarray(x, dtype) for x in (q, k, v))


def _kv_mask(B: int, S: int) -> jax.Array:
    """Example 0 unpadded, the others padded to different lengths (at least 1 real key)."""
    lengths = np.maximum(S - 3 * np.arange(B) - (np.arange(B) > 0) * 2, 1)
    return jnp.asarray(np.arange(S)[None, :] < lengths[:, None])


def _mask_kwargs(kind: str, kv_mask: jax.Array) -> dict[str, jax.Array]:
    return {"kv_mask": kv_mask} if REGISTRY[kind].padding else {}


def _real_rows(x: jax.Array, kv_mask: jax.Array) -> jax.Array:
    """Zeroes padded query rows of a [B, T, ...] self-attention output (they may hold anything)."""
    x = jnp.asarray(x, jnp.float32)
    return jnp.where(kv_mask.reshape(kv_mask.shape + (1,) * (x.ndim - 2)), x, 0.0)


def _assert_close(actual, expected, atol: float, what: str = "") -> None:
    actual, expected = np.asarray(actual, np.float32), np.asarray(expected, np.float32)
    err = float(np.max(np.abs(actual - expected))) if actual.size else 0.0
    assert err <= atol, f"{what}: max abs error {err:.3g} > {atol:.3g}"


def _declared_specs(fn: core.BoundAttention, *, N: int, K: int, H: int, S: int):
    """What the layer creates and passes in by name: parameters and non-gradient state."""
    shapes = dict(num_heads=N, num_kv_heads=K, head_dim=H, kv_length=S)
    return {**fn.param_specs(**shapes), **fn.state_specs(**shapes)}


def _output(fn: Callable[..., Any], out: Any) -> jax.Array:
    """A kind with declared state returns (out, new_state); the checks look at out."""
    stateful = isinstance(fn, core.BoundAttention) and fn.spec.state is not None
    return out[0] if stateful else out


@functools.partial(jax.jit, static_argnames=("fn", "is_causal"))
def _run(fn: core.BoundAttention, q, k, v, masks, params, is_causal: bool = False) -> jax.Array:
    """fn under jit; fn is static (hashable), so tests with equal shapes share one compilation."""
    out = fn(q, k, v, **({"is_causal": True} if is_causal else {}), **masks, **params)
    return _output(fn, out)


def _small_shape(kind: str) -> tuple[int, int, int, int, int]:
    """(B, T, N, K, H) for most checks; K < N where the kind declares GQA."""
    return 2, 16, 4, 2 if REGISTRY[kind].gqa else 4, 8


# Families checked elsewhere: 'mixer' kinds (x -> y) by tests/attention/mixer_battery_test.py.
COVERED_ELSEWHERE = ("mixer",)


def test_every_kind_is_covered():
    """This battery checks the 'attention' family; other families need their own battery file."""
    for kind in KINDS:
        family = REGISTRY[kind].family
        assert family == "attention" or family in COVERED_ELSEWHERE, (
            f"kind '{kind}' has family '{family}': add battery checks for it"
        )


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_shapes_and_dtypes(kind, dtype):
    B, T, N, K, H = _small_shape(kind)
    fn = _bind(kind)
    params = _params(fn, N=N, K=K, H=H, S=T)
    q, k, v = _qkv(B, T, T, N, K, H, dtype=dtype)
    kv_mask = _kv_mask(B, T)
    out = _run(fn, q, k, v, _mask_kwargs(kind, kv_mask), params)
    assert out.shape == (B, T, N, H)
    assert out.dtype == dtype
    assert bool(jnp.all(jnp.isfinite(out.astype(jnp.float32))))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_exact_limit_equals_softmax(kind, dtype):
    if kind not in EXACT_LIMIT:
        pytest.fail(
            f"kind '{kind}' has no EXACT_LIMIT entry: add the hyper-parameters at which it equals softmax"
        )
    limit = EXACT_LIMIT[kind]
    B, T, N, H = 3, 16, 4, 8
    fn = _bind(kind, limit.hparams(T, T))
    q, k, v = _qkv(B, T, T, N, N, H, seed=1)
    q, k = q * limit.input_scale, k * limit.input_scale
    params = limit.params(fn, q, k, v)
    kv_mask = _kv_mask(B, T)
    masks = _mask_kwargs(kind, kv_mask)
    expected = limit.expected(q, k, v, masks)  # float32 reference
    qd, kd, vd = (x.astype(dtype) for x in (q, k, v))
    out = _run(fn, qd, kd, vd, masks, params)
    atol = limit.atol_f32 if dtype == jnp.float32 else limit.atol_bf16
    _assert_close(
        _real_rows(out, kv_mask), _real_rows(expected, kv_mask), atol, f"{kind} vs softmax"
    )


def _garbage_in_padding(x: jax.Array, kv_mask: jax.Array, seed: int) -> jax.Array:
    noise = 50.0 * np.random.default_rng(seed).normal(size=x.shape)
    return jnp.where(kv_mask[:, :, None, None], x, jnp.asarray(noise, x.dtype))


@pytest.mark.parametrize("kind", _kinds_with("padding"))
def test_padding_invariance(kind):
    """Random garbage in the padded positions of q, k and v never changes real query rows."""
    B, T, N, K, H = _small_shape(kind)
    fn = _bind(kind)
    params = _params(fn, N=N, K=K, H=H, S=T)
    q, k, v = _qkv(B, T, T, N, K, H, seed=2)
    kv_mask = _kv_mask(B, T)
    out = _run(fn, q, k, v, {"kv_mask": kv_mask}, params)
    dirty = (_garbage_in_padding(x, kv_mask, seed) for seed, x in enumerate((q, k, v)))
    out2 = _run(fn, *dirty, {"kv_mask": kv_mask}, params)
    assert bool(jnp.all(jnp.isfinite(out2)))
    _assert_close(_real_rows(out2, kv_mask), _real_rows(out, kv_mask), 1e-5, "garbage in padding")


@pytest.mark.parametrize("kind", _kinds_with("padding"))
def test_example_without_real_keys_stays_finite(kind):
    """An example whose keys are all padding (a fully masked row everywhere) gives finite
    outputs and gradients, and leaves the other examples' outputs unchanged."""
    B, T, N, K, H = _small_shape(kind)
    fn = _bind(kind)
    params = _params(fn, N=N, K=K, H=H, S=T)
    q, k, v = _qkv(B, T, T, N, K, H, seed=9)
    kv_mask = _kv_mask(B, T)
    empty = kv_mask.at[1].set(False)  # example 1: no real key at all

    def loss(q, k, v):
        return jnp.sum(_run(fn, q, k, v, {"kv_mask": empty}, params) ** 2)

    out = _run(fn, q, k, v, {"kv_mask": empty}, params)
    grads = jax.grad(loss, argnums=(0, 1, 2))(q, k, v)
    assert bool(jnp.all(jnp.isfinite(out))), f"{kind}: non-finite output"
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads), f"{kind}: non-finite gradient"
    reference = _run(fn, q, k, v, {"kv_mask": kv_mask}, params)
    others = np.arange(B) != 1
    _assert_close(
        _real_rows(out, kv_mask)[others], _real_rows(reference, kv_mask)[others], 1e-5, kind
    )


@pytest.mark.parametrize("kind", _kinds_with("causal"))
def test_causality(kind):
    """Perturbing tokens at positions >= t0 never changes outputs at positions < t0."""
    B, T, N, K, H = _small_shape(kind)
    t0 = 9
    fn = _bind(kind)
    params = _params(fn, N=N, K=K, H=H, S=T)
    q, k, v = _qkv(B, T, T, N, K, H, seed=3)
    q2, k2, v2 = _qkv(B, T, T, N, K, H, seed=4)
    future = (jnp.arange(T) >= t0)[None, :, None, None]
    out = _run(fn, q, k, v, {}, params, is_causal=True)
    perturbed = (jnp.where(future, b, a) for a, b in ((q, q2), (k, k2), (v, v2)))
    out2 = _run(fn, *perturbed, {}, params, is_causal=True)
    _assert_close(out2[:, :t0], out[:, :t0], 1e-5, "past outputs after perturbing the future")
    assert float(jnp.max(jnp.abs(out2[:, t0:] - out[:, t0:]))) > 1e-3  # the perturbation is visible


@pytest.mark.parametrize("kind", _kinds_with("packing"))
@pytest.mark.parametrize("is_causal", [False, True], ids=["bidirectional", "causal"])
def test_packing(kind, is_causal):
    """A packed batch (segment ids, 0 = padding) equals each segment run on its own."""
    if is_causal and not REGISTRY[kind].causal:
        pytest.skip(f"{kind} does not declare causal")
    B, T, N, K, H = _small_shape(kind)
    bounds = [(0, 5), (5, 12), (12, 15)]  # position 15 is padding
    ids = np.zeros((B, T), np.int32)
    for i, (a, b) in enumerate(bounds):
        ids[:, a:b] = i + 1
    fn = _bind(kind)
    params = _params(fn, N=N, K=K, H=H, S=T)
    q, k, v = _qkv(B, T, T, N, K, H, seed=5)
    out = _run(fn, q, k, v, {"q_segment_ids": jnp.asarray(ids)}, params, is_causal=is_causal)
    for a, b in bounds:
        alone = _run(fn, q[:, a:b], k[:, a:b], v[:, a:b], {}, params, is_causal=is_causal)
        _assert_close(out[:, a:b], alone, 1e-5, f"segment [{a}, {b})")


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


@pytest.mark.parametrize("kind", _kinds_with("gqa"))
@pytest.mark.parametrize("K", [2, 1], ids=["gqa", "mqa"])
def test_gqa_equals_repeated_kv_heads(kind, K):
    B, T, N, H = 2, 16, 4, 8
    G = N // K
    fn = _bind(kind)
    specs = _declared_specs(fn, N=N, K=K, H=H, S=T)
    params = _params(fn, N=N, K=K, H=H, S=T)
    mha_params = _repeat_heads(params, specs, K, G)
    mha_specs = _declared_specs(fn, N=N, K=N, H=H, S=T)
    assert {n: mha_params[n].shape for n in specs} == {n: s.shape for n, s in mha_specs.items()}
    q, k, v = _qkv(B, T, T, N, K, H, seed=6)
    kv_mask = _kv_mask(B, T)
    masks = _mask_kwargs(kind, kv_mask)
    out = _run(fn, q, k, v, masks, params)
    # Query head n reads kv head n // G.
    k_rep, v_rep = jnp.repeat(k, G, axis=2), jnp.repeat(v, G, axis=2)
    expected = _run(fn, q, k_rep, v_rep, masks, mha_params)
    _assert_close(
        _real_rows(out, kv_mask), _real_rows(expected, kv_mask), 1e-5, "GQA vs repeated MHA"
    )


@pytest.mark.parametrize("kind", _kinds_with("cross"))
def test_cross_attention(kind):
    """T != S with key padding: right shape and, at the exact-limit settings, equal to softmax."""
    if kind not in EXACT_LIMIT:
        pytest.fail(f"kind '{kind}' has no EXACT_LIMIT entry")
    B, T, S, N, H = 3, 24, 16, 4, 8
    limit = EXACT_LIMIT[kind]
    fn = _bind(kind, limit.hparams(T, S))
    q, k, v = _qkv(B, T, S, N, N, H, seed=7)
    q, k = q * limit.input_scale, k * limit.input_scale
    params = limit.params(fn, q, k, v)
    masks = _mask_kwargs(kind, _kv_mask(B, S))
    out = _run(fn, q, k, v, masks, params)
    assert out.shape == (B, T, N, H)
    expected = limit.expected(q, k, v, masks)
    _assert_close(out, expected, limit.atol_f32, f"{kind} cross-attention vs softmax")


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_gradients_finite(kind):
    """Gradients w.r.t. q, k, v are finite, and zero at padded positions (they cannot matter)."""
    B, T, N, K, H = _small_shape(kind)
    fn = _bind(kind)
    params = _params(fn, N=N, K=K, H=H, S=T)
    q, k, v = _qkv(B, T, T, N, K, H, seed=8)
    kv_mask = _kv_mask(B, T)
    masks = _mask_kwargs(kind, kv_mask)
    cotangent = jnp.asarray(np.random.default_rng(9).normal(size=(B, T, N, H)), jnp.float32)
    row_weight = kv_mask[:, :, None, None] if masks else jnp.ones((B, T, 1, 1), bool)

    def loss(q, k, v):
        return jnp.sum(jnp.where(row_weight, _run(fn, q, k, v, masks, params) * cotangent, 0.0))

    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(q, k, v)
    for name, g in zip("qkv", grads, strict=True):
        assert bool(jnp.all(jnp.isfinite(g))), f"d loss / d {name} is not finite"
        if name in UNUSED_INPUTS.get(kind, ""):
            assert float(jnp.max(jnp.abs(g))) == 0, f"{kind} declares {name} unused"
            continue
        assert float(jnp.max(jnp.abs(g))) > 0, f"d loss / d {name} is identically zero"
        if masks:
            padded = jnp.where(kv_mask[:, :, None, None], 0.0, g)
            _assert_close(
                padded, jnp.zeros_like(padded), 1e-6, f"d loss / d {name} at padded positions"
            )


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_jit_and_vmap(kind):
    """Under jit, vmap over an extra leading axis equals a Python loop over it."""
    B, T, N, K, H = _small_shape(kind)
    V = 3
    fn = _bind(kind)
    params = _params(fn, N=N, K=K, H=H, S=T)
    q, k, v = (x.reshape((V, B) + x.shape[1:]) for x in _qkv(V * B, T, T, N, K, H, seed=10))
    kv_mask = _kv_mask(V * B, T).reshape(V, B, T)
    masks = _mask_kwargs(kind, kv_mask)  # [V, B, S]

    @jax.jit
    @jax.vmap
    def batched(q, k, v, masks):
        return _output(fn, fn(q, k, v, **masks, **params))

    out = batched(q, k, v, masks)
    looped = [
        _run(fn, q[i], k[i], v[i], jax.tree.map(lambda x: x[i], masks), params) for i in range(V)
    ]
    _assert_close(out, jnp.stack(looped), 1e-5, "vmap vs loop")


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_sharded_equals_unsharded(kind):
    """Batch sharded over the 8 fake CPU devices gives the unsharded result."""
    devices = jax.devices()
    assert len(devices) == 8, "tests/conftest.py should provide 8 fake CPU devices"
    mesh = jax.sharding.Mesh(np.array(devices), ("data",))
    B, T, N, K, H = 8, 16, 4, 2 if REGISTRY[kind].gqa else 4, 8
    fn = _bind(kind)
    params = _params(fn, N=N, K=K, H=H, S=T)
    q, k, v = _qkv(B, T, T, N, K, H, seed=11)
    kv_mask = _kv_mask(B, T)
    masks = _mask_kwargs(kind, kv_mask)
    expected = _run(fn, q, k, v, masks, params)
    batch = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    q, k, v, masks = jax.device_put((q, k, v, masks), batch)
    out = _run(fn, q, k, v, masks, params)
    assert len(out.sharding.device_set) == 8
    _assert_close(out, expected, 1e-5, "sharded vs unsharded")


def _unsupported_cases() -> list[tuple[str, str]]:
    return [
        (kind, f)
        for kind in ATTENTION_KINDS
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
    q, k, v = _qkv(B, T, S, N, K, H)
    kwargs: dict[str, Any] = {
        "is_causal": {"is_causal": True},
        "kv_mask": {"kv_mask": _kv_mask(B, S)},
        "segment_ids": {
            "q_segment_ids": jnp.ones((B, T), jnp.int32),
            "kv_segment_ids": jnp.ones((B, S), jnp.int32),
        },
        "bias": {"bias": jnp.zeros((1, N, T, S))},
        "gqa": {},
        "cross": {},
    }[feature]
    return q, k, v, kwargs, (N, K, H, S)


@pytest.mark.parametrize(("kind", "feature"), _unsupported_cases())
def test_unsupported_feature_raises(kind, feature):
    """From the function itself and from get_attention_fn: the error names the kind and the flag."""
    fn = _bind(kind)
    q, k, v, kwargs, (N, K, H, S) = _inputs_needing(feature)
    params = _params(fn, N=N, K=K, H=H, S=S)
    with pytest.raises(errors.UnsupportedFeatureError) as raised:
        fn(q, k, v, **kwargs, **params)
    assert f"'{kind}'" in str(raised.value) and feature in str(raised.value), str(raised.value)
    with pytest.raises(errors.UnsupportedFeatureError) as raised:
        get_attention_fn({"kind": kind, kind: BATTERY_HPARAMS.get(kind, {})}, **{feature: True})
    assert f"'{kind}'" in str(raised.value) and feature in str(raised.value), str(raised.value)


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_declared_params_match_their_specs(kind):
    fn = _bind(kind)
    specs = _declared_specs(fn, N=4, K=2, H=8, S=16)
    params = _params(fn, N=4, K=2, H=8, S=16)
    for name, spec in specs.items():
        assert isinstance(spec, core.ParamSpec)
        assert len(spec.axes) == len(spec.shape), name
        assert params[name].shape == spec.shape, name
        assert bool(jnp.all(jnp.isfinite(params[name]))), name
