"""The Transformer forecasters: shapes, learning a sine, RevIN's affine equivariance, PatchTST's
channel independence, iTransformer's permutation equivariance, attention kinds, config errors."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import common
from jaxattn import errors, models
from jaxattn.models import forecaster

L, C, P = 32, 3, 8
LAYOUTS = sorted(forecaster.LAYOUTS)
# Small settings per kind: 8 patches (L = 32, patch 8, stride 4) and 3 variate tokens.
KIND_HPARAMS = {
    "softmax": {},
    "linear": {"chunk_size": 4},
    "performer": {"num_features": 16, "chunk_size": 4},
    "nystrom": {"num_landmarks": 4},
}


def build(layout: str, kind: str = "softmax", **overrides):
    cfg = {
        "name": "forecaster",
        "layout": layout,
        "emb_dim": 16,
        "num_layers": 2,
        "num_heads": 2,
        "head_dim": 8,
        "mlp_dim": 32,
        "patch_len": 8,
        "stride": 4,
        "positional": "none" if layout == "variate" else "learned",
        "attention": common.attention_config(kind, **KIND_HPARAMS.get(kind, {})),
        **overrides,
    }
    return models.build_model(cfg, max_length=L, num_channels=C, horizon=P, vocab_size=0)


def init(model, x):
    rng = jax.random.PRNGKey(0)
    return jax.jit(model.init)({"params": rng, "attention": rng}, inputs=x)


def predict(model, variables, x):
    predictions, aux = jax.jit(functools.partial(model.apply, deterministic=True))(
        variables, inputs=x, rngs={"attention": jax.random.PRNGKey(1)}
    )
    assert aux == {}
    return predictions


def windows(n: int = 64, seed: int = 0) -> tuple[jax.Array, jax.Array]:
    """Noiseless sines (one period per channel), random phases: look-back [n, L, C], next [n, P, C]."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 100, size=(n, 1, 1)) + np.arange(L + P)[None, :, None]
    series = np.sin(2 * np.pi * t / np.array([8.0, 12.0, 20.0])).astype(np.float32)
    return jnp.asarray(series[:, :L]), jnp.asarray(series[:, L:])


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_shapes(layout, dtype):
    model = build(layout, dtype=dtype)
    x, _ = windows(4)
    predictions = predict(model, init(model, x), x)
    assert predictions.shape == (4, P, C) and predictions.dtype == jnp.float32
    assert np.isfinite(np.asarray(predictions)).all()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_training_learns_a_sine(layout):
    """100 full-batch Adam steps on noiseless sines: train MSE from ~1.2 at init to < 0.02 (all
    three layouts reach 0.001-0.004; predicting zero scores 0.5, the sines' variance)."""
    model = build(layout)
    x, y = windows()
    params = init(model, x)["params"]
    tx = optax.adam(3e-3)

    def loss_fn(params):
        predictions, _ = model.apply({"params": params}, inputs=x, deterministic=False)
        return jnp.mean((predictions - y) ** 2)

    @jax.jit
    def step(params, opt_state):
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    opt_state = tx.init(params)
    initial = float(loss_fn(params))
    for _ in range(100):
        params, opt_state, _ = step(params, opt_state)
    final = float(loss_fn(params))
    assert final < 0.02 * initial and final < 0.02, f"{layout}: MSE {initial:.4f} -> {final:.4f}"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_revin_makes_predictions_affine_equivariant(layout):
    """With RevIN, f(a x + b) = a f(x) + b per channel (a > 0)."""
    model = build(layout, revin=True)
    x, _ = windows(4)
    variables = init(model, x)
    a = jnp.array([0.5, 2.0, 7.0])
    b = jnp.array([-3.0, 0.25, 10.0])
    base = predict(model, variables, x)
    moved = predict(model, variables, x * a + b)
    np.testing.assert_allclose((moved - b) / a, base, atol=1e-4)  # f(x) in x's units
    # Without RevIN the model sees the raw scale: the probe tells the two apart.
    plain = build(layout, revin=False)
    plain_vars = init(plain, x)
    diff = jnp.abs(predict(plain, plain_vars, x * a + b) - (predict(plain, plain_vars, x) * a + b))
    assert float(diff.max()) > 1e-2


def test_patch_layout_is_channel_independent():
    model = build("patch")
    x, _ = windows(4)
    variables = init(model, x)
    base = predict(model, variables, x)
    changed = x.at[:, :, 1].set(jax.random.normal(jax.random.PRNGKey(3), (4, L)) * 5.0)
    out = predict(model, variables, changed)
    np.testing.assert_array_equal(out[:, :, [0, 2]], base[:, :, [0, 2]])
    assert float(jnp.abs(out[:, :, 1] - base[:, :, 1]).max()) > 1e-3  # the probe bites


@pytest.mark.parametrize("revin", [False, True])
def test_variate_layout_is_permutation_equivariant(revin):
    """No positions across variates, non-affine RevIN: permuting channels permutes outputs."""
    model = build("variate", revin=revin, revin_affine=False)
    x, _ = windows(4)
    variables = init(model, x)
    perm = np.array([2, 0, 1])
    np.testing.assert_allclose(
        predict(model, variables, x[:, :, perm]),
        predict(model, variables, x)[:, :, perm],
        atol=1e-5,
    )


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(
    "kind",
    # softmax in the quick tier; the other kinds compile for seconds each: slow tier (CI runs it).
    [
        k if k == "softmax" else pytest.param(k, marks=pytest.mark.slow)
        for k in sorted(KIND_HPARAMS)
    ],
)
def test_attention_kinds_build_and_run(layout, kind):
    model = build(layout, kind, num_layers=1)
    x, y = windows(4)
    variables = init(model, x)

    def loss_fn(params):
        predictions, _ = model.apply(
            {"params": params}, inputs=x, rngs={"attention": jax.random.PRNGKey(1)}
        )
        return jnp.mean((predictions - y) ** 2), predictions

    (loss, predictions), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
        variables["params"]
    )
    assert predictions.shape == (4, P, C) and np.isfinite(float(loss))
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))


def test_patchify_pads_the_end_with_the_last_value():
    assert forecaster.num_patches(336, 16, 8) == 42  # PatchTST/42
    series = jnp.arange(32.0)[None]
    patches = forecaster.patchify(series, 8, 4)  # [1, 8, 8]
    assert patches.shape == (1, forecaster.num_patches(32, 8, 4), 8) == (1, 8, 8)
    np.testing.assert_array_equal(patches[0, 1], np.arange(4.0, 12.0))
    np.testing.assert_array_equal(patches[0, -1], [28, 29, 30, 31, 31, 31, 31, 31])


@pytest.mark.parametrize(
    "overrides",
    [
        {"layout": "tokens"},
        {"layout": "variate", "positional": "learned"},
        {"layout": "variate", "relative": "rope"},
        {"layout": "patch", "patch_len": 64},
    ],
)
def test_config_errors(overrides):
    with pytest.raises(errors.ConfigError):
        build(**{"positional": "none", **overrides})


def test_wrong_input_shape_raises():
    model = build("time_step")
    with pytest.raises(ValueError, match="inputs must be"):
        init(model, jnp.zeros((2, L, C + 1)))
