"""Benchmark output: ratios to the references, Markdown tables, PNG plots.

JSON schema (`results.json`): {"schema": 1, "machine": {...}, "settings": {...},
"results": [worker result, ...]} where each worker result is described in `worker`'s docstring
(with --passes > 1 the kept result also has pass_times: the forward+backward time, or forward
time, of every ok pass) and gains, here, the derived fields:
  speed_vs_torch, speed_vs_jax: reference time / this time for forward+backward (> 1 = faster
    than the reference), from the reference measured in the same run at the same shape, dtype
    and mask; forward_speed_vs_torch, forward_speed_vs_jax likewise for the forward alone.
  gflops: model GFLOP/s of forward+backward (`cases.attention_flops`), exact kinds only.
  fraction_of_matmul: gflops / the GFLOP/s of `ref:matmul` at the same size and dtype.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jaxattn.bench import cases

EXACT = ("softmax", "softmax_xla", "softmax_chunked", "ref:jax_dpa", "ref:torch_sdpa")
SCALING_FROM = 4096  # the linear-kinds scaling target starts here


def _shape_key(case: dict[str, Any]) -> tuple:
    return tuple(case[k] for k in ("seq_len", "batch", "heads", "head_dim", "dtype", "mask"))


def derive(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adds the ratio fields to every ok result (in place) and returns the list."""
    refs: dict[tuple, dict[str, dict[str, Any]]] = {}
    for r in results:
        if r["status"] == "ok" and r["case"]["target"] in cases.REFERENCES:
            refs.setdefault(_shape_key(r["case"]), {})[r["case"]["target"]] = r
    matmul: dict[tuple, dict[str, Any]] = {}
    for r in results:
        c = r["case"]
        if r["status"] == "ok" and c["target"] == "ref:matmul":
            matmul[(c["seq_len"], c["batch"], c["heads"], c["head_dim"], c["dtype"])] = r
    for r in results:
        if r["status"] != "ok" or r["case"]["target"] == "ref:matmul":
            continue
        c = r["case"]
        same = refs.get(_shape_key(c), {})
        for name, ref in (("torch", "ref:torch_sdpa"), ("jax", "ref:jax_dpa")):
            other = same.get(ref)
            if other is None:
                continue
            if r.get("forward_backward_s") and other.get("forward_backward_s"):
                r[f"speed_vs_{name}"] = other["forward_backward_s"] / r["forward_backward_s"]
            if r.get("forward_s") and other.get("forward_s"):
                r[f"forward_speed_vs_{name}"] = other["forward_s"] / r["forward_s"]
        if c["target"] in EXACT and r.get("forward_backward_s"):
            flops = cases.attention_flops(cases.Case(**c))["forward_backward"]
            r["gflops"] = flops / r["forward_backward_s"] / 1e9
            mm = matmul.get((c["seq_len"], c["batch"], c["heads"], c["head_dim"], c["dtype"]))
            if mm:
                ceiling = mm["matmul_flops"] / mm["forward_s"] / 1e9
                r["matmul_gflops"] = ceiling
                r["fraction_of_matmul"] = r["gflops"] / ceiling
    return results


def _ms(seconds: float | None) -> str:
    return (
        "" if seconds is None else f"{seconds * 1e3:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"
    )


def _gib(n: int | None) -> str:
    return "" if n is None else f"{n / 2**30:.2f} GiB"


def _status(r: dict[str, Any]) -> str:
    return {"unsupported": "n/a", "oom": "OOM", "timeout": "timeout"}.get(r["status"], "error")


def _cell(r: dict[str, Any] | None) -> str:
    if r is None:
        return ""
    if r["status"] != "ok":
        return _status(r)
    if r["case"]["target"] == "ref:matmul":
        return f"{r['matmul_flops'] / r['forward_s'] / 1e9:.0f} GFLOP/s"
    t = r.get("forward_backward_s") or r.get("forward_s")
    ratios = [
        f"{r[k]:.2f}× {n}"
        for k, n in (("speed_vs_torch", "torch"), ("speed_vs_jax", "jax"))
        if k in r
    ]
    return _ms(t) + (f" ({', '.join(ratios)})" if ratios else "")


def _groups(results: list[dict[str, Any]]) -> dict[tuple, list[dict[str, Any]]]:
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in results:
        c = r["case"]
        groups.setdefault(
            (c["mask"], c["dtype"], c["batch"], c["heads"], c["head_dim"]), []
        ).append(r)
    return groups


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def markdown(doc: dict[str, Any]) -> str:
    results = doc["results"]
    out = ["# Attention benchmark", ""]
    m = doc.get("machine", {})
    out.append(
        f"Machine: {m.get('cpu_count')} CPUs, jax {m.get('jax')}, torch {m.get('torch') or 'absent'}"
        f"; {m.get('date', '')}; worker settings {m.get('worker_runtime', 'not recorded')}. "
        "Cells: forward+backward median time, and in brackets the speed "
        "relative to torch SDPA and jax.nn.dot_product_attention measured in the same run "
        "(> 1 = faster). ref:matmul row: the machine's matmul ceiling."
    )
    for (mask, dtype, B, N, H), group in sorted(_groups(results).items()):
        lens = sorted({r["case"]["seq_len"] for r in group})
        targets = list(dict.fromkeys(r["case"]["target"] for r in group))
        by = {(r["case"]["target"], r["case"]["seq_len"]): r for r in group}
        out += ["", f"## mask={mask} dtype={dtype} B={B} N={N} H={H}", ""]
        out += _table(
            ["target"] + [f"T={t}" for t in lens],
            ([t] + [_cell(by.get((t, n))) for n in lens] for t in targets),
        )
        exact = [r for r in group if r["case"]["target"] in EXACT and r["status"] == "ok"]
        if exact:
            out += ["", "Exact kinds:", ""]
            out += _table(
                [
                    "target",
                    "T",
                    "fwd",
                    "fwd+bwd",
                    "compile",
                    "GFLOP/s",
                    "of matmul",
                    "vs torch",
                    "vs jax",
                    "peak RSS",
                    "XLA temp",
                    "max err",
                ],
                (
                    [
                        r["case"]["target"],
                        str(r["case"]["seq_len"]),
                        _ms(r.get("forward_s")),
                        _ms(r.get("forward_backward_s")),
                        _ms(r.get("forward_backward_compile_s")),
                        f"{r['gflops']:.0f}" if "gflops" in r else "",
                        f"{r['fraction_of_matmul']:.0%}" if "fraction_of_matmul" in r else "",
                        f"{r['speed_vs_torch']:.2f}×" if "speed_vs_torch" in r else "",
                        f"{r['speed_vs_jax']:.2f}×" if "speed_vs_jax" in r else "",
                        _gib(r.get("rss_peak_bytes")),
                        _gib(r.get("xla_temp_bytes")),
                        f"{r['max_abs_error']:.1e}" if "max_abs_error" in r else "",
                    ]
                    for r in sorted(
                        exact, key=lambda r: (r["case"]["target"], r["case"]["seq_len"])
                    )
                ),
            )
        failed = [r for r in group if r["status"] not in ("ok", "unsupported")]
        if failed:
            out += ["", "Not measured:"]
            out += [
                f"- {r['case']['target']} T={r['case']['seq_len']}: {r['status']}: "
                f"{r.get('reason', '')}"
                for r in failed
            ]
    out += _scaling_table(results)
    return "\n".join(out) + "\n"


def _scaling_table(results: list[dict[str, Any]], start: int = SCALING_FROM) -> list[str]:
    """time(2T)/time(T) of forward+backward per doubling from T = start up (the issue's linear
    kinds target is <= 2.2; an exact kind's ideal is 4), their worst and their geometric mean
    (the end-to-end growth per doubling, which one noisy point moves less), or [] with fewer
    than two such T."""
    rows = []
    for (target, mask, dtype), pts in sorted(_series(results, start).items()):
        doublings = [(t, pts[2 * t] / pts[t]) for t in sorted(pts) if 2 * t in pts]
        if doublings:
            steps = ", ".join(f"{t}→{2 * t}: {ratio:.2f}" for t, ratio in doublings)
            worst = max(ratio for _, ratio in doublings)
            mean = math.prod(ratio for _, ratio in doublings) ** (1 / len(doublings))
            rows.append([target, mask, dtype, steps, f"{worst:.2f}", f"{mean:.2f}"])
    if not rows:
        return []
    header = ["target", "mask", "dtype", "time(2T)/time(T)", "worst", "geometric mean"]
    return ["", f"## Scaling from T={start}: forward+backward time(2T)/time(T)", ""] + _table(
        header, rows
    )


def plots(doc: dict[str, Any], out_dir: Path) -> list[Path]:
    """time_vs_T_<group>.png and memory_vs_T_<group>.png (log-log, a line per target), or []
    when matplotlib is not installed (pip install -r requirements-bench.txt)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    for (mask, dtype, B, N, H), group in sorted(_groups(doc["results"]).items()):
        tag = f"{mask}_{dtype}_B{B}_N{N}_H{H}"
        for what, field, ylabel in (
            ("time", "forward_backward_s", "forward+backward time (s)"),
            ("memory", "rss_peak_bytes", "peak RSS (GiB)"),
        ):
            lines = {}
            for target in dict.fromkeys(r["case"]["target"] for r in group):
                pts = sorted(
                    (r["case"]["seq_len"], r[field] / (2**30 if what == "memory" else 1))
                    for r in group
                    if r["case"]["target"] == target and r["status"] == "ok" and r.get(field)
                )
                if pts and not (what == "time" and target == "ref:matmul"):
                    lines[target] = pts
            if not lines:
                continue
            fig, ax = plt.subplots(figsize=(8, 5))
            for target, pts in lines.items():
                ax.plot(*zip(*pts, strict=True), marker="o", label=target)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("sequence length T")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{what} vs T — mask={mask} {dtype} B={B} N={N} H={H}")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7, ncol=2)
            path = out_dir / f"{what}_vs_T_{tag}.png"
            fig.tight_layout()
            fig.savefig(path, dpi=110)
            plt.close(fig)
            written.append(path)
    return written


def _series(results: list[dict[str, Any]], start: int) -> dict[tuple, dict[int, float]]:
    """{(target, mask, dtype): {T: forward+backward seconds}} for ok results with T >= start."""
    series: dict[tuple, dict[int, float]] = {}
    for r in results:
        c = r["case"]
        if r["status"] == "ok" and r.get("forward_backward_s") and c["seq_len"] >= start:
            series.setdefault((c["target"], c["mask"], c["dtype"]), {})[c["seq_len"]] = r[
                "forward_backward_s"
            ]
    return series


def scaling(results: list[dict[str, Any]], start: int = SCALING_FROM) -> dict[tuple, float]:
    """Worst time(2T)/time(T) of forward+backward from T = start up, per (target, mask, dtype)."""
    worst = {}
    for key, pts in _series(results, start).items():
        ratios = [pts[2 * t] / pts[t] for t in pts if 2 * t in pts]
        if ratios:
            worst[key] = max(ratios)
    return worst
