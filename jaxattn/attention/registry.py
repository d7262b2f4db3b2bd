"""The registry table: every kind, its function and its declared capabilities.

One `AttentionSpec` per kind (jaxattn/attention/core.py defines the fields): the attention family
here, the token mixers (family 'mixer') in registry_mixers.py. A new kind adds its module and one
entry in the table of its family. The lookups (`get_spec`, `get_attention_fn`, the "exact" alias)
are in jaxattn/attention/__init__.py; the README capability table is generated from `REGISTRY`.
"""

from __future__ import annotations

from jaxattn.attention import (
    aft,
    agent,
    axial,
    block_sparse,
    coca,
    combiner,
    decoding,
    dma,
    focused_linear,
    kernels,
    linear,
    linformer,
    lln,
    local,
    mra,
    multiscale_window,
    neural_attention,
    normalized,
    nystrom,
    performer,
    reformer,
    relit,
    routing,
    sinkhorn,
    softmax,
    softmax_chunked,
    ssa,
    synthesizer,
    topk,
    trainable_kernel,
    transformer_vq,
    xca,
    yoso,
)
from jaxattn.attention.core import AttentionSpec
from jaxattn.attention.registry_mixers import MIXER_KINDS

ATTENTION_KINDS: dict[str, AttentionSpec] = {
    "softmax": AttentionSpec(
        softmax.softmax_attention,
        causal=True,
        packing=True,
        bias=True,
        gqa=True,
        dropout=True,
        decoder=decoding.KV_CACHE,
        complexity="O(T·S·H) time, O(T·S) memory",
    ),
    # No dropout: the Nyströmformer authors' code drops none of its softmax kernels F, A, B.
    "nystrom": AttentionSpec(
        nystrom.nystrom_attention,
        causal=False,
        packing=False,
        gqa=True,
        complexity="O((T+S)·m·H + m³) time, O((T+S)·m) memory",
        params=nystrom.param_specs,
    ),
    # jax.nn.dot_product_attention: XLA's fused attention, or cuDNN's with implementation='cudnn'.
    # That API has no dropout: with a rate > 0 it runs `softmax` ('cudnn' raises when traced).
    "softmax_xla": AttentionSpec(
        kernels.xla_softmax_attention,
        causal=True,
        packing=True,
        bias=True,
        gqa=True,
        cross=True,
        dropout=True,
        decoder=decoding.KV_CACHE,
        complexity="O(T·S·H) time, O(T·S) memory on XLA (cuDNN: O((T+S)·H))",
    ),
    "softmax_chunked": AttentionSpec(
        softmax_chunked.softmax_chunked_attention,
        causal=True,
        packing=True,
        bias=True,
        gqa=True,
        cross=True,
        dropout=True,
        decoder=decoding.KV_CACHE,
        complexity="O(T·S·H) time, O((T+S)·H) memory",
    ),
    "synthesizer": AttentionSpec(
        synthesizer.synthesizer_attention,
        causal=True,
        packing=True,  # the synthesized logits are indexed by position within the segment
        bias=True,
        gqa=True,
        cross=True,
        dropout=True,
        complexity="O(T·S·H) time, O(T·S) memory; O(T_max·S_max) parameters per head",
        params=synthesizer.param_specs,
    ),
    "sinkhorn": AttentionSpec(
        sinkhorn.sinkhorn_attention,
        causal=False,
        packing=False,
        gqa=True,
        cross=False,
        dropout=True,
        complexity="O(T·b·H + (T/b)²·(H + iterations)) time, O(T·b + (T/b)²) memory",
        params=sinkhorn.param_specs,
    ),
    # Shared-QK LSH: keys are the normalised queries, so self-attention only (cross=False).
    "reformer": AttentionSpec(
        reformer.reformer_attention,
        causal=True,
        packing=False,
        gqa=True,
        cross=False,
        dropout=True,
        complexity="O(n·T·(log T + W·H)) time, O(n·T·W) memory (n hash rounds, chunk W)",
        needs_rng=True,
    ),
    # Causal: later keys are masked and full clusters keep their first `window` members by
    # position, so nothing depends on the future (routing.py docstring, "Causal").
    "routing": AttentionSpec(
        routing.routing_attention,
        causal=True,
        packing=False,
        gqa=True,
        cross=True,
        dropout=True,
        complexity="O((T+S)·C·H + C·w²·H) time (T^1.5 for C = sqrt(T)), O((T+S)·C + C·w²) memory",
        state=routing.state_specs,
    ),
    # Sliding window ('sliding') or LRA's non-overlapping blocks ('block'); self-attention only.
    "local": AttentionSpec(
        local.local_attention,
        causal=True,
        packing=True,
        gqa=True,
        cross=False,
        dropout=True,
        decoder=local.DECODER,  # a rolling cache of the window
        complexity="O(T·w·H) time, O(T·w) memory (w = window or block size)",
    ),
    # BigBird / Longformer / Sparse Transformer block layouts. Causal only for the layouts in
    # block_sparse.CAUSAL_LAYOUTS: 'bigbird' with is_causal raises when traced. BigBird's random
    # blocks are drawn from the layer's rng (needs_rng).
    "block_sparse": AttentionSpec(
        block_sparse.block_sparse_attention,
        causal=True,
        packing=False,
        gqa=True,
        cross=False,
        dropout=True,
        complexity="O(T·A·b·H + g·b·T·H) time, O(T·A·b) memory (A active blocks per row)",
        needs_rng=True,  # BigBird's random blocks; the fixed layouts ignore the rng
    ),
    # Learned length projections E, F: no causal form, no packing; key padding is the standard
    # approximation (padded rows zeroed before projecting; see linformer_attention).
    "linformer": AttentionSpec(
        linformer.linformer_attention,
        causal=False,
        packing=False,
        gqa=True,
        dropout=True,
        complexity="O((T+S)·k·H) time, O(T·k) memory (k = num_projections)",
        params=linformer.param_specs,
    ),
    # FAVOR+ random features, redrawn from the layer's rng every step. Packing needs T == S and
    # contiguous segments (the scan resets its state where a segment starts).
    "performer": AttentionSpec(
        performer.performer_attention,
        causal=True,
        packing=True,
        gqa=True,
        complexity="O((T+S)·r·H) time, O((T+S)·r + r·H) memory; causal O(T·(C+H)·r) time",
        needs_rng=True,
        decoder=performer.DECODER,  # the causal prefix sums as a recurrent state
    ),
    # elu+1 linear attention; decoding from the recurrent state (the paper's RNN form).
    "linear": AttentionSpec(
        linear.linear_attention,
        causal=True,
        packing=True,
        gqa=True,
        decoder=linear.DECODER,
        complexity="O((T+S)·H²) time, O(H²) state; causal O(T·(C+H)·H) time (C = chunk_size)",
    ),
    # Row then column attention on the model's token grid (grid=True: vision models only); the
    # prefix tokens (CLS) join every row step and attend to everything. Causal in raster order,
    # leak-free: (r, c) sees (r' <= r, c' <= c) and the prefix (axial.py).
    "axial": AttentionSpec(
        axial.axial_attention,
        causal=True,
        packing=False,
        gqa=True,
        cross=False,
        dropout=True,
        grid=True,
        complexity="O(T·(R+C+P)·H) time, O(T·(R+C+P)) memory (grid R×C, P prefix tokens)",
    ),
    # XCiT's cross-covariance attention: an H×H channel map per head with a learned temperature;
    # a sequence kind (any model). Padded tokens are zeroed before the token-axis normalisation.
    "xca": AttentionSpec(
        xca.xca_attention,
        causal=False,
        packing=False,
        gqa=True,
        cross=False,
        dropout=True,
        complexity="O(T·H²) time, O(H²) memory per head",
        params=xca.param_specs,
    ),
    # The seed papers' sequence-level mechanisms (zoo II): kernel and linear family, sparse and
    # multi-resolution, other scorings (the token mixers are in registry_mixers.py).
    # Agent attention: a pooled agents (pads excluded) aggregate the keys by one softmax and
    # broadcast to the queries by another, plus a 1-D DWC of V. Non-causal (agents pool every
    # query), no packing, self-attention only; dropout on both probability matrices.
    "agent": AttentionSpec(
        agent.agent_attention,
        causal=False,
        packing=False,
        gqa=True,
        cross=False,
        dropout=True,
        complexity="O(T·a·H) time, O(T·a) memory (a = num_agents)",
        params=agent.param_specs,
    ),
    # ReLiT: elu+1 linear attention whose state decays by a key-driven outer-product gate,
    # chunk-parallel; bidirectional = forward + reversed exclusive read. One token axis.
    "relit": AttentionSpec(
        relit.relit_attention,
        causal=True,
        packing=True,
        gqa=True,
        cross=False,
        complexity="O(T·C·H + T·H²) time, O(T·C·H + (T/C)·H²) memory (C = chunk_size)",
        params=relit.param_specs,
    ),
    # Linear log-normal: exp(α·q), exp(β·k) moment-matched to softmax from running stds (state,
    # read before being updated, so outputs stay causal). LLN+Diag (diag_block_size > 0) refuses
    # cross-attention when traced (block-diagonal softmax is self-attention only).
    "lln": AttentionSpec(
        lln.lln_attention,
        causal=True,
        packing=True,
        gqa=True,
        complexity="O((T+S)·H²) time, O(H²) state; causal O(T·(C+H)·H); Diag adds O(T·b·H)",
        state=lln.state_specs,
    ),
    # FLatten: focused ReLU map f_p + a 1-D depthwise conv of V over tokens (left taps when
    # causal; zeros outside the segment). Self-attention only: DWC(V) is added per token.
    "focused_linear": AttentionSpec(
        focused_linear.focused_linear_attention,
        causal=True,
        packing=True,
        gqa=True,
        cross=False,
        complexity="O(T·H² + T·k·H) time, O(H²) state; causal O(T·(C+H)·H) (k conv taps)",
        params=focused_linear.param_specs,
    ),
    # Linear attention with a trainable residual-MLP feature map per kv head (W₂ = 0: `linear`).
    "trainable_kernel": AttentionSpec(
        trainable_kernel.trainable_kernel_attention,
        causal=True,
        packing=True,
        gqa=True,
        complexity="O((T+S)·H·(R+H)) time, O(H²) state; causal O(T·(C+H)·H) (R hidden)",
        params=trainable_kernel.param_specs,
    ),
    # SSA: a random locality-biased key subset in training (rng + training from the layer),
    # dense at evaluation. The subset is drawn among the allowed keys from positions within the
    # segment only, so every mask is exact (dense reference: no compute saved).
    "ssa": AttentionSpec(
        ssa.ssa_attention,
        causal=True,
        packing=True,
        bias=True,
        gqa=True,
        cross=True,
        dropout=True,
        complexity="O(T·S·H) time, O(T·S) memory (dense reference of the subsampled softmax)",
        needs_rng=True,
        needs_training=True,
    ),
    # Combiner-Fixed: own span directly + one summary per other span, one softmax (full
    # support). Causal is exact (earlier spans only); span summaries would mix packed segments.
    "combiner": AttentionSpec(
        combiner.combiner_attention,
        causal=True,
        packing=False,
        gqa=True,
        cross=False,
        dropout=True,
        complexity="O(T·(r + T/r)·H) time, O(T·(r + T/r)) memory (span r; T·√T at r = √T)",
        params=combiner.param_specs,
    ),
    # MRA-2: coarse block-mean scores, top blocks refined. Block means mix the queries of a block
    # (no causal form) and would mix packed segments; no per-entry probabilities (no dropout).
    "mra": AttentionSpec(
        mra.mra_attention,
        causal=False,
        packing=False,
        gqa=True,
        cross=True,
        complexity="O(T·(S/β + m_r·β)·H) time, O(T·S/β + T·m_r·β) memory (m_r blocks per row)",
    ),
    # Guo et al.'s multi-scale heads: `local` sliding windows with one width per head (cycled);
    # self-attention only and no bias, as `local`.
    "multiscale_window": AttentionSpec(
        multiscale_window.multiscale_window_attention,
        causal=True,
        packing=True,
        gqa=True,
        cross=False,
        dropout=True,
        complexity="O(Σ_n T·W_n·H) time, O(T·W_n) memory per head (W_n ≈ 2.5·w_n key slots)",
    ),
    # Dense reference of top-k sparse attention (DLGSANet / IceFormer): the k largest logits per
    # row among the allowed keys, so every mask, bias and dropout is exact.
    "topk": AttentionSpec(
        topk.topk_attention,
        causal=True,
        packing=True,
        bias=True,
        gqa=True,
        cross=True,
        dropout=True,
        complexity="O(T·S·H) time, O(T·S) memory (dense reference; O(T·k·H) with a k-NN index)",
    ),
    # LSH Bernoulli sampling (hyperplanes from the layer's rng) with the authors' estimated backward;
    # bidirectional only, no packing, no logits (bias) and no probabilities (dropout).
    "yoso": AttentionSpec(
        yoso.yoso_attention,
        causal=False,
        packing=False,
        gqa=True,
        cross=True,
        complexity="O((T+S)·m·τ·H) time, O(m·2^τ·H) memory (m rounds, τ bits); backward O(2^τ·H²)",
        needs_rng=True,
    ),
    # Collinear keys with the kind's own RoPE (positions restart per packed segment), factorised
    # into softmax on features Q′, K′: every mask of softmax, exact. Use with relative='none'.
    "coca": AttentionSpec(
        coca.coca_attention,
        causal=True,
        packing=True,
        bias=True,
        gqa=True,
        cross=True,
        dropout=True,
        complexity="O(T·S·H) time, O(T·S) memory (as softmax)",
        own_rotary=True,  # the layer's relative='rope' would rotate twice: refused
    ),
    # Dynamic mask attention, dense reference: a value-derived key importance δ is added to the
    # logits and each row keeps its top-w allowed keys by δ, so every mask is exact.
    "dma": AttentionSpec(
        dma.dma_attention,
        causal=True,
        packing=True,
        bias=True,
        gqa=True,
        cross=True,
        dropout=True,
        complexity="O(T·S·H + T·S·log S) time, O(T·S) memory (dense reference; O(T·w·H) sparse)",
        params=dma.param_specs,
    ),
    # Logits from a per-head FFN on each (q, k) pair, chunked over queries; then a dense softmax,
    # so every mask, bias and dropout are exact.
    "neural_attention": AttentionSpec(
        neural_attention.neural_attention,
        causal=True,
        packing=True,
        bias=True,
        gqa=True,
        cross=True,
        dropout=True,
        complexity="O(T·S·F + T·S·H) time, O(T·S + c·S·F) memory (F hidden, c chunk)",
        params=neural_attention.param_specs,
    ),
    # Scores standardised over each row's allowed keys (no softmax): every mask exact because the
    # statistics are taken over the allowed keys only. No dropout: the weights are signed.
    "normalized": AttentionSpec(
        normalized.normalized_attention,
        causal=True,
        packing=True,
        bias=True,
        gqa=True,
        cross=True,
        complexity="O(T·S·H) time, O(T·S) memory",
        params=normalized.param_specs,
    ),
    # Transformer-VQ: softmax over keys quantised to an EMA k-means codebook (non-gradient state).
    # Causal: blocks attend to the previous block directly and to older blocks through per-code
    # counts and value sums (exact); bidirectional: merged per code. Packing via the dense form.
    "transformer_vq": AttentionSpec(
        transformer_vq.transformer_vq_attention,
        causal=True,
        packing=True,
        gqa=True,
        cross=True,
        complexity="causal O(T·(L+C)·N·H), bidirectional O((T+S)·C·N·H) time; O(T·(L+C)) memory",
        state=transformer_vq.state_specs,
    ),
    # AFT (attention free): per-channel exp(k + w) weighted means of v gated by sigmoid(q); modes
    # simple (w = 0, linear; causal by a prefix scan), full / local (learned pair bias w, T_max x
    # S_max). Packing indexes w by position within the segment. No bias, no dropout.
    "aft": AttentionSpec(
        aft.aft_attention,
        causal=True,
        packing=True,
        gqa=True,
        cross=True,
        complexity="simple: O((T+S)·N·H) time and memory; full/local: O(T·S·K·H) time, O(T·S) memory",
        params=aft.param_specs,
    ),
}

# Every kind: attention first, then the token mixers (the order of the README table and the grids).
REGISTRY: dict[str, AttentionSpec] = {**ATTENTION_KINDS, **MIXER_KINDS}
