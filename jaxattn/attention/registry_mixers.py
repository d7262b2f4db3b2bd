"""The token mixers' registry entries (family 'mixer': a function of x, not of q, k, v).

Merged into `jaxattn.attention.REGISTRY` after the attention kinds (registry.py). Each entry
declares what the mixer honours; a mask or flag it cannot honour raises, naming the kind.
"""

from __future__ import annotations

from jaxattn.attention import (
    fnet,
    fnet_ar,
    gaam,
    lightconv,
    padre,
    ponet,
    sgu,
)
from jaxattn.attention.core import AttentionSpec

MIXER_KINDS: dict[str, AttentionSpec] = {
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
    # FNetAR (a token mixer): the prefix DFT, row t = the last frequency of the DFT of x_0..x_t,
    # then FNet's hidden-axis DFT. Always causal; pads zeroed; positions restart per segment.
    "fnet_ar": AttentionSpec(
        fnet_ar.fnet_ar_mixing,
        family="mixer",
        causal=True,
        padding=True,
        packing=True,
        cross=False,
        complexity="O(T²·D + T·D·log D) time, O(T² + T·D) memory; no parameters",
    ),
    # PADRe (token mixer): a degree-d polynomial of x from channel linears, depthwise 1-D
    # convolutions and Hadamard products. Causal = left-only convolutions; packing exact (taps
    # stay in segments); no softmax, so nothing to drop.
    "padre": AttentionSpec(
        padre.padre_mixing,
        family="mixer",
        causal=True,
        padding=True,
        packing=True,
        cross=False,
        complexity="O(T·d·D·(D + k)) time, O(T·d·D) memory (d = degree)",
        params=padre.param_specs,
    ),
    # GAAM (token mixer): x ⊙ a product of Gaussians of x standardised over the tokens,
    # normalised over the tokens. Whole-sequence statistics: no causal form, packing refused;
    # its weights are not probabilities over keys (no dropout).
    "gaam": AttentionSpec(
        gaam.gaam_mixing,
        family="mixer",
        causal=False,
        padding=True,
        packing=False,
        cross=False,
        complexity="O(T·D·G) time, O(T·D) memory (G = num_gaussians)",
        params=gaam.param_specs,
    ),
    # PoNet (token mixer): global aggregation (masked mean query, one softmax over tokens),
    # segment and local max-pooling, multiplicative fusion. An encoder: no causal form; packing
    # would need per-segment pools (refused); dropout on the global-aggregation probabilities.
    "ponet": AttentionSpec(
        ponet.ponet_mixing,
        family="mixer",
        causal=False,
        padding=True,
        packing=False,
        cross=False,
        dropout=True,
        complexity="O(T·D·(D + w)) time, O(T·D) memory (w = local_window)",
        params=ponet.param_specs,
    ),
    # gMLP's spatial gating unit with its channel projections (token mixer). W [T_max, T_max] is
    # positional: causal = lower-triangular W, pads = zeroed W columns; packing would need W per
    # segment offset (refused); no probabilities to drop.
    "sgu": AttentionSpec(
        sgu.sgu_mixing,
        family="mixer",
        causal=True,
        padding=True,
        packing=False,
        cross=False,
        complexity="O(T²·F + T·D·F) time, O(T² + T·F) memory (F = ffn_dim / 2)",
        params=sgu.param_specs,
    ),
    # Lightweight convolution (token mixer): softmax-normalised depthwise kernels shared across
    # channel groups, GLU in / linear out. Causal = left taps; packing exact (taps stop at segment
    # ends); dropout = the paper's DropConnect on the normalised kernel.
    "lightconv": AttentionSpec(
        lightconv.lightconv_mixing,
        family="mixer",
        causal=True,
        padding=True,
        packing=True,
        cross=False,
        dropout=True,
        complexity="O(T·k·D + T·D²) time, O(T·D) memory",
        params=lightconv.lightconv_param_specs,
    ),
    # Dynamic convolution: lightconv with the kernel predicted per position from its input.
    "dynconv": AttentionSpec(
        lightconv.dynconv_mixing,
        family="mixer",
        causal=True,
        padding=True,
        packing=True,
        cross=False,
        dropout=True,
        complexity="O(T·k·D·num_kernels + T·D²) time, O(T·(D + num_kernels·k)) memory",
        params=lightconv.dynconv_param_specs,
    ),
}
