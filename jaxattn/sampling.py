"""Sampling from a decoder-only LM through the attention kinds' decoders (one token per step).

    tokens = sampling.generate(model, variables, prompt, max_new_tokens=200, rng=rng,
                               temperature=0.8, top_k=40)

The prompt is fed token by token through the same cached step as the generated tokens (the
caches are the kinds' `core.Decoder` states, so each step costs one token's attention, not the
whole prefix). `temperature=0` is greedy decoding: deterministic for a given model and prompt.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxattn import errors
from jaxattn.data import byte_text

# Random kinds (Performer features) decode with this fixed key, as the trainer evaluates.
ATTENTION_SEED = 0


def filter_logits(
    logits: jax.Array, *, top_k: int | None = None, top_p: float | None = None
) -> jax.Array:
    """logits [B, V] with everything outside the top-k and the top-p nucleus set to -inf.

    top_p keeps the smallest set of most likely tokens whose probabilities sum to >= top_p
    (always at least the most likely one)."""
    if top_k is not None and top_k > 0:
        kth = jax.lax.top_k(logits, min(top_k, logits.shape[-1]))[0][:, -1:]  # [B, 1]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    if top_p is not None and top_p < 1.0:
        order = jnp.argsort(-logits, axis=-1)
        sorted_logits = jnp.take_along_axis(logits, order, axis=-1)
        probs = jax.nn.softmax(sorted_logits, axis=-1)
        before = jnp.cumsum(probs, axis=-1) - probs  # mass of the tokens ranked above
        keep_sorted = before < top_p
        keep = (
            jnp.zeros_like(keep_sorted)
            .at[jnp.arange(logits.shape[0])[:, None], order]
            .set(keep_sorted)
        )
        logits = jnp.where(keep, logits, -jnp.inf)
    return logits


def choose(
    logits: jax.Array,
    rng: jax.Array,
    *,
    temperature: float,
    top_k: int | None = None,
    top_p: float | None = None,
) -> jax.Array:
    """The next token [B] from logits [B, V]: argmax if temperature == 0, else a sample."""
    if temperature == 0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    filtered = filter_logits(logits.astype(jnp.float32) / temperature, top_k=top_k, top_p=top_p)
    return jax.random.categorical(rng, filtered, axis=-1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("model",))
def _step(model: nn.Module, variables: Any, cache: Any, token: jax.Array):
    (logits, _), mutated = model.apply(
        {**variables, **cache},
        token[:, None],
        decode=True,
        rngs={"attention": jax.random.PRNGKey(ATTENTION_SEED)},
        mutable=["cache"],
    )
    return logits[:, -1], {"cache": mutated["cache"]}


def generate(
    model: nn.Module,
    variables: Any,
    prompt: np.ndarray,
    *,
    max_new_tokens: int,
    rng: jax.Array,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> np.ndarray:
    """prompt int [B, P] (P >= 1) -> [B, P + max_new_tokens] tokens.

    Args:
      model: a `models.lm.DecoderLM` (decoding raises for kinds without a decoder).
      variables: {'params': ..., other non-cache collections}.
      prompt: the first tokens of every row (equal lengths).
      max_new_tokens: tokens to append; P + max_new_tokens must fit `model.max_length`.
      rng: sampling randomness (unused when temperature == 0).
      temperature, top_k, top_p: see `choose`.
    """
    prompt = np.asarray(prompt, np.int32)
    if prompt.ndim != 2 or prompt.shape[1] < 1:
        raise errors.ConfigError(f"the prompt must be [batch, length >= 1]; got {prompt.shape}")
    total = prompt.shape[1] + max_new_tokens
    if total > model.max_length:
        raise errors.ConfigError(
            f"prompt ({prompt.shape[1]}) + max_new_tokens ({max_new_tokens}) = {total} exceeds "
            f"the model's max_length {model.max_length}; shorten the prompt or generate less"
        )
    if temperature < 0:
        raise errors.ConfigError(f"temperature must be >= 0; got {temperature}")
    cache: Any = {}
    logits = None
    for t in range(prompt.shape[1]):
        logits, cache = _step(model, variables, cache, jnp.asarray(prompt[:, t]))
    out = [prompt]
    for i in range(max_new_tokens):
        token = choose(
            logits,
            jax.random.fold_in(rng, i),
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
        )
        out.append(np.asarray(token)[:, None])
        if i + 1 < max_new_tokens:
            logits, cache = _step(model, variables, cache, token)
    return np.concatenate(out, axis=1)


def sample_text(
    model: nn.Module,
    variables: Any,
    prompt: str,
    *,
    num_samples: int = 1,
    max_new_tokens: int = 200,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
) -> list[str]:
    """`num_samples` continuations of a text prompt by a byte-level LM (prompt included)."""
    ids = byte_text.encode(prompt.encode("utf-8"))
    if len(ids) == 0:
        raise errors.ConfigError("the prompt is empty; give at least one character")
    if model.vocab_size != byte_text.VOCAB_SIZE:
        raise errors.ConfigError(
            f"sample_text needs a byte-level model (vocabulary {byte_text.VOCAB_SIZE}); this one "
            f"has {model.vocab_size}"
        )
    prompt_ids = np.broadcast_to(ids.astype(np.int32), (num_samples, len(ids)))
    tokens = generate(
        model,
        variables,
        prompt_ids,
        max_new_tokens=max_new_tokens,
        rng=jax.random.PRNGKey(seed),
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
    )
    return [byte_text.decode(row).decode("utf-8", errors="replace") for row in tokens]
