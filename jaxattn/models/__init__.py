"""Models built from `config.model`: the registry of model families and `build_model`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxattn import attention, errors
from jaxattn.layers import embeddings, posenc
from jaxattn.models import classifier, forecaster, linear_forecasters, lm, regressor, vit

MODELS: dict[str, type[nn.Module]] = {
    "encoder_classifier": classifier.EncoderClassifier,
    "dual_encoder_classifier": classifier.DualEncoderClassifier,
    "decoder_lm": lm.DecoderLM,
    "icl_regressor": regressor.InContextRegressor,
    "forecaster": forecaster.Forecaster,
    "vision_transformer": vit.VisionTransformer,
    "dlinear": linear_forecasters.DLinear,
    "nlinear": linear_forecasters.NLinear,
}


def _classifier_needs(cfg: Mapping[str, Any]) -> dict[str, bool]:
    return {"kv_mask": True, "is_causal": bool(cfg.get("causal", False))}


def _lm_needs(cfg: Mapping[str, Any]) -> dict[str, bool]:
    # Right padding is in every real token's future, so causality alone hides it: no kv_mask.
    num_kv_heads = cfg.get("num_kv_heads")
    return {
        "is_causal": True,
        "segment_ids": bool(cfg.get("packed", False)),
        "gqa": num_kv_heads is not None and num_kv_heads != cfg.get("num_heads"),
    }


# What each model family asks of its attention kind, from its config (checked before tracing):
# flags of `attention.get_attention_fn`, and `grid` (rows, cols) where the model has a token grid.
# None: the model has no attention; build_model binds none and refuses a `model.attention`.
ATTENTION_NEEDS: dict[str, Callable[[Mapping[str, Any]], dict[str, bool]] | None] = {
    "encoder_classifier": _classifier_needs,
    "dual_encoder_classifier": _classifier_needs,
    "decoder_lm": _lm_needs,
    "icl_regressor": lambda cfg: {},  # every prompt token is real: no masks
    # Bidirectional encoder over time steps, patches or variates; every token is real: no masks.
    "forecaster": lambda cfg: {},
    # Every patch is real (no masks); grid-aware kinds get the patch grid (rows, cols).
    "vision_transformer": lambda cfg: {
        "grid": vit.patch_grid(cfg.get("image_shape"), int(cfg.get("patch_size", 4)))
    },
    "dlinear": None,
    "nlinear": None,
}

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def build_model(model_config: Mapping[str, Any], **fields: Any) -> nn.Module:
    """config.model -> a Flax module; `fields` offers data-derived settings (vocab_size,
    num_classes, max_length, packed, and DatasetInfo.model_fields), of which the model takes
    those it has.

    Raises ConfigError for an unknown model name, attention kind, positional scheme or field (an
    attention sub-config included, for a model without attention), and UnsupportedFeatureError
    for an attention kind that cannot run what the model asks of it (causal, or a relative
    scheme: a bias scheme needs `bias=True`, RoPE needs query/key).
    """
    cfg = dict(model_config)
    name = cfg.pop("name")
    if name not in MODELS:
        raise errors.ConfigError(
            f"unknown model '{name}'; available models: {', '.join(sorted(MODELS))}"
        )
    cls = MODELS[name]
    cfg.update({k: v for k, v in fields.items() if k in cls.__dataclass_fields__})
    positional = cfg.get("positional", "none")
    if positional not in embeddings.POSITION_KINDS:
        choices = ", ".join(embeddings.POSITION_KINDS)
        raise errors.ConfigError(f"unknown model.positional '{positional}'; choose from {choices}")
    needs_fn = ATTENTION_NEEDS[name]
    if needs_fn is None:
        if "attention" in cfg:
            raise errors.ConfigError(
                f"model '{name}' has no attention; remove model.attention from its config"
            )
        bound = {}
    else:
        bound = {"attention": _bind_attention(cfg, needs_fn(cfg))}
    dtype_name = cfg.pop("dtype", "float32")
    if dtype_name not in DTYPES:
        raise errors.ConfigError(
            f"unknown model.dtype '{dtype_name}'; choose from {sorted(DTYPES)}"
        )
    unknown = sorted(set(cfg) - set(cls.__dataclass_fields__))
    if unknown:
        raise errors.ConfigError(f"model '{name}' has no field(s) {unknown}")
    if cfg.get("pooling") is not None and cfg["pooling"] not in classifier.POOLING:
        raise errors.ConfigError(
            f"unknown pooling '{cfg['pooling']}'; choose from {sorted(classifier.POOLING)}"
        )
    return cls(**bound, dtype=DTYPES[dtype_name], **cfg)


def _bind_attention(cfg: dict[str, Any], model_needs: Mapping[str, Any]) -> Any:
    """Pops cfg['attention'] and binds it with what the model needs (its relative scheme and
    attention dropout included), checking the kind can do all of it."""
    relative = cfg.get("relative", "none")
    scheme = posenc.get_scheme(relative)
    kind = cfg["attention"]["kind"]
    posenc.check_scheme(
        relative,
        kind,
        attention.get_spec(kind),
        [k for k, spec in attention.REGISTRY.items() if posenc.works_with(relative, spec)],
    )
    needs = dict(
        model_needs,
        bias=scheme.mechanism == "bias",
        dropout=float(cfg.get("attention_dropout_rate", 0.0)) > 0,
    )
    rate = float(cfg.get("attention_dropout_rate", 0.0))
    if rate > 0 and not attention.get_spec(kind).dropout:
        raise errors.UnsupportedFeatureError(
            f"attention kind '{attention.resolve_kind(kind)}' does not support attention dropout "
            f"(model.attention_dropout_rate={rate}); set --config.model.attention_dropout_rate=0 "
            f"or use one of: {', '.join(attention.kinds_supporting('dropout'))}"
        )
    return attention.get_attention_fn(cfg.pop("attention"), **needs)


def attention_kind(model_config: Mapping[str, Any]) -> str | None:
    """The registry kind a model's attention resolves to; None for a model without attention."""
    if ATTENTION_NEEDS.get(model_config["name"], {}) is None:
        return None
    return attention.resolve_kind(model_config["attention"]["kind"])
