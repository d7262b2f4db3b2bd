"""The sweep's results table, built from the files of its root alone (layout.py).

`<root>/results.json`:
  {"sweep": {"config", "overrides", "root"},
   "points": [{"name", "overrides", "status", "workdir", "metric", "test", "validation",
               "test_accuracy", "validation_accuracy", "steps", "checkpoint_step",
               "wall_time_s", "exit_code"?, "error"?}],
   "seed_groups": [{"overrides", "seeds", "points", "num_points", "num_done",
                    "test_mean", "test_std", "validation_mean", "validation_std",
                    "test_accuracy_mean", "test_accuracy_std",
                    "validation_accuracy_mean", "validation_accuracy_std"}]}
`<root>/results.md`: the same as two tables.

`metric` is the run's checkpoint-selection metric (`train.best_metric`: accuracy for
classifiers, bits_per_byte for language models, mse for forecasters); `test` and `validation`
are its values for the best-validation checkpoint, and the tables show that metric.
test_accuracy / validation_accuracy are the same checkpoint's accuracies (None where the task
has none); steps is the last trained step;
wall_time_s is the trainer's own, which covers its last process only when the point was resumed.
A seed group gathers the points whose overrides differ only in `train.seed`; its mean and
sample standard deviation (n - 1) are over the done points, whose seeds are listed.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence
from typing import Any

from jaxattn.sweeps import layout, points

SEED_PATH = "train.seed"


def point_row(root: str, name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    workdir = layout.point_dir(root, name)
    row: dict[str, Any] = {
        "name": name,
        "overrides": overrides,
        "status": layout.status(workdir),
        "workdir": workdir,
    }
    results = layout.point_results(workdir)
    if results is not None:
        last = results.get("last_checkpoint") or {}
        metric = results.get("best_metric") or "accuracy"
        row.update(
            metric=metric,
            test=(results.get("test") or {}).get(metric, results.get(f"test_{metric}")),
            validation=(results.get("validation") or {}).get(
                metric, results.get(f"validation_{metric}")
            ),
            test_accuracy=results.get("test_accuracy"),
            validation_accuracy=results.get("validation_accuracy"),
            steps=last.get("step", results.get("num_train_steps")),
            checkpoint_step=results.get("checkpoint_step"),
            wall_time_s=results.get("wall_time_s"),
        )
    elif row["status"] == layout.ERROR:
        failure = layout.failure(workdir) or {}
        row.update(exit_code=failure.get("exit_code"), error=failure.get("error", ""))
    return row


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n - 1); std is None for fewer than two values."""
    if not values:
        return None, None
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def seed_groups(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Groups of >= 2 points whose overrides are equal except for `train.seed`."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if SEED_PATH not in row["overrides"]:
            continue
        rest = {k: v for k, v in row["overrides"].items() if k != SEED_PATH}
        groups.setdefault(points.overrides_key(rest), []).append(row)
    out = []
    for members in groups.values():
        if len(members) < 2:
            continue
        done = [r for r in members if r["status"] == layout.DONE]
        group: dict[str, Any] = {
            "overrides": {k: v for k, v in members[0]["overrides"].items() if k != SEED_PATH},
            "seeds": [r["overrides"][SEED_PATH] for r in done],
            "points": [r["name"] for r in members],
            "num_points": len(members),
            "num_done": len(done),
        }
        for metric in ("test", "validation", "test_accuracy", "validation_accuracy"):
            values = [float(r[metric]) for r in done if _is_number(r.get(metric))]
            group[f"{metric}_mean"], group[f"{metric}_std"] = mean_std(values)
        out.append(group)
    return out


def collect(root: str, sweep: dict[str, Any]) -> dict[str, Any]:
    """The results document of the sweep described by `sweep` (the root's sweep.json)."""
    rows = [point_row(root, p["name"], p["overrides"]) for p in sweep["points"]]
    return {
        "sweep": {"config": sweep["config"], "overrides": sweep["overrides"], "root": root},
        "points": rows,
        "seed_groups": seed_groups(rows),
    }


def _value(row: dict[str, Any], split: str, metric: str) -> Any:
    """A point's value of the table's metric (its accuracy field for results written before
    results.json named its metric)."""
    if row.get("metric", metric) == metric and row.get(split) is not None:
        return row[split]
    return row.get(f"{split}_{metric}")


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _acc(x: Any) -> str:
    return f"{x:.4f}" if _is_number(x) else "-"


def _mean_std(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "-"
    return f"{mean:.4f} ± {std:.4f}" if std is not None else f"{mean:.4f} (one seed)"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    return [line(header), "|" + "---|" * len(header), *(line(r) for r in rows)]


def table_metric(rows: Sequence[dict[str, Any]]) -> str:
    """The metric the tables show: the points' checkpoint-selection metric (the most common one
    among the points that have one; accuracy when none has finished)."""
    names = [r["metric"] for r in rows if r.get("metric")]
    return max(set(names), key=names.count) if names else "accuracy"


def _metric_label(metric: str) -> str:
    return {"accuracy": "acc", "bits_per_byte": "bits/byte"}.get(metric, metric)


def markdown(doc: dict[str, Any]) -> str:
    sweep, rows = doc["sweep"], doc["points"]
    metric = table_metric(rows)
    shown = _metric_label(metric)
    paths = list(dict.fromkeys(p for r in rows for p in r["overrides"]))
    label = points.labels(paths)
    counts = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    shared = ", ".join(f"{k}={points.format_label_value(v)}" for k, v in sweep["overrides"].items())
    out = [
        f"# Sweep of {sweep['config']}",
        "",
        f"Root `{sweep['root']}`; shared overrides: {shared or 'none'}; "
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        + f". test {metric}: the best-validation checkpoint's; wall time: the trainer's last "
        "process.",
        "",
    ]
    table = []
    for r in rows:
        status = r["status"]
        if status == layout.ERROR:
            status = f"error (exit {r.get('exit_code')}): {str(r.get('error', ''))[:160]}"
        wall = r.get("wall_time_s")
        table.append(
            [
                r["name"],
                status,
                *(
                    points.format_label_value(r["overrides"][p]) if p in r["overrides"] else ""
                    for p in paths
                ),
                _acc(_value(r, "test", metric)),
                _acc(_value(r, "validation", metric)),
                str(r["steps"]) if r.get("steps") is not None else "-",
                f"{wall:.0f} s" if _is_number(wall) else "-",
            ]
        )
    header = ["point", "status", *(label[p] for p in paths)]
    out += _table(header + [f"test {shown}", f"val {shown}", "steps", "wall"], table)
    if doc["seed_groups"]:
        out += ["", "## Over seeds (mean ± sample std over the done points)", ""]
        grouped = []
        for g in doc["seed_groups"]:
            rest = ",".join(
                f"{label.get(k, k)}={points.format_label_value(v)}"
                for k, v in g["overrides"].items()
            )
            grouped.append(
                [
                    rest or "(base)",
                    ", ".join(str(s) for s in g["seeds"]) or "-",
                    f"{g['num_done']}/{g['num_points']}",
                    _mean_std(g["test_mean"], g["test_std"]),
                    _mean_std(g["validation_mean"], g["validation_std"]),
                ]
            )
        out += _table(["overrides", "seeds", "done", f"test {shown}", f"val {shown}"], grouped)
    return "\n".join(out) + "\n"


def write(root: str, doc: dict[str, Any]) -> tuple[str, str]:
    """Writes results.json and results.md into `root`; returns their paths."""
    json_path = os.path.join(root, layout.RESULTS_FILE)
    md_path = os.path.join(root, "results.md")
    layout.write_json(json_path, doc)
    layout.write_text(md_path, markdown(doc))
    return json_path, md_path
