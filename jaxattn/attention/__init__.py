"""The attention registry's lookups: every kind, its function and its declared capabilities.

`REGISTRY` (registry.py: the attention kinds, then the token mixers) maps each kind to its
`AttentionSpec`. `get_attention_fn(cfg, **needs)` looks the kind up, checks that it supports what
the model needs (before anything is traced) and binds the kind's hyper-parameters from
`cfg[cfg.kind]`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jaxattn import errors
from jaxattn.attention import core
from jaxattn.attention.core import AttentionSpec, BoundAttention
from jaxattn.attention.registry import REGISTRY

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
