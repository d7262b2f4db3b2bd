"""Training-throughput benchmark: steps/s and tokens/s of each `configs/lra_<kind>.py`.

  python -m jaxattn.bench.training                      # every configs/lra_<kind>.py, ListOps
  python -m jaxattn.bench.training --configs=configs/lra_nystrom.py,configs/lra_softmax.py
  python -m jaxattn.bench.training --config-arg=setup=lra --window=5 --windows=3
  python -m jaxattn.bench.training --configs=configs/lra_nystrom.py \
      --runtimes=glibc,glibc_hugetlb,tcmalloc --rounds=2       # compare CPU runtimes

Each config runs through the real trainer (`python -m experiments.train`, so the same data
pipeline, jit, mesh and CPU runtime settings as a real run) in its own process and a scratch
workdir, for `window * (windows + 1)` steps with a log line every `window` steps. The trainer
times each window between two device synchronisations; the first window holds compilation and is
reported apart (`first_window_s`), the median of the others is `steps_per_s`.
tokens/s = steps/s x batch size x sequence length. Each config's steps/s is also given relative
to `configs/lra_softmax.py` measured in the same run, so a noisy machine still compares kinds.
Validation and test run once at the end on one batch (they are not timed).

Every run records its CPU runtime (`jaxattn/cpu_runtime.py`: the allocator and XLA flag the
trainer started with) and the trainer process's peak RSS, so a regression in speed or memory
shows in one run. `--runtimes` measures each config under several runtimes and `--rounds`
repeats the whole grid, interleaved (round 1: every config x runtime, then round 2, ...), so a
slow stretch of a shared machine does not land on one setting only.

Output under --out (default runs/bench/training): results.json (schema below), results.md.
  {"machine": {...}, "settings": {...}, "results": [{"config", "runtime": {"runtime": name,
   "LD_PRELOAD", "GLIBC_TUNABLES", ...}, "round", "kind", "status", "reason"?,
   "steps_per_s", "tokens_per_s", "window_steps_per_s": [...], "first_window_s",
   "batch_size", "seq_len", "num_parameters", "peak_rss_bytes", "wall_s",
   "speed_vs_softmax"}]}
status is ok, timeout or error (with the trainer's last error line as reason).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from jaxattn import cpu_runtime, errors
from jaxattn.bench import report

REFERENCE_CONFIG = "configs/lra_softmax.py"


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m jaxattn.bench.training", description=__doc__.split("\n\n")[0]
    )
    p.add_argument(
        "--configs",
        default="",
        help="comma-separated config files (default: every configs/lra_<kind>.py)",
    )
    p.add_argument(
        "--config-arg", default="", help="config string for every config, e.g. 'setup=lra'"
    )
    p.add_argument("--window", type=int, default=5, help="steps per timed window")
    p.add_argument("--windows", type=int, default=3, help="timed windows after the first")
    p.add_argument(
        "--override",
        action="append",
        default=[],
        help="extra --config.x=y for every run, e.g. data.builder_config=small (repeatable)",
    )
    p.add_argument(
        "--runtimes",
        default="auto",
        help="comma-separated CPU runtimes to run each config under "
        f"({', '.join(cpu_runtime.CHOICES)}; default: auto, what the trainer picks)",
    )
    p.add_argument("--rounds", type=int, default=1, help="repeat the grid, interleaved")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per config")
    p.add_argument("--out", default="runs/bench/training")
    args = p.parse_args(argv)
    if args.window < 1 or args.windows < 1 or args.rounds < 1:
        p.error("--window, --windows and --rounds must be >= 1")
    args.runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    for name in args.runtimes:
        try:
            cpu_runtime.choose({cpu_runtime.CHOICE: name})
        except errors.ConfigError as e:
            p.error(str(e))
    return args


def _configs(text: str) -> list[str]:
    if text:
        paths = [c.strip() for c in text.split(",") if c.strip()]
    else:
        paths = sorted(c for c in glob.glob("configs/lra_*.py") if not c.endswith("lra_base.py"))
    missing = [c for c in paths if not os.path.isfile(c)]
    if missing or not paths:
        raise SystemExit(
            f"error: config file(s) not found: {missing or 'configs/lra_*.py'}; run from the "
            "repository root or pass --configs"
        )
    return paths


def command(config: str, args: argparse.Namespace, workdir: str) -> list[str]:
    """The trainer command that measures `config`."""
    steps = args.window * (args.windows + 1)
    spec = f"{config}:{args.config_arg}" if args.config_arg else config
    overrides = [
        f"train.num_train_steps={steps}",
        # A short run cannot hold the configs' warmup (1000 steps); speed does not depend on it.
        "optim.warmup_steps=1",
        f"train.log_every_steps={args.window}",
        f"train.eval_every_steps={steps}",
        f"train.checkpoint_every_steps={steps}",
        "train.max_eval_batches=1",
        *args.override,
    ]
    return [
        sys.executable,
        "-m",
        "experiments.train",
        f"--config={spec}",
        f"--workdir={workdir}",
        *(f"--config.{o}" for o in overrides),
    ]


def summarize(workdir: str, window: int) -> dict[str, Any]:
    """Throughput from a finished trainer workdir (its config.json, metrics.jsonl, results.json)."""
    with open(os.path.join(workdir, "config.json")) as f:
        config = json.load(f)
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    train = sorted((r for r in rows if r["split"] == "train"), key=lambda r: r["step"])
    rates = [float(r["steps_per_s"]) for r in train]
    if len(rates) < 2:
        raise ValueError(f"{workdir}: {len(rates)} timed windows in metrics.jsonl; need >= 2")
    with open(os.path.join(workdir, "results.json")) as f:
        results = json.load(f)
    steps_per_s = statistics.median(rates[1:])
    batch, seq_len = int(config["data"]["batch_size"]), int(config["data"]["max_length"])
    return {
        "kind": config["model"]["attention"]["kind"],
        "steps_per_s": steps_per_s,
        "tokens_per_s": steps_per_s * batch * seq_len,
        "window_steps_per_s": rates[1:],
        "first_window_s": window / rates[0],
        "batch_size": batch,
        "seq_len": seq_len,
        "num_parameters": results.get("num_parameters"),
    }


def run_config(
    config: str, args: argparse.Namespace, scratch: str, runtime: str = "auto"
) -> dict[str, Any]:
    """Trains `config` for the benchmark's steps in its own process under the CPU `runtime`;
    failures become results."""
    workdir = tempfile.mkdtemp(prefix=Path(config).stem + "_", dir=scratch)
    cmd = command(config, args, workdir)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env[cpu_runtime.CHOICE] = runtime
    env.pop(cpu_runtime.OPT_OUT, None)
    result: dict[str, Any] = {
        "config": config,
        # What the trainer starts with: it re-executes itself with these (cpu_runtime).
        "runtime": cpu_runtime.describe(cpu_runtime.default_env(env)),
        "command": " ".join(cmd[1:]),
    }
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, text=True, env=env)
        # wait4 gives this child's own peak RSS (the trainer re-executes itself in place with
        # its CPU runtime: same pid, so the peak covers both images).
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > args.timeout:
                proc.kill()
                os.wait4(proc.pid, 0)
                proc.returncode = -9
                result.update(
                    status="timeout",
                    reason=f"not finished within {args.timeout:.0f} s",
                    wall_s=round(time.perf_counter() - start, 1),
                )
                shutil.rmtree(workdir, ignore_errors=True)
                return result
            time.sleep(0.2)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read()
    result["wall_s"] = round(time.perf_counter() - start, 1)
    result["peak_rss_bytes"] = usage.ru_maxrss * 1024
    if proc.returncode != 0:
        lines = [ln for ln in stderr.strip().splitlines() if ln.strip()] or ["no output"]
        result.update(status="error", reason=f"trainer exited {proc.returncode}: {lines[-1][:300]}")
        shutil.rmtree(workdir, ignore_errors=True)
        return result
    try:
        result.update(summarize(workdir, args.window), status="ok")
    except (OSError, ValueError, KeyError) as e:
        result.update(status="error", reason=f"{type(e).__name__}: {e}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def _runtime_name(r: dict[str, Any]) -> str:
    return (r.get("runtime") or {}).get("runtime", "?")


def add_ratios(results: list[dict[str, Any]]) -> None:
    """speed_vs_softmax: steps/s over configs/lra_softmax.py's under the same runtime and round."""
    refs = {
        (_runtime_name(r), r.get("round")): r
        for r in results
        if r["config"].endswith(REFERENCE_CONFIG) and r["status"] == "ok"
    }
    for r in results:
        ref = refs.get((_runtime_name(r), r.get("round")))
        if ref is not None and r["status"] == "ok":
            r["speed_vs_softmax"] = r["steps_per_s"] / ref["steps_per_s"]


def _runs_table(results: list[dict[str, Any]]) -> list[str]:
    header = [
        "config",
        "runtime",
        "round",
        "kind",
        "steps/s",
        "tokens/s",
        "x softmax",
        "first window",
        "peak RSS",
        "params",
    ]
    rows = []
    for r in results:
        head = [r["config"], _runtime_name(r), str(r.get("round", 1))]
        if r["status"] != "ok":
            rows.append([*head, r.get("kind", "?"), f"{r['status']}: {r.get('reason', '')}"])
            rows[-1] += [""] * (len(header) - len(rows[-1]))
            continue
        ratio = r.get("speed_vs_softmax")
        rows.append(
            [
                *head,
                r["kind"],
                f"{r['steps_per_s']:.3f}",
                f"{r['tokens_per_s']:,.0f}",
                f"{ratio:.2f}" if ratio is not None else "-",
                f"{r['first_window_s']:.1f} s",
                report._gib(r.get("peak_rss_bytes")),
                f"{r['num_parameters']:,}" if r.get("num_parameters") else "-",
            ]
        )
    return report._table(header, rows)


def _runtime_table(results: list[dict[str, Any]]) -> list[str]:
    """Per config and runtime over the rounds: s/step of each round, the best, peak RSS of
    each round, and the best s/step relative to the fastest runtime of that config."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        if r["status"] == "ok":
            groups.setdefault((r["config"], _runtime_name(r)), []).append(r)
    fastest = {}
    for (config, _), runs in groups.items():
        best = min(1 / r["steps_per_s"] for r in runs)
        fastest[config] = min(fastest.get(config, best), best)
    header = ["config", "runtime", "s/step (rounds)", "best s/step", "x fastest", "peak RSS"]
    rows = []
    for (config, name), runs in groups.items():
        best = min(1 / r["steps_per_s"] for r in runs)
        rows.append(
            [
                config,
                name,
                ", ".join(f"{1 / r['steps_per_s']:.3f}" for r in runs),
                f"{best:.3f}",
                f"{best / fastest[config]:.2f}",
                ", ".join(report._gib(r.get("peak_rss_bytes")) for r in runs),
            ]
        )
    return report._table(header, rows)


def markdown(doc: dict[str, Any]) -> str:
    m, s = doc["machine"], doc["settings"]
    out = [
        "# Training-throughput benchmark",
        "",
        f"Machine: {m.get('cpu_count')} CPUs, jax {m.get('jax')}; {m.get('date', '')}. "
        f"Config string '{s['config_arg']}', overrides {s['override'] or 'none'}; "
        f"median of {s['windows']} windows of {s['window']} steps after a first window "
        "(compilation). x softmax: steps/s relative to configs/lra_softmax.py under the same "
        "CPU runtime in the same round. peak RSS: the trainer process's high-water mark.",
        "",
    ]
    out += _runs_table(doc["results"])
    if len(set(_runtime_name(r) for r in doc["results"])) > 1 or s.get("rounds", 1) > 1:
        out += ["", "## By CPU runtime", ""]
        out += _runtime_table(doc["results"])
    runtimes = {}
    for r in doc["results"]:
        runtimes.setdefault(_runtime_name(r), r.get("runtime"))
    out += ["", "CPU runtimes (jaxattn/cpu_runtime.py):", ""]
    for name, d in runtimes.items():
        settings = ", ".join(f"{k}={v}" for k, v in (d or {}).items() if k != "runtime" and v)
        out.append(f"- {name}: {settings or 'process defaults'}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    from jaxattn.bench.__main__ import _machine

    args = _parse(sys.argv[1:] if argv is None else argv)
    configs = _configs(args.configs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="workdirs_", dir=out)
    doc: dict[str, Any] = {
        "machine": _machine(),
        "settings": {
            "config_arg": args.config_arg,
            "window": args.window,
            "windows": args.windows,
            "override": args.override,
            "runtimes": args.runtimes,
            "rounds": args.rounds,
        },
        "results": [],
    }
    grid = [
        (round_, config, runtime)
        for round_ in range(1, args.rounds + 1)
        for config in configs
        for runtime in args.runtimes
    ]
    start = time.perf_counter()
    try:
        for n, (round_, config, runtime) in enumerate(grid, 1):
            r = run_config(config, args, scratch, runtime)
            r["round"] = round_
            doc["results"].append(r)
            add_ratios(doc["results"])
            (out / "results.json").write_text(json.dumps(doc, indent=2))
            done = time.perf_counter() - start
            eta = done / n * (len(grid) - n)
            summary = (
                f"{r['steps_per_s']:.3f} steps/s, {r['tokens_per_s']:,.0f} tokens/s, "
                f"peak RSS {report._gib(r.get('peak_rss_bytes'))}"
                if r["status"] == "ok"
                else f"{r['status']}: {r.get('reason', '')[:120]}"
            )
            tag = f" round {round_}" if args.rounds > 1 else ""
            print(
                f"[{n}/{len(grid)}{tag}] {config} ({_runtime_name(r)}): {summary} | "
                f"elapsed {done:.0f} s, ETA {eta:.0f} s",
                flush=True,
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    (out / "results.md").write_text(markdown(doc))
    print(f"wrote {out / 'results.json'} and {out / 'results.md'}")
    return 0 if all(r["status"] == "ok" for r in doc["results"]) else 1


if __name__ == "__main__":
    sys.exit(main())
