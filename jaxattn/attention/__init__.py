"""The attention registry: every kind, its function and its declared capabilities.

`get_attention_fn(cfg, **needs)` looks the kind up, checks that it supports what the model needs
(before anything is traced) and binds the kind's hyper-parameters from `cfg[cfg.kind]`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jaxattn import errors
from jaxattn.attention import (
    axial,
    block_sparse,
    core,
    decoding,
    fnet,
    kernels,
    linear,
    linformer,
    local,
    nystrom,
    performer,
    reformer,
    routing,
    sinkhorn,
    softmax,
    softmax_chunked,
    synthesizer,
    xca,
)
from jaxattn.attention.core import AttentionSpec, BoundAttention

REGISTRY: dict[str, AttentionSpec] = {
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
    # A token mixer (x -> y). padding=True only through the explicit opt-in hyper-parameter
    # allow_padding_mixing=True (pads are then mixed in, as in FNet's LRA runs); with the default
    # a kv_mask raises UnsupportedFeatureError when the layer is traced.
    "fnet": AttentionSpec(
        fnet.fnet_mixing,
        family="mixer",
        causal=False,
        padding=True,
        packing=False,
        cross=False,
        complexity="O(T·D·(log T + log D)) time, O(T·D) memory; no parameters",
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
}


# `kind="exact"` picks the platform's default exact-softmax kind: on CPU the fastest correct one
# measured with `python -m jaxattn.bench --kinds=softmax,softmax_xla,softmax_chunked` (2 cores,
# fp32, B=1, 8 heads x 64: softmax_chunked is fastest from T=1024 on and the only one with O(T)
# memory; WORKSPACE.md "The attention benchmark" has the table). On GPU/TPU XLA's fused attention
# (cuDNN with softmax_xla.implementation='cudnn'); not measured here (no accelerator).
EXACT_ALIAS = "exact"
DEFAULT_EXACT = {"cpu": "softmax_chunked", "gpu": "softmax_xla", "tpu": "softmax_xla"}


def resolve_kind(kind: str, platform: str | None = None) -> str:
    """`kind`, or for "exact" the default exact kind of `platform` (default: JAX's backend)."""
    if kind != EXACT_ALIAS:
        return kind
    import jax

    platform = platform or jax.default_backend()
    return DEFAULT_EXACT.get(platform, "softmax")


def kinds_supporting(feature: str) -> list[str]:
    return [kind for kind, spec in REGISTRY.items() if spec.supports(feature)]


def check_supports(kind: str, feature: str, detail: str = "=True") -> None:
    """Raises UnsupportedFeatureError (naming the kind, the flag and the kinds that have it) when
    `kind` does not declare `feature` (one of core.FEATURES)."""
    if not get_spec(kind).supports(feature):
        raise core.unsupported(kind, f"{feature}{detail}", kinds_supporting(feature))


def get_spec(kind: str) -> AttentionSpec:
    kind = resolve_kind(kind)
    if kind not in REGISTRY:
        choices = ", ".join(
            [*sorted(REGISTRY), f"{EXACT_ALIAS} (the platform's default exact kind)"]
        )
        raise errors.ConfigError(f"unknown attention kind '{kind}'; available kinds: {choices}")
    return REGISTRY[kind]


def get_attention_fn(
    cfg: Mapping[str, Any],
    *,
    is_causal: bool = False,
    kv_mask: bool = False,
    segment_ids: bool = False,
    bias: bool = False,
    gqa: bool = False,
    cross: bool = False,
    dropout: bool = False,
    grid: tuple[int, int] | None = None,
) -> BoundAttention:
    """Returns the configured kind with its hyper-parameters bound, after checking capabilities.

    Args:
      cfg: `kind` plus one sub-dict of hyper-parameters per kind (configs/common.py
        `attention_config`); only `cfg[cfg.kind]` is used. kind "exact" resolves to
        `DEFAULT_EXACT[platform]` (`resolve_kind`) and binds that kind's hyper-parameters.
      is_causal, kv_mask, segment_ids, bias, gqa, cross, dropout: what the model will ask of it
        (dropout: an attention-probability dropout rate > 0). A kind that cannot honour one
        raises `UnsupportedFeatureError` naming the kind and the flag.
      grid: the (rows, cols) token grid the model offers (a ViT's patch grid), or None. Bound as
        the `grid` hyper-parameter of kinds that declare `grid=True`, who refuse a model without
        one; other kinds ignore it.
    """
    kind = resolve_kind(cfg["kind"])
    spec = get_spec(kind)
    needs = {
        "is_causal": is_causal,
        "kv_mask": kv_mask,
        "segment_ids": segment_ids,
        "bias": bias,
        "gqa": gqa,
        "cross": cross,
        "dropout": dropout,
    }
    for feature, needed in needs.items():
        if needed:
            check_supports(kind, feature)
    hparams = dict(cfg.get(kind) or {})
    if spec.grid:
        if grid is None:
            raise errors.UnsupportedFeatureError(
                f"attention kind '{kind}' needs a 2-D token grid, and this model offers none "
                "(a sequence, not an image); use it in a vision model (e.g. configs/vit_base.py) "
                "or pick a sequence kind"
            )
        hparams["grid"] = (int(grid[0]), int(grid[1]))
    core.check_hparams(kind, hparams, spec.fn)
    return BoundAttention(kind=kind, spec=spec, hparams=tuple(sorted(hparams.items())))
