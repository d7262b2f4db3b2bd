"""The decoder-only LM: strict causality of the whole model for every causal kind, packing
equivalence (loss and gradients) for every kind that also packs, and the registry's refusals."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors, models
from jaxattn.attention import REGISTRY
from jaxattn.tasks import next_token
from tests.attention import battery_cases

V, T = 40, 16
# An LM offers no token grid: grid kinds (AttentionSpec.grid) cannot serve it.
CAUSAL_KINDS = sorted(k for k, spec in REGISTRY.items() if spec.causal and not spec.grid)
PACKING_KINDS = [k for k in CAUSAL_KINDS if REGISTRY[k].packing]

# The battery's settings, except where they would hide a leak: routing's window is smaller than
# the sequence, so clusters overflow and members are dropped (the case that can see the future).
# The layer passes SSA's `training` itself (the battery binds it to pick a mode).
LM_HPARAMS = {
    **{
        kind: {name: value for name, value in hparams.items() if name != "training"}
        for kind, hparams in battery_cases.BATTERY_HPARAMS.items()
    },
    "routing": {"num_clusters": 3, "window": 4},
}


def lm(kind: str, *, packed: bool = False, **overrides):
    cfg = {
        "name": "decoder_lm",
        "emb_dim": 16,
        "num_layers": 2,
        "num_heads": 2,
        "head_dim": 8,
        "mlp_dim": 32,
        "attention": {"kind": kind, kind: dict(LM_HPARAMS.get(kind, {}))},
        # A kind with its own rotary (coca) refuses the default RoPE of the LM.
        **({"relative": "none"} if REGISTRY[kind].own_rotary else {}),
        **overrides,
    }
    return models.build_model(cfg, vocab_size=V, max_length=T, num_classes=0, packed=packed)


def init(model, tokens, **inputs):
    rng = jax.random.PRNGKey(0)
    return model.init({"params": rng, "attention": rng}, tokens, **inputs)


def apply(model, variables, tokens, **inputs):
    logits, _ = model.apply(variables, tokens, **inputs, rngs={"attention": jax.random.PRNGKey(1)})
    return logits


# The battery's quick kinds in the default tier, the others (a compile of a 2-layer LM each) slow.
@pytest.mark.parametrize("kind", battery_cases.tiered(CAUSAL_KINDS))
def test_whole_model_is_strictly_causal(kind):
    model = lm(kind)
    tokens = jax.random.randint(jax.random.PRNGKey(2), (2, T), 1, V)
    variables = init(model, tokens)
    base = apply(model, variables, tokens)
    for t in (3, 8, 12):
        future = jax.random.randint(jax.random.PRNGKey(10 + t), (2, T - t - 1), 1, V)
        changed = tokens.at[:, t + 1 :].set(future)
        out = apply(model, variables, changed)
        diff = float(jnp.abs(out[:, : t + 1] - base[:, : t + 1]).max())
        assert diff <= 1e-5, f"{kind}: logits at positions <= {t} moved by {diff} (future leaks)"
        assert float(jnp.abs(out[:, t + 1 :] - base[:, t + 1 :]).max()) > 0  # the probe bites


def _rows(records):
    rows = [next_token.make_row(r, T) for r in records]
    return {k: jnp.asarray(np.stack([row[k] for row in rows])) for k in rows[0]}


# Exact softmax runs in the quick tier; the other packing kinds (local: 35 s on 2 cores) in the
# slow tier (CI runs it). The attention-level packing check covers every kind (battery_test.py).
QUICK_PACKING_KINDS = ("softmax",)


@pytest.mark.parametrize(
    "kind",
    [
        k if k in QUICK_PACKING_KINDS else pytest.param(k, marks=pytest.mark.slow)
        for k in PACKING_KINDS
    ],
)
def test_packed_training_equals_documents_run_separately(kind):
    rng = np.random.default_rng(0)
    doc_a, doc_b = rng.integers(1, V, 8), rng.integers(1, V, 9)  # 17 = T + 1 tokens together
    packed = _rows([{"tokens": np.r_[doc_a, doc_b], "segment_ids": np.r_[[1] * 8, [2] * 9]}])
    separate = _rows([{"tokens": doc_a}, {"tokens": doc_b}])
    assert float(packed["weights"].sum()) == float(separate["weights"].sum()) == 15.0

    model = lm(kind, packed=True)
    variables = init(model, packed["inputs"], segment_ids=packed["segment_ids"])

    def total_loss(params, batch):
        logits = apply(model, {**variables, "params": params}, **next_token.model_inputs(batch))
        return next_token.loss(logits, batch)[0]

    loss_p, grads_p = jax.value_and_grad(total_loss)(variables["params"], packed)
    loss_s, grads_s = jax.value_and_grad(total_loss)(variables["params"], separate)
    np.testing.assert_allclose(float(loss_p), float(loss_s), rtol=1e-5)
    flat_p, flat_s = jax.tree.leaves(grads_p), jax.tree.leaves(grads_s)
    for g_p, g_s in zip(flat_p, flat_s, strict=True):
        np.testing.assert_allclose(np.asarray(g_p), np.asarray(g_s), atol=1e-5, rtol=1e-4)


def test_non_causal_kind_is_refused():
    with pytest.raises(errors.UnsupportedFeatureError, match="nystrom.*is_causal"):
        lm("nystrom")


def test_packed_rows_need_a_packing_kind():
    kind = next(k for k in CAUSAL_KINDS if not REGISTRY[k].packing)
    with pytest.raises(errors.UnsupportedFeatureError, match=f"{kind}.*segment_ids"):
        lm(kind, packed=True)


def test_untied_gqa_and_softcap():
    model = lm("softmax", tie_embeddings=False, num_kv_heads=1, logit_softcap=2.0)
    tokens = jax.random.randint(jax.random.PRNGKey(0), (2, T), 1, V)
    variables = init(model, tokens)
    logits = apply(model, variables, tokens)
    assert logits.shape == (2, T, V) and float(jnp.abs(logits).max()) < 2.0
    assert "logits" in variables["params"]
    key = nn.unbox(variables["params"]["decoder"]["block_0"]["attention"]["key"])
    assert key.shape[1] == 1  # one kv head (MQA)


DECODING_KINDS = sorted(k for k, spec in REGISTRY.items() if spec.decoding)


def decode_all(model, variables, tokens):
    """Token-by-token logits [B, T, V] through the decoders' caches."""
    cache, outs = {}, []
    for t in range(tokens.shape[1]):
        (logits, _), mutated = model.apply(
            {**variables, **cache},
            tokens[:, t : t + 1],
            decode=True,
            rngs={"attention": jax.random.PRNGKey(1)},
            mutable=["cache"],
        )
        cache = {"cache": mutated["cache"]}
        outs.append(logits)
    return jnp.concatenate(outs, axis=1)


@pytest.mark.parametrize(
    "kind, overrides",
    [(k, {}) for k in DECODING_KINDS]
    + [
        ("softmax", {"num_kv_heads": 1, "positional": "learned", "relative": "none"}),
        ("local", {"attention": {"kind": "local", "local": {"mode": "block", "block_size": 5}}}),
        ("linear", {"num_kv_heads": 1}),
    ],
    ids=lambda x: x if isinstance(x, str) else "-".join(sorted(x)) or "default",
)
def test_token_by_token_decoding_equals_the_full_pass(kind, overrides):
    assert set(DECODING_KINDS) >= {"softmax", "softmax_chunked", "local", "linear", "performer"}
    model = lm(kind, **overrides)
    tokens = jax.random.randint(jax.random.PRNGKey(3), (2, T), 1, V)
    variables = init(model, tokens)
    full = apply(model, variables, tokens)
    decoded = decode_all(model, variables, tokens)
    assert float(jnp.abs(decoded - full).max()) <= 1e-4


def test_kinds_without_a_decoder_refuse_to_decode():
    kind = next(k for k in CAUSAL_KINDS if not REGISTRY[k].decoding)
    model = lm(kind)
    tokens = jnp.ones((1, T), jnp.int32)
    variables = init(model, tokens)
    with pytest.raises(errors.UnsupportedFeatureError, match=f"{kind}.*decoding"):
        decode_all(model, variables, tokens[:, :2])


def test_bias_schemes_refuse_to_decode():
    model = lm("softmax", relative="alibi")
    tokens = jnp.ones((1, T), jnp.int32)
    variables = init(model, tokens)
    with pytest.raises(errors.UnsupportedFeatureError, match="alibi"):
        decode_all(model, variables, tokens[:, :2])
