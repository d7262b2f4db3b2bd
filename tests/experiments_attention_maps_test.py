"""experiments/attention_maps.py: weights from one-hot values, rollout, probes, PNGs."""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import common
from experiments import attention_maps
from jaxattn import attention, models
from jaxattn.layers import attention as attention_layers


def test_one_hot_values_give_softmax_weights_exactly():
    B, T, N, H = 2, 10, 3, 4  # S = 10 > H: three chunks of one-hot columns
    q, k = jax.random.normal(jax.random.PRNGKey(0), (2, B, T, N, H))
    bound = attention.get_attention_fn(common.attention_config("softmax"))
    probs = attention_maps.weights_from_outputs(bound, {"query": q, "key": k, "bias": None})
    expected = jax.nn.softmax(jnp.einsum("BTNH,BSNH->BNTS", q, k) / math.sqrt(H), axis=-1)
    assert probs.shape == (B, N, T, T)
    np.testing.assert_allclose(probs, expected, atol=1e-6)


def test_rollout_rows_sum_to_one():
    layers = [
        jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(i), (2, 3, 5, 5)), axis=-1)
        for i in range(3)
    ]
    rolled = attention_maps.rollout(layers)
    assert rolled.shape == (2, 5, 5)
    np.testing.assert_allclose(rolled.sum(axis=-1), 1.0, atol=1e-6)
    # One layer: (mean over heads + I) / 2.
    one = attention_maps.rollout(layers[:1])
    np.testing.assert_allclose(one, (layers[0].mean(axis=1) + jnp.eye(5)) / 2, atol=1e-6)


def test_kinds_that_are_not_token_maps_say_so():
    assert (
        attention_maps.cannot_map(attention.get_attention_fn(common.attention_config("softmax")))
        is None
    )
    fnet = attention.get_attention_fn(common.attention_config("fnet"))
    assert "token mixer" in attention_maps.cannot_map(fnet)


def tiny_vit(kind="softmax"):
    cfg = {
        "name": "vision_transformer",
        "patch_size": 4,
        "emb_dim": 16,
        "num_layers": 2,
        "num_heads": 2,
        "head_dim": 8,
        "mlp_dim": 32,
        "attention": common.attention_config(kind),
    }
    return models.build_model(cfg, num_classes=3, image_shape=(8, 12, 1))


def test_probe_is_off_unless_asked_and_maps_every_layer(tmp_path):
    model = tiny_vit()
    x = jnp.asarray(np.random.default_rng(0).integers(0, 256, (2, 8, 12, 1)), jnp.uint8)
    variables = model.init({"params": jax.random.PRNGKey(0)}, x)
    assert set(variables) == {"params"}  # init sows nothing
    assert (
        attention_layers.PROBE_COLLECTION
        not in model.apply(variables, x, mutable=["attention_state"])[1]
    )
    layers = attention_maps.probe_weights(model, variables, x)
    assert len(layers) == 2 and layers[0].shape == (2, 2, 7, 7)  # CLS + a 2x3 grid
    np.testing.assert_allclose(layers[1].sum(axis=-1), 1.0, atol=1e-5)
    paths = attention_maps.save_maps(
        str(tmp_path / "maps"), np.asarray(x), layers, grid=model.grid, num_prefix=1, query=0
    )
    assert len(paths) == 2 * (2 + 1)
    assert all(os.path.getsize(p) > 0 and p.endswith(".png") for p in paths)


@pytest.mark.parametrize("kind", ["performer", "linear"])
def test_approximate_kinds_give_their_implicit_row_stochastic_weights(kind):
    model = tiny_vit(kind)
    x = jnp.asarray(np.random.default_rng(1).integers(0, 256, (1, 8, 12, 1)), jnp.uint8)
    variables = model.init({"params": jax.random.PRNGKey(0), "attention": jax.random.PRNGKey(0)}, x)
    layers = attention_maps.probe_weights(model, variables, x)
    np.testing.assert_allclose(layers[0].sum(axis=-1), 1.0, atol=1e-4)
    assert float(layers[0].min()) >= -1e-6  # both kinds' weights are non-negative
