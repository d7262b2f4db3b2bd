"""Attention-probability dropout: the common `dropout_rate` / `dropout_rng` arguments of every kind,
held to explicit references (softmax's mask, softmax_chunked's per-block masks forward and
backward), unbiasedness over many rngs, refusals, and the layer's wiring."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors
from jaxattn.attention import REGISTRY, core, get_attention_fn, softmax, softmax_chunked
from jaxattn.layers import attention as attention_layer
from jaxattn.layers import mixer
from tests.attention import battery_cases as cases

RATE = 0.3
DROPOUT_KINDS = [kind for kind in cases.ATTENTION_KINDS if REGISTRY[kind].dropout]
NO_DROPOUT_KINDS = [kind for kind in cases.KINDS if not REGISTRY[kind].dropout]


def _bind(kind: str) -> core.BoundAttention:
    return cases.bind(kind, cases.BATTERY_HPARAMS.get(kind, {}))


@functools.partial(jax.jit, static_argnames=("fn", "rate"))
def _run(fn, q, k, v, masks, params, rng, rate: float):
    """fn with dropout; `rate` is static (it decides whether a mask is drawn)."""
    out = fn(q, k, v, **masks, **params, dropout_rate=rate, dropout_rng=rng)
    return cases.output(fn, out)


def _inputs(kind: str, seed: int = 0):
    B, T, N, K, H = cases.small_shape(kind)
    fn = _bind(kind)
    params = cases.declared_params(fn, N=N, K=K, H=H, S=T)
    q, k, v = cases.qkv(B, T, T, N, K, H, seed=seed)
    masks = cases.mask_kwargs(kind, cases.padding_mask(B, T))
    return fn, (q, k, v), masks, params


def _real(x, masks):
    return cases.real_rows(x, masks["kv_mask"]) if masks else jnp.asarray(x, jnp.float32)


def test_capabilities():
    """Every kind that forms attention probabilities declares dropout; the others do not, and
    neither does Nyström, whose authors' code drops none of its softmax kernels F, A, B."""
    forms_probabilities = {
        "softmax",
        "softmax_xla",
        "softmax_chunked",
        "synthesizer",
        "local",
        "block_sparse",
        "sinkhorn",
        "reformer",
        "routing",
        "linformer",
        "axial",
        "xca",
        # zoo II
        "topk",
        "multiscale_window",
        "combiner",
        "ssa",
        "neural_attention",
        "dma",
        "coca",
        "agent",
        "lightconv",  # DropConnect on the softmax-normalised kernel (the paper's)
        "dynconv",
        "ponet",  # the global aggregation's attention probabilities
    }
    assert {kind for kind, spec in REGISTRY.items() if spec.dropout} == forms_probabilities
    assert set(NO_DROPOUT_KINDS) == {
        "performer",
        "linear",
        "fnet",
        "nystrom",
        # zoo II: kernel/linear forms and recurrences form no probabilities; normalized's weights
        # are signed standardised scores; MRA's coarse blocks and YOSO's hashed estimate have no
        # per-entry probability; AFT, Transformer-VQ and the other mixers' papers drop none.
        "focused_linear",
        "lln",
        "trainable_kernel",
        "relit",
        "normalized",
        "mra",
        "yoso",
        "aft",
        "transformer_vq",
        "fnet_ar",
        "sgu",
        "gaam",
        "padre",
    }


# ----------------------------------------------------------------------------- every dropout kind

# The mean over this many rngs approaches the output without dropout. One entry's standard error
# is sqrt(rate / (1 - rate)) · sqrt(Σ p²v²) / sqrt(n), up to ~0.02 for a row concentrated on a
# value of 2.5 at rate 0.1; the largest of the ~1000 entries lies a few of those away. Measured
# with these rngs: 0.007 (nystrom) to 0.033 (routing); outputs are up to 2.6.
MEAN_DRAWS = 2000
MEAN_RATE = 0.1
MEAN_ATOL = 0.08


@functools.partial(jax.jit, static_argnames=("fn",))
def _dropout_facts(fn, q, k, v, masks, params, rngs):
    """Everything the per-kind check compares, in one compilation (the kinds compile slowly on
    CPU): outputs without dropout, at rate 0, with rngs 0, 0 again and 1, gradients with rng 0,
    and the mean over rngs[2:] at MEAN_RATE."""

    def run(rate, rng, q=q, k=k, v=v):
        out = fn(q, k, v, **masks, **params, dropout_rate=rate, dropout_rng=rng)
        return _real(cases.output(fn, out), masks)

    def loss(q, k, v):
        return jnp.sum(run(RATE, rngs[0], q, k, v) * jnp.cos(q))

    return {
        "plain": _real(cases.output(fn, fn(q, k, v, **masks, **params)), masks),
        "rate_zero": run(0.0, None),
        "rate_zero_with_rng": run(0.0, rngs[0]),
        "rng0": run(RATE, rngs[0]),
        "rng0_again": run(RATE, rngs[0]),
        "rng1": run(RATE, rngs[1]),
        "grads": jax.grad(loss, argnums=(0, 1, 2))(q, k, v),
        "mean": jnp.mean(jax.vmap(lambda rng: run(MEAN_RATE, rng))(rngs[2:]), axis=0),
    }


# softmax_chunked (the custom backward) and local (the tiles block_sparse shares) run in the
# quick tier; every other kind compiles for several seconds on 2 cores: slow tier.
QUICK_KINDS = ("softmax_chunked", "local")


@pytest.mark.parametrize(
    "kind",
    [k if k in QUICK_KINDS else pytest.param(k, marks=pytest.mark.slow) for k in DROPOUT_KINDS],
)
def test_dropout_of_every_kind(kind):
    """Rate 0 is today's output exactly; the same rng gives the same output and another rng
    another; outputs and gradients are finite and differ from no dropout; inverted dropout is
    unbiased: the mean over many rngs approaches the output without dropout (every kind's output
    is linear in the dropped probabilities)."""
    fn, (q, k, v), masks, params = _inputs(kind)
    rngs = jax.random.split(jax.random.key(1), 2 + MEAN_DRAWS)
    facts = _dropout_facts(fn, q, k, v, masks, params, rngs)
    plain = facts["plain"]
    np.testing.assert_array_equal(facts["rate_zero"], plain)
    np.testing.assert_array_equal(facts["rate_zero_with_rng"], plain)  # an rng alone draws nothing
    np.testing.assert_array_equal(facts["rng0_again"], facts["rng0"])
    assert bool(jnp.all(jnp.isfinite(facts["rng0"])))
    assert float(jnp.max(jnp.abs(facts["rng0"] - facts["rng1"]))) > 1e-2
    assert float(jnp.max(jnp.abs(facts["rng0"] - plain))) > 1e-2
    for name, g in zip("qkv", facts["grads"], strict=True):
        assert bool(jnp.all(jnp.isfinite(g))), f"d loss / d {name} is not finite"
    err = float(jnp.max(jnp.abs(facts["mean"] - plain)))
    assert err < MEAN_ATOL, f"{kind}: the mean over {MEAN_DRAWS} rngs is {err:.3g} from no dropout"


# ----------------------------------------------------------------------------- exact references


def _softmax_reference(q, k, v, keep, rate, *, is_causal=False, kv_mask=None):
    """Dense softmax attention with an explicit [B, N, T, S] keep mask (inverted dropout)."""
    B, T, N, H = q.shape
    S, K = k.shape[1], k.shape[2]
    k, v = jnp.repeat(k, N // K, axis=2), jnp.repeat(v, N // K, axis=2)
    logits = jnp.einsum("BTNH,BSNH->BNTS", q, k) * H**-0.5
    allowed = core.make_keep_mask(T, S, is_causal=is_causal, kv_mask=kv_mask)
    if allowed is not None:
        logits = jnp.where(allowed, logits, core.MASK_VALUE)
    probs = jax.nn.softmax(logits, axis=-1)
    if allowed is not None:
        probs = jnp.where(allowed, probs, 0.0)
    probs = jnp.where(keep, probs / (1.0 - rate), 0.0)
    return jnp.einsum("BNTS,BSNH->BTNH", probs, v)


@pytest.mark.parametrize("is_causal", [False, True], ids=["bidirectional", "causal"])
def test_softmax_equals_reference_with_its_mask(is_causal):
    B, T, N, K, H = 2, 12, 4, 2, 8
    q, k, v = cases.qkv(B, T, T, N, K, H, seed=7)
    kv_mask = cases.padding_mask(B, T)
    rng = jax.random.key(8)
    out = softmax.softmax_attention(
        q, k, v, is_causal=is_causal, kv_mask=kv_mask, dropout_rate=RATE, dropout_rng=rng
    )
    keep = softmax.dropout_mask(rng, RATE, B, N, T, T)
    assert 0.6 < float(jnp.mean(keep)) < 0.8  # about 1 - RATE of the entries are kept
    expected = _softmax_reference(q, k, v, keep, RATE, is_causal=is_causal, kv_mask=kv_mask)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)
    # softmax_xla has no dropout in its API: it runs softmax, with the same mask.
    xla = REGISTRY["softmax_xla"].fn(
        q, k, v, is_causal=is_causal, kv_mask=kv_mask, dropout_rate=RATE, dropout_rng=rng
    )
    np.testing.assert_allclose(xla, out, rtol=0, atol=1e-6)


@dataclasses.dataclass(frozen=True)
class ChunkedCase:
    T: int = 16
    S: int = 16
    N: int = 4
    K: int = 2
    block_q: int = 5
    block_k: int = 3
    is_causal: bool = False
    padding: bool = False


CHUNKED_CASES = {
    "blocks_do_not_divide": ChunkedCase(),  # slow tier (SLOW_CHUNKED_CASES)
    "causal_padding_padded_blocks": ChunkedCase(T=13, S=13, is_causal=True, padding=True),
    # BQ = m·BK: the causal diagonal blocks compute only their visible rows.
    "split_diagonal_causal": ChunkedCase(is_causal=True, block_q=8, block_k=4),
    "split_diagonal_padding_mqa": ChunkedCase(
        T=13, S=13, K=1, is_causal=True, padding=True, block_q=6, block_k=2
    ),
    "split_diagonal_cross_short_keys": ChunkedCase(
        T=20, S=12, is_causal=True, padding=True, block_q=6, block_k=3
    ),
    "cross_long_keys_padding": ChunkedCase(T=9, S=21, padding=True, block_q=4, block_k=5),
}


# The quick tier keeps causal + padding with padded blocks, and the split diagonal with padding
# and with cross-attention; these also run in the slow tier.
SLOW_CHUNKED_CASES = ("blocks_do_not_divide", "split_diagonal_causal", "cross_long_keys_padding")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.slow) if n in SLOW_CHUNKED_CASES else n
        for n in sorted(CHUNKED_CASES)
    ],
)
def test_softmax_chunked_forward_and_gradients_equal_dense_with_the_same_block_masks(name):
    """The backward regenerates each block's mask: forward and gradients equal a dense
    reference that uses exactly the masks of `dropout_keep_dense`."""
    c = CHUNKED_CASES[name]
    B, H = 2, 8
    q, k, v = cases.qkv(B, c.T, c.S, c.N, c.K, H, seed=9)
    kv_mask = None
    if c.padding:
        kv_mask = jnp.asarray(np.arange(c.S)[None] < np.array([c.S, c.S - 5])[:, None])
    rng = jax.random.key(10)
    keep = softmax_chunked.dropout_keep_dense(
        rng,
        RATE,
        B=B,
        T=c.T,
        S=c.S,
        N=c.N,
        K=c.K,
        is_causal=c.is_causal,
        block_q=c.block_q,
        block_k=c.block_k,
    )
    cotangent = jnp.asarray(np.random.default_rng(11).normal(size=q.shape), jnp.float32)

    def chunked(q, k, v, rng):
        return softmax_chunked.softmax_chunked_attention(
            q,
            k,
            v,
            is_causal=c.is_causal,
            kv_mask=kv_mask,
            dropout_rate=RATE,
            dropout_rng=rng,
            block_q=c.block_q,
            block_k=c.block_k,
        )

    def dense(q, k, v, rng):
        del rng  # the masks are `keep`
        return _softmax_reference(q, k, v, keep, RATE, is_causal=c.is_causal, kv_mask=kv_mask)

    @jax.jit
    def outputs_and_grads(q, k, v):
        def grads(fn, rng):
            loss = lambda q, k, v: jnp.sum(fn(q, k, v, rng) * cotangent)  # noqa: E731
            return jax.grad(loss, argnums=(0, 1, 2))(q, k, v)

        return (
            (chunked(q, k, v, rng), grads(chunked, rng)),
            (dense(q, k, v, rng), grads(dense, rng)),
            grads(chunked, jax.random.key(12)),  # another rng's masks
        )

    (out, grads), (expected, expected_grads), other = outputs_and_grads(q, k, v)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)
    for what, g, e in zip("qkv", grads, expected_grads, strict=True):
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-4, err_msg=f"d/d{what}")
    assert float(jnp.max(jnp.abs(other[2] - grads[2]))) > 1e-2  # the masks matter


def test_softmax_chunked_dropout_keeps_memory_linear():
    """fwd+bwd with dropout at T = 4096 (compiled, not run): temporaries stay far below one
        T x T float32 matrix (no dense mask is stored). Measured here: 5.8 MiB (2.9 MiB without
    dropout) vs 64 MiB."""
    B, T, N, H = 1, 4096, 1, 16
    x = jax.ShapeDtypeStruct((B, T, N, H), jnp.float32)

    def loss(q, k, v, rng):
        out = softmax_chunked.softmax_chunked_attention(
            q, k, v, is_causal=True, dropout_rate=0.1, dropout_rng=rng
        )
        return jnp.sum(out)

    key = jax.ShapeDtypeStruct((), jax.random.key(0).dtype)
    compiled = jax.jit(jax.grad(loss, argnums=(0, 1, 2))).lower(x, x, x, key).compile()
    assert compiled.memory_analysis().temp_size_in_bytes < B * N * T * T * 4 / 8


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("kind", cases.tiered(NO_DROPOUT_KINDS))
def test_kinds_without_probabilities_refuse_a_rate_and_accept_zero(kind):
    spec = REGISTRY[kind]
    rng = jax.random.key(0)
    with pytest.raises(errors.UnsupportedFeatureError) as raised:
        get_attention_fn({"kind": kind}, dropout=True)
    assert f"'{kind}'" in str(raised.value) and "dropout" in str(raised.value)
    if kind == "nystrom":  # it says why: its authors' code drops none of its softmax kernels
        assert "authors" in str(_refusal(kind, rng))
    if spec.family == "mixer":
        x = jnp.ones((2, 8, 4))
        with pytest.raises(errors.UnsupportedFeatureError, match=f"'{kind}'.*dropout"):
            spec.fn(x, dropout_rate=0.1, dropout_rng=rng)
        assert spec.fn(x, dropout_rate=0.0, dropout_rng=rng).shape == x.shape
        return
    fn, (q, k, v), masks, params = _inputs(kind)
    with pytest.raises(errors.UnsupportedFeatureError, match=f"'{kind}'.*dropout"):
        fn(q, k, v, **masks, **params, dropout_rate=0.1, dropout_rng=rng)

    @jax.jit
    def outputs(q, k, v):
        plain = cases.output(fn, fn(q, k, v, **masks, **params))  # stateful kinds: (out, state)
        zero = fn(q, k, v, **masks, **params, dropout_rate=0.0, dropout_rng=rng)
        return plain, cases.output(fn, zero)

    plain, rate_zero = outputs(q, k, v)
    np.testing.assert_array_equal(rate_zero, plain)


def _refusal(kind: str, rng: jax.Array) -> errors.UnsupportedFeatureError:
    fn, (q, k, v), masks, params = _inputs(kind)
    with pytest.raises(errors.UnsupportedFeatureError) as raised:
        fn(q, k, v, **masks, **params, dropout_rate=0.1, dropout_rng=rng)
    return raised.value


def test_bad_dropout_arguments():
    q = jnp.ones((1, 8, 2, 4))
    with pytest.raises(ValueError, match="dropout_rng"):
        softmax.softmax_attention(q, q, q, dropout_rate=0.1)
    with pytest.raises(errors.ConfigError, match="dropout_rate"):
        softmax.softmax_attention(q, q, q, dropout_rate=1.0, dropout_rng=jax.random.key(0))
    with pytest.raises(TypeError, match="Python float"):
        jax.jit(lambda r: softmax.softmax_attention(q, q, q, dropout_rate=r, dropout_rng=r))(0.1)
    with pytest.raises(errors.ConfigError, match="attention_dropout_rate"):
        get_attention_fn({"kind": "softmax", "softmax": {"dropout_rate": 0.1}})


# ----------------------------------------------------------------------------- the layers


def _layer(kind: str, rate: float, **hparams) -> attention_layer.MultiHeadAttention:
    return attention_layer.MultiHeadAttention(
        attention=get_attention_fn({"kind": kind, kind: hparams}), num_heads=2, dropout_rate=rate
    )


def test_layer_deterministic_ignores_the_rate_training_applies_it():
    x = jax.random.normal(jax.random.key(0), (2, 10, 8))
    kv_mask = jnp.arange(10)[None] < jnp.array([[10], [6]])
    params = jax.jit(_layer("softmax", 0.0).init)(jax.random.key(1), x, kv_mask=kv_mask)

    @jax.jit
    def outputs(params):
        def apply(rate, deterministic, seed=None):
            rngs = None if seed is None else {"dropout": jax.random.key(seed)}
            return _layer("softmax", rate).apply(
                params, x, kv_mask=kv_mask, deterministic=deterministic, rngs=rngs
            )

        return {
            "plain": apply(0.0, True),
            "evaluation": apply(RATE, True),  # no 'dropout' rng needed, nothing dropped
            "train2": apply(RATE, False, 2),
            "train2_again": apply(RATE, False, 2),
            "train3": apply(RATE, False, 3),
            # Dropout is on the probabilities (inside the kind), not on the layer's output.
            "train_rate_zero": apply(0.0, False, 2),
        }

    out = outputs(params)
    np.testing.assert_array_equal(out["evaluation"], out["plain"])
    np.testing.assert_array_equal(out["train_rate_zero"], out["plain"])
    np.testing.assert_array_equal(out["train2_again"], out["train2"])
    assert float(jnp.max(jnp.abs(out["train2"] - out["plain"]))) > 1e-3
    assert float(jnp.max(jnp.abs(out["train2"] - out["train3"]))) > 1e-3


def test_layer_with_a_random_kind_uses_both_streams():
    x = jax.random.normal(jax.random.key(0), (1, 32, 8))
    layer = _layer("block_sparse", RATE, layout="bigbird", block_size=4)
    params = jax.jit(layer.init)({"params": jax.random.key(1), "attention": jax.random.key(2)}, x)

    @jax.jit
    def train(seeds):  # [n, 2] (attention, dropout) seeds
        def one(seed):
            rngs = {"attention": jax.random.key(seed[0]), "dropout": jax.random.key(seed[1])}
            return layer.apply(params, x, deterministic=False, rngs=rngs)

        return jax.vmap(one)(seeds)

    out = train(jnp.array([[3, 4], [3, 4], [3, 5], [6, 4]]))
    np.testing.assert_array_equal(out[0], out[1])
    assert float(jnp.max(jnp.abs(out[0] - out[2]))) > 1e-3  # other dropout masks
    assert float(jnp.max(jnp.abs(out[0] - out[3]))) > 1e-3  # other random blocks


@pytest.mark.parametrize("kind", ["linear", "performer"])
def test_layer_refuses_a_rate_for_a_kind_without_dropout(kind):
    x = jnp.ones((1, 8, 8))
    rngs = {"params": jax.random.key(0), "attention": jax.random.key(1)}
    with pytest.raises(errors.UnsupportedFeatureError, match=f"'{kind}'.*dropout"):
        jax.eval_shape(_layer(kind, 0.1).init, rngs, x)  # at init, deterministic or not
    jax.eval_shape(_layer(kind, 0.0).init, rngs, x)


def test_token_mixer_refuses_a_rate():
    x = jnp.ones((1, 8, 8))
    fnet = get_attention_fn({"kind": "fnet"})
    with pytest.raises(errors.UnsupportedFeatureError, match="'fnet'.*dropout"):
        jax.eval_shape(mixer.TokenMixer(mixer=fnet, dropout_rate=0.1).init, jax.random.key(0), x)
    variables = jax.eval_shape(mixer.TokenMixer(mixer=fnet).init, jax.random.key(0), x)
    y = jax.eval_shape(
        functools.partial(mixer.TokenMixer(mixer=fnet).apply, deterministic=False), variables, x
    )
    assert y.shape == x.shape


def test_block_passes_the_attention_dropout_rate():
    from jaxattn.layers import blocks

    x = jax.random.normal(jax.random.key(0), (2, 10, 8))
    block = blocks.TransformerBlock(
        attention=get_attention_fn({"kind": "softmax"}),
        num_heads=2,
        mlp_dim=16,
        attention_dropout_rate=RATE,
    )
    params = jax.jit(block.init)(jax.random.key(1), x)

    @jax.jit
    def outputs(params):
        evaluation = block.apply(params, x)
        train = block.apply(params, x, deterministic=False, rngs={"dropout": jax.random.key(2)})
        return evaluation, train

    evaluation, train = outputs(params)
    assert float(jnp.max(jnp.abs(train - evaluation))) > 1e-3  # residual dropout rate is 0


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_keep_mask_rate_and_independence_across_keys_and_positions(rate):
    """The counter-based mask: the kept share is 1 - rate, masks of two keys agree only by chance
    (p^2 + (1 - p)^2), and neighbours along either axis are uncorrelated."""
    a = np.asarray(core.dropout_keep(jax.random.PRNGKey(1), rate, (512, 512)))
    b = np.asarray(
        core.dropout_keep(jax.random.fold_in(jax.random.PRNGKey(1), 0), rate, (512, 512))
    )
    n = a.size
    tol = 5 * np.sqrt(rate * (1 - rate) / n)
    assert abs(a.mean() - (1 - rate)) < tol and abs(b.mean() - (1 - rate)) < tol
    chance = (1 - rate) ** 2 + rate**2
    assert abs((a == b).mean() - chance) < 5 * np.sqrt(chance * (1 - chance) / n)
    for x, y in ((a[:-1], a[1:]), (a[:, :-1], a[:, 1:])):
        assert abs(np.corrcoef(x.ravel(), y.ravel())[0, 1]) < 0.02
