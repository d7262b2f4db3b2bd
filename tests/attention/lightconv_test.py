"""lightconv: the convolution equals an explicit banded T×T matrix (float64 NumPy), causality,
packing as the segments run alone, padding, DropConnect on the normalised kernel, refusals."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors
from jaxattn.attention import core, get_attention_fn, lightconv
from tests.attention import battery_cases as cases


def banded_matrices(weights: np.ndarray, T: int, is_causal: bool) -> np.ndarray:
    """[..., h, k] normalised kernels -> [..., h, T, T] banded matrices M[t, t + o_j] = W[j]
    (`weights` [h, k] gives one matrix per kernel; [B, T, h, k] gives row t of batch b's)."""
    k = weights.shape[-1]
    left = k - 1 if is_causal else (k - 1) // 2
    if weights.ndim == 2:
        weights = np.broadcast_to(weights[None, None], (1, T) + weights.shape)
    B, _, h, _ = weights.shape
    M = np.zeros((B, h, T, T))
    for t in range(T):
        for j in range(k):
            s = t + j - left
            if 0 <= s < T:
                M[:, :, t, s] = weights[:, t, :, j]
    return M


def numpy_mixer(x, params, *, kernel_size, num_kernels, is_causal=False, kv_mask=None,
                use_projections=True, dynamic=False):  # fmt: skip
    """The module docstring's equations in float64 with the convolution as a banded matrix."""
    p = {name: np.asarray(v, np.float64) for name, v in params.items() if name != "rng"}
    x = np.asarray(x, np.float64)
    B, T, D = x.shape
    if use_projections:
        h = x @ p["in_proj"]
        u = h[..., :D] / (1.0 + np.exp(-h[..., D:]))
    else:
        u = x
    if kv_mask is not None:
        u = np.where(np.asarray(kv_mask)[:, :, None], u, 0.0)
    if dynamic:
        logits = np.einsum("btd,dhj->bthj", u, p["kernel_proj"]) + p["kernel_bias"]
    else:
        logits = p["kernel"]
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    M = banded_matrices(w, T, is_causal)  # [B|1, h, T, T]
    M = np.broadcast_to(M, (B,) + M.shape[1:])
    C = D // num_kernels
    ug = u.reshape(B, T, num_kernels, C)
    c = np.einsum("bhts,bshc->bthc", M, ug).reshape(B, T, D)
    return c @ p["out_proj"] if use_projections else c


def _setup(kind="lightconv", B=2, T=16, D=8, seed=0, **hparams):
    hparams = {"kernel_size": 5, "num_kernels": 2, **hparams}
    fn = get_attention_fn({"kind": kind, kind: hparams})
    params = cases.declared_params(fn, N=1, K=1, H=D, S=T)
    x = jnp.asarray(np.random.default_rng(seed).normal(size=(B, T, D)), jnp.float32)
    return fn, params, x, hparams


@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("kernel_size", [4, 5])
def test_equals_banded_matrix_reference(is_causal, kernel_size):
    fn, params, x, hp = _setup(kernel_size=kernel_size)
    kv_mask = cases.padding_mask(2, 16)
    out = jax.jit(lambda x: fn(x, is_causal=is_causal, kv_mask=kv_mask, **params))(x)
    ref = numpy_mixer(x, params, is_causal=is_causal, kv_mask=kv_mask, **hp)
    cases.assert_close(out, ref, 1e-5, "lightconv vs banded matrix")  # measured 1.2e-7


def test_bare_convolution_equals_banded_matrix():
    fn, params, x, hp = _setup(use_projections=False, kernel_size=7)
    assert set(params) == {"kernel"}
    out = fn(x, **params)
    ref = numpy_mixer(x, params, **hp)
    cases.assert_close(out, ref, 1e-6, "bare conv vs banded matrix")  # measured 1.2e-7


def test_causal_future_does_not_leak():
    fn, params, x, _ = _setup(kernel_size=5)
    t0 = 9
    y = fn(x, is_causal=True, **params)
    x2 = x.at[:, t0 + 1 :].set(100.0)
    y2 = fn(x2, is_causal=True, **params)
    np.testing.assert_array_equal(np.asarray(y[:, : t0 + 1]), np.asarray(y2[:, : t0 + 1]))
    assert float(jnp.max(jnp.abs(y[:, t0 + 1 :] - y2[:, t0 + 1 :]))) > 1e-2
    # Without the flag the centred taps do read the future.
    assert float(jnp.max(jnp.abs(fn(x, **params)[:, t0] - fn(x2, **params)[:, t0]))) > 1e-3


@pytest.mark.parametrize("is_causal", [False, True])
def test_packing_equals_segments_run_alone(is_causal):
    fn, params, x, _ = _setup(B=1, T=16, kernel_size=5)
    seg = jnp.asarray([[1] * 5 + [2] * 7 + [3] * 2 + [0] * 2], jnp.int32)
    out = fn(x, is_causal=is_causal, q_segment_ids=seg, **params)
    for sid, (a, b) in {1: (0, 5), 2: (5, 12), 3: (12, 14)}.items():
        alone = fn(x[:, a:b], is_causal=is_causal, **params)
        cases.assert_close(out[:, a:b], alone, 1e-6, f"segment {sid}")  # measured 0 (bitwise)


def test_dropconnect_on_the_normalised_kernel():
    fn, params, x, hp = _setup(use_projections=False)
    rng = jax.random.key(3)
    plain = fn(x, **params)
    np.testing.assert_array_equal(fn(x, dropout_rate=0.0, dropout_rng=rng, **params), plain)
    dropped = fn(x, dropout_rate=0.4, dropout_rng=rng, **params)
    np.testing.assert_array_equal(dropped, fn(x, dropout_rate=0.4, dropout_rng=rng, **params))
    assert float(jnp.max(jnp.abs(dropped - plain))) > 1e-3
    # The keep mask is drawn at the kernel's shape [num_kernels, k]: reproduce it.
    keep = np.asarray(core.dropout_keep(rng, 0.4, (2, 5)))
    w = np.asarray(jax.nn.softmax(params["kernel"], axis=-1), np.float64)
    w = np.where(keep, w / 0.6, 0.0)
    M = banded_matrices(w, 16, False)[0]  # [h, T, T]
    ref = np.einsum("hts,bshc->bthc", M, np.asarray(x, np.float64).reshape(2, 16, 2, 4))
    cases.assert_close(dropped, ref.reshape(2, 16, 8), 1e-5, "DropConnect reference")


def test_bf16_in_bf16_out_close_to_f32():
    fn, params, x, _ = _setup()
    y16 = fn(x.astype(jnp.bfloat16), **params)
    assert y16.dtype == jnp.bfloat16
    cases.assert_close(y16, fn(x, **params), 5e-2, "bf16 vs f32")


def test_refusals_and_bad_shapes():
    fn, params, x, _ = _setup()
    with pytest.raises(errors.UnsupportedFeatureError, match="'lightconv'.*bias"):
        fn(x, bias=jnp.zeros((1, 1, 16, 16)), **params)
    with pytest.raises(ValueError, match="num_kernels"):
        lightconv.lightconv_mixing(x, num_kernels=3, kernel=params["kernel"])
    with pytest.raises(ValueError, match="kernel"):
        lightconv.lightconv_mixing(x, use_projections=False)


def battery_exact(fn: core.BoundAttention, x: np.ndarray, params: dict) -> None:
    """mixer_battery_test's EXACT check for lightconv and dynconv (their bound hyper-parameters):
    the mixer equals `numpy_mixer` (banded T×T matrices, float64), unmasked and causal."""
    hp = {"kernel_size": 3, "num_kernels": 4, "use_projections": True, **dict(fn.hparams)}
    for is_causal in (False, True):
        out = jax.jit(lambda x, c=is_causal: fn(x, is_causal=c, **params))(
            jnp.asarray(x, jnp.float32)
        )
        ref = numpy_mixer(x, params, is_causal=is_causal, dynamic=fn.kind == "dynconv", **hp)
        cases.assert_close(out, ref, 1e-5, f"{fn.kind} vs banded matrix")  # measured <= 2e-7
