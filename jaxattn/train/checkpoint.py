"""Orbax checkpoints: the latest state (for resume) and the best-validation params.

Layout under the workdir:
  checkpoints/<step>/       full TrainState, every `checkpoint_every_steps` and at the end
  checkpoints_best/<step>/  params + {'step', 'metric', 'value'} of the best validation eval
Orbax writes to a temporary directory and renames it when complete, so a run killed mid-save
leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
from typing import Any

import orbax.checkpoint as ocp

from jaxattn import errors
from jaxattn.train.state import TrainState


def latest_manager(workdir: str, *, max_to_keep: int) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(
        os.path.abspath(os.path.join(workdir, "checkpoints")),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
    )


def best_manager(workdir: str) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(
        os.path.abspath(os.path.join(workdir, "checkpoints_best")),
        options=ocp.CheckpointManagerOptions(max_to_keep=1, create=True),
    )


def _as_tree(state: TrainState) -> dict[str, Any]:
    """The saved tree: {step, params, opt_state} plus model_state only when a model has one, so
    checkpoints of stateless models keep one layout."""
    tree = {"step": state.step, "params": state.params, "opt_state": state.opt_state}
    if state.model_state:
        tree["model_state"] = state.model_state
    return tree


def save_state(manager: ocp.CheckpointManager, step: int, state: TrainState) -> None:
    manager.save(step, args=ocp.args.StandardSave(_as_tree(state)), force=True)


def restore_state(
    manager: ocp.CheckpointManager, step: int, abstract_state: TrainState
) -> TrainState:
    """Restores into `abstract_state` (ShapeDtypeStructs with shardings): arrays land sharded."""
    try:
        tree = manager.restore(step, args=ocp.args.StandardRestore(_as_tree(abstract_state)))
    except Exception as e:  # orbax raises many types for damaged or mismatched files
        raise _restore_error(manager, step, e) from e
    return TrainState(
        step=tree["step"],
        params=tree["params"],
        opt_state=tree["opt_state"],
        model_state=tree.get("model_state", {}),
    )


def save_best(manager: ocp.CheckpointManager, step: int, params: Any, meta: dict[str, Any]) -> None:
    manager.save(
        step,
        args=ocp.args.Composite(params=ocp.args.StandardSave(params), meta=ocp.args.JsonSave(meta)),
        force=True,
    )


def best_meta(manager: ocp.CheckpointManager) -> dict[str, Any] | None:
    """The metadata of the kept best checkpoint, or None if there is none."""
    step = manager.latest_step()
    if step is None:
        return None
    try:
        return dict(
            manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        )
    except Exception as e:
        raise _restore_error(manager, step, e) from e


def restore_best_params(manager: ocp.CheckpointManager, abstract_params: Any) -> tuple[int, Any]:
    step = manager.latest_step()
    try:
        restored = manager.restore(
            step, args=ocp.args.Composite(params=ocp.args.StandardRestore(abstract_params))
        )
    except Exception as e:
        raise _restore_error(manager, step, e) from e
    return step, restored["params"]


def _restore_error(
    manager: ocp.CheckpointManager, step: int, e: Exception
) -> errors.CheckpointError:
    path = os.path.join(str(manager.directory), str(step))
    first_line = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    return errors.CheckpointError(
        f"checkpoint {path} could not be restored ({type(e).__name__}: {first_line}); nothing was deleted: "
        f"move that directory aside to resume from an earlier checkpoint, or use a new --workdir"
    )
