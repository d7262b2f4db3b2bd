"""Sparse Sinkhorn attention (Tay et al. 2020, https://arxiv.org/abs/2002.11296), non-causal.

The sequence is cut into n = ⌈S / b⌉ contiguous blocks of b = block_size tokens. A sorting network
maps each key block's sum to one logit per block, R[i, j] = (Σ_{s ∈ block i} k_s) · W[:, j] + c[j];
`sinkhorn_iterations` rounds of log-domain Sinkhorn normalisation of R / temperature give a
soft permutation P (rows and columns sum to 1). Query block i then attends, with one softmax, to
its own block's keys and to the soft-sorted block ψ(K)_i = Σ_j P[i, j] K_j (values alike).

Einsum letters are the house shape letters (core.py) plus I and J (blocks, size n), Q and C
(positions inside a block, size b; C also indexes the 2b concatenated own + sorted keys).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxattn import errors
from jaxattn.attention import core

KIND = "sinkhorn"

# flax's default lecun_normal (LRA's sorting Dense): std 1/sqrt(H) over the head dim.
_sort_init = jax.nn.initializers.variance_scaling(
    1.0, "fan_in", "truncated_normal", in_axis=1, out_axis=2, batch_axis=0
)


def sinkhorn_attention(
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
    block_size: int = 50,
    sinkhorn_iterations: int = 5,
    temperature: float = 0.75,
    sort_kernel: jax.Array | None = None,
    sort_bias: jax.Array | None = None,
) -> jax.Array:
    """Block-local attention plus attention to a Sinkhorn-sorted block, in one softmax.

    Paper: Tay et al. 2020, "Sparse Sinkhorn Attention", https://arxiv.org/abs/2002.11296.

    A length that is not a multiple of block_size is padded internally (the extra keys are
    masked). Key padding: padded keys are zeroed before the block sums and the sorting, masked in
    the own-block softmax, and a block with no real key is masked out of P (its row and column);
    a sorted slot (i, c) is kept when most of its P-mass comes from real keys
    (Σ_j P[i, j]·valid[j, c] >= 1/2), so a hard permutation onto a partly padded block keeps
    exactly that block's real keys. So garbage in padded positions never reaches a real query,
    and fully padded trailing blocks do not change the result. With block_size >= S (one block, P = [[1]]) this is exactly softmax.

    Args:
      query: [B, T, N, H], T == S (self-attention only: query block i pairs with key block i).
      key, value: [B, S, K, H]; K divides N (GQA/MQA: P is computed per kv head and shared by its
        G query heads).
      is_causal: unsupported (raises): the paper's causal variant needs causal sorting.
      kv_mask: [B, S] bool, True = real token; also marks the padded queries.
      q_segment_ids, kv_segment_ids: unsupported (packing raises): blocks would mix segments.
      bias: unsupported (raises).
      scale: logits scale, default 1/sqrt(H).
      dropout_rate, dropout_rng: attention-probability dropout on the one softmax over own +
        sorted keys, [B, n, K, G, b, 2b] (the sorting network's P is not dropped).
      block_size: b (LRA default 50).
      sinkhorn_iterations: rounds of row-then-column normalisation (0: exp(R / temperature)).
      temperature: τ > 0; P = Sinkhorn(R / τ), lower is closer to a hard permutation.
      sort_kernel: [K, H, n_max] sorting projection; sort_bias: [K, n_max] (param_specs), with
        n_max = ⌈kv_length / block_size⌉ (the layer's length); the first n columns are used.

    Returns:
      [B, T, N, H] in value.dtype; padded query rows hold finite values.

    Masks: key padding only; GQA/MQA. No causal, packing, bias or cross-attention.

    Complexity per (batch, head): O(T·b·H + n²·(H + sinkhorn_iterations)) time,
    O(T·b + n²) memory, n = T / b.

    Deviations from the LRA code (lra_benchmarks/models/sinkhorn_transformer): LRA's default sort
    activation is a plain row softmax (no Sinkhorn), its blocks are strided (a reshape of
    [T] into [b, n] puts token t in block t mod n), and it sums two separately normalised
    attentions (own block, sorted block); here blocks are contiguous, P is Sinkhorn-balanced as in
    the paper, and one softmax covers own + sorted keys (so one block is exact softmax).
    """
    if is_causal:
        raise core.unsupported(KIND, "is_causal=True")
    if q_segment_ids is not None or kv_segment_ids is not None:
        raise core.unsupported(KIND, "q_segment_ids/kv_segment_ids (packing)")
    if bias is not None:
        raise core.unsupported(KIND, "bias")
    B, T, S, N, K, H = core.check_inputs(KIND, query, key, value, kv_mask=kv_mask)
    if T != S:
        raise core.unsupported(KIND, f"cross-attention (T={T} != S={S})")
    _check_hparams(block_size, sinkhorn_iterations, temperature)
    core.check_dropout(KIND, dropout_rate, dropout_rng)
    b = block_size
    n = -(-S // b)  # number of blocks
    _check_sort(sort_kernel, sort_bias, K=K, H=H, n=n)
    G = N // K
    scale = core.default_scale(scale, H)
    f32 = jnp.float32

    valid = jnp.ones((B, S), bool) if kv_mask is None else kv_mask.astype(bool)  # [B, S]
    pad = n * b - S
    valid = jnp.pad(valid, ((0, 0), (0, pad)))  # [B, n·b]
    q, k, v = (jnp.pad(x, ((0, 0), (0, pad), (0, 0), (0, 0))) for x in (query, key, value))
    q = q.reshape(B, n, b, K, G, H)
    zero_pads = valid[:, :, None, None]
    k = jnp.where(zero_pads, k, 0).reshape(B, n, b, K, H)  # pads never reach the sort or ψ(K)
    v = jnp.where(zero_pads, v, 0).reshape(B, n, b, K, H)
    valid = valid.reshape(B, n, b)
    block_valid = jnp.any(valid, axis=2)  # [B, n]

    # Sorting network on the block sums of the real keys: R[i, j] per kv head.
    block_sum = jnp.sum(k, axis=2, dtype=f32)  # [B, n, K, H]
    sort_logits = jnp.einsum(
        "BIKH,KHJ->BKIJ", block_sum, sort_kernel[:, :, :n].astype(f32)
    ) + sort_bias[None, :, None, :n].astype(f32)  # [B, K, n, n]
    pair_valid = block_valid[:, None, :, None] & block_valid[:, None, None, :]  # [B, 1, I, J]
    perm = sinkhorn(sort_logits / temperature, pair_valid, sinkhorn_iterations)  # [B, K, I, J]

    sorted_k = jnp.einsum(
        "BKIJ,BJCKH->BICKH", perm.astype(k.dtype), k, preferred_element_type=f32
    ).astype(k.dtype)  # [B, n, b, K, H]
    sorted_v = jnp.einsum(
        "BKIJ,BJCKH->BICKH", perm.astype(v.dtype), v, preferred_element_type=f32
    ).astype(v.dtype)  # [B, n, b, K, H]
    # Slot (i, c) of ψ(K) is kept when real keys carry most of its mass: exact for a hard
    # permutation onto a partly padded block, whose pad slots hold (zeroed) no content.
    real_mass = jnp.einsum("BKIJ,BJC->BIKC", perm, valid.astype(f32))  # [B, n, K, b]
    sorted_valid = real_mass >= 0.5  # [B, n, K, b]
    own_valid = jnp.broadcast_to(valid[:, :, None, :], sorted_valid.shape)  # [B, n, K, b]

    keys = jnp.concatenate([k, sorted_k], axis=2)  # [B, n, 2b, K, H]
    values = jnp.concatenate([v, sorted_v], axis=2)  # [B, n, 2b, K, H]
    keep = jnp.concatenate([own_valid, sorted_valid], axis=-1)  # [B, n, K, 2b]
    logits = (
        jnp.einsum("BIQKGH,BICKH->BIKGQC", q, keys, preferred_element_type=f32) * scale
    )  # [B, n, K, G, b, 2b]
    logits = jnp.where(keep[:, :, :, None, None, :], logits, core.MASK_VALUE)
    probs = jax.nn.softmax(logits, axis=-1)
    probs = core.dropout(probs, dropout_rate, dropout_rng).astype(value.dtype)
    out = jnp.einsum(
        "BIKGQC,BICKH->BIQKGH", probs, values, preferred_element_type=f32
    )  # [B, n, b, K, G, H]
    return out.reshape(B, n * b, N, H)[:, :T].astype(value.dtype)


def sinkhorn(logits: jax.Array, keep: jax.Array, iterations: int) -> jax.Array:
    """Soft permutation from [..., I, J] logits: exp of log-domain row/column normalisation.

    Entries outside `keep` (broadcastable to logits) are excluded: they are 0 in the result and
    take no part in any normaliser, so the kept sub-matrix is balanced on its own. Float32.
    """
    log_p = jnp.where(keep, logits.astype(jnp.float32), core.MASK_VALUE)
    for _ in range(iterations):
        log_p = log_p - jax.nn.logsumexp(log_p, axis=-1, keepdims=True)  # rows sum to 1
        log_p = jnp.where(keep, log_p, core.MASK_VALUE)
        log_p = log_p - jax.nn.logsumexp(log_p, axis=-2, keepdims=True)  # columns sum to 1
        log_p = jnp.where(keep, log_p, core.MASK_VALUE)
    return jnp.where(keep, jnp.exp(log_p), 0.0)


def param_specs(
    hparams: Mapping[str, Any], *, num_heads: int, num_kv_heads: int, head_dim: int, kv_length: int
) -> dict[str, core.ParamSpec]:
    """The sorting projection: kernel [K, H, n_max] and bias [K, n_max], n_max = ⌈kv_length / b⌉."""
    del num_heads  # one permutation per kv head
    block_size = hparams.get("block_size", 50)
    if not isinstance(block_size, int) or block_size < 1:
        raise errors.ConfigError(f"{KIND}: block_size must be a positive int; got {block_size!r}")
    n_max = -(-kv_length // block_size)
    return {
        "sort_kernel": core.ParamSpec(
            (num_kv_heads, head_dim, n_max), _sort_init, ("heads", "kv", None)
        ),
        "sort_bias": core.ParamSpec(
            (num_kv_heads, n_max), jax.nn.initializers.zeros, ("heads", None)
        ),
    }


def _check_hparams(block_size: int, iterations: int, temperature: float) -> None:
    if not isinstance(block_size, int) or block_size < 1:
        raise errors.ConfigError(f"{KIND}: block_size must be a positive int; got {block_size!r}")
    if not isinstance(iterations, int) or iterations < 0:
        raise errors.ConfigError(
            f"{KIND}: sinkhorn_iterations must be an int >= 0; got {iterations!r}"
        )
    if not temperature > 0:
        raise errors.ConfigError(f"{KIND}: temperature must be > 0; got {temperature!r}")


def _check_sort(
    kernel: jax.Array | None, bias: jax.Array | None, *, K: int, H: int, n: int
) -> None:
    if kernel is None or bias is None:
        raise ValueError(
            f"{KIND}: needs sort_kernel [K, H, n_max] and sort_bias [K, n_max]; the layer creates "
            "them from param_specs()"
        )
    if kernel.shape[:2] != (K, H) or bias.shape != (K, kernel.shape[2]):
        raise ValueError(
            f"{KIND}: sort_kernel must be [K, H, n_max] = [{K}, {H}, n_max] and sort_bias "
            f"[K, n_max]; got {kernel.shape}, {bias.shape}"
        )
    if kernel.shape[2] < n:
        raise ValueError(
            f"{KIND}: the sorting network scores n_max={kernel.shape[2]} blocks, but the input has "
            f"{n}; build the layer for the longest sequence"
        )
