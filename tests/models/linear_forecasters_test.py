"""DLinear and NLinear: the decomposition, NLinear's shift invariance, shapes, the registry."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors, models
from jaxattn.models import linear_forecasters

B, L, P, C = 3, 40, 12, 4


def build(name, **overrides):
    cfg = {"name": name, "dtype": "float32", **overrides}
    return models.build_model(
        cfg, vocab_size=0, num_classes=0, max_length=L, packed=False, num_channels=C, horizon=P
    )


def series(seed=0, shape=(B, L, C)):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def numpy_moving_average(x, k):
    """A direct loop: the mean of x[t - k//2 .. t + k//2] with the ends repeated."""
    pad = (k - 1) // 2
    padded = np.concatenate([np.repeat(x[:, :1], pad, 1), x, np.repeat(x[:, -1:], pad, 1)], 1)
    return np.stack([padded[:, t : t + k].mean(1) for t in range(padded.shape[1] - k + 1)], 1)


@pytest.mark.parametrize("k", [25, 5, 3, 1])
def test_decomposition_is_a_replicate_padded_moving_average(k):
    x = np.asarray(series(1))
    seasonal, trend = linear_forecasters.decompose(jnp.asarray(x), k)
    np.testing.assert_allclose(trend, numpy_moving_average(x.astype(np.float64), k), atol=1e-5)
    np.testing.assert_allclose(seasonal + trend, x, atol=1e-6)
    assert trend.shape == x.shape


def test_moving_average_of_a_constant_is_the_constant():
    x = jnp.full((1, L, 2), 3.5)
    np.testing.assert_allclose(linear_forecasters.moving_average(x, 25), x, rtol=1e-6)


@pytest.mark.parametrize("name", ["dlinear", "nlinear"])
@pytest.mark.parametrize("individual", [False, True])
def test_shapes_and_parameter_counts(name, individual):
    model = build(name, individual=individual)
    variables = model.init(jax.random.PRNGKey(0), series())
    predictions, aux = model.apply(variables, inputs=series(), deterministic=True)
    assert predictions.shape == (B, P, C) and predictions.dtype == jnp.float32 and aux == {}
    assert np.isfinite(predictions).all()
    maps = 2 if name == "dlinear" else 1
    per_map = (L * P + P) * (C if individual else 1)
    assert sum(x.size for x in jax.tree.leaves(variables["params"])) == maps * per_map


def test_init_is_torch_linear_uniform():
    params = build("dlinear").init(jax.random.PRNGKey(0), series())["params"]
    for leaf in jax.tree.leaves(params):
        assert np.abs(leaf).max() <= 1 / np.sqrt(L)


@pytest.mark.parametrize("individual", [False, True])
def test_nlinear_adding_a_constant_to_the_input_adds_it_to_the_output(individual):
    model = build("nlinear", individual=individual)
    x = series(2)
    variables = model.init(jax.random.PRNGKey(1), x)
    shift = jnp.asarray([0.5, -2.0, 7.0, 0.0])  # one constant per channel
    y, _ = model.apply(variables, x)
    y_shifted, _ = model.apply(variables, x + shift)
    np.testing.assert_allclose(y_shifted, y + shift, atol=1e-5)


def test_dlinear_matches_two_linear_maps_over_the_decomposition():
    model = build("dlinear")
    x = series(3)
    params = model.init(jax.random.PRNGKey(2), x)["params"]
    seasonal, trend = (np.asarray(a, np.float64) for a in linear_forecasters.decompose(x, 25))

    def linear(part, p):
        return np.einsum("blc,lp->bpc", part, p["kernel"]) + np.asarray(p["bias"])[:, None]

    expected = linear(seasonal, params["seasonal"]) + linear(trend, params["trend"])
    np.testing.assert_allclose(model.apply({"params": params}, x)[0], expected, atol=1e-5)


def test_individual_maps_are_per_channel():
    model = build("nlinear", individual=True)
    x = series(4)
    variables = model.init(jax.random.PRNGKey(3), x)
    y, _ = model.apply(variables, x)
    changed = x.at[:, :, 0].add(1.0 + jnp.arange(L)[None, :] * 0.1)  # not a constant shift
    y2, _ = model.apply(variables, changed)
    np.testing.assert_allclose(y2[..., 1:], y[..., 1:], atol=1e-6)
    assert not np.allclose(y2[..., 0], y[..., 0])


def test_registry_refuses_an_attention_subconfig_and_reports_no_kind():
    from configs import common

    with pytest.raises(errors.ConfigError, match="has no attention"):
        build("dlinear", attention=common.attention_config("softmax"))
    assert models.attention_kind({"name": "nlinear"}) is None
    assert models.attention_kind({"name": "decoder_lm", "attention": {"kind": "softmax"}}) == (
        "softmax"
    )


def test_wrong_channel_count_raises():
    model = build("dlinear")
    with pytest.raises(ValueError, match="inputs must be"):
        model.init(jax.random.PRNGKey(0), series(shape=(B, L, C + 1)))
