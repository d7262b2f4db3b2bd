"""Optimizer and learning-rate schedules from `config.optim`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax.numpy as jnp
import optax

from jaxattn import errors


def _rsqrt(cfg: Mapping[str, Any], num_train_steps: int) -> optax.Schedule:
    """LRA's `constant * linear_warmup * rsqrt_decay`: peak is learning_rate / sqrt(warmup)."""
    base, warmup = cfg["learning_rate"], max(int(cfg["warmup_steps"]), 1)

    def schedule(step):
        step = jnp.asarray(step, jnp.float32)
        return base * jnp.minimum(1.0, step / warmup) / jnp.sqrt(jnp.maximum(step, warmup))

    return schedule


def _linear_onecycle(cfg: Mapping[str, Any], num_train_steps: int) -> optax.Schedule:
    """PyTorch OneCycleLR(anneal_strategy='linear') as in the Nyströmformer LRA code: from
    peak/25 up to peak over `warmup_steps`, then linearly down to peak/(25·1e4) at the end."""
    peak, warmup = cfg["learning_rate"], int(cfg["warmup_steps"])
    if not 0 < warmup < num_train_steps:
        raise errors.ConfigError(
            f"linear_onecycle needs 0 < optim.warmup_steps ({warmup}) < train.num_train_steps ({num_train_steps})"
        )
    return optax.piecewise_interpolate_schedule(
        "linear", peak / 25.0, {warmup: 25.0, num_train_steps: 1.0 / (25.0 * 1e4)}
    )


def _cosine(cfg: Mapping[str, Any], num_train_steps: int) -> optax.Schedule:
    """Linear warmup from 0, then cosine decay to 0 at the last step (LRA image/pathfinder), or
    at `optim.decay_steps` when set: a run cut short of a published horizon (e.g. the first 10k
    steps of Zoology's 31k-step cosine) keeps that run's learning rate at every step."""
    warmup = int(cfg["warmup_steps"])
    horizon = int(cfg.get("decay_steps") or num_train_steps)
    if horizon < num_train_steps:
        raise errors.ConfigError(
            f"optim.decay_steps ({horizon}) < train.num_train_steps ({num_train_steps}): the "
            "cosine would reach 0 before the end; leave it unset to decay over the run"
        )
    return optax.warmup_cosine_decay_schedule(
        0.0, cfg["learning_rate"], warmup, max(horizon, warmup + 1), 0.0
    )


def _constant(cfg: Mapping[str, Any], num_train_steps: int) -> optax.Schedule:
    return optax.constant_schedule(cfg["learning_rate"])


def _step_decay(cfg: Mapping[str, Any], num_train_steps: int) -> optax.Schedule:
    """learning_rate * decay_rate ** ((step - decay_begin_steps) // decay_every_steps), held at
    learning_rate before decay_begin_steps (default 0): LTSF-Linear's `type1` (halved after every
    epoch) with decay_rate 0.5 and decay_every_steps = one epoch; PatchTST's `type3` (held for 3
    epochs, then x0.9 per epoch) with decay_begin_steps = 3 epochs."""
    every = int(cfg.get("decay_every_steps") or 0)
    if every < 1:
        raise errors.ConfigError(f"step_decay needs optim.decay_every_steps >= 1; got {every}")
    return optax.exponential_decay(
        cfg["learning_rate"],
        every,
        float(cfg.get("decay_rate", 0.5)),
        transition_begin=int(cfg.get("decay_begin_steps") or 0),
        staircase=True,
    )


SCHEDULES: dict[str, Callable[[Mapping[str, Any], int], optax.Schedule]] = {
    "rsqrt": _rsqrt,
    "linear_onecycle": _linear_onecycle,
    "cosine": _cosine,
    "constant": _constant,
    "step_decay": _step_decay,
}


def make_schedule(cfg: Mapping[str, Any], num_train_steps: int) -> optax.Schedule:
    name = cfg["schedule"]
    if name not in SCHEDULES:
        raise errors.ConfigError(
            f"unknown optim.schedule '{name}'; choose from {', '.join(SCHEDULES)}"
        )
    return SCHEDULES[name](cfg, num_train_steps)


def make_optimizer(
    cfg: Mapping[str, Any], num_train_steps: int
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """AdamW (decoupled weight decay on every parameter, as LRA's Adam) with optional clipping."""
    schedule = make_schedule(cfg, num_train_steps)
    tx = optax.adamw(
        schedule, b1=cfg["b1"], b2=cfg["b2"], eps=cfg["eps"], weight_decay=cfg["weight_decay"]
    )
    if cfg.get("grad_clip_norm"):
        tx = optax.chain(optax.clip_by_global_norm(cfg["grad_clip_norm"]), tx)
    return tx, schedule
