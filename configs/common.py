"""Shared config pieces: the config-string parser and the all-kinds attention sub-config."""

from __future__ import annotations

import inspect
import typing
from typing import Any

import jax
from ml_collections import config_dict

from jaxattn import attention, errors

# Arguments every attention function takes (STYLE.md §2); the rest are hyper-parameters or tensors.
# The dropout rate comes from the model config (attention_dropout_rate), its rng from the layer.
COMMON_ARGS = {
    "is_causal",
    "kv_mask",
    "q_segment_ids",
    "kv_segment_ids",
    "bias",
    "scale",
    "dropout_rate",
    "dropout_rng",
    "training",  # passed by the layer to kinds with AttentionSpec.needs_training (SSA)
}
# Hyper-parameters the model binds (get_attention_fn(grid=...)), never set in a config.
MODEL_BOUND_ARGS = {"grid"}


def parse_arg(arg: str | None, **defaults: Any) -> config_dict.ConfigDict:
    """'task=listops,size=small,smoke' -> ConfigDict; a bare word sets a bool default to True.

    Only keys present in `defaults` are accepted, with their default's type, so a typo fails.
    """
    parsed = dict(defaults)
    for item in filter(None, (arg or "").split(",")):
        name, sep, value = item.partition("=")
        name = name.strip()
        if name not in defaults:
            raise errors.ConfigError(
                f"unknown config-string key '{name}' in '{arg}'; accepted: {sorted(defaults)}"
            )
        default = defaults[name]
        if not sep:
            if not isinstance(default, bool):
                raise errors.ConfigError(f"config-string key '{name}' needs a value ({name}=...)")
            parsed[name] = True
        elif isinstance(default, bool):
            parsed[name] = value.strip().lower() in ("1", "true", "yes")
        else:
            parsed[name] = type(default)(value.strip())
    return config_dict.ConfigDict(parsed)


def attention_hparams(fn: Any) -> dict[str, Any]:
    """A kind's hyper-parameters and defaults, read from its signature (tensor arguments excluded)."""
    hints = typing.get_type_hints(fn)
    out = {}
    for name, p in inspect.signature(fn).parameters.items():
        if p.kind is not inspect.Parameter.KEYWORD_ONLY or name in COMMON_ARGS | MODEL_BOUND_ARGS:
            continue
        hint = hints.get(name)
        if hint is jax.Array or jax.Array in typing.get_args(hint):
            continue  # a tensor the layer passes (conv kernel, random features, rng)
        if p.default is None:
            types = [t for t in typing.get_args(hint) if t is not type(None)]
            out[name] = config_dict.placeholder(types[0] if types else object)
        else:
            out[name] = p.default
    return out


def attention_config(kind: str, **overrides: Any) -> config_dict.ConfigDict:
    """`kind` plus one sub-dict of hyper-parameters per registered kind, all present.

    So a locked config can switch kind and tune it from the command line:
    `--config.model.attention.kind=softmax --config.model.attention.nystrom.num_landmarks=128`.
    `overrides` sets hyper-parameters of `kind`.
    """
    attention.get_spec(kind)  # unknown kind -> ConfigError listing the kinds
    cfg = config_dict.ConfigDict({"kind": kind})
    for name, spec in attention.REGISTRY.items():
        cfg[name] = config_dict.ConfigDict(attention_hparams(spec.fn))
    kind = attention.resolve_kind(kind)  # "exact": overrides go to this platform's exact kind
    for name, value in overrides.items():
        if name not in cfg[kind]:
            raise errors.ConfigError(f"attention kind '{kind}' has no hyper-parameter '{name}'")
        cfg[kind][name] = value
    return cfg


def default_sharding() -> config_dict.ConfigDict:
    """Data parallel over every device; the logical axis rules name what later layouts shard."""
    return config_dict.ConfigDict(
        {
            "mesh": [("data", -1)],
            "logical_axis_rules": [
                ("batch", "data"),
                ("length", None),
                ("embed", None),
                ("heads", None),
                ("kv", None),
                ("mlp", None),
                ("vocab", None),
            ],
        }
    )


def optim_config(
    *,
    schedule: str,
    learning_rate: float,
    warmup_steps: int,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    grad_clip_norm: float | None = None,
    **schedule_fields: Any,
) -> config_dict.ConfigDict:
    """`config.optim` (AdamW and its schedule, jaxattn/train/optim.py); grad_clip_norm None = no
    clipping (a float placeholder, so `--config.optim.grad_clip_norm=1.0` works). A schedule's
    own fields (step_decay's decay_every_steps, ...) come as `schedule_fields`."""
    return config_dict.ConfigDict(
        {
            "schedule": schedule,
            "learning_rate": learning_rate,
            **schedule_fields,
            "warmup_steps": warmup_steps,
            "b1": b1,
            "b2": b2,
            "eps": eps,
            "weight_decay": weight_decay,
            "grad_clip_norm": config_dict.placeholder(float)
            if grad_clip_norm is None
            else grad_clip_norm,
        }
    )


def train_config(
    *,
    num_train_steps: int,
    log_every_steps: int,
    eval_every_steps: int,
    best_metric: str,
    checkpoint_every_steps: int | None = None,
) -> config_dict.ConfigDict:
    """`config.train` (the loop of jaxattn/train/trainer.py): checkpoints every
    `checkpoint_every_steps` (default: at every evaluation), the last 2 kept; every evaluation
    reads the whole split unless `max_eval_batches` is set; `time_budget_s` stops the loop after
    that many seconds (evaluated and saved there); `best_metric` picks the checkpoint that is
    tested."""
    return config_dict.ConfigDict(
        {
            "num_train_steps": num_train_steps,
            "log_every_steps": log_every_steps,
            "eval_every_steps": eval_every_steps,
            "checkpoint_every_steps": checkpoint_every_steps or eval_every_steps,
            "max_checkpoints_to_keep": 2,
            "max_eval_batches": config_dict.placeholder(int),  # None = the whole split
            "time_budget_s": config_dict.placeholder(float),
            "best_metric": best_metric,
            "seed": 0,
        }
    )


# The smoke preset's model and loop: tiny shapes, 3 steps, a validation and a checkpoint at step 2.
SMOKE_MODEL = {"emb_dim": 16, "num_layers": 1, "num_heads": 2, "head_dim": 8, "mlp_dim": 32}
SMOKE_TRAIN = {
    "num_train_steps": 3,
    "log_every_steps": 1,
    "eval_every_steps": 2,
    "checkpoint_every_steps": 2,
    "max_eval_batches": 2,
}


def apply_smoke(config: config_dict.ConfigDict, attention_hparams: dict[str, dict]) -> None:
    """Shrinks `config` to the smoke preset: SMOKE_MODEL, 3 steps (evaluated and saved at 2 and
    3, two eval batches), warmup 1, batch 8, and `attention_hparams` per kind for short inputs.
    The caller sets its data's smoke sizes."""
    config.data.update(batch_size=8, eval_batch_size=8)
    config.model.update(SMOKE_MODEL)
    config.optim.update(warmup_steps=1)
    config.train.update(SMOKE_TRAIN)
    for name, values in attention_hparams.items():
        config.model.attention[name].update(values)
