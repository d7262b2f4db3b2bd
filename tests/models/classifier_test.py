"""The encoder classifier: shapes, pooling over real tokens, padding handling, dtypes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import common
from jaxattn import errors, models


def build(kind="softmax", **overrides):
    cfg = {
        "name": "encoder_classifier",
        "emb_dim": 16,
        "num_layers": 2,
        "num_heads": 2,
        "head_dim": 8,
        "mlp_dim": 32,
        "pooling": "mean",
        "positional": "learned",
        "dropout_rate": 0.0,
        "attention_dropout_rate": 0.0,
        "causal": False,
        "dtype": "float32",
        "attention": common.attention_config(kind),
    }
    cfg.update(overrides)
    return models.build_model(cfg, vocab_size=16, num_classes=10, max_length=64)


def tokens(B=3, T=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 16, size=(B, T))
    lengths = rng.integers(T // 2, T + 1, size=B)
    x[np.arange(T)[None] >= lengths[:, None]] = 0
    return jnp.asarray(x, jnp.int32)


@pytest.mark.parametrize("pooling", ["mean", "cls", "sum"])
@pytest.mark.parametrize("kind", ["softmax", "nystrom"])
def test_logits_shape_and_finite(kind, pooling):
    model = build(kind, pooling=pooling)
    x = tokens()
    params = model.init(jax.random.PRNGKey(0), x)
    logits, aux = model.apply(params, x)
    assert logits.shape == (3, 10) and aux == {}
    assert np.isfinite(np.asarray(logits)).all()


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_extra_padding_does_not_change_softmax_logits(pooling):
    """With exact attention and masked pooling, appending padding leaves the logits unchanged."""
    model = build("softmax", pooling=pooling, positional="sinusoidal")
    x = tokens()
    params = model.init(jax.random.PRNGKey(0), x)
    padded = jnp.pad(x, ((0, 0), (0, 9)))
    a, _ = model.apply(params, x)
    b, _ = model.apply(params, padded)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_nystrom_declares_its_conv_kernel_as_a_parameter():
    attention = common.attention_config("nystrom", num_landmarks=4, conv_kernel_size=5)
    model = build("nystrom", attention=attention)
    params = model.init(jax.random.PRNGKey(0), tokens())["params"]
    conv = params["encoder"]["block_0"]["attention"]["conv_kernel"]
    assert conv.unbox().shape == (5, 2)


def test_bfloat16_model_runs():
    model = build("nystrom", dtype="bfloat16")
    x = tokens()
    params = model.init(jax.random.PRNGKey(0), x)
    logits, _ = model.apply(params, x)
    assert np.isfinite(np.asarray(logits, np.float32)).all()


def test_unknown_model_and_field_raise():
    with pytest.raises(errors.ConfigError, match="available models"):
        build(name="nope")
    with pytest.raises(errors.ConfigError, match="no field"):
        build(num_layerz=3)
    with pytest.raises(errors.UnsupportedFeatureError, match="nystrom"):
        build("nystrom", causal=True)


def test_mean_over_length_is_the_masked_sum_over_the_padded_length():
    from jaxattn.models import classifier

    x = jnp.arange(2 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 3)
    mask = jnp.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool)
    got = classifier.POOLING["mean_over_length"](x, mask)
    np.testing.assert_allclose(got[0], (x[0, 0] + x[0, 1]) / 4)
    np.testing.assert_allclose(got[1], x[1].mean(axis=0))
    np.testing.assert_allclose(classifier.POOLING["mean"](x, mask)[0], (x[0, 0] + x[0, 1]) / 2)


def test_dual_encoder_shares_one_encoder_and_reads_both_documents():
    cfg = dict(name="dual_encoder_classifier", pooling="mean")
    model = build("softmax", **cfg)
    a, b = tokens(seed=0), tokens(seed=1)
    params = model.init(jax.random.PRNGKey(0), a, b)
    single = build("softmax", pooling="mean").init(jax.random.PRNGKey(0), a)
    # One encoder: the same parameter tree as the single-document classifier, except the head's
    # input width (4 x emb_dim: [u, v, u*v, u-v]).
    assert set(params["params"]) == set(single["params"])
    assert params["params"]["head_hidden"]["kernel"].shape[0] == 4 * 16
    ab, _ = model.apply(params, a, b)
    ba, _ = model.apply(params, b, a)
    aa, _ = model.apply(params, a, a)
    assert ab.shape == (3, 10)
    assert not np.allclose(ab, ba)  # u - v makes the order matter
    assert not np.allclose(ab, aa)  # the second document is read
