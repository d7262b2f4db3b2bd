"""The attention contract: capability specs, the finite mask value, mask and shape helpers.

Shape letters (as in `jax.nn.dot_product_attention`): B batch, T query length, S key/value length,
N query heads, K key/value heads, G = N // K, H head dim, D model dim, m landmarks.

Masks are factorized (STYLE.md §2): a causal flag, a key padding mask `kv_mask` [B, S] (True =
real token), and segment ids [B, T] / [B, S] for packed sequences (0 = padding). Causal masking
is top-left aligned: query t sees keys s <= t.

Attention-probability dropout is part of the contract too: every kind takes `dropout_rate`
(a Python float in [0, 1)) and `dropout_rng`. A kind that forms attention probabilities drops
each with probability `dropout_rate` and scales the kept ones by 1 / (1 - dropout_rate)
(inverted dropout; `apply_dropout`), drawing its keep mask from `dropout_rng` only, so the same
rng gives the same output. A kind that forms none (linear, Performer, FNet), or whose reference
code drops none (Nyström), raises `UnsupportedFeatureError` for a rate > 0 (`reject_dropout`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxattn import errors

# A finite stand-in for -inf: a fully masked row stays finite (no NaN from inf - inf).
MASK_VALUE = -0.7 * float(np.finfo(np.float32).max)

# The dropout arguments of the common signature: the layer passes them, never the config.
DROPOUT_ARGS = frozenset({"dropout_rate", "dropout_rng"})

# The flags a model can require of an attention call (`supports` also answers "decoding", which
# the layer asks of a kind rather than a call).
FEATURES = ("is_causal", "kv_mask", "segment_ids", "bias", "gqa", "cross", "dropout")


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """A tensor an attention variant needs that a Flax layer owns (learned or fixed).

    `init(rng, shape, dtype)` is a `jax.nn.initializers` style function; `axes` are the
    logical axis names used for sharding (STYLE.md §6).
    """

    shape: tuple[int, ...]
    init: Callable[..., jax.Array]
    axes: tuple[str | None, ...]


@dataclasses.dataclass(frozen=True)
class Decoder:
    """Incremental (token-by-token) causal decoding of a kind: a cache and a step.

    init(hparams, *, batch, max_length, num_heads, num_kv_heads, head_dim, dtype)
        -> cache {name: array}: the state before position 0 (a KV cache, a rolling window, a
        recurrent state). max_length is the most positions one cache will see.
    step(query [B, 1, N, H], key [B, 1, K, H], value [B, 1, K, H], cache, index, *, scale,
         **hparams, **tensors) -> (out [B, 1, N, H], new cache)
        the causal output at position `index` (an int32 scalar: how many tokens came before),
        equal to the full causal forward pass's row `index`. `tensors` are what the full pass
        gets too (`rng` for random kinds, declared parameters).
    """

    init: Callable[..., dict[str, jax.Array]]
    step: Callable[..., tuple[jax.Array, dict[str, jax.Array]]]


@dataclasses.dataclass(frozen=True)
class AttentionSpec:
    """One registry entry: the function and what it supports, checked before tracing.

    Attributes:
      fn: the pure function, `fn(query, key, value, *, is_causal, kv_mask, q_segment_ids,
        kv_segment_ids, bias, scale, dropout_rate, dropout_rng, **hyper_params,
        **param_tensors) -> [B, T, N, H]`.
      family: 'attention' (query/key/value) or 'mixer' (x -> y token mixers).
      causal, padding, packing, bias, gqa, cross: declared capabilities.
      decoder: incremental causal decoding (`Decoder`), or None: the kind cannot decode and
        asking it to raises UnsupportedFeatureError ('decoding' in the capability table).
      dropout: whether the kind applies attention-probability dropout (`dropout_rate` > 0 with a
        `dropout_rng`); a kind without it raises for a rate > 0.
      complexity: time / memory in shape letters, for the capability table.
      params: optional `params(hparams, num_heads, num_kv_heads, head_dim, kv_length)` returning
        {name: ParamSpec} for tensors the layer must create and pass in (e.g. a conv kernel).
      needs_rng: whether the layer must pass `rng=` (random features, hashes). The trainer gives a
        new rng every step and a fixed one at evaluation.
      state: optional, like `params`, for non-gradient state (routing centroids, codebooks) that
        the layer keeps in the 'attention_state' collection and passes in by name. A kind with
        state returns `(out, new_state)`, new_state a dict with the same names; the layer stores
        it when the collection is mutable (training), and ignores it otherwise (evaluation).
      needs_training: whether the layer must pass `training=` (a Python bool: True when the
        layer is not deterministic, i.e. in training; False at evaluation). For kinds that compute
        something else in training than at evaluation beyond dropout (SSA subsamples keys in
        training and attends densely at evaluation). `training` is not a config hyper-parameter:
        the layer supplies it on every call (configs/common.COMMON_ARGS leaves it out of the
        config); direct callers such as the test battery may bind it to pick one mode.
      own_rotary: whether the kind applies its own rotary position encoding to q and k (CoCA
        builds its keys inside the rotary planes). The layer's rotary schemes (`relative='rope'`)
        would rotate twice, so they are refused for such a kind (layers/posenc.py).
      grid: whether the kind needs the 2-D token grid (image-native kinds such as axial). Such a
        kind takes a hyper-parameter `grid=(rows, cols)` that `get_attention_fn` binds from what
        the model offers (the patch grid); a sequence of T tokens is then `T - rows * cols`
        prefix tokens (CLS, distillation) followed by the grid in raster order. Kinds without it
        see the same tokens as a flat sequence. A model that offers no grid cannot use such a
        kind (UnsupportedFeatureError). Grid kinds keep prefix tokens in the computation, as keys
        every grid query can reach and as queries that attend to every key (axial: the prefix
        keys join each row step, so a one-row grid is exactly softmax); raster order is the
        causal order.
    """

    fn: Callable[..., jax.Array]
    family: str = "attention"
    causal: bool = False
    padding: bool = True
    packing: bool = False
    bias: bool = False
    gqa: bool = False
    cross: bool = True
    decoder: Decoder | None = None
    dropout: bool = False
    complexity: str = ""
    params: Callable[..., dict[str, ParamSpec]] | None = None
    needs_rng: bool = False
    state: Callable[..., dict[str, ParamSpec]] | None = None
    grid: bool = False
    needs_training: bool = False
    own_rotary: bool = False

    @property
    def decoding(self) -> bool:
        return self.decoder is not None

    def supports(self, feature: str) -> bool:
        return {
            "is_causal": self.causal,
            "kv_mask": self.padding,
            "segment_ids": self.packing,
            "bias": self.bias,
            "gqa": self.gqa,
            "cross": self.cross,
            "dropout": self.dropout,
            "decoding": self.decoding,
        }[feature]


@dataclasses.dataclass(frozen=True)
class BoundAttention:
    """An attention kind with its hyper-parameters bound: call it like the pure function.

    This plays the role of `functools.partial(spec.fn, **hparams)` from STYLE.md §3, and also
    carries the spec so the Flax layer can create the tensors the kind declares (`param_specs`)
    without knowing which kind it runs. It is frozen and hashable, so it can be a Flax module
    attribute.
    """

    kind: str
    spec: AttentionSpec
    hparams: tuple[tuple[str, Any], ...] = ()

    def __call__(self, *inputs: jax.Array, **kwargs) -> jax.Array:
        """(query, key, value) for an attention kind, (x,) for a token mixer."""
        return self.spec.fn(*inputs, **dict(self.hparams), **kwargs)

    def param_specs(
        self, *, num_heads: int, num_kv_heads: int, head_dim: int, kv_length: int
    ) -> dict[str, ParamSpec]:
        """Tensors the layer creates as parameters and passes in by name."""
        return self._specs(self.spec.params, num_heads, num_kv_heads, head_dim, kv_length)

    def state_specs(
        self, *, num_heads: int, num_kv_heads: int, head_dim: int, kv_length: int
    ) -> dict[str, ParamSpec]:
        """Non-gradient state the layer keeps in 'attention_state' and passes in by name."""
        return self._specs(self.spec.state, num_heads, num_kv_heads, head_dim, kv_length)

    def _specs(self, make, num_heads, num_kv_heads, head_dim, kv_length) -> dict[str, ParamSpec]:
        if make is None:
            return {}
        return make(
            dict(self.hparams),
            num_heads=num_heads,
            num_kv_heads=num_kv_heads,
            head_dim=head_dim,
            kv_length=kv_length,
        )


def unsupported(
    kind: str, feature: str, supported_by: list[str] | None = None
) -> errors.UnsupportedFeatureError:
    """The error for a flag a kind cannot honour: it names the kind and the flag."""
    message = f"attention kind '{kind}' does not support {feature}"
    if supported_by:
        message += f"; kinds that do: {', '.join(supported_by)}"
    return errors.UnsupportedFeatureError(message)


def check_inputs(
    kind: str,
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    *,
    kv_mask: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
) -> tuple[int, int, int, int, int, int]:
    """Checks BTNH shapes and mask shapes; returns (B, T, S, N, K, H)."""
    if query.ndim != 4 or key.ndim != 4 or value.ndim != 4:
        raise ValueError(
            f"{kind}: query/key/value must be [B, T, N, H] / [B, S, K, H]; got "
            f"{query.shape}, {key.shape}, {value.shape}"
        )
    B, T, N, H = query.shape
    _, S, K, _ = key.shape
    if key.shape != value.shape[:3] + (H,) or key.shape[0] != B:
        raise ValueError(
            f"{kind}: key {key.shape} and value {value.shape} must be [B, S, K, H] with H = {H}"
        )
    if N % K:
        raise ValueError(f"{kind}: query heads N={N} must be a multiple of key/value heads K={K}")
    if kv_mask is not None and kv_mask.shape != (B, S):
        raise ValueError(f"{kind}: kv_mask must be [B, S] = {(B, S)}; got {kv_mask.shape}")
    if q_segment_ids is not None and q_segment_ids.shape != (B, T):
        raise ValueError(
            f"{kind}: q_segment_ids must be [B, T] = {(B, T)}; got {q_segment_ids.shape}"
        )
    if kv_segment_ids is not None and kv_segment_ids.shape != (B, S):
        raise ValueError(
            f"{kind}: kv_segment_ids must be [B, S] = {(B, S)}; got {kv_segment_ids.shape}"
        )
    return B, T, S, N, K, H


def resolve_segment_ids(
    kind: str, q_segment_ids: jax.Array | None, kv_segment_ids: jax.Array | None, T: int, S: int
) -> tuple[jax.Array | None, jax.Array | None]:
    """kv_segment_ids default to q_segment_ids (self-attention); giving only kv ids is an error."""
    if q_segment_ids is None and kv_segment_ids is None:
        return None, None
    if q_segment_ids is None:
        raise ValueError(f"{kind}: kv_segment_ids given without q_segment_ids")
    if kv_segment_ids is None:
        if T != S:
            raise ValueError(
                f"{kind}: cross-attention (T={T} != S={S}) with packing needs kv_segment_ids"
            )
        kv_segment_ids = q_segment_ids
    return q_segment_ids, kv_segment_ids


def make_keep_mask(
    T: int,
    S: int,
    *,
    is_causal: bool = False,
    kv_mask: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
) -> jax.Array | None:
    """The dense boolean mask, True = attend, broadcastable to [B, 1, T, S]; None if nothing masks.

    Only dense (O(T·S)) variants call this; linear-time variants apply the factorized masks
    their own way.
    """
    mask = None

    def _and(a, b):
        return b if a is None else jnp.logical_and(a, b)

    if is_causal:
        mask = _and(mask, (jnp.arange(T)[:, None] >= jnp.arange(S)[None, :])[None, None])
    if kv_mask is not None:
        mask = _and(mask, kv_mask[:, None, None, :])
    if q_segment_ids is not None:
        same = q_segment_ids[:, :, None] == kv_segment_ids[:, None, :]  # [B, T, S]
        mask = _and(mask, same[:, None])
    return mask


def check_dropout(kind: str, dropout_rate: float, dropout_rng: jax.Array | None) -> bool:
    """Validates the dropout arguments; True when dropout applies (dropout_rate > 0).

    The rate must be a static Python number (it decides whether a mask is drawn at all).
    """
    try:
        rate = float(dropout_rate)
    except TypeError as e:  # a traced rate (ConcretizationTypeError is a TypeError)
        raise TypeError(f"{kind}: dropout_rate must be a Python float, not a traced value") from e
    if not 0.0 <= rate < 1.0:
        raise errors.ConfigError(f"{kind}: dropout_rate must be in [0, 1); got {dropout_rate!r}")
    if rate > 0 and dropout_rng is None:
        raise ValueError(
            f"{kind}: dropout_rate={dropout_rate} needs dropout_rng (the layer passes one from "
            "its 'dropout' rng stream when not deterministic)"
        )
    return rate > 0


def reject_dropout(kind: str, dropout_rate: float, why: str) -> None:
    """For kinds that form no attention probabilities: a rate > 0 raises, naming kind and flag."""
    if dropout_rate:
        raise unsupported(kind, f"dropout (dropout_rate={dropout_rate}): {why}")


def _mix32(x: jax.Array) -> jax.Array:
    # A 32-bit integer finaliser with full avalanche (C. Wellons' "lowbias32" constants).
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def dropout_keep(rng: jax.Array, dropout_rate: float, shape: tuple[int, ...]) -> jax.Array:
    """The keep mask of attention-probability dropout: bool `shape`, True with 1 - dropout_rate.

    A pure function of (rng, shape): a kind that draws its mask here, with a shape its docstring
    names, can be reproduced exactly by a test. Counter-based: element n's bit is a hash of
    (n, the key's words), `hash(hash(n ^ k0) ^ k1) >= round(rate * 2^32)`, a few fused integer
    ops per element. `jax.random.bernoulli` (threefry, 20 rounds) drew 45M elements/s on the
    2-core CPU and made dropout most of an exact-attention training step (softmax_chunked at
    T=2000: 3.5 -> 11.7 s/step); this hash is not for cryptography or Monte Carlo, only for
    masks that must be independent-looking across positions and keys.
    """
    words = jax.random.key_data(rng) if jnp.issubdtype(rng.dtype, jax.dtypes.prng_key) else rng
    words = words.reshape(-1).astype(jnp.uint32)
    if math.prod(shape) > 2**32:
        raise ValueError(f"dropout_keep: {shape} has more than 2^32 elements; draw it in blocks")
    k0 = _mix32(words[0] ^ jnp.uint32(0x9E3779B9))
    k1 = _mix32(words[-1] + k0)
    counter = jax.lax.iota(jnp.uint32, math.prod(shape)).reshape(shape)
    bits = _mix32(_mix32(counter ^ k0) ^ k1)
    threshold = min(round(dropout_rate * 2.0**32), 2**32 - 1)
    return bits >= jnp.uint32(threshold)


def apply_dropout(probs: jax.Array, keep: jax.Array, dropout_rate: float) -> jax.Array:
    """Inverted dropout: kept probabilities scaled by 1 / (1 - dropout_rate), the rest 0."""
    return jnp.where(keep, probs * (1.0 / (1.0 - dropout_rate)), 0.0).astype(probs.dtype)


def dropout(probs: jax.Array, dropout_rate: float, dropout_rng: jax.Array | None) -> jax.Array:
    """`probs` with inverted dropout, the keep mask drawn at probs' full shape; identity at rate 0."""
    if not dropout_rate:
        return probs
    return apply_dropout(probs, dropout_keep(dropout_rng, dropout_rate, probs.shape), dropout_rate)


def default_scale(scale: float | None, head_dim: int) -> float:
    return float(head_dim) ** -0.5 if scale is None else scale


def check_hparams(kind: str, hparams: Mapping[str, Any], fn: Callable[..., Any]) -> None:
    """Unknown hyper-parameter names fail here, with the accepted names, not deep in tracing."""
    import inspect

    accepted = {
        name
        for name, p in inspect.signature(fn).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in DROPOUT_ARGS
    }
    if set(hparams) & DROPOUT_ARGS:
        raise errors.ConfigError(
            f"attention kind '{kind}': dropout is not a hyper-parameter of the kind; set the "
            "model's attention_dropout_rate (the layer passes the rate and an rng in training)"
        )
    unknown = sorted(set(hparams) - accepted)
    if unknown:
        raise errors.ConfigError(
            f"attention kind '{kind}' has no hyper-parameter(s) {unknown}; it accepts {sorted(accepted)}"
        )
