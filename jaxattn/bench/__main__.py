"""`python -m jaxattn.bench [--quick] [--kinds=a,b] [--out=DIR] ...`: the attention benchmark.

For every target (registry kinds plus the references `ref:jax_dpa`, `ref:torch_sdpa` when torch
is installed, and `ref:matmul`) and every sequence length, mask pattern and dtype, one worker
process measures forward and forward+backward time, compile time, XLA's memory and cost
analysis, peak RSS and the error against a float64 exact softmax (see `worker`). Writes
DIR/results.json (schema in `report`), DIR/results.md and DIR/*.png (with matplotlib), and
rewrites results.json after every case, so an interrupted run keeps what it measured.

A case that runs past --timeout or would need more than --memory-limit-gb is recorded as
timeout / OOM; longer sequences of the same target, mask and dtype are then recorded as skipped
rather than tried. With --passes=N the grid runs N times in the same order, so the targets of
one shape are measured close together in every pass, and each case keeps the pass with the
lowest time (`pass_times` lists every pass); a case that failed in the first pass is not retried.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from jaxattn import cpu_runtime, errors
from jaxattn.bench import cases, report


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m jaxattn.bench", description=__doc__.split("\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="T=1024,2048, masks none+causal, 3 repeats: a few minutes on 2 cores",
    )
    p.add_argument("--kinds", default="all", help="comma-separated registry kinds, or 'all'")
    p.add_argument(
        "--references",
        default=",".join(cases.REFERENCES),
        help="comma-separated references to measure beside the kinds ('' for none)",
    )
    p.add_argument(
        "--seq-lens",
        default="512-65536",
        help="'a-b' (doubling from a to b) or a comma-separated list",
    )
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--dtypes", default="float32", help="comma-separated: float32,bfloat16")
    p.add_argument("--masks", default=",".join(cases.MASKS), help="comma-separated mask patterns")
    p.add_argument(
        "--hparams",
        default="",
        help='JSON hyper-parameters per kind, e.g. \'{"softmax_chunked": {"block_q": 512}}\'',
    )
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument(
        "--passes",
        type=int,
        default=1,
        help="run the whole grid this many times; each case keeps its fastest pass (a slow "
        "episode of the machine then costs one pass, not the result; WORKSPACE.md)",
    )
    p.add_argument("--no-backward", action="store_true", help="forward only")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per case")
    p.add_argument(
        "--memory-limit-gb",
        type=float,
        default=None,
        help="cases whose XLA temporaries exceed this are recorded as OOM "
        "(default: 75%% of physical memory)",
    )
    p.add_argument("--out", default="runs/bench/attention", help="output directory")
    args = p.parse_args(argv)
    if args.quick:
        args.seq_lens, args.masks, args.repeats = "1024,2048", "none,causal", 3
        args.timeout = min(args.timeout, 120.0)
    return args


def _seq_lens(text: str) -> list[int]:
    if "-" in text:
        a, b = (int(x) for x in text.split("-"))
        return cases.seq_lens(a, b)
    return [int(x) for x in text.split(",")]


def _targets(args: argparse.Namespace) -> list[str]:
    from jaxattn import attention

    kinds = list(attention.REGISTRY) if args.kinds == "all" else args.kinds.split(",")
    for kind in kinds:
        attention.get_spec(kind)  # unknown kind -> ConfigError listing the kinds
    refs = [r for r in args.references.split(",") if r]
    for r in refs:
        if r not in cases.REFERENCES:
            raise errors.ConfigError(f"unknown reference '{r}'; choose from {cases.REFERENCES}")
    return refs + kinds


def _machine() -> dict[str, Any]:
    import jax

    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "torch": torch_version,
        # Workers run with the training CLI's CPU settings (jaxattn/cpu_runtime.py).
        "worker_runtime": cpu_runtime.describe(cpu_runtime.default_env(os.environ)),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def run_case(case: cases.Case, timeout: float) -> dict[str, Any]:
    """Runs one case in a fresh worker process; timeouts and crashes become results."""
    cmd = [sys.executable, "-m", "jaxattn.bench.worker", case.to_json()]
    env = dict(cpu_runtime.default_env(os.environ), TF_CPP_MIN_LOG_LEVEL="3")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {
            "case": dataclasses.asdict(case),
            "status": "timeout",
            "reason": f"no result within {timeout:.0f} s",
        }
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    killed = proc.returncode in (-9, 137)
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]
    return {
        "case": dataclasses.asdict(case),
        "status": "oom" if killed else "error",
        "reason": f"worker exited {proc.returncode}: {tail}",
    }


def _time(r: dict[str, Any]) -> float | None:
    return r.get("forward_backward_s") or r.get("forward_s")


def _keep_fastest(kept: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """The faster of two passes of one case (an ok result beats a failed one), with
    `pass_times`: the time of every ok pass so far, in pass order."""
    if kept is None:
        if new["status"] == "ok":
            new["pass_times"] = [_time(new)]
        return new
    if new["status"] != "ok":
        return kept
    times = [*kept.get("pass_times", []), _time(new)]
    winner = new if _time(new) < _time(kept) else kept
    winner["pass_times"] = times
    return winner


def _summary(r: dict[str, Any]) -> str:
    if r["status"] != "ok":
        return f"{r['status']}: {r.get('reason', '')[:120]}"
    return f"ok {_time(r) * 1e3:.1f} ms" + (" (fwd+bwd)" if r.get("forward_backward_s") else "")


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    limit_gb = args.memory_limit_gb
    if limit_gb is None:
        limit_gb = 0.75 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    hparams = json.loads(args.hparams) if args.hparams else {}
    grid = [
        cases.Case(
            target=target,
            seq_len=T,
            batch=args.batch,
            heads=args.heads,
            head_dim=args.head_dim,
            dtype=dtype,
            mask=mask,
            repeats=args.repeats,
            backward=not args.no_backward,
            memory_limit_bytes=int(limit_gb * 2**30),
            hparams=json.dumps(hparams[target]) if target in hparams else "",
        )
        for dtype in args.dtypes.split(",")
        for mask in args.masks.split(",")
        for target in _targets(args)
        if not (target == "ref:matmul" and mask != "none")  # one ceiling per shape and dtype
        for T in _seq_lens(args.seq_lens)
    ]
    if args.passes < 1:
        raise errors.ConfigError(f"--passes must be >= 1; got {args.passes}")
    doc = {"schema": 1, "machine": _machine(), "settings": vars(args), "results": []}
    failed_at: dict[tuple, int] = {}
    best: dict[int, dict[str, Any]] = {}  # grid index -> the kept result
    start = time.perf_counter()
    total = len(grid) * args.passes
    for done, (pass_index, index) in enumerate(
        ((p, i) for p in range(args.passes) for i in range(len(grid))), 1
    ):
        case = grid[index]
        series = (case.target, case.mask, case.dtype)
        kept = best.get(index)
        if kept is not None and kept["status"] != "ok":
            continue  # failed in the first pass: not retried
        if series in failed_at and kept is None:  # a shorter T failed in this first pass
            r = {
                "case": dataclasses.asdict(case),
                "status": "skipped",
                "reason": f"T={failed_at[series]} already failed",
            }
        else:
            r = run_case(case, args.timeout)
            if r["status"] in ("oom", "timeout") and kept is None:
                failed_at[series] = case.seq_len
        best[index] = _keep_fastest(kept, r)
        doc["results"] = [best[i] for i in sorted(best)]
        report.derive(doc["results"])
        (out / "results.json").write_text(json.dumps(doc, indent=1))
        elapsed = time.perf_counter() - start
        eta = elapsed / done * (total - done)
        tag = f" pass {pass_index + 1}/{args.passes}" if args.passes > 1 else ""
        print(
            f"[{done}/{total}{tag} {elapsed / 60:.1f} min, ETA {eta / 60:.1f} min] "
            f"{case.label}: {_summary(r)}",
            file=sys.stderr,
            flush=True,
        )
    (out / "results.md").write_text(report.markdown(doc))
    pngs = report.plots(doc, out)
    print(f"wrote {out / 'results.json'}, {out / 'results.md'}", file=sys.stderr)
    if pngs:
        print(f"plots: {', '.join(str(p) for p in pngs)}", file=sys.stderr)
    else:
        print(
            "no plots: matplotlib is not installed (pip install -r requirements-bench.txt)",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
