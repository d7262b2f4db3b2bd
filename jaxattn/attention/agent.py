"""Agent attention: a few pooled agent tokens aggregate the keys and broadcast to the queries.

Paper: Dongchen Han, Tianzhu Ye, Yizeng Han, Zhuofan Xia, Siyuan Pan, Pengfei Wan, Shiji Song,
Gao Huang 2023, "Agent Attention: On the Integration of Softmax and Linear Attention",
https://arxiv.org/abs/2312.08873.

Per query head (kv head n // G), with a = num_agents agent tokens A [a, H] pooled from Q:

    A    = pool(Q)                                    adaptive average pooling over tokens
    V_A  = softmax(scale · A Kᵀ + B₁) V               agent aggregation   [a, S] · [S, H]
    out  = softmax(scale · Q Aᵀ + B₂) V_A + DWC(V)    agent broadcast     [T, a] · [a, H]

Equivalently out = M V (+ DWC) with M = softmax(QAᵀ + B₂)·softmax(AKᵀ + B₁), a row-stochastic
T×S matrix that is never formed: O(T·a·H) instead of O(T²·H). B₁ [a, S] and B₂ [T, a] are
learned per-head position biases (the paper builds them from decomposed 2-D position
components; here a sequence has one axis, so they are plain [a, kv_length] and [kv_length, a]
tables, initialised truncated-normal with std 0.02 as the paper's bias components). DWC is
focused_linear.py's 1-D depthwise conv of V over tokens (the paper's is 2-D on the image grid); conv_kernel_size 0
turns it off.

Pooling: the real tokens (kv_mask) are ranked 0..L−1 and agent i averages the queries of rank
r ∈ [⌊iL/a⌋, ⌈(i+1)L/a⌉) (torch's adaptive_avg_pool1d bins over the real tokens), so pads
never enter the agents and the real outputs equal those of the unpadded sequence exactly
(pads anywhere; the biases are indexed by position). An example with no real token gets
zero agents and zero attention (DWC bias only): finite.

Dropout: inverted dropout on both probability matrices (softmax(AKᵀ) [B, K, G, a, S] and
softmax(QAᵀ) [B, K, G, T, a]), with independent keep masks from one dropout_rng.

Shapes: query [B, T, N, H], key/value [B, T, K, H] -> [B, T, N, H]. Complexity: O(T·a·H)
time and memory per head (+ O(T·k·H) DWC). Masks: key padding (exact), GQA, dropout. Refused:
causal (the agents pool every query, so every output sees the future), packing (agents would
need to be per segment), cross-attention (agents, B₂ and DWC are per token of one axis), bias
(the agent biases are its own, declared tensors).

Reference implementation: LeapLabTHU/Agent-Attention (AgentAttention). Not run beside ours:
its pooling and DWC are 2-D on an image grid and its biases are interpolated 2-D tables, so
only the two-softmax algebra is comparable; that algebra is checked against the explicit T×S
matrix and a float64 loop instead (tests/attention/agent_test.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxattn import errors
from jaxattn.attention import core, focused_linear

KIND = "agent"


def agent_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    *,
    is_causal: bool = False,
    kv_mask: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    bias: jax.Array | None = None,
    scale: float | None = None,
    dropout_rate: float = 0.0,
    dropout_rng: jax.Array | None = None,
    num_agents: int = 49,
    conv_kernel_size: int = 3,
    agent_key_bias: jax.Array | None = None,
    agent_query_bias: jax.Array | None = None,
    dwc_kernel: jax.Array | None = None,
    dwc_bias: jax.Array | None = None,
) -> jax.Array:
    """Agent attention (module docstring).

    Args:
      query: [B, T, N, H].
      key, value: [B, T, K, H] (self-attention); K divides N (GQA/MQA).
      is_causal: unsupported (raises): the agents pool every query.
      kv_mask: [B, T] bool, True = real token: pads are left out of the pooling, masked in the
        aggregation and zeros for the DWC.
      q_segment_ids, kv_segment_ids: unsupported (raises).
      bias: unsupported (raises): the agent biases B₁, B₂ are the kind's declared tensors.
      scale: both softmaxes' logits scale, default 1/sqrt(H).
      dropout_rate, dropout_rng: dropout on both probability matrices (module docstring).
      num_agents: a, the agent tokens (paper: 49 = 7×7 for ImageNet models).
      conv_kernel_size: the DWC's taps; 0 = no DWC (and no conv tensors are declared).
      agent_key_bias: [N, a, L] B₁ (L = kv_length >= T); None = 0.
      agent_query_bias: [N, L, a] B₂; None = 0.
      dwc_kernel, dwc_bias: [K, H, k], [K, H] the DWC (focused_linear.depthwise_conv).

    Returns:
      [B, T, N, H] in value.dtype.
    """
    if is_causal:
        raise core.unsupported(KIND, "is_causal=True: the agents pool every query")
    if q_segment_ids is not None or kv_segment_ids is not None:
        raise core.unsupported(KIND, "q_segment_ids/kv_segment_ids (packing)")
    if bias is not None:
        raise core.unsupported(KIND, "bias: the agent biases are declared tensors")
    B, T, S, N, K, H = core.check_inputs(KIND, query, key, value, kv_mask=kv_mask)
    if T != S:
        raise core.unsupported(KIND, f"cross-attention (T={T} != S={S}): agents are per token")
    use_dropout = core.check_dropout(KIND, dropout_rate, dropout_rng)
    _check_hparams(num_agents, conv_kernel_size)
    G, a = N // K, num_agents
    scale = core.default_scale(scale, H)
    valid = jnp.ones((B, S), bool) if kv_mask is None else kv_mask.astype(bool)
    b1, b2 = _biases(agent_key_bias, agent_query_bias, N, a, T)  # [N, a, S], [N, T, a]
    b1, b2 = b1.reshape(K, G, a, T), b2.reshape(K, G, T, a)

    q = query.reshape(B, T, K, G, H)
    pool = pooling_matrix(valid, a)  # [B, a, T]
    agents = jnp.einsum("BAT,BTKGH->BKGAH", pool, q.astype(jnp.float32))  # [B, K, G, a, H]
    f32 = jnp.float32
    logits_k = jnp.einsum("BKGAH,BSKH->BKGAS", agents, key, preferred_element_type=f32)
    logits_k = jnp.where(valid[:, None, None, None], logits_k * scale + b1, core.MASK_VALUE)
    probs_k = jax.nn.softmax(logits_k, axis=-1)
    probs_k = jnp.where(valid[:, None, None, None], probs_k, 0.0)  # no real key: zeros
    logits_q = jnp.einsum("BTKGH,BKGAH->BKGTA", q, agents, preferred_element_type=f32)
    probs_q = jax.nn.softmax(logits_q * scale + b2, axis=-1)  # [B, K, G, T, a]
    if use_dropout:
        rng_k, rng_q = jax.random.split(dropout_rng)
        probs_k = core.dropout(probs_k, dropout_rate, rng_k)
        probs_q = core.dropout(probs_q, dropout_rate, rng_q)
    v_agents = jnp.einsum("BKGAS,BSKH->BKGAH", probs_k, value.astype(f32))  # [B, K, G, a, H]
    out = jnp.einsum("BKGTA,BKGAH->BTKGH", probs_q, v_agents)
    if conv_kernel_size and dwc_kernel is not None:
        conv = focused_linear.depthwise_conv(
            value, dwc_kernel, dwc_bias, kv_valid=valid, segment_ids=None, is_causal=False
        )  # [B, T, K, H]
        out = out + conv[:, :, :, None]
    return out.reshape(B, T, N, H).astype(value.dtype)


def _check_hparams(num_agents: int, conv_kernel_size: int) -> None:
    if not isinstance(num_agents, int) or num_agents < 1:
        raise errors.ConfigError(f"{KIND}: num_agents must be a positive int; got {num_agents!r}")
    if not isinstance(conv_kernel_size, int) or conv_kernel_size < 0:
        raise errors.ConfigError(
            f"{KIND}: conv_kernel_size must be an int >= 0; got {conv_kernel_size!r}"
        )


def _biases(b1, b2, N: int, a: int, T: int):
    """B₁ [N, a, L] and B₂ [N, L, a] (zeros if None), cut to the first T positions."""
    zeros_1, zeros_2 = jnp.zeros((N, a, T), jnp.float32), jnp.zeros((N, T, a), jnp.float32)
    for name, b, at in (("agent_key_bias", b1, 2), ("agent_query_bias", b2, 1)):
        if b is not None and (b.shape[0] != N or b.shape[at] < T or b.shape[3 - at] != a):
            raise ValueError(f"{KIND}: {name} has shape {b.shape}: needs N={N}, a={a}, L>={T}")
    b1 = zeros_1 if b1 is None else b1[:, :, :T].astype(jnp.float32)
    b2 = zeros_2 if b2 is None else b2[:, :T, :].astype(jnp.float32)
    return b1, b2


def pooling_matrix(valid: jax.Array, num_agents: int) -> jax.Array:
    """P [B, a, T]: agent i's average over the real tokens of rank in [⌊iL/a⌋, ⌈(i+1)L/a⌉),
    L the number of real tokens (adaptive average pooling over the real tokens only)."""
    rank = jnp.cumsum(valid, axis=1) - 1  # [B, T]
    L = jnp.sum(valid, axis=1)  # [B]
    i = jnp.arange(num_agents)[None, :]  # [1, a]
    start = (i * L[:, None]) // num_agents  # [B, a]: floor
    end = -((-(i + 1) * L[:, None]) // num_agents)  # [B, a]: ceil
    member = (
        valid[:, None, :]
        & (rank[:, None, :] >= start[..., None])
        & (rank[:, None, :] < end[..., None])
    )  # [B, a, T]
    count = jnp.sum(member, axis=-1, keepdims=True)
    return member.astype(jnp.float32) / jnp.maximum(count, 1)


def explicit_agent_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    *,
    kv_mask: jax.Array | None = None,
    scale: float | None = None,
    num_agents: int = 49,
    agent_key_bias: jax.Array | None = None,
    agent_query_bias: jax.Array | None = None,
    **unused: Any,
) -> jax.Array:
    """The naive two-softmax form, float32, without DWC: forms the T×S matrix
    M = softmax(QAᵀ + B₂)·softmax(AKᵀ + B₁) per head (kv heads repeated) and returns M V
    [B, T, N, H] (the test reference; a different compute order from `agent_attention`)."""
    del unused
    B, T, N, H = query.shape
    G = N // key.shape[2]
    k, v = (jnp.repeat(x.astype(jnp.float32), G, axis=2) for x in (key, value))
    q = query.astype(jnp.float32)
    scale = core.default_scale(scale, H)
    valid = jnp.ones((B, T), bool) if kv_mask is None else kv_mask
    b1, b2 = _biases(agent_key_bias, agent_query_bias, N, num_agents, T)
    agents = jnp.einsum("BAT,BTNH->BNAH", pooling_matrix(valid, num_agents), q)
    logits_k = jnp.einsum("BNAH,BSNH->BNAS", agents, k) * scale + b1
    probs_k = jax.nn.softmax(jnp.where(valid[:, None, None], logits_k, -jnp.inf), axis=-1)
    probs_k = jnp.where(valid[:, None, None], probs_k, 0.0)
    probs_q = jax.nn.softmax(jnp.einsum("BTNH,BNAH->BNTA", q, agents) * scale + b2, axis=-1)
    m = jnp.einsum("BNTA,BNAS->BNTS", probs_q, probs_k)  # the implied T×S matrix
    return jnp.einsum("BNTS,BSNH->BTNH", m, v)


def example_tensors(num_heads: int, num_agents: int, length: int) -> dict[str, jax.Array]:
    """Fixed non-zero agent biases (no rng) for tests."""
    grid = jnp.arange(num_heads * num_agents * length, dtype=jnp.float32)
    shape = (num_heads, num_agents, length)
    return {
        "agent_key_bias": 0.5 * jnp.sin(0.9 * grid).reshape(shape),
        "agent_query_bias": 0.5 * jnp.cos(1.7 * grid).reshape(shape).transpose(0, 2, 1),
    }


def param_specs(
    hparams: Mapping[str, Any], *, num_heads: int, num_kv_heads: int, head_dim: int, kv_length: int
) -> dict[str, core.ParamSpec]:
    """B₁ [N, a, kv_length] and B₂ [N, kv_length, a], truncated normal 0.02 (the paper's); with
    conv_kernel_size k > 0 the DWC (focused_linear.param_specs' conv: [K, H, k] uniform(±1/sqrt(k)),
    bias zeros)."""
    a = hparams.get("num_agents", 49)
    k = hparams.get("conv_kernel_size", 3)
    _check_hparams(a, k)
    init = jax.nn.initializers.truncated_normal(0.02)
    specs = {
        "agent_key_bias": core.ParamSpec((num_heads, a, kv_length), init, ("heads", None, None)),
        "agent_query_bias": core.ParamSpec((num_heads, kv_length, a), init, ("heads", None, None)),
    }
    conv = focused_linear.param_specs(
        {"conv_kernel_size": k},
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
        head_dim=head_dim,
        kv_length=kv_length,
    )
    specs.update({name: spec for name, spec in conv.items() if name.startswith("dwc_")})
    return specs
