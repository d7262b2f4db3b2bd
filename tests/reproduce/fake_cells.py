"""Fabricated reproduction cells: a cell's sweep.json and its seed workdirs, as runs leave them."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from jaxattn.reproduce import grid
from jaxattn.sweeps import layout

ERROR, INTERRUPTED, PENDING = "error", "interrupted", "pending"


def write_cell(
    cell: grid.Cell, seeds: Mapping[int, float | str], *, wall_time_s: float = 10.0
) -> None:
    """`seeds` maps each seed to a test accuracy (0..1, a done run) or ERROR / INTERRUPTED /
    PENDING (no workdir)."""
    pts = grid.seed_points(list(seeds))
    os.makedirs(cell.dir, exist_ok=True)
    layout.write_json(
        os.path.join(cell.dir, layout.SWEEP_FILE), layout.sweep_doc(cell.spec, {}, pts)
    )
    for point, state in zip(pts, seeds.values(), strict=True):
        workdir = layout.point_dir(cell.dir, point.name)
        if state == PENDING:
            continue
        os.makedirs(workdir, exist_ok=True)
        if state == ERROR:
            layout.record_failure(workdir, 1, "ValueError: boom in the trainer")
        elif state == INTERRUPTED:
            with open(os.path.join(workdir, layout.METRICS_FILE), "w") as f:
                f.write("{}\n")
        else:
            with open(os.path.join(workdir, layout.RESULTS_FILE), "w") as f:
                json.dump(
                    {
                        "test_accuracy": state,
                        "validation_accuracy": state,
                        "checkpoint_step": 2,
                        "wall_time_s": wall_time_s,
                        "last_checkpoint": {"step": 3, "test_accuracy": state},
                    },
                    f,
                )
