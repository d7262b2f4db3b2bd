"""Tasks: per-task loss, metrics and batch adaptor, looked up by `config.task.name`."""

from __future__ import annotations

import types

from jaxattn import errors
from jaxattn.tasks import classification, matching

TASKS: dict[str, types.ModuleType] = {
    "classification": classification,
    "matching": matching,
}


def get_task(name: str) -> types.ModuleType:
    if name not in TASKS:
        raise errors.ConfigError(
            f"unknown task '{name}'; available tasks: {', '.join(sorted(TASKS))}"
        )
    return TASKS[name]
