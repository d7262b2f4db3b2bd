"""The reproduction table: built from the cells' files alone, written as JSON and Markdown.

`<grid>/lra_table.json`:
  {"grid": {"root", "dir", "setup", "size", "config_arg", "tasks", "kinds", "seeds",
            "overrides", "comparable"},
   "rows": [{"kind", "config", "published": published.Published.to_json(),
             "cells": {task: cell}, "average": {"status", "mean", "count", "published", "diff"}}],
   "wall_time_s", "num_runs_done"}
  cell: {"task", "kind", "dir", "status", "seeds", "n", "accuracies" {seed: %}, "mean", "std",
         "published" (% | "FAIL" | null), "diff", "wall_time_s", "errors" [{"point", "error"}],
         "num_points", "num_interrupted", "num_pending"}

Accuracies are percent: the trainer's `test_accuracy` (the best-validation checkpoint's) of each
seed, mean and sample std (n - 1) over the done seeds: every `seed=<s>` point of the cell's
sweep counts, also seeds recorded by an earlier run with other `--seeds`. Cell status: done (every seed point of the
cell done), partial (some), error (none done, one failed), interrupted (none done, one stopped),
not_run (no sweep or nothing launched), no_config (the kind has no configs/lra_<kind>.py, or the
LRA models cannot run it: then "unservable" gives why and Markdown shows "n/a").
Numbers appear only for measured runs. A row's average is the mean of its five non-Path-X cells
(LRA.md pitfall 17) when all five have a number, else status "incomplete" with their count.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from jaxattn.reproduce import grid, published
from jaxattn.sweeps import layout, results

TABLE_NAME = "lra_table"
TASK_LABELS = {
    "listops": "ListOps",
    "text": "Text",
    "retrieval": "Retrieval",
    "image": "Image",
    "pathfinder": "Pathfinder",
    "pathx": "Path-X",
}
DONE, PARTIAL, ERROR, INTERRUPTED, NOT_RUN, NO_CONFIG = (
    "done",
    "partial",
    "error",
    "interrupted",
    "not_run",
    "no_config",
)
MIN_SEEDS = 3  # a reproduced cell is reported over at least this many seeds


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def collect_cell(
    cell: grid.Cell, published_value: float | str | None, error: str | None = None
) -> dict[str, Any]:
    """One cell from its sweep root (`cell.dir`); `error` is a config error found when planning."""
    out: dict[str, Any] = {
        "task": cell.task,
        "kind": cell.kind,
        "dir": cell.dir,
        "status": NOT_RUN,
        "seeds": [],
        "n": 0,
        "accuracies": {},
        "mean": None,
        "std": None,
        "published": published_value,
        "diff": None,
        "wall_time_s": 0.0,
        "errors": [],
        "num_points": 0,
        "num_interrupted": 0,
        "num_pending": 0,
    }
    if cell.config is None:
        out["status"] = NO_CONFIG
        if cell.unservable:
            out["unservable"] = cell.unservable
        return out
    if error is not None:
        out.update(status=ERROR, errors=[{"point": None, "error": error}])
        return out
    sweep = layout.read_sweep(cell.dir)
    if sweep is None:
        return out
    rows = [
        r
        for r in results.collect(cell.dir, sweep)["points"]
        if list(r["overrides"]) == [grid.SEED_PATH]  # other points are not this setup's runs
    ]
    done, wall = {}, 0.0
    for r in rows:
        seed = r["overrides"][grid.SEED_PATH]
        if r["status"] == layout.DONE and _is_number(r.get("test_accuracy")):
            done[seed] = 100.0 * float(r["test_accuracy"])
            wall += float(r["wall_time_s"]) if _is_number(r.get("wall_time_s")) else 0.0
        elif r["status"] == layout.DONE:
            out["errors"].append(
                {"point": r["name"], "error": "results.json holds no finite test_accuracy"}
            )
        elif r["status"] == layout.ERROR:
            reason = f"exit {r.get('exit_code')}: {r.get('error') or 'no output'}"
            out["errors"].append({"point": r["name"], "error": reason})
        elif r["status"] == layout.INTERRUPTED:
            out["num_interrupted"] += 1
        else:
            out["num_pending"] += 1
    mean, std = results.mean_std(list(done.values()))
    seeds = sorted(done)
    out.update(
        seeds=seeds,
        n=len(done),
        accuracies={str(s): done[s] for s in seeds},
        mean=mean,
        std=std,
        wall_time_s=wall,
        num_points=len(rows),
    )
    if done:
        out["status"] = DONE if len(done) == len(rows) else PARTIAL
        if _is_number(published_value):
            out["diff"] = mean - published_value
    elif out["errors"]:
        out["status"] = ERROR
    elif out["num_interrupted"]:
        out["status"] = INTERRUPTED
    return out


def row_average(cells: Mapping[str, dict[str, Any]], pub: published.Published) -> dict[str, Any]:
    """The mean over the five non-Path-X tasks when all five cells have a number."""
    means = [cells[t]["mean"] for t in published.AVERAGE_TASKS if t in cells]
    means = [m for m in means if m is not None]
    complete = len(means) == len(published.AVERAGE_TASKS)
    mean = sum(means) / len(means) if complete else None
    pub_avg = pub.average()
    return {
        "status": "complete" if complete else "incomplete",
        "count": len(means),
        "mean": mean,
        "published": pub_avg,
        "diff": mean - pub_avg if complete and pub_avg is not None else None,
    }


def collect(
    cells: Sequence[grid.Cell],
    rows: Sequence[grid.Row],
    *,
    root: str,
    setup: str,
    size: str,
    tasks: Sequence[str],
    seeds: Sequence[int],
    config_arg: str = "",
    overrides: Mapping[str, Any] | None = None,
    errors: Mapping[tuple[str, str], str] | None = None,
    repo_root: str = "",
) -> dict[str, Any]:
    """The table document (module docstring) of `cells`; `errors` maps (task, kind) to the
    config error found when planning that cell."""
    overrides = dict(overrides or {})
    errors = errors or {}
    by_key = {(c.task, c.kind): c for c in cells}
    doc_rows, wall, runs = [], 0.0, 0
    for row in rows:
        config_path = os.path.join(repo_root, row.config) if row.config else None
        pub = published.lookup(published.model_of(row.kind, overrides, config_path), setup)
        row_cells = {}
        for task in tasks:
            cell = by_key[(task, row.kind)]
            c = collect_cell(cell, pub.value(task), errors.get((task, row.kind)))
            row_cells[task] = c
            wall += c["wall_time_s"]
            runs += c["n"]
        doc_rows.append(
            {
                "kind": row.kind,
                "config": row.config,
                "published": pub.to_json() | {"describe": pub.describe()},
                "cells": row_cells,
                "average": row_average(row_cells, pub),
            }
        )
    return {
        "grid": {
            "root": root,
            "dir": os.path.join(root, grid.grid_name(setup, size, config_arg)),
            "setup": setup,
            "size": size,
            "config_arg": config_arg,
            "tasks": list(tasks),
            "kinds": [r.kind for r in rows],
            "seeds": list(seeds),
            "overrides": overrides,
            "comparable": size == "base" and not config_arg,
        },
        "rows": doc_rows,
        "wall_time_s": wall,
        "num_runs_done": runs,
    }


# ----------------------------------------------------------------------------- Markdown
def _pct(x: float) -> str:
    return f"{x:.2f}"


def _pub(value: float | str | None) -> str:
    if value is None:
        return "—"
    return value if isinstance(value, str) else _pct(value)


def _ours(cell: dict[str, Any]) -> str:
    if cell["std"] is not None:
        return f"{_pct(cell['mean'])} ± {_pct(cell['std'])} (n={cell['n']})"
    return f"{_pct(cell['mean'])} (n={cell['n']})"


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class _Notes:
    """Numbered footnotes; the same text gets the same number."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def mark(self, text: str) -> str:
        if text not in self.texts:
            self.texts.append(text)
        return f"[{self.texts.index(text) + 1}]"


def _cell_text(cell: dict[str, Any], notes: _Notes) -> str:
    status = cell["status"]
    if status == NO_CONFIG:
        return "n/a" if cell.get("unservable") else "no config"
    where = f"{cell['task']}/{cell['kind']}"
    if status in (DONE, PARTIAL):
        ours = _ours(cell)
        if status == PARTIAL:
            ours += " " + notes.mark(
                f"{where}: {cell['n']} of {cell['num_points']} seed runs done"
                + "".join(f"; {e['point']} error: {e['error'][:200]}" for e in cell["errors"])
            )
    elif status == ERROR:
        reasons = "; ".join(
            (f"{e['point']}: " if e["point"] else "") + e["error"][:300] for e in cell["errors"]
        )
        ours = "error " + notes.mark(f"{where}: {reasons}")
    elif status == INTERRUPTED:
        ours = "— (interrupted)"
    else:
        ours = "—"
    parts = [ours, _pub(cell["published"])]
    if cell["diff"] is not None:
        parts.append(f"{cell['diff']:+.2f}")
    return " · ".join(parts)


def _average_text(avg: dict[str, Any]) -> str:
    ours = _pct(avg["mean"]) if avg["status"] == "complete" else f"incomplete ({avg['count']}/5)"
    parts = [ours, _pub(avg["published"])]
    if avg["diff"] is not None:
        parts.append(f"{avg['diff']:+.2f}")
    return " · ".join(parts)


def title(doc: dict[str, Any]) -> str:
    g = doc["grid"]
    what = f"setup={g['setup']}, size={g['size']}" + (
        f", config string +{g['config_arg']}" if g["config_arg"] else ""
    )
    if g["comparable"]:
        return f"LRA reproduction ({what})"
    return f"LRA grid ({what}): NOT comparable to the published numbers"


def markdown(doc: dict[str, Any]) -> str:
    g = doc["grid"]
    tasks = g["tasks"]
    notes = _Notes()
    out = [f"# {title(doc)}", ""]
    if not g["comparable"]:
        reasons = []
        if g["size"] != "base":
            reasons.append(
                f"size={g['size']} trains on reduced data with fewer steps (configs/lra_base.py)"
            )
        if g["config_arg"]:
            reasons.append(f"the config string adds `{g['config_arg']}`")
        out += [
            f"**Not comparable: {'; '.join(reasons)}. The published numbers are shown for "
            "orientation only; the difference is not a reproduction gap.**",
            "",
        ]
    overrides = ", ".join(f"{k}={v}" for k, v in g["overrides"].items())
    out += [
        "Each cell: ours · published · difference (percentage points). Ours is the test "
        "accuracy (%) of the best-validation checkpoint, mean ± sample std over the n seeds "
        "that finished; — not run; FAIL: no published model learned Path-X (chance, 50%). "
        "Avg: the mean over the 5 non-Path-X tasks (LRA convention), only when all 5 exist. "
        f"Seeds asked: {', '.join(map(str, g['seeds']))}. Overrides: {overrides or 'none'}.",
        "",
    ]
    header = ["kind", "compared to", *(TASK_LABELS.get(t, t) for t in tasks), "Avg (5 tasks)"]
    lines = []
    for row in doc["rows"]:
        cells = [_cell_text(row["cells"][t], notes) for t in tasks]
        lines.append(
            [row["kind"], row["published"]["describe"], *cells, _average_text(row["average"])]
        )
    out += _table(header, lines)
    out += ["", _wall_line(doc), ""]
    out += _footnotes(doc, notes)
    return "\n".join(out) + "\n"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    return [line(header), "|" + "---|" * len(header), *(line(r) for r in rows)]


def _wall_line(doc: dict[str, Any]) -> str:
    return (
        f"Wall time: {format_duration(doc['wall_time_s'])} ({doc['wall_time_s']:.0f} s), the sum "
        f"of the trainers' wall_time_s over the {doc['num_runs_done']} finished runs (a resumed "
        "run counts its last process only)."
    )


def _footnotes(doc: dict[str, Any], notes: _Notes) -> list[str]:
    out = []
    seed_sets: dict[tuple, list[str]] = {}
    few: dict[int, list[str]] = {}  # n -> the cells reported with n < MIN_SEEDS seeds
    for row in doc["rows"]:
        for task, cell in row["cells"].items():
            if cell["n"]:
                seed_sets.setdefault(tuple(cell["seeds"]), []).append(f"{task}/{row['kind']}")
                if cell["n"] < MIN_SEEDS:
                    few.setdefault(cell["n"], []).append(f"{task}/{row['kind']}")
    if seed_sets:
        if len(seed_sets) == 1:
            (seeds,) = seed_sets
            out.append(f"- Seeds of every reported cell: {', '.join(map(str, seeds))}.")
        else:
            out.append("- Seeds per reported cell:")
            for seeds, where in seed_sets.items():
                out.append(f"  - {', '.join(map(str, seeds))}: {', '.join(where)}")
    if few:
        reported = sum(map(len, seed_sets.values()))
        # One line per seed count; a count that covers every reported cell says so instead of
        # listing them all (a size=small grid has ~80 one-seed cells).
        groups = [
            f"n={n}: every reported cell ({len(where)})"
            if len(where) == reported
            else f"n={n}: {', '.join(where)}"
            for n, where in sorted(few.items())
        ]
        out.append(
            f"- Fewer than {MIN_SEEDS} seeds (a mean, not yet a reproduction): {'; '.join(groups)}."
        )
    used = {}
    for row in doc["rows"]:
        source = row["published"]["source"]
        if source:
            used[source] = row["published"]["citation"]
    for name, citation in used.items():
        out.append(f"- {published.SOURCES[name].short}: {citation}.")
    if used:
        sinkhorn = any(
            r["published"]["model"] == "sinkhorn" and r["published"]["source"] for r in doc["rows"]
        )
        out.append(
            "- Published averages are the 5-task means recomputed from the per-task numbers "
            "(LRA.md pitfall 17; S4-era tables average 6 tasks with Path-X = 50)"
            + (
                "; LRA prints Sinkhorn's as 51.29 (README) / 51.39 (paper), its five average 51.48."
                if sinkhorn
                else "."
            )
        )
    setup = doc["grid"]["setup"]
    first = published.SETUP_SOURCES[setup][0].name
    others = sorted(
        {r["kind"] for r in doc["rows"] if r["published"]["source"] not in (None, first)}
    )
    if others:
        out.append(
            f"- setup={setup} compares with {published.SOURCES[first].label} where it has the "
            "kind's model; these rows use another source (the 'compared to' column; measured "
            f"under that paper's own setup): {', '.join(others)}."
        )
    for i, text in enumerate(notes.texts, 1):
        out.append(f"- [{i}] {text}")
    return out


def write(doc: dict[str, Any], *, png: bool = True) -> list[str]:
    """Writes lra_table.md, lra_table.json and lra_table.png (when matplotlib is installed) into
    the grid's directory; returns the paths written."""
    from jaxattn.reproduce import plot  # imports matplotlib only when it draws

    directory = doc["grid"]["dir"]
    os.makedirs(directory, exist_ok=True)
    base = os.path.join(directory, TABLE_NAME)
    layout.write_json(base + ".json", doc)
    layout.write_text(base + ".md", markdown(doc))
    paths = [base + ".md", base + ".json"]
    if png and plot.write_png(doc, base + ".png"):
        paths.append(base + ".png")
    return paths
