"""A trained run back in memory for inference: its config, model and variables.

    config, model, variables = restore.load('runs/lm_softmax')                  # best params
    config, model, variables = restore.load('runs/lm_softmax', checkpoint_kind='latest')

Reads `W/config.json` (what the trainer wrote), rebuilds the model with the dataset's sizes (the
dataset must be prepared, as it is after training) and restores onto one device: the
best-validation parameters ('best') or the latest train state's ('latest'). Non-gradient model
state (routing centroids) comes from the latest train state when there is one.
"""

from __future__ import annotations

import json
import os
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jaxattn import data, errors, models, tasks
from jaxattn.data import pipeline
from jaxattn.train import checkpoint, optim
from jaxattn.train.state import TrainState


def load(
    workdir: str, *, checkpoint_kind: str = "best"
) -> tuple[ml_collections.ConfigDict, nn.Module, dict[str, Any]]:
    """(config, model, variables) of the run in `workdir`; checkpoint_kind 'best' | 'latest'."""
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        raise errors.CheckpointError(
            f"{path} not found: --workdir must be a directory that experiments.train wrote"
        )
    with open(path) as f:
        config = ml_collections.ConfigDict(json.load(f))
    info, open_split = data.get_dataset({**config.data.to_dict(), "allow_build": False})
    model = models.build_model(
        config.model,
        vocab_size=info.vocab_size,
        num_classes=info.num_classes,
        max_length=config.data.max_length,
        packed=info.packed,
        **info.model_fields,
    )
    task = tasks.get_task(config.task.name)
    dummy = pipeline.template_batch(
        open_split("train"), batch_size=1, seq_len=config.data.max_length, row_fn=task.make_row
    )
    tx, _ = optim.make_optimizer(config.optim, int(config.train.num_train_steps))
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])

    def init_state() -> TrainState:
        rng = jax.random.PRNGKey(0)
        variables = dict(
            nn.unbox(model.init({"params": rng, "attention": rng}, **task.model_inputs(dummy)))
        )
        params = variables.pop("params")
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=tx.init(params),
            model_state=variables,
        )

    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
        jax.eval_shape(init_state),
    )
    latest = checkpoint.latest_manager(workdir, max_to_keep=1_000_000)
    latest_step = latest.latest_step()
    state = (
        checkpoint.restore_state(latest, latest_step, abstract) if latest_step is not None else None
    )
    if checkpoint_kind == "latest":
        if state is None:
            raise errors.CheckpointError(f"no checkpoint in {workdir}/checkpoints")
        params = state.params
    elif checkpoint_kind == "best":
        best = checkpoint.best_manager(workdir)
        if best.latest_step() is None:
            raise errors.CheckpointError(
                f"no best-validation checkpoint in {workdir}/checkpoints_best"
            )
        _, params = checkpoint.restore_best_params(best, abstract.params)
    else:
        raise errors.ConfigError(f"checkpoint must be 'best' or 'latest'; got {checkpoint_kind!r}")
    model_state = state.model_state if state is not None else jax.jit(init_state)().model_state
    return config, model, {"params": params, **model_state}
