"""ReLiT: linear attention with an input-dependent gated decay of the recurrent state.

Paper: Subhojeet Pramanik, Esraa Elelimy, Marlos C. Machado, Adam White 2023, "Recurrent Linear
Transformers", https://arxiv.org/abs/2310.15719 (ReLiT; the "approximate" AReLiT variant, which
compresses the state, is not implemented).

Per kv head (the G query heads of a kv head read its state), with φ = elu + 1:

    γ_t = σ(k_t W_γ + b_γ) [F],   β_t = σ(k_t W_β + b_β) [H],   Γ_t = γ_t β_tᵀ   [F, H]
    S_t = Γ_t ⊙ S_(t−1) + φ(k_t) v_tᵀ                                              [F, H]
    z_t = γ_t ⊙ z_(t−1) + φ(k_t)                                                    [F]
    out_t = φ(q_t)ᵀ S_t / φ(q_t)ᵀ z_t

The gates come from the keys the kind receives (through the declared W_γ, b_γ, W_β, b_β), as
the paper's gates come from the layer input; the paper also learns the feature map, here φ is
elu + 1 (so Γ = 1 is exactly causal `linear`). No public code was run beside ours: the paper's
gating is an outer product of two sigmoid gates as here, but its feature map, its gate inputs
and its normaliser differ in detail, so numbers would not be comparable.

Chunk-parallel form (`relit_attention`): Γ is an outer product, so the decay from key j to
query t is exp(ℓγ_t − ℓγ_j) ⊗ exp(ℓβ_t − ℓβ_j) with ℓ the running sums of log γ, log β. Inside
a chunk of C positions that decay is formed per pair (exponents <= 0, stable for any gate, even
σ(−100)); between chunks the [F, H] state at each chunk end is carried by a `lax.scan` over
T/C steps (the gated-linear-attention chunking). A plain `lax.scan` over t is the test
reference (`sequential_relit_attention`). Measured here (fwd+bwd, causal, B = 16, T = 1000, 2
heads x 32, 2-core CPU): C = 8 725 ms, 16 962, 32 1854, 64 3466 (the pair tensors grow as C);
the former associative scan over every S_t took 1420 ms beside 1060 for the sequential scan.

Bidirectional form (is_causal=False), our definition (the paper is causal only): query t reads
the forward state S_t (keys j <= t) plus a backward state over the keys j > t built by the same
recurrence run from the end, R_t = Γ_t ⊙ R_(t+1) + φ(k_t) v_tᵀ, read exclusively as
Γ_t ⊙ R_(t+1) = R_t − φ(k_t)v_tᵀ (the inclusive backward read less the self term): key j > t is
decayed by the gates of positions t..j−1.

Masks: key padding (a pad adds nothing and its gate is 1, so a pad anywhere is transparent:
real outputs equal the unpadded sequence's), packing (contiguous segments: the gate is 0 where
a segment starts, an exact reset), causal, GQA. Refused: cross-attention (one recurrence over
one token axis), bias (no logits), dropout (no probabilities are formed).

Shapes: query [B, T, N, H], key/value [B, T, K, H] -> [B, T, N, H]. Complexity per head:
O(T·C·H + T·H²) time, O(T·C·H + (T/C)·H²) memory (C = chunk_size), O(H²) state per step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxattn.attention import core, linear

KIND = "relit"
TENSORS = ("gate_w_feature", "gate_b_feature", "gate_w_value", "gate_b_value")


def relit_attention(
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
    gate_w_feature: jax.Array | None = None,
    gate_b_feature: jax.Array | None = None,
    gate_w_value: jax.Array | None = None,
    gate_b_value: jax.Array | None = None,
    chunk_size: int = 8,
) -> jax.Array:
    """Gated recurrent linear attention, chunk-parallel (module docstring).

    Args:
      query: [B, T, N, H].
      key, value: [B, T, K, H] (self-attention); K divides N (GQA/MQA).
      is_causal: keys j <= t only; otherwise also the backward state (module docstring).
      kv_mask: [B, T] bool, True = real token; pads add nothing and do not decay the state.
      q_segment_ids, kv_segment_ids: contiguous packed segments; the state resets at each start.
      bias: unsupported (raises).
      scale: multiplies the queries before φ; None = 1.
      dropout_rate, dropout_rng: unsupported for a rate > 0 (no probabilities are formed).
      gate_w_feature, gate_b_feature: [K, H, H], [K, H]: W_γ, b_γ (γ over the F = H features).
      gate_w_value, gate_b_value: [K, H, H], [K, H]: W_β, b_β (β over the H value channels).
        All four None: Γ = 1 (causal `linear`).
      chunk_size: C of the chunked form (exact for any C; memory O(T·C·(F + H))).

    Returns:
      [B, T, N, H] in value.dtype; zeros for a query that sees no key.
    """
    if bias is not None:
        raise core.unsupported(KIND, "bias")
    core.reject_dropout(KIND, dropout_rate, "gated linear attention forms no probabilities")
    B, T, S, N, K, H = core.check_inputs(
        KIND,
        query,
        key,
        value,
        kv_mask=kv_mask,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
    )
    if T != S:
        raise core.unsupported(KIND, f"cross-attention (T={T} != S={S}): one recurrence axis")
    q_segment_ids, kv_segment_ids = core.resolve_segment_ids(
        KIND, q_segment_ids, kv_segment_ids, T, S
    )
    if chunk_size < 1:
        raise ValueError(f"{KIND}: chunk_size must be >= 1; got {chunk_size}")
    phi_q, phi_k, v1, log_g, log_b, new, ends = _chunk_terms(
        query, key, value, kv_mask, q_segment_ids, scale, _tensors(K, H, locals())
    )
    out = _chunked_read(phi_q, phi_k, v1, log_g, log_b, new, chunk_size)
    if not is_causal:
        flip = lambda x: jnp.flip(x, axis=1)  # noqa: E731
        back = _chunked_read(*map(flip, (phi_q, phi_k, v1, log_g, log_b, ends)), chunk_size)
        # Γ_t ⊙ R_(t+1) = R_t − φ(k_t)v_tᵀ: the inclusive backward read less the self term.
        self_term = jnp.einsum("BTKGF,BTKF->BTKG", phi_q, phi_k)[..., None] * v1[:, :, :, None]
        out = out + flip(back) - self_term
    return linear._normalise(out[..., :H], out[..., H]).reshape(B, T, N, H).astype(value.dtype)


def _chunk_terms(query, key, value, kv_mask, segment_ids, scale, gates):
    """Float32 inputs of the chunked form: φ(q) [B, T, K, G, F], φ(k) [B, T, K, F] (0 at pads),
    [v, 1] [B, T, K, H+1] (the ones column carries the normaliser z), log γ [B, T, K, F] and
    [log β, 0] [B, T, K, H+1] (0 at pads: gate 1), and the reset flags [B, T]: `new` (a segment
    starts: the forward state is dropped) and `ends` (the next position starts one: the backward
    state is dropped)."""
    B, T, N, H = query.shape
    K = key.shape[2]
    q = query.reshape(B, T, K, N // K, H).astype(jnp.float32) * (1.0 if scale is None else scale)
    phi_q = linear.elu_feature_map(q)
    valid = jnp.ones((B, T), bool) if kv_mask is None else kv_mask.astype(bool)
    phi_k = jnp.where(valid[:, :, None, None], linear.elu_feature_map(key), 0.0)
    v = value.astype(jnp.float32)
    v1 = jnp.concatenate([v, jnp.ones_like(v[..., :1])], axis=-1)
    log_g, log_b = log_gate_values(key, gates)
    log_g = jnp.where(valid[:, :, None, None], log_g, 0.0)
    log_b = jnp.where(valid[:, :, None, None], log_b, 0.0)
    log_b = jnp.concatenate([log_b, jnp.zeros_like(log_b[..., :1])], axis=-1)
    seg = jnp.zeros((B, T), jnp.int32) if segment_ids is None else segment_ids
    new = jnp.concatenate([jnp.ones((B, 1), bool), seg[:, 1:] != seg[:, :-1]], axis=1)
    ends = jnp.concatenate([new[:, 1:], jnp.ones((B, 1), bool)], axis=1)
    return phi_q, phi_k, v1, log_g, log_b, new, ends


def _chunked_read(phi_q, phi_k, v, log_g, log_b, reset, C):
    """φ(q_t)ᵀ S_t for S_t = Γ_t ⊙ S_(t−1) + φ(k_t)v_tᵀ, Γ_t = γ_t β_tᵀ (0 where `reset`),
    chunk by chunk: [B, T, K, G, V] for v [B, T, K, V].

    Inside a chunk the decay from key j to query t is exp(ℓ_t − ℓ_j) with ℓ the chunk's running
    sum of log gates: formed as a [C, C] pair tensor per feature and per value channel (never
    as exp(ℓ_t)·exp(−ℓ_j), which overflows), masked to j <= t in the same segment. Between
    chunks the [F, V] state at each chunk end is carried by a `lax.scan` over T/C chunks, so
    memory is O(T·C·(F + V) + (T/C)·F·V) instead of the O(T·F·V) of keeping every state. Every
    exponent is <= 0."""
    B, T, K, G, F = phi_q.shape
    V = v.shape[-1]
    n = -(-T // C)
    pad = lambda x: jnp.pad(x, [(0, 0), (0, n * C - T)] + [(0, 0)] * (x.ndim - 2))  # noqa: E731
    chunk = lambda x: pad(x).reshape((B, n, C) + x.shape[2:])  # noqa: E731
    q, k, v, lg, lb = map(chunk, (phi_q, phi_k, v, log_g, log_b))  # pads: zeros, gate 1
    seg = jnp.cumsum(chunk(reset).astype(jnp.int32), axis=2)  # [B, n, C]: resets so far
    cg, cb = jnp.cumsum(lg, axis=2), jnp.cumsum(lb, axis=2)  # ℓ: [B, n, C, K, F|V]
    tri = jnp.tril(jnp.ones((C, C), bool))
    pair = tri & (seg[:, :, :, None] == seg[:, :, None, :])  # [B, n, t, j]

    def decay(c):  # exp(ℓ_t − ℓ_j) on the kept pairs, 0 elsewhere: [B, n, t, j, K, F|V]
        diff = c[:, :, :, None] - c[:, :, None, :]
        keep = pair[..., None, None]
        return jnp.where(keep, jnp.exp(jnp.where(keep, diff, 0.0)), 0.0)

    scores = jnp.einsum("BnTKGF,BnSKF,BnTSKF->BnKGTS", q, k, decay(cg))
    intra = jnp.einsum("BnKGTS,BnSKV,BnTSKV->BnTKGV", scores, v, decay(cb))
    # Each chunk's own contribution to the state at its end, and the decay across it.
    last = seg[:, :, -1:]  # [B, n, 1]
    to_end = (seg == last)[..., None, None]  # keys in the chunk's last segment
    wk = jnp.where(to_end, jnp.exp(cg[:, :, -1:] - cg), 0.0) * k  # [B, n, C, K, F]
    wv = jnp.exp(cb[:, :, -1:] - cb) * v  # [B, n, C, K, V]
    own = jnp.einsum("BnSKF,BnSKV->BnKFV", wk, wv)
    carry_g = jnp.where((last == 0)[..., None], jnp.exp(cg[:, :, -1]), 0.0)  # [B, n, K, F]
    across = carry_g[..., None] * jnp.exp(cb[:, :, -1])[..., None, :]  # [B, n, K, F, V]

    def step(state, inputs):
        a, x = inputs
        return a * state + x, state  # emits the state before the chunk

    init = jnp.zeros((B, K, F, V), jnp.float32)
    _, before = jax.lax.scan(step, init, (jnp.moveaxis(across, 1, 0), jnp.moveaxis(own, 1, 0)))
    before = jnp.moveaxis(before, 0, 1)  # [B, n, K, F, V]
    # Queries read the carried state through the gates from the chunk start to themselves.
    first_seg = (seg == 0)[..., None, None, None]  # no reset in [chunk start, t]
    qd = q * jnp.exp(cg)[:, :, :, :, None, :]  # [B, n, C, K, G, F]
    inter = jnp.einsum("BnTKGF,BnKFV->BnTKGV", qd, before) * jnp.exp(cb)[:, :, :, :, None, :]
    out = intra + jnp.where(first_seg, inter, 0.0)
    return out.reshape((B, n * C, K, G, V))[:, :T]


def _tensors(K: int, H: int, scope: Mapping[str, Any]):
    given = [scope[name] is not None for name in TENSORS]
    if not any(given):
        return None
    if not all(given):
        raise ValueError(f"{KIND}: give all of {TENSORS} or none")
    w = scope["gate_w_feature"]
    if w.shape != (K, H, H):
        raise ValueError(f"{KIND}: gate_w_feature must be [K, H, H] = {(K, H, H)}; got {w.shape}")
    return tuple(scope[name].astype(jnp.float32) for name in TENSORS)


def _shift_back(a_back: jax.Array, r: jax.Array) -> jax.Array:
    """The exclusive backward state Γ'_t ⊙ R_(t+1) (0 at the last position)."""
    r_next = jnp.concatenate([r[:, 1:], jnp.zeros_like(r[:, :1])], axis=1)
    return a_back * r_next


def _terms(query, key, value, kv_mask, segment_ids, scale, gates):
    """The sequential reference's per-position recurrence terms, float32, from the chunked form's
    inputs: φ(q) [B, T, K, G, F]; inputs φ(k)vᵀ [B, T, K, F, H] and φ(k) [B, T, K, F]; forward
    gates Γ, γ (0 where a segment starts, 1 at pads); backward gates (0 where the next position
    starts a new segment)."""
    phi_q, phi_k, v1, log_g, log_b, new, ends = _chunk_terms(
        query, key, value, kv_mask, segment_ids, scale, gates
    )
    x = jnp.einsum("BTKF,BTKH->BTKFH", phi_k, v1[..., :-1])
    gamma, beta = jnp.exp(log_g), jnp.exp(log_b[..., :-1])  # 1 at pads
    az = jnp.where(new[:, :, None, None], 0.0, gamma)
    az_back = jnp.where(ends[:, :, None, None], 0.0, gamma)
    gate = gamma[..., None] * beta[..., None, :]  # [B, T, K, F, H]
    a = jnp.where(new[:, :, None, None, None], 0.0, gate)
    a_back = jnp.where(ends[:, :, None, None, None], 0.0, gate)
    return phi_q, x, phi_k, a, az, a_back, az_back


def log_gate_values(key: jax.Array, gates) -> tuple[jax.Array, jax.Array]:
    """(log γ, log β), each [B, T, K, H], by log-sigmoid (finite for any logit); zeros when
    gates is None."""
    k = key.astype(jnp.float32)
    if gates is None:
        return jnp.zeros_like(k), jnp.zeros_like(k)
    w_f, b_f, w_v, b_v = gates
    log_g = jax.nn.log_sigmoid(jnp.einsum("BTKH,KHF->BTKF", k, w_f) + b_f)
    log_b = jax.nn.log_sigmoid(jnp.einsum("BTKH,KHJ->BTKJ", k, w_v) + b_v)
    return log_g, log_b


def sequential_relit_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    *,
    is_causal: bool = False,
    kv_mask: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    scale: float | None = None,
    gate_w_feature: jax.Array | None = None,
    gate_b_feature: jax.Array | None = None,
    gate_w_value: jax.Array | None = None,
    gate_b_value: jax.Array | None = None,
    **unused: Any,
) -> jax.Array:
    """The recurrence one position at a time (`lax.scan`, forward and, if not causal, backward):
    the test reference for the chunked form. Returns [B, T, N, H] f32."""
    del unused, kv_segment_ids
    B, T, N, H = query.shape
    K = key.shape[2]
    gates = _tensors(K, H, locals())
    phi_q, x, xz, a, az, a_back, az_back = _terms(
        query, key, value, kv_mask, q_segment_ids, scale, gates
    )

    def run(a, x, az, xz, reverse):
        def step(carry, inputs):
            s, z = carry
            a_t, x_t, az_t, xz_t = inputs
            s, z = a_t * s + x_t, az_t * z + xz_t
            return (s, z), (s, z)

        init = (jnp.zeros_like(x[:, 0]), jnp.zeros_like(xz[:, 0]))
        xs = tuple(jnp.moveaxis(t, 1, 0) for t in (a, x, az, xz))
        _, (s, z) = jax.lax.scan(step, init, xs, reverse=reverse)
        return jnp.moveaxis(s, 0, 1), jnp.moveaxis(z, 0, 1)

    s, z = run(a, x, az, xz, reverse=False)
    if not is_causal:
        r, rz = run(a_back, x, az_back, xz, reverse=True)
        s, z = s + _shift_back(a_back, r), z + _shift_back(az_back, rz)
    num = jnp.einsum("BTKGF,BTKFH->BTKGH", phi_q, s)
    den = jnp.einsum("BTKGF,BTKF->BTKG", phi_q, z)
    return linear._normalise(num, den).reshape(B, T, N, H)


def example_tensors(num_kv_heads: int, head_dim: int) -> dict[str, jax.Array]:
    """Fixed, non-trivial gates (no rng) for tests: γ, β spread over about (0.3, 0.97)."""
    K, H = num_kv_heads, head_dim
    grid = jnp.arange(K * H * H, dtype=jnp.float32)
    return {
        "gate_w_feature": 0.3 * jnp.sin(grid).reshape(K, H, H),
        "gate_b_feature": 1.5 + 0.5 * jnp.cos(grid[: K * H]).reshape(K, H),
        "gate_w_value": 0.3 * jnp.cos(0.7 * grid).reshape(K, H, H),
        "gate_b_value": 2.0 + 0.5 * jnp.sin(grid[: K * H]).reshape(K, H),
    }


def param_specs(
    hparams: Mapping[str, Any], *, num_heads: int, num_kv_heads: int, head_dim: int, kv_length: int
) -> dict[str, core.ParamSpec]:
    """The gates per kv head: W lecun-normal scaled by 0.1, b_γ = b_β = 3 (σ(3) ≈ 0.95: the
    state starts slowly decaying, close to plain causal linear attention)."""
    del hparams, num_heads, kv_length
    K, H = num_kv_heads, head_dim
    w_init = jax.nn.initializers.variance_scaling(0.01, "fan_in", "normal", in_axis=1, out_axis=2)
    b_init = jax.nn.initializers.constant(3.0)
    return {
        "gate_w_feature": core.ParamSpec((K, H, H), w_init, ("heads", "kv", None)),
        "gate_b_feature": core.ParamSpec((K, H), b_init, ("heads", None)),
        "gate_w_value": core.ParamSpec((K, H, H), w_init, ("heads", "kv", None)),
        "gate_b_value": core.ParamSpec((K, H), b_init, ("heads", None)),
    }
