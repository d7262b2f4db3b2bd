"""lra_table.png: the reproduction table as a colored grid (rows kinds, columns tasks + Avg).

Each cell prints ours (mean ± std, n; * when some of its seeds are missing) over the published
number; its color is the difference ours − published (red below, blue above, white equal,
clipped at ±DIFF_RANGE points). Cells without a difference are grey: not run, error, no config,
no published number, Path-X (FAIL)."""

from __future__ import annotations

from typing import Any

from jaxattn.reproduce import table

DIFF_RANGE = 15.0  # percentage points at full color


def _cell_lines(cell: dict[str, Any]) -> tuple[str, str]:
    status = cell["status"]
    if status in (table.DONE, table.PARTIAL):
        std = f" ± {cell['std']:.2f}" if cell["std"] is not None else ""
        ours = f"{cell['mean']:.2f}{std} (n={cell['n']})"
        if status == table.PARTIAL:
            ours += "*"
    else:
        ours = {
            table.NO_CONFIG: "no config",
            table.ERROR: "error",
            table.INTERRUPTED: "interrupted",
        }.get(status, "—")
    pub = cell["published"]
    pub_text = (
        "pub —" if pub is None else f"pub {pub}" if isinstance(pub, str) else f"pub {pub:.2f}"
    )
    return ours, pub_text


def _average_lines(avg: dict[str, Any]) -> tuple[str, str]:
    ours = f"{avg['mean']:.2f}" if avg["status"] == "complete" else f"incomplete ({avg['count']}/5)"
    pub = avg["published"]
    return ours, ("pub —" if pub is None else f"pub {pub:.2f}")


def write_png(doc: dict[str, Any], path: str) -> bool:
    """Draws the table of `doc` (table.collect) into `path`; False (nothing written) when
    matplotlib is not installed (pip install -r requirements-bench.txt)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib import colors
    except ImportError:
        return False

    tasks = doc["grid"]["tasks"]
    columns = [table.TASK_LABELS.get(t, t) for t in tasks] + ["Avg (5 tasks)"]
    rows = doc["rows"]
    n_rows, n_cols = max(len(rows), 1), len(columns)
    fig, ax = plt.subplots(figsize=(2.3 + 2.0 * n_cols, 1.6 + 0.62 * n_rows))
    cmap = plt.get_cmap("RdBu")
    norm = colors.Normalize(-DIFF_RANGE, DIFF_RANGE)
    for i, row in enumerate(rows):
        entries = [row["cells"][t] for t in tasks] + [row["average"]]
        for j, entry in enumerate(entries):
            diff = entry["diff"]
            face = (
                cmap(norm(max(-DIFF_RANGE, min(DIFF_RANGE, diff)))) if diff is not None else "0.9"
            )
            ax.add_patch(plt.Rectangle((j, i), 1, 1, facecolor=face, edgecolor="white"))
            ours, pub = _average_lines(entry) if j == len(tasks) else _cell_lines(entry)
            delta = f"  Δ {diff:+.2f}" if diff is not None else ""
            dark = diff is not None and abs(diff) > 0.6 * DIFF_RANGE  # white text on dark cells
            ink, faint = ("white", "0.92") if dark else ("black", "0.25")
            ax.text(j + 0.5, i + 0.38, ours, ha="center", va="center", fontsize=8.5, color=ink)
            ax.text(
                j + 0.5, i + 0.7, pub + delta, ha="center", va="center", fontsize=7.5, color=faint
            )
    ax.set_xlim(0, n_cols)
    ax.set_ylim(n_rows, 0)
    ax.set_xticks([j + 0.5 for j in range(n_cols)], columns)
    ax.xaxis.tick_top()
    ax.set_yticks(
        [i + 0.5 for i in range(len(rows))],
        [f"{r['kind']}\n{r['published']['describe']}" for r in rows],
        fontsize=8,
    )
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    seeds = ", ".join(map(str, doc["grid"]["seeds"]))
    fig.suptitle(
        f"{table.title(doc)}\nours: test accuracy % (mean ± std over n seeds; asked {seeds}); "
        "color: ours − published",
        fontsize=10,
    )
    fig.colorbar(
        plt.cm.ScalarMappable(norm=norm, cmap=cmap),
        ax=ax,
        fraction=0.025,
        pad=0.01,
        label="ours − published (points)",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
