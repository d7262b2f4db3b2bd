"""The layers pass `training=not deterministic` to kinds that declare
AttentionSpec.needs_training (and nothing to the others); SSA is such a kind."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxattn.attention import get_attention_fn
from jaxattn.layers import attention as attention_layer
from jaxattn.layers import mixer


def test_multi_head_attention_passes_training_to_kinds_that_need_it():
    x = jax.random.normal(jax.random.key(0), (2, 12, 8))
    ssa = attention_layer.MultiHeadAttention(
        attention=get_attention_fn({"kind": "ssa", "ssa": {"keep_prob": 0.2, "local_window": 1}}),
        num_heads=2,
    )
    dense = attention_layer.MultiHeadAttention(
        attention=get_attention_fn({"kind": "softmax"}), num_heads=2
    )
    rngs = {"params": jax.random.key(1), "attention": jax.random.key(2)}
    params = ssa.init(rngs, x)
    rng = {"attention": jax.random.key(3)}
    evaluation = ssa.apply(params, x, deterministic=True, rngs=rng)
    training = ssa.apply(params, x, deterministic=False, rngs=rng)
    softmax = dense.apply(params, x)  # same projections (SSA declares no tensors)
    np.testing.assert_allclose(evaluation, softmax, atol=1e-6)  # evaluation: dense
    assert float(jnp.max(jnp.abs(training - softmax))) > 1e-3  # training: a subsample


def test_token_mixer_passes_training_only_to_kinds_that_need_it():
    """A mixer spec with needs_training receives training=not deterministic; fnet (without it)
    receives no `training` argument at all."""
    seen = []
    fnet = get_attention_fn({"kind": "fnet"})

    def spy(x, *, training=None, **kwargs):
        seen.append(training)
        return fnet.spec.fn(x, **kwargs)

    spec = dataclasses.replace(fnet.spec, fn=spy, needs_training=True)
    layer = mixer.TokenMixer(mixer=dataclasses.replace(fnet, spec=spec))
    x = jnp.ones((1, 4, 8))
    params = layer.init(jax.random.key(0), x)
    layer.apply(params, x, deterministic=False)
    layer.apply(params, x, deterministic=True)
    assert seen[-2:] == [True, False]
    plain = mixer.TokenMixer(mixer=dataclasses.replace(fnet, spec=dataclasses.replace(spec, needs_training=False)))  # fmt: skip
    plain.apply(params, x, deterministic=False)
    assert seen[-1] is None
