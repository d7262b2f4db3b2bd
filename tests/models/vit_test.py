"""The vision transformer: shapes, prefix tokens, positions, stochastic depth, LPI, the grid."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import common
from jaxattn import attention, errors, models
from jaxattn.attention import softmax
from jaxattn.layers import blocks, lpi
from jaxattn.models import vit


def build(kind="softmax", image_shape=(8, 12, 1), **overrides):
    cfg = {
        "name": "vision_transformer",
        "patch_size": 4,
        "emb_dim": 16,
        "num_layers": 2,
        "num_heads": 2,
        "head_dim": 8,
        "mlp_dim": 32,
        "attention": common.attention_config(kind),
        **overrides,
    }
    return models.build_model(
        cfg, num_classes=5, image_shape=image_shape, vocab_size=0, max_length=None
    )


def images(B=3, shape=(8, 12, 1), seed=0):
    return jnp.asarray(np.random.default_rng(seed).integers(0, 256, (B, *shape)), jnp.uint8)


def init(model, x):
    return model.init({"params": jax.random.PRNGKey(0), "attention": jax.random.PRNGKey(0)}, x)


@pytest.mark.parametrize("pooling, posemb", [("cls", "learned"), ("mean", "sincos2d")])
def test_logits_shape_for_pooling_and_positions(pooling, posemb):
    model = build(pooling=pooling, posemb=posemb)
    x = images()
    variables = init(model, x)
    logits, _ = model.apply(variables, x)
    assert logits.shape == (3, 5) and bool(jnp.all(jnp.isfinite(logits)))
    assert ("cls" in variables["params"]) == (pooling == "cls")
    assert ("posemb" in variables["params"]) == (posemb == "learned")
    assert model.grid == (2, 3)


def test_float_images_in_unit_range_equal_uint8():
    model = build()
    x = images()
    variables = init(model, x)
    as_uint8, _ = model.apply(variables, x)
    as_float, _ = model.apply(variables, x.astype(jnp.float32) / 255.0)
    np.testing.assert_allclose(as_uint8, as_float, atol=1e-5)


def test_distillation_token_has_its_own_head_averaged_at_evaluation():
    model = build(distillation=True)
    x = images()
    variables = init(model, x)
    params = variables["params"]
    assert {"cls", "dist", "head", "head_dist"} <= set(params)
    # Non-zero heads (they start at zero) so the two logits differ.
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
    params = treedef.unflatten(
        [p + 0.1 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys, strict=True)]
    )
    both, _ = model.apply(
        {"params": params}, x, deterministic=False, rngs={"dropout": jax.random.PRNGKey(2)}
    )
    assert both.shape == (3, 2, 5)
    assert not np.allclose(both[:, 0], both[:, 1])
    evaluated, _ = model.apply({"params": params}, x)
    np.testing.assert_allclose(evaluated, both.mean(axis=1), atol=1e-5)


def test_sincos2d_table_is_raster_ordered_sin_cos_of_column_and_row():
    table = vit.sincos2d_table(2, 3, 8)  # dim/4 = 2 frequencies: 1 and 1/100
    assert table.shape == (6, 8)
    row, col = 1, 2
    t = table[row * 3 + col]
    np.testing.assert_allclose(t[:2], np.sin([col, col / 100]), rtol=1e-6)
    np.testing.assert_allclose(t[2:4], np.cos([col, col / 100]), rtol=1e-6)
    np.testing.assert_allclose(t[4:6], np.sin([row, row / 100]), rtol=1e-6)
    np.testing.assert_allclose(t[6:], np.cos([row, row / 100]), rtol=1e-6)
    with pytest.raises(errors.ConfigError, match="divisible by 4"):
        vit.sincos2d_table(2, 2, 6)


def test_drop_path_is_identity_at_evaluation_and_per_example_in_training():
    x = jnp.ones((64, 5, 4))
    layer = blocks.DropPath(0.5)
    np.testing.assert_array_equal(layer.apply({}, x, deterministic=True), x)
    y = layer.apply({}, x, deterministic=False, rngs={"dropout": jax.random.PRNGKey(0)})
    per_example = np.asarray(y[:, 0, 0])
    assert set(np.unique(per_example)) == {0.0, 2.0}  # dropped, or kept and scaled by 1/(1-p)
    assert np.all(np.asarray(y) == per_example[:, None, None])  # a whole example at once


def test_model_drop_path_changes_training_outputs_only():
    model = build(drop_path_rate=0.5, num_layers=3)
    plain = build(num_layers=3)
    x = images()
    variables = init(model, x)
    np.testing.assert_allclose(model.apply(variables, x)[0], plain.apply(variables, x)[0])
    # Heads start at zero: compare the encoder's states through a non-zero head.
    head = {"kernel": jnp.ones((16, 5)), "bias": jnp.zeros(5)}
    variables = {"params": {**variables["params"], "head": head}}
    a, b = (
        model.apply(variables, x, deterministic=False, rngs={"dropout": jax.random.PRNGKey(s)})[0]
        for s in range(2)
    )
    assert not np.allclose(a, b)


def test_drop_path_rates_rise_linearly_over_layers():
    model = build(drop_path_rate=0.3, num_layers=4)
    x = images()
    rates = []

    def spy(next_fun, args, kwargs, context):
        if (
            isinstance(context.module, blocks.TransformerBlock)
            and context.method_name == "__call__"
        ):
            rates.append(context.module.drop_path_rate)
        return next_fun(*args, **kwargs)

    # Traced abstractly (no compile, no op-by-op run): the spy sees every block once.
    with __import__("flax").linen.intercept_methods(spy):
        jax.eval_shape(lambda: init(model, x))
    np.testing.assert_allclose(rates, [0.0, 0.1, 0.2, 0.3])


def test_lpi_leaves_prefix_tokens_and_mixes_neighbouring_patches():
    layer = lpi.LocalPatchInteraction(grid=(3, 4))
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 2 + 12, 8))
    variables = layer.init(jax.random.PRNGKey(1), x)
    y = layer.apply(variables, x)
    assert y.shape == x.shape
    np.testing.assert_array_equal(y[:, :2], 0.0)  # prefix tokens: nothing added
    # Changing the prefix tokens changes nothing; changing patch (0, 0) changes only its 5x5
    # neighbourhood (two 3x3 convolutions), never patch (2, 3).
    np.testing.assert_allclose(layer.apply(variables, x.at[:, :2].set(5.0)), y)
    moved = layer.apply(variables, x.at[:, 2].add(1.0))
    changed = np.any(np.abs(np.asarray(moved - y)) > 1e-6, axis=(0, 2))[2:].reshape(3, 4)
    assert changed[0, 0] and changed[1, 1] and not changed[2, 3]


def test_lpi_in_the_model_adds_parameters_per_block():
    model = build(lpi=True, distillation=True)
    x = images()
    variables = init(model, x)
    block = variables["params"]["encoder"]["block_0"]
    assert {"lpi", "ln_lpi"} <= set(block)
    assert model.apply(variables, x)[0].shape == (3, 5)


def test_grid_given_to_a_grid_aware_kind_is_the_patch_grid(monkeypatch):
    seen = {}

    def grid_softmax(query, key, value, *, grid=(1, 1), **kwargs):
        seen["grid"] = grid
        return softmax.softmax_attention(query, key, value, **kwargs)

    spec = dataclasses.replace(attention.REGISTRY["softmax"], fn=grid_softmax, grid=True)
    monkeypatch.setitem(attention.REGISTRY, "grid_test", spec)
    model = build("softmax", image_shape=(12, 20, 3))
    model = build_with_kind(model, "grid_test")
    assert dict(model.attention.hparams)["grid"] == (3, 5)
    init(model, images(shape=(12, 20, 3)))
    assert seen["grid"] == (3, 5)


def build_with_kind(model, kind):
    cfg = {"kind": kind, kind: {}}
    return model.clone(attention=attention.get_attention_fn(cfg, grid=model.grid))


def test_build_model_binds_the_grid_through_attention_needs():
    needs = models.ATTENTION_NEEDS["vision_transformer"](
        {"image_shape": (28, 28, 1), "patch_size": 4}
    )
    assert needs == {"grid": (7, 7)}
    with pytest.raises(errors.ConfigError, match="must divide"):
        build(image_shape=(10, 12, 1))
    with pytest.raises(errors.ConfigError, match="image_shape"):
        models.ATTENTION_NEEDS["vision_transformer"]({"patch_size": 4})


@pytest.mark.parametrize("kind", ["performer", "linear"])
def test_efficient_kinds_run(kind):
    model = build(kind)
    x = images()
    logits, _ = model.apply(init(model, x), x, rngs={"attention": jax.random.PRNGKey(0)})
    assert logits.shape == (3, 5) and bool(jnp.all(jnp.isfinite(logits)))


def test_unknown_pooling_is_a_config_error():
    with pytest.raises(errors.ConfigError, match="pooling"):
        model = build(pooling="sum")
        init(model, images())
