"""Trained in-context regression error against the number of heads, beside ridge and one-step GD.

    python -m experiments.sweep --config=configs/icl_regression.py --workdir_root=runs/icl \\
        --sweep=model.num_heads=1,2,4,8
    python scripts/icl_regression_plot.py --workdir_root=runs/icl [--out=runs/icl/icl_heads.png]

Reads every finished run under the root (config.json + results.json), groups them by attention
kind, and draws test MSE (mean over seeds, with each seed as a dot) against the number of heads,
with the test prompts' ridge (Bayes-optimal), best one-step GD and zero-predictor errors as
horizontal lines. Prints the numbers as a Markdown table too. Needs matplotlib
(requirements-bench.txt).
"""

import argparse
import collections
import json
import pathlib
import sys


def collect(root: pathlib.Path) -> list[dict]:
    rows = []
    for results_path in sorted(root.glob("**/results.json")):
        config_path = results_path.parent / "config.json"
        if not config_path.is_file():  # the sweep's own results.json, not a trainer workdir
            continue
        config = json.loads(config_path.read_text())
        results = json.loads(results_path.read_text())
        if config.get("task", {}).get("name") != "icl_regression":
            continue
        rows.append(
            {
                "kind": config["model"]["attention"]["kind"],
                "heads": int(config["model"]["num_heads"]),
                "seed": int(config["train"]["seed"]),
                "mse": float(results["test"]["mse"]),
                **{k: results[k] for k in results if k.startswith("test_") and k.endswith("_mse")},
            }
        )
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir_root", required=True)
    parser.add_argument("--out", default=None, help="PNG path (default <root>/icl_heads.png)")
    args = parser.parse_args(argv)
    root = pathlib.Path(args.workdir_root)
    rows = collect(root)
    if not rows:
        print(f"error: no finished icl_regression runs under {root}", file=sys.stderr)
        sys.exit(2)
    by_kind = collections.defaultdict(lambda: collections.defaultdict(list))
    for r in rows:
        by_kind[r["kind"]][r["heads"]].append(r["mse"])
    reference = {k: rows[0][k] for k in rows[0] if k.startswith("test_")}
    print("| kind | heads | test MSE (mean over seeds) | seeds |")
    print("|---|---|---|---|")
    for kind, per_heads in sorted(by_kind.items()):
        for heads, values in sorted(per_heads.items()):
            print(f"| {kind} | {heads} | {sum(values) / len(values):.4f} | {len(values)} |")
    print(" ".join(f"{k} {v:.4f}" for k, v in reference.items()))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for kind, per_heads in sorted(by_kind.items()):
        heads = sorted(per_heads)
        means = [sum(per_heads[h]) / len(per_heads[h]) for h in heads]
        ax.plot(heads, means, marker="o", label=f"trained {kind}")
        for h in heads:
            ax.scatter([h] * len(per_heads[h]), per_heads[h], s=8, color="gray")
    styles = {
        "test_ridge_mse": ("ridge (Bayes-optimal)", "k--"),
        "test_one_step_gd_mse": ("one-step GD (best η)", "k:"),
        "test_zero_mse": ("zero predictor", "k-."),
    }
    for key, (label, style) in styles.items():
        if key in reference:
            ax.axhline(reference[key], linestyle=style[1:], color="k", label=label, linewidth=1)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("attention heads")
    ax.set_ylabel("test MSE of the query's y")
    ax.set_title("In-context linear regression")
    ax.legend(fontsize=8)
    out = pathlib.Path(args.out) if args.out else root / "icl_heads.png"
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
