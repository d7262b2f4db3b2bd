"""`train_and_evaluate(config, workdir)`: the one training loop, read top to bottom in sections.

mesh -> data -> model, task, optimizer -> sharded init -> restore -> jit'd steps -> loop
(log, eval, checkpoint) -> final test evaluation of the best-validation and the last params.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging

from jaxattn import data, errors, models, tasks
from jaxattn.data import pipeline
from jaxattn.train import checkpoint, metrics, optim, sharding
from jaxattn.train.state import TrainState

Batch = dict[str, jax.Array]


# ----------------------------------------------------------------------------- step functions
def train_step(
    state: TrainState,
    batch: Batch,
    base_rng: jax.Array,
    *,
    model: nn.Module,
    task: Any,
    tx: optax.GradientTransformation,
) -> tuple[TrainState, metrics.Metrics]:
    """One optimizer update on the mean loss of the (global) batch."""
    rng = jax.random.fold_in(base_rng, state.step)
    dropout_rng, attention_rng = jax.random.split(rng)

    def loss_fn(params):
        (logits, _), model_state = model.apply(
            {"params": params, **state.model_state},
            **task.model_inputs(batch),
            deterministic=False,
            rngs={"dropout": dropout_rng, "attention": attention_rng},
            mutable=list(state.model_state),
        )
        loss_sum, weight = task.loss(logits, batch)
        return loss_sum / jnp.maximum(weight, 1e-9), (logits, model_state)

    (_, (logits, model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    step_metrics = task.metrics(logits, batch)
    step_metrics["grad_norm"] = (optax.global_norm(grads), jnp.ones((), jnp.float32))
    new_state = TrainState(
        step=state.step + 1, params=params, opt_state=opt_state, model_state=model_state
    )
    return new_state, step_metrics


# Random kinds (Performer features, LSH hashes) see this fixed key at evaluation.
EVAL_ATTENTION_SEED = 0


def eval_step(
    params: Any, model_state: Any, batch: Batch, *, model: nn.Module, task: Any
) -> metrics.Metrics:
    logits, _ = model.apply(
        {"params": params, **model_state},
        **task.model_inputs(batch),
        deterministic=True,
        rngs={"attention": jax.random.PRNGKey(EVAL_ATTENTION_SEED)},
    )
    return task.metrics(logits, batch)


# ----------------------------------------------------------------------------- helpers
def _device_batches(
    batches: Iterator[dict[str, np.ndarray]], data_sharding: jax.sharding.NamedSharding
) -> Iterator[Batch]:
    """Host batches (this process's rows) -> global arrays sharded on the batch axis."""
    for batch in batches:
        yield {
            k: jax.make_array_from_process_local_data(data_sharding, v) for k, v in batch.items()
        }


def evaluate(
    eval_fn: Callable[[Any, Any, Batch], metrics.Metrics],
    params: Any,
    model_state: Any,
    batches: Iterator[Batch],
    task: Any,
) -> dict[str, float]:
    total = None
    for batch in batches:
        total = metrics.add(total, eval_fn(params, model_state, batch))
    if total is None:
        raise errors.ConfigError(
            "evaluation split is empty; check config.data and train.max_eval_batches"
        )
    averages = metrics.averages(total)
    return {**averages, **task.derived_metrics(averages)}


def _check_batch_size(name: str, size: int, divisor: int) -> None:
    if size % divisor or size % jax.process_count():
        raise errors.ConfigError(
            f"{name}={size} must be a multiple of the data-parallel size {divisor} and of the process count "
            f"{jax.process_count()}; change --config.{name}"
        )


def _metric_direction(task: Any, name: str) -> bool:
    """Whether a higher `train.best_metric` is better, or a ConfigError naming the choices."""
    if name not in task.HIGHER_IS_BETTER:
        raise errors.ConfigError(
            f"train.best_metric '{name}' is not a metric of task '{task.__name__.split('.')[-1]}'; "
            f"choose from {sorted(task.HIGHER_IS_BETTER)}"
        )
    return task.HIGHER_IS_BETTER[name]


def _format_metrics(values: dict[str, float], skip: tuple[str, ...] = ()) -> str:
    return " | ".join(f"{k} {v:.4f}" for k, v in sorted(values.items()) if k not in skip)


def _format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


# ----------------------------------------------------------------------------- the loop
def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains `config` in `workdir` (resuming from its checkpoints), then evaluates on test.

    Writes config.json, metrics.jsonl, tensorboard/, checkpoints/, checkpoints_best/ and
    results.json into `workdir`; returns the results dict.
    """
    start_time = time.time()
    is_chief = jax.process_index() == 0
    os.makedirs(workdir, exist_ok=True)
    if is_chief:
        with open(os.path.join(workdir, "config.json"), "w") as f:
            f.write(config.to_json_best_effort(indent=2, sort_keys=True))
    train_cfg = config.train

    # --- mesh
    mesh = sharding.make_mesh(config.sharding.mesh)
    rules = sharding.logical_rules(config.sharding.logical_axis_rules)
    data_sharding = sharding.data_sharding(mesh, rules)
    divisor = sharding.batch_divisor(mesh, rules)
    _check_batch_size("data.batch_size", config.data.batch_size, divisor)
    _check_batch_size("data.eval_batch_size", config.data.eval_batch_size, divisor)
    logging.info(
        "mesh %s over %d devices (%s)",
        dict(mesh.shape),
        jax.device_count(),
        jax.devices()[0].platform,
    )

    # --- data and task (the task turns records into batch rows)
    info, open_split = data.get_dataset(config.data)
    seq_len = config.data.max_length
    task = tasks.get_task(config.task.name)
    higher_is_better = _metric_direction(task, train_cfg.best_metric)

    def eval_batches(split: str) -> Iterator[Batch]:
        host = pipeline.eval_batches(
            open_split(split),
            batch_size=config.data.eval_batch_size,
            seq_len=seq_len,
            process_index=jax.process_index(),
            process_count=jax.process_count(),
            max_batches=train_cfg.get("max_eval_batches"),
            row_fn=task.make_row,
        )
        return _device_batches(host, data_sharding)

    # --- model, optimizer
    model = models.build_model(
        config.model,
        vocab_size=info.vocab_size,
        num_classes=info.num_classes,
        max_length=seq_len,
        packed=info.packed,
        **info.model_fields,
    )
    num_steps = int(train_cfg.num_train_steps)
    tx, schedule = optim.make_optimizer(config.optim, num_steps)

    # --- sharded init: shapes first, then init straight into the shardings
    rng = jax.random.PRNGKey(train_cfg.seed)
    init_rng, train_rng = jax.random.split(rng)
    dummy = pipeline.template_batch(
        open_split("train"), batch_size=divisor, seq_len=seq_len, row_fn=task.make_row
    )

    def init_boxed(rng):
        variables = dict(
            model.init(
                {"params": rng, "attention": rng}, **task.model_inputs(dummy), deterministic=True
            )
        )
        params = variables.pop("params")
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=tx.init(params),
            model_state=variables,
        )

    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
        abstract_boxed = jax.eval_shape(init_boxed, init_rng)
        state_sh = sharding.state_shardings(abstract_boxed, mesh, rules)
        abstract_state = jax.tree.map(
            lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
            sharding.unbox(abstract_boxed),
            state_sh,
        )
        params_count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(abstract_state.params))
        logging.info(
            "model '%s' with attention '%s': %s parameters",
            config.model.name,
            models.attention_kind(config.model) or "none",
            f"{params_count:,}",
        )

        # --- restore: a checkpoint in this workdir, else scratch
        ckpt = checkpoint.latest_manager(workdir, max_to_keep=train_cfg.max_checkpoints_to_keep)
        best_ckpt = checkpoint.best_manager(workdir)
        latest = ckpt.latest_step()
        if latest is not None:
            state = checkpoint.restore_state(ckpt, latest, abstract_state)
            logging.info(
                "resumed from %s at step %d",
                os.path.join(workdir, "checkpoints", str(latest)),
                latest,
            )
        else:
            state = jax.jit(lambda r: sharding.unbox(init_boxed(r)), out_shardings=state_sh)(
                init_rng
            )
        best = checkpoint.best_meta(best_ckpt)
        start_step = int(jax.device_get(state.step))

        # --- steps
        p_train_step = jax.jit(
            functools.partial(train_step, model=model, task=task, tx=tx),
            in_shardings=(state_sh, data_sharding, None),
            out_shardings=(state_sh, None),
            donate_argnums=0,
        )
        p_eval_step = jax.jit(
            functools.partial(eval_step, model=model, task=task),
            in_shardings=(state_sh.params, state_sh.model_state, data_sharding),
        )

        writer = metrics.MetricWriter(workdir, enabled=is_chief)
        train_iter = _device_batches(
            pipeline.train_batches(
                open_split("train"),
                batch_size=config.data.batch_size,
                seq_len=seq_len,
                seed=train_cfg.seed,
                start_step=start_step,
                process_index=jax.process_index(),
                process_count=jax.process_count(),
                row_fn=task.make_row,
                transform=info.train_transform,
            ),
            data_sharding,
        )

        def run_validation(step: int) -> dict[str, float]:
            nonlocal best
            val = evaluate(
                p_eval_step, state.params, state.model_state, eval_batches("validation"), task
            )
            writer.write_scalars(step, val, split="validation")
            value = val[train_cfg.best_metric]
            improved = (
                best is None
                or (higher_is_better and value > best["value"])
                or (not higher_is_better and value < best["value"])
            )
            logging.info(
                "step %d | validation %s%s",
                step,
                " ".join(f"{k} {v:.4f}" for k, v in sorted(val.items())),
                " (best so far)"
                if improved
                else f" (best {best['value']:.4f} at step {best['step']})",
            )
            if improved:
                best = {
                    "step": step,
                    "metric": train_cfg.best_metric,
                    "value": value,
                    "validation": val,
                }
                checkpoint.save_best(best_ckpt, step, state.params, best)
            return val

        # --- loop
        if start_step >= num_steps:
            logging.info("already trained %d/%d steps; evaluating", start_step, num_steps)
        pending = None  # train metrics summed on device since the last log
        loop_start = last_log_time = time.time()
        last_log_step = start_step
        last_val, last_val_step = None, None
        # Optional wall-clock budget (seconds of this process's loop, compilation and in-loop
        # evaluations included): the step that crosses it is the last, evaluated and saved.
        budget = train_cfg.get("time_budget_s")
        for step in range(start_step + 1, num_steps + 1):
            batch = next(train_iter)
            state, step_metrics = p_train_step(state, batch, train_rng)
            pending = metrics.add(pending, step_metrics)
            out_of_time = budget is not None and time.time() - loop_start >= budget
            last = step == num_steps or out_of_time

            if step % train_cfg.log_every_steps == 0 or last:
                scalars = metrics.averages(pending)
                if not (np.isfinite(scalars["loss"]) and np.isfinite(scalars["grad_norm"])):
                    ckpt.wait_until_finished()
                    raise errors.NonFiniteLossError(
                        f"loss={scalars['loss']} grad_norm={scalars['grad_norm']} between steps {last_log_step + 1} "
                        f"and {step}; checkpoints up to step {ckpt.latest_step()} are kept in {workdir}/checkpoints: "
                        "lower --config.optim.learning_rate or set --config.optim.grad_clip_norm and resume"
                    )
                now = time.time()
                steps_per_s = (step - last_log_step) / max(now - last_log_time, 1e-9)
                scalars["learning_rate"] = float(schedule(step - 1))
                scalars["steps_per_s"] = steps_per_s
                writer.write_scalars(step, scalars, split="train")
                logging.info(
                    "step %d/%d | %s | lr %.3g | %.2f steps/s | ETA %s",
                    step,
                    num_steps,
                    _format_metrics(scalars, skip=("learning_rate", "steps_per_s")),
                    scalars["learning_rate"],
                    steps_per_s,
                    _format_duration((num_steps - step) / max(steps_per_s, 1e-9)),
                )
                pending, last_log_time, last_log_step = None, now, step

            if step % train_cfg.eval_every_steps == 0 or last:
                last_val, last_val_step = run_validation(step), step
            if step % train_cfg.checkpoint_every_steps == 0 or last:
                checkpoint.save_state(ckpt, step, state)
            if out_of_time and step < num_steps:
                logging.info(
                    "time budget of %ss used up at step %d/%d; stopping (a rerun resumes)",
                    budget,
                    step,
                    num_steps,
                )
                break
        ckpt.wait_until_finished()
        final_step = int(jax.device_get(state.step))
        train_steps_per_s = (final_step - start_step) / max(time.time() - loop_start, 1e-9)

        # --- final evaluation: test accuracy of the best-validation params and of the last params
        if last_val_step != final_step:  # resumed after the last step: validate once more
            last_val = run_validation(final_step)
        best_ckpt.wait_until_finished()
        last_test = evaluate(
            p_eval_step, state.params, state.model_state, eval_batches("test"), task
        )
        best_step, best_params = checkpoint.restore_best_params(best_ckpt, abstract_state.params)
        best_test = evaluate(
            p_eval_step, best_params, state.model_state, eval_batches("test"), task
        )
        writer.write_scalars(final_step, last_test, split="test")
        writer.close()

    reference = task.baselines(open_split("test"), seq_len)
    results = {
        "test_accuracy": best_test.get("accuracy"),
        "test_loss": best_test["loss"],
        "checkpoint": "best_validation",
        "checkpoint_step": int(best_step),
        "best_metric": train_cfg.best_metric,
        "validation_accuracy": best["validation"].get("accuracy"),
        "test": best_test,
        "validation": best["validation"],
        "last_checkpoint": {
            "step": final_step,
            "test_accuracy": last_test.get("accuracy"),
            "test_loss": last_test["loss"],
            "validation_accuracy": last_val.get("accuracy"),
            "test": last_test,
        },
        **reference,
        "num_train_steps": num_steps,
        "steps_trained": final_step,
        "time_budget_s": budget,
        "attention": models.attention_kind(config.model),
        "dataset": "/".join(
            str(x) for x in (config.data.name, config.data.get("builder_config")) if x
        ),
        "num_parameters": params_count,
        "wall_time_s": round(time.time() - start_time, 1),
        "train_steps_per_s": round(train_steps_per_s, 3) if final_step > start_step else None,
        "train_tokens_per_s": round(train_steps_per_s * config.data.batch_size * seq_len, 1)
        if final_step > start_step and seq_len  # None for data without a length (images)
        else None,
        "devices": f"{jax.device_count()} x {jax.devices()[0].platform}",
    }
    if is_chief:
        # Written whole or not at all: a sweep treats a readable results.json as "done".
        path = os.path.join(workdir, "results.json")
        with open(path + ".tmp", "w") as f:
            json.dump(results, f, indent=2)
        os.replace(path + ".tmp", path)
    logging.info(
        "test %s %.4f (best-validation checkpoint, step %d); last checkpoint %.4f; %s",
        train_cfg.best_metric,
        best_test[train_cfg.best_metric],
        best_step,
        last_test[train_cfg.best_metric],
        " ".join(f"{k} {v:.4f}" for k, v in reference.items()),
    )
    return results
