"""The attention registry: every kind, its function and its declared capabilities.

`get_attention_fn(cfg, **needs)` looks the kind up, checks that it supports what the model needs
(before anything is traced) and binds the kind's hyper-parameters from `cfg[cfg.kind]`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jaxattn import errors
from jaxattn.attention import core, nystrom, softmax
from jaxattn.attention.core import AttentionSpec, BoundAttention

REGISTRY: dict[str, AttentionSpec] = {
    "softmax": AttentionSpec(
        softmax.softmax_attention,
        causal=True,
        packing=True,
        bias=True,
        gqa=True,
        complexity="O(T·S·H) time, O(T·S) memory",
    ),
    "nystrom": AttentionSpec(
        nystrom.nystrom_attention,
        causal=False,
        packing=False,
        gqa=True,
        complexity="O((T+S)·m·H + m³) time, O((T+S)·m) memory",
        params=nystrom.param_specs,
    ),
}


def kinds_supporting(feature: str) -> list[str]:
    return [kind for kind, spec in REGISTRY.items() if spec.supports(feature)]


def get_spec(kind: str) -> AttentionSpec:
    if kind not in REGISTRY:
        raise errors.ConfigError(
            f"unknown attention kind '{kind}'; available kinds: {', '.join(sorted(REGISTRY))}"
        )
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
) -> BoundAttention:
    """Returns the configured kind with its hyper-parameters bound, after checking capabilities.

    Args:
      cfg: `kind` plus one sub-dict of hyper-parameters per kind (configs/common.py
        `attention_config`); only `cfg[cfg.kind]` is used.
      is_causal, kv_mask, segment_ids, bias, gqa, cross: what the model will ask of it. A kind
        that cannot honour one raises `UnsupportedFeatureError` naming the kind and the flag.
    """
    kind = cfg["kind"]
    spec = get_spec(kind)
    needs = {
        "is_causal": is_causal,
        "kv_mask": kv_mask,
        "segment_ids": segment_ids,
        "bias": bias,
        "gqa": gqa,
        "cross": cross,
    }
    for feature, needed in needs.items():
        if needed and not spec.supports(feature):
            raise core.unsupported(kind, f"{feature}=True", kinds_supporting(feature))
    hparams = dict(cfg.get(kind) or {})
    core.check_hparams(kind, hparams, spec.fn)
    return BoundAttention(kind=kind, spec=spec, hparams=tuple(sorted(hparams.items())))
