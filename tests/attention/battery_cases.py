"""The shared battery's cases: the hyper-parameters each kind runs with, where each kind
equals softmax (EXACT_LIMIT), and the helpers both battery modules use.

The battery is battery_test.py (shapes, exact limit, padding, causality, packing) and
battery_contract_test.py (GQA, cross-attention, gradients, jit/vmap, sharding, refused
features, declared parameters). Kinds added to the registry are picked up automatically. A new
kind must add an entry to EXACT_LIMIT (its hyper-parameters at which it equals softmax); the
limit test fails, rather than skips, for a kind without one. BATTERY_HPARAMS optionally turns on
a kind's non-default paths (for example Nyström's convolution residual) for the other checks.
Tensors a kind declares through `AttentionSpec.params` are created from
`BoundAttention.param_specs` with a fixed rng. Kinds that need the token grid
(`AttentionSpec.grid`) are offered `battery_grid(T)` for the check's sequence length T (a CLS
prefix token and a non-square grid), or the `grid` their EXACT_LIMIT hyper-parameters name.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn.attention import (
    REGISTRY,
    aft,
    agent,
    coca,
    core,
    focused_linear,
    get_attention_fn,
    linear,
    lln,
    neural_attention,
    normalized,
    reformer,
    relit,
    routing,
    xca,
    yoso,
)

KINDS = sorted(REGISTRY)
ATTENTION_KINDS = [kind for kind in KINDS if REGISTRY[kind].family == "attention"]

# The battery's two tiers. The default tier (the README's test command) runs every battery check
# on QUICK_KINDS, one kind per family of implementation (the dense reference, the blocked custom
# VJP, a banded mask, a causal recurrence, random features, landmarks, a mixer); every other kind
# runs every check in the slow tier (`-m slow`, which .ci/run also runs). A kind costs 10-40 s of
# compiles across the battery on 2 CPU cores, so this keeps the default suite's time flat as kinds
# are added; each kind's float32 exact limit (battery_test.py) and its own defining test
# (tests/attention/<kind>_test.py) stay in the default tier.
QUICK_KINDS = frozenset(
    {
        "fnet",
        "linear",
        "local",
        "nystrom",
        "performer",
        "softmax",
        "softmax_chunked",
    }
)


def tiered(kinds, *, quick=QUICK_KINDS) -> list:
    """pytest parameters for `kinds` (kind names, or tuples whose first item is the kind): kinds
    outside `quick` are marked slow."""
    return [
        case
        if (case[0] if isinstance(case, tuple) else case) in quick
        else pytest.param(*(case if isinstance(case, tuple) else (case,)), marks=pytest.mark.slow)
        for case in kinds
    ]


# Hyper-parameters for every check except the exact limit: small enough for the test shapes and
# switching on optional paths. A kind missing here runs with its defaults.
BATTERY_HPARAMS: dict[str, dict[str, Any]] = {
    "nystrom": {"num_landmarks": 8, "conv_kernel_size": 5},
    # Several blocks that do not divide T = 16: exercises padding, merging and causal skipping.
    "softmax_chunked": {"block_q": 6, "block_k": 5},
    # Dense mode (the non-default path; random mode is in synthesizer_test.py); 4 blocks of 4.
    "synthesizer": {"mode": "dense"},
    "sinkhorn": {"block_size": 4},
    # Asymmetric band (left 6, right 3): tiles of 3 that do not divide T = 16, 2 + 1 neighbours.
    "local": {"mode": "sliding", "window_size": 6, "window_right": 3},
    # A causal-capable layout with both paths: a full (global) row and gathered window rows;
    # blocks of 3 do not divide T = 16. BigBird (random blocks) is in block_sparse_test.py.
    "block_sparse": {
        "layout": "longformer",
        "block_size": 3,
        "num_window_blocks": 3,
        "num_global_blocks": 1,
    },
    # 2 rounds of 4 buckets, chunks of 4 (4 chunks of T = 16): several chunks and duplicate counts.
    "reformer": {"num_hashes": 2, "num_buckets": 4, "chunk_size": 4},
    # 3 clusters; window >= T, so no member is dropped: dropping ranks a full cluster's members by
    # score, which under is_causal can depend on later tokens (routing.py). It is checked in
    # routing_test.py.
    "routing": {"num_clusters": 3, "window": 16, "ema_decay": 0.9},
    # k = 8 < S = 16 (a real compression), separate E and F, one per kv head.
    "linformer": {"num_projections": 8},
    # Chunks of 4: the causal / packed scan carries its state across several chunks.
    "performer": {"num_features": 16, "chunk_size": 4},
    "linear": {"chunk_size": 4},
    # 5 agents (bins that overlap, as adaptive pooling's do for L = 16) and a 3-tap DWC.
    "agent": {"num_agents": 5, "conv_kernel_size": 3},
    # LLN+Diag with blocks of 5 (do not divide T = 16) and chunks of 4 for the scan.
    "lln": {"diag_block_size": 5, "chunk_size": 4},
    # An even conv (4 taps: asymmetric centred window) and chunks of 4 for the scan.
    "focused_linear": {"conv_kernel_size": 4, "chunk_size": 4},
    "trainable_kernel": {"hidden_dim": 6, "chunk_size": 4},
    # The training path, bound here (the layer passes `training` itself): a band of 2 and
    # half of the far keys, drawn from the battery's fixed rng.
    "ssa": {"training": True, "keep_prob": 0.5, "local_window": 2},
    # Spans of 5 (do not divide T = 16) and the learned-summary path with its declared tensor.
    "combiner": {"span_size": 5, "summary": "learned"},
    # Blocks of 3 (do not divide T = 16), 2 refined per block row: 12 of 36 blocks refined.
    "mra": {"block_size": 3, "num_blocks_per_row": 2},
    # Four scales over 4 heads (GQA: 2 kv heads): a self-only head, two bands, a global head.
    "multiscale_window": {"window_sizes": (0, 2, 5, 64)},
    # k = 5 < 16: a real selection; rows with fewer than 5 allowed keys keep them all.
    "topk": {"top_k": 5},
    # 4 rounds of 3-bit codes (8 buckets): several keys share buckets at T = 16.
    "yoso": {"num_hashes": 4, "hash_bits": 3},
    # w = 6 < T = 16: the top-w selection path (A = 0 at init: ties, broken by position).
    "dma": {"keep_window_size": 6},
    # Chunks of 5 queries (do not divide T = 16), a hidden width of 8.
    "neural_attention": {"hidden_dim": 8, "chunk_size": 5},
    # 6 codes, blocks of 4 (4 blocks at T = 16): the causal form uses its code part (blocks <= n-2).
    "transformer_vq": {"num_codes": 6, "block_size": 4, "ema_decay": 0.9},
    # AFT-local: the learned pair bias inside a band of 5, 0 outside (the w path, not simple's).
    "aft": {"mode": "local", "window": 5},
}

# Inputs a kind never reads: their gradient must be exactly zero (instead of non-zero).
UNUSED_INPUTS: dict[str, str] = {
    "synthesizer": "k",  # synthesized logits never read the keys
    "reformer": "k",  # shared QK: the keys are the normalised queries
}


@dataclasses.dataclass(frozen=True)
class Limit:
    """Hyper-parameters (given T and S) at which a kind equals softmax, and the tolerances."""

    hparams: Callable[[int, int], dict[str, Any]]
    atol_f32: float
    atol_bf16: float
    # Optional: declared tensors set from the float32 (q, k, v) instead of their initialisers.
    tensors: Callable[[jax.Array, jax.Array, jax.Array], dict[str, jax.Array]] | None = None
    # Optional: the dense attention the kind equals at `hparams`, called like a kind, when that is
    # not plain softmax (shared-QK LSH, softmax on normalised q and k). Default: softmax.
    reference: Callable[..., jax.Array] | None = None
    # Optional: q and k are multiplied by this in the limit checks, for kinds that approach the
    # reference only for moderate logits (random-feature estimators, whose variance grows like
    # exp(‖q + k‖²·scale)).
    input_scale: float = 1.0

    def expected(self, q, k, v, masks) -> jax.Array:
        return run(self.reference or bind("softmax", {}), q, k, v, masks, {})

    def params(self, fn: core.BoundAttention, q, k, v) -> dict[str, jax.Array]:
        N, K, H, S = q.shape[2], k.shape[2], q.shape[3], k.shape[1]
        params = declared_params(fn, N=N, K=K, H=H, S=S)
        return params if self.tensors is None else {**params, **self.tensors(q, k, v)}


EXACT_LIMIT: dict[str, Limit] = {
    "softmax": Limit(lambda T, S: {}, atol_f32=1e-6, atol_bf16=2e-2),
    # The same math through jax.nn.dot_product_attention (XLA on CPU).
    "softmax_xla": Limit(lambda T, S: {}, atol_f32=1e-6, atol_bf16=2e-2),
    # m = S: every landmark is one token and F·pinv(A)·B = A·A⁺·A = A; what remains is the
    # float32 pinv of an ill-conditioned A. Measured here: 1.8e-5 (self), 5.3e-5 (cross), bf16
    # 1.3e-2 (the same as bf16 softmax). In cross-attention this needs T >= S (no empty query
    # landmark, so A is invertible).
    "nystrom": Limit(
        lambda T, S: {"num_landmarks": S, "pinv_iterations": 40}, atol_f32=2e-4, atol_bf16=3e-2
    ),
    # Exact at any block size; blocks 5 x 3 do not divide T or S. Measured here: 4.8e-7 (self),
    # 3.0e-7 (cross, T=24, S=16); bf16 8.6e-3 (bf16 softmax: 1.3e-2).
    "softmax_chunked": Limit(
        lambda T, S: {"block_q": 5, "block_k": 3}, atol_f32=2e-6, atol_bf16=2e-2
    ),
    # Random mode with R = q·kᵀ·scale per example is softmax. Measured here: 0 (self), 4.8e-7
    # (cross, T=24, S=16; max_query_length = T); bf16 1.3e-2 (the same as bf16 softmax).
    "synthesizer": Limit(
        lambda T, S: {"mode": "random", "max_query_length": T},
        atol_f32=2e-6,
        atol_bf16=2e-2,
        tensors=lambda q, k, v: {
            "random_logits": jnp.einsum("BTNH,BSNH->BNTS", q, k) * q.shape[-1] ** -0.5
        },
    ),
    # One block covers the sequence (block_size >= S): P = [[1]], ψ(K) = K, and a softmax over
    # [K; K] equals one over K. Measured here: 2.4e-7; bf16 1.3e-2. Self-attention only.
    "sinkhorn": Limit(lambda T, S: {"block_size": S}, atol_f32=1e-6, atol_bf16=2e-2),
    # A window covering the sequence is softmax (block mode with block_size >= T is checked in
    # local_test.py). Measured here: 2.4e-7 (causal: 0); bf16 1.3e-2 (bf16 softmax: 1.3e-2).
    "local": Limit(
        lambda T, S: {"mode": "sliding", "window_size": T}, atol_f32=1e-6, atol_bf16=2e-2
    ),
    # The all-ones layout (blocks of 5 do not divide T = 16) is softmax. Measured here: 4.2e-7
    # (causal: 6e-8); bf16 1.3e-2 (bf16 softmax: 1.3e-2).
    "block_sparse": Limit(
        lambda T, S: {"layout": "full", "block_size": 5}, atol_f32=1e-6, atol_bf16=2e-2
    ),
    # One bucket, one chunk: shared-QK softmax (keys = normalised queries, own position lowered
    # by 1e5). Measured here: 2.4e-7 (causal 4.8e-7; 3 rounds the same); bf16 4.1e-3 (causal
    # 8.7e-3; bf16 softmax: 1.3e-2). Self-attention only.
    "reformer": Limit(
        lambda T, S: {"num_buckets": 1, "chunk_size": T},
        atol_f32=1e-6,
        atol_bf16=2e-2,
        reference=reformer.shared_qk_softmax_attention,
    ),
    # One cluster that keeps every member: softmax on RMS-normalised q and k. Measured here:
    # 2.4e-7 (causal 2.4e-7, cross T=24, S=16: 3.6e-7); bf16 6.8e-3 (causal 1.0e-2).
    "routing": Limit(
        lambda T, S: {"num_clusters": 1, "window": max(T, S)},
        atol_f32=1e-6,
        atol_bf16=2e-2,
        reference=routing.normalized_softmax_attention,
    ),
    # k = S with E = F = I: the projection is the identity and projected keys that no real key
    # reaches (pads) are masked. Measured here: 0 (self and cross); bf16 1.3e-2 (= bf16 softmax).
    "linformer": Limit(
        lambda T, S: {"num_projections": S},
        atol_f32=1e-6,
        atol_bf16=2e-2,
        tensors=lambda q, k, v: {
            name: jnp.broadcast_to(jnp.eye(k.shape[1]), (k.shape[2], k.shape[1], k.shape[1]))
            for name in ("proj_key", "proj_value")
        },
    ),
    # Not exact: FAVOR+ is an unbiased Monte-Carlo estimate of the softmax kernel whose relative
    # error per entry is about sqrt(exp(‖x + y‖²)/r), so it needs moderate logits: q and k are
    # halved (softmax then still differs from a plain average of v by 0.41). Measured here with
    # the battery's fixed rng: 1.0e-2 (self), 1.8e-2 (cross); bf16 1.3e-2. With 4096 features:
    # 3.6e-2, 16384: 1.8e-2; with unit-scale q, k even 65536 features leave errors of 0.5-0.7.
    "performer": Limit(
        lambda T, S: {"num_features": 65536},
        atol_f32=2.5e-2,
        atol_bf16=2.5e-2,
        input_scale=0.5,
    ),
    # Linear attention has no softmax limit: it equals the explicit T×S normalised elu+1 kernel
    # attention. Measured here: 1.8e-7 (self), 2.4e-7 (cross); bf16 2.5e-3.
    "linear": Limit(
        lambda T, S: {},
        atol_f32=1e-6,
        atol_bf16=1e-2,
        reference=linear.quadratic_linear_attention,
    ),
    # One grid row after a prefix (CLS) token: the row step is a softmax over every key and the
    # column step has one key, so this is softmax for the prefix and grid queries alike.
    # Measured here: 4.8e-7 (causal 1.8e-7); bf16 1.3e-2 (bf16 softmax: 1.3e-2). Self-attention only.
    "axial": Limit(lambda T, S: {"grid": (1, T - 1)}, atol_f32=1e-6, atol_bf16=2e-2),
    # XCA has no softmax limit (it attends over channels): it equals the authors' channel-major
    # formulation (xca.channel_major_xca_attention). Measured here: 1.8e-7; bf16 4.7e-3.
    "xca": Limit(
        lambda T, S: {},
        atol_f32=1e-6,
        atol_bf16=2e-2,
        reference=xca.channel_major_xca_attention,
    ),
    # No softmax limit (a = S agents would still pool, not copy, the queries): it equals the
    # naive two-softmax form through the explicit T×S matrix, fixed non-zero agent biases, no
    # DWC. Measured here: 2.4e-7; bf16 6.9e-3. Self-attention only.
    "agent": Limit(
        lambda T, S: {"num_agents": 5, "conv_kernel_size": 0},
        atol_f32=1e-6,
        atol_bf16=2e-2,
        tensors=lambda q, k, v: agent.example_tensors(q.shape[2], 5, k.shape[1]),
        reference=lambda q, k, v, **masks: agent.explicit_agent_attention(
            q, k, v, **masks, num_agents=5, **agent.example_tensors(q.shape[2], 5, k.shape[1])
        ),
    ),
    # No softmax limit: the chunked form equals the sequential recurrence (lax.scan, forward
    # and reversed) with fixed gates γ, β in (0.3, 0.97). Measured here: 1.2e-7 (causal 1.2e-7);
    # bf16 3.0e-3 (causal 6.3e-3). Self-attention only.
    "relit": Limit(
        lambda T, S: {},
        atol_f32=1e-6,
        atol_bf16=2e-2,
        tensors=lambda q, k, v: relit.example_tensors(k.shape[2], k.shape[3]),
        reference=lambda q, k, v, **masks: relit.sequential_relit_attention(
            q, k, v, **masks, **relit.example_tensors(k.shape[2], k.shape[3])
        ),
    ),
    # No softmax limit: plain LLN (no Diag) equals the explicit T×S normalised matrix of the same
    # shift-stabilised exponential weights (state at its init, std 1). Measured here: 6.0e-7
    # (causal 3.0e-7, cross 6.0e-7); bf16 5.3e-3 (causal 9.3e-3).
    "lln": Limit(
        lambda T, S: {"chunk_size": 4},
        atol_f32=2e-6,
        atol_bf16=2e-2,
        reference=lln.quadratic_lln_attention,
    ),
    # No softmax limit: the scan equals the explicit T×S kernel matrix of the same focused
    # features plus the conv as a banded T×T matrix, with fixed non-trivial scale and conv
    # tensors. Measured here: 6.0e-7 (causal 4.8e-7); bf16 1.5e-2 (causal 1.3e-2). Self-attention
    # only.
    "focused_linear": Limit(
        lambda T, S: {"conv_kernel_size": 3, "chunk_size": 4},
        atol_f32=2e-6,
        atol_bf16=3e-2,
        tensors=lambda q, k, v: focused_linear.example_tensors(k.shape[2], k.shape[3], 3),
        reference=lambda q, k, v, **masks: focused_linear.quadratic_focused_linear_attention(
            q, k, v, **masks, **focused_linear.example_tensors(k.shape[2], k.shape[3], 3)
        ),
    ),
    # φ frozen to elu + 1 (W₂ = 0, b₂ = 0) is `linear`'s explicit normalised kernel matrix.
    # Measured here: 1.8e-7 (causal 0, cross 2.4e-7); bf16 2.5e-3 (causal 6.3e-3).
    "trainable_kernel": Limit(
        lambda T, S: {"hidden_dim": 6},
        atol_f32=1e-6,
        atol_bf16=1e-2,
        tensors=lambda q, k, v: {
            "kernel_w2": jnp.zeros((k.shape[2], 6, k.shape[3])),
            "kernel_b2": jnp.zeros((k.shape[2], k.shape[3])),
        },
        reference=linear.quadratic_linear_attention,
    ),
    # Training with keep_prob = 1 keeps every allowed key: softmax, bit-identical (measured 0;
    # cross 0); bf16 1.3e-2. Evaluation (training=False) is the same softmax (ssa_test.py).
    "ssa": Limit(lambda T, S: {"training": True, "keep_prob": 1.0}, atol_f32=1e-6, atol_bf16=2e-2),
    # One span covering the sequence: every key is direct, no summary: softmax. Measured here:
    # 0 (causal 0); bf16 1.3e-2. Self-attention only.
    "combiner": Limit(lambda T, S: {"span_size": T}, atol_f32=1e-6, atol_bf16=2e-2),
    # Every block refined (blocks of 5 do not divide T): softmax. Measured here: 2.4e-7 (cross
    # T=24, S=16: 3.6e-7); bf16 8.6e-3.
    "mra": Limit(
        lambda T, S: {"block_size": 5, "num_blocks_per_row": S}, atol_f32=1e-5, atol_bf16=2e-2
    ),
    # Every head's window covers the sequence: softmax. Measured here: 2.4e-7 (causal 0); bf16
    # 8.6e-3 (bf16 softmax: 1.3e-2).
    "multiscale_window": Limit(
        lambda T, S: {"window_sizes": (T, T - 1)}, atol_f32=1e-6, atol_bf16=2e-2
    ),
    # k = S keeps every allowed key: softmax. Measured here: 0 (causal 0, cross 0); bf16 1.3e-2.
    "topk": Limit(lambda T, S: {"top_k": S}, atol_f32=1e-6, atol_bf16=2e-2),
    # No softmax limit: YOSO-E (expectation=True) equals the formula written out per head
    # (yoso.yoso_e_reference). Measured here: 8.2e-7 (cross 1.1e-6); bf16 4.9e-3.
    "yoso": Limit(
        lambda T, S: {"expectation": True},
        atol_f32=1e-5,
        atol_bf16=3e-2,
        reference=yoso.yoso_e_reference,
    ),
    # No softmax limit: the factorised features equal the paper's per-pair construction
    # (k_ij = t_j ⊙ q_i, then RoPE). Measured here: 4.2e-7 (cross 5.4e-7); bf16 1.2e-2.
    "coca": Limit(
        lambda T, S: {},
        atol_f32=1e-5,
        atol_bf16=3e-2,
        reference=coca.naive_coca_attention,
    ),
    # w >= S and A = 0 (δ = 1, a constant bias): softmax. Measured here: 3.6e-7 (cross 2.4e-7);
    # bf16 1.3e-2 (bf16 softmax: 1.3e-2).
    "dma": Limit(
        lambda T, S: {"keep_window_size": S},
        atol_f32=1e-6,
        atol_bf16=2e-2,
        tensors=lambda q, k, v: {"delta_a": jnp.zeros((k.shape[2],))},
    ),
    # No softmax limit: the chunked pair network equals the naive one on concatenated [q; k]
    # pairs (the full T×S×F hidden tensor). Measured here: 3.6e-7 (cross 3.0e-7); bf16 5.5e-3.
    "neural_attention": Limit(
        lambda T, S: {"hidden_dim": 8, "chunk_size": 5},
        atol_f32=1e-5,
        atol_bf16=2e-2,
        tensors=lambda q, k, v: neural_attention.example_tensors(q.shape[2], q.shape[3], 8),
        reference=neural_attention.example_reference,  # the same example tensors, F = 8
    ),
    # No softmax limit: equals the independent dense formulation (nan-masked mean/var per row).
    # Measured here: 1.4e-6 (self), 2.4e-6 (cross, T=24, S=16); bf16 5.0e-2 (bf16 scores are
    # standardised: weights are O(1) per key, not probabilities, so bf16 rounding shows more).
    "normalized": Limit(
        lambda T, S: {},
        atol_f32=1e-5,
        atol_bf16=1e-1,
        reference=normalized.dense_reference,
    ),
    # A codebook holding every key of the batch (C = B·S, counts 1): each key is its own code,
    # so the quantised keys are the keys and this is softmax. Measured here: 2.4e-7 (self and
    # cross T=24, S=16); bf16 5.4e-3 (cross 7.0e-3; bf16 keys still pick their own code).
    "transformer_vq": Limit(
        lambda T, S: {},
        atol_f32=1e-6,
        atol_bf16=2e-2,
        tensors=lambda q, k, v: {
            "codebook_sum": jnp.transpose(k, (2, 0, 1, 3)).reshape(k.shape[2], -1, k.shape[3]),
            "codebook_count": jnp.ones((k.shape[2], k.shape[0] * k.shape[1])),
        },
    ),
    # AFT has no softmax limit: it equals its equation evaluated densely ([B, T, S, K, H] logits
    # k_s + w_ts, softmax over s, gated by sigmoid(q)); default mode 'simple' (w = 0). Measured
    # here: 1.5e-7 (cross T=24, S=16: 2.4e-7; the causal scan and full/local: aft_test.py);
    # bf16 2.9e-3 (cross 4.6e-3).
    "aft": Limit(
        lambda T, S: {},
        atol_f32=1e-6,
        atol_bf16=2e-2,
        reference=aft.dense_aft_attention,
    ),
}

# The sequence length of most checks (small_shape); grid kinds get a grid for it by default.
BATTERY_T = 16


def battery_grid(T: int) -> tuple[int, int]:
    """The (rows, cols) offered to grid kinds for T tokens: one prefix token (CLS), then the most
    nearly square grid of T - 1 tokens, rows <= cols (T = 16: 3 x 5)."""
    n = T - 1
    rows = max(r for r in range(1, int(n**0.5) + 1) if n % r == 0)
    return rows, n // rows


def kinds_with(capability: str) -> list[str]:
    return [kind for kind in ATTENTION_KINDS if getattr(REGISTRY[kind], capability)]


def bind(
    kind: str, hparams: dict[str, Any] | None = None, *, T: int = BATTERY_T
) -> core.BoundAttention:
    """The kind bound with `hparams` (default BATTERY_HPARAMS); a grid kind is offered the grid
    `hparams` names, else battery_grid(T) (other kinds ignore the grid)."""
    hparams = dict(BATTERY_HPARAMS.get(kind, {}) if hparams is None else hparams)
    grid = hparams.pop("grid", None) or battery_grid(T)
    return get_attention_fn({"kind": kind, kind: hparams}, grid=grid)


def declared_params(
    fn: core.BoundAttention, *, N: int, K: int, H: int, S: int
) -> dict[str, jax.Array]:
    """The declared tensors and state, created with a fixed rng (as the Flax layer would, in
    float32), plus a fixed `rng` for kinds that declare needs_rng."""
    specs = declared_specs(fn, N=N, K=K, H=H, S=S)
    rngs = jax.random.split(jax.random.key(1234), len(specs) + 1)
    params = {
        name: spec.init(rng, spec.shape, jnp.float32)
        for rng, (name, spec) in zip(rngs[1:], sorted(specs.items()), strict=True)
    }
    if fn.spec.needs_rng:
        params["rng"] = rngs[0]
    return params


def small_inputs(kind: str, seed: int):
    """(fn, params, q, k, v, kv_mask) for a self-attention check at small_shape(kind)."""
    B, T, N, K, H = small_shape(kind)
    fn = bind(kind)
    params = declared_params(fn, N=N, K=K, H=H, S=T)
    q, k, v = qkv(B, T, T, N, K, H, seed=seed)
    return fn, params, q, k, v, padding_mask(B, T)


def qkv(B: int, T: int, S: int, N: int, K: int, H: int, *, dtype=jnp.float32, seed: int = 0):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(B, T, N, H))
    k = rng.normal(size=(B, S, K, H))
    v = rng.normal(size=(B, S, K, H))
    return tuple(jnp.asarray(x, dtype) for x in (q, k, v))


def padding_mask(B: int, S: int) -> jax.Array:
    """Example 0 unpadded, the others padded to different lengths (at least 1 real key)."""
    lengths = np.maximum(S - 3 * np.arange(B) - (np.arange(B) > 0) * 2, 1)
    return jnp.asarray(np.arange(S)[None, :] < lengths[:, None])


def mask_kwargs(kind: str, kv_mask: jax.Array) -> dict[str, jax.Array]:
    return {"kv_mask": kv_mask} if REGISTRY[kind].padding else {}


def real_rows(x: jax.Array, kv_mask: jax.Array) -> jax.Array:
    """Zeroes padded query rows of a [B, T, ...] self-attention output (they may hold anything)."""
    x = jnp.asarray(x, jnp.float32)
    return jnp.where(kv_mask.reshape(kv_mask.shape + (1,) * (x.ndim - 2)), x, 0.0)


def assert_close(actual, expected, atol: float, what: str = "") -> None:
    actual, expected = np.asarray(actual, np.float32), np.asarray(expected, np.float32)
    err = float(np.max(np.abs(actual - expected))) if actual.size else 0.0
    assert err <= atol, f"{what}: max abs error {err:.3g} > {atol:.3g}"


def declared_specs(fn: core.BoundAttention, *, N: int, K: int, H: int, S: int):
    """What the layer creates and passes in by name: parameters and non-gradient state."""
    shapes = dict(num_heads=N, num_kv_heads=K, head_dim=H, kv_length=S)
    return {**fn.param_specs(**shapes), **fn.state_specs(**shapes)}


def output(fn: Callable[..., Any], out: Any) -> jax.Array:
    """A kind with declared state returns (out, new_state); the checks look at out."""
    stateful = isinstance(fn, core.BoundAttention) and fn.spec.state is not None
    return out[0] if stateful else out


@functools.partial(jax.jit, static_argnames=("fn", "is_causal"))
def run(fn: core.BoundAttention, q, k, v, masks, params, is_causal: bool = False) -> jax.Array:
    """fn under jit; fn is static (hashable), so tests with equal shapes share one compilation."""
    out = fn(q, k, v, **({"is_causal": True} if is_causal else {}), **masks, **params)
    return output(fn, out)


def small_shape(kind: str) -> tuple[int, int, int, int, int]:
    """(B, T, N, K, H) for most checks; K < N where the kind declares GQA."""
    return 2, 16, 4, 2 if REGISTRY[kind].gqa else 4, 8


# Families checked elsewhere: 'mixer' kinds (x -> y) by tests/attention/mixer_battery_test.py.
COVERED_ELSEWHERE = ("mixer",)
