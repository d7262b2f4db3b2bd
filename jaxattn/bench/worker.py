"""Measures one benchmark case in this process and prints one JSON line (the result).

`python -m jaxattn.bench.worker '<Case json>'`. The parent (`jaxattn.bench`) runs every case in
a fresh worker so the peak RSS it reports belongs to that case alone, and a crash or timeout
costs only that case.

Result fields (all times in seconds, memory in bytes; absent when not measured):
  status: "ok" | "unsupported" | "oom" | "error"; reason: text when not ok.
  forward_s, forward_backward_s: median of `repeats` timed calls after one warm-up call, each
    ending in `block_until_ready` (torch: the call itself is synchronous on CPU); for ref:matmul
    the fastest of max(repeats, MATMUL_REPEATS) calls (a ceiling).
  forward_compile_s, forward_backward_compile_s: XLA compile time (jax targets only).
  xla_temp_bytes: XLA's memory analysis of the forward+backward (temporaries, from the compiled
    executable); xla_flops: XLA's cost analysis of the same.
  rss_baseline_bytes: RSS after imports and inputs; rss_peak_bytes: the process's peak RSS.
  max_abs_error: max |out - float64 exact softmax| where the target approximates softmax and
    T <= error_max_len.
  matmul_n: side of the square matmul (ref:matmul).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from jaxattn import errors
from jaxattn.bench import cases

MATMUL_REPEATS = 10


def _rss_now() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _rss_peak() -> int:
    # ru_maxrss and /proc/self/statm read the kernel's RSS counters at different times (they are
    # batched per thread), so the high-water mark can trail a later statm reading by a few pages;
    # the peak is never below what statm shows now.
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, _rss_now())


def _times(call: Callable[[], Any], repeats: int) -> list[float]:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return times


def _median_time(call: Callable[[], Any], repeats: int) -> float:
    return statistics.median(_times(call, repeats))


# ----------------------------------------------------------------------------- jax targets
def _jax_target(case: cases.Case, arrays: dict[str, np.ndarray]):
    """(fn(q, k, v, aux) -> out [B,T,N,H], aux, None), or (None, None, reason) when the kind
    cannot run it. aux holds every array the call needs besides q, k, v (masks, parameters, rng):
    it is passed to the jitted function as an argument, as a model passes them, because arrays a
    jitted function closes over become HLO constants that XLA constant-folds (a 512 MiB Linformer
    projection at T=65536; the backward's scatters), which distorts compile time, memory and
    speed."""
    import jax
    import jax.numpy as jnp

    is_causal = case.mask == "causal"  # static: a Python bool, not an array
    if case.target == "ref:jax_dpa":
        aux: dict[str, Any] = {}
        if case.mask == "padding":
            lengths = arrays["kv_mask"].sum(axis=1).astype(np.int32)
            aux["key_value_seq_lengths"] = jnp.asarray(lengths)
        elif case.mask == "packed":
            aux["mask"] = jnp.asarray(cases.keep_mask(case, arrays))[:, None]

        def dpa(q, k, v, aux):
            return jax.nn.dot_product_attention(q, k, v, is_causal=is_causal, **aux)

        return dpa, aux, None

    from jaxattn import attention, errors

    kind = case.target
    spec = attention.get_spec(kind)
    needs = {"is_causal": case.mask == "causal", "kv_mask": case.mask == "padding"}
    needs["segment_ids"] = case.mask == "packed"
    try:
        hparams = json.loads(case.hparams) if case.hparams else {}
        # Grid kinds (AttentionSpec.grid) get the most nearly square grid of all T tokens.
        grid = square_grid(case.seq_len) if spec.grid else None
        fn = attention.get_attention_fn({"kind": kind, kind: hparams}, **needs, grid=grid)
    except errors.UnsupportedFeatureError as e:
        return None, None, str(e)
    masks: dict[str, Any] = {}
    if case.mask == "padding":
        masks["kv_mask"] = jnp.asarray(arrays["kv_mask"])
    if case.mask == "packed":
        masks["q_segment_ids"] = jnp.asarray(arrays["segment_ids"])
        masks["kv_segment_ids"] = masks["q_segment_ids"]

    N, H, S = case.heads, case.head_dim, case.seq_len
    shapes = dict(num_heads=N, num_kv_heads=N, head_dim=H, kv_length=S)
    if spec.family == "mixer":  # its tensors as TokenMixer makes them: one head of width D = N·H
        shapes = dict(num_heads=1, num_kv_heads=1, head_dim=N * H, kv_length=S)
    specs = {**fn.param_specs(**shapes), **fn.state_specs(**shapes)}
    rngs = jax.random.split(jax.random.key(1234), len(specs) + 1)
    extra = {
        name: s.init(r, s.shape, jnp.float32)
        for r, (name, s) in zip(rngs[1:], sorted(specs.items()), strict=True)
    }
    if spec.needs_rng:
        extra["rng"] = rngs[0]
    stateful = spec.state is not None
    flags = {"is_causal": True} if is_causal else {}
    aux = {"masks": masks, "extra": extra}

    if spec.family == "mixer":  # x -> y over [B, T, D]: the query stands in for x
        B, T = case.batch, case.seq_len

        def mix(q, k, v, aux):
            x = q.reshape(B, T, N * H)
            return fn(x, **flags, **aux["masks"], **aux["extra"]).reshape(q.shape)

        return mix, aux, None

    def run(q, k, v, aux):
        out = fn(q, k, v, **flags, **aux["masks"], **aux["extra"])
        return out[0] if stateful else out

    return run, aux, None


def _measure_jax(case: cases.Case, arrays: dict[str, np.ndarray], result: dict[str, Any]) -> None:
    import jax
    import jax.numpy as jnp

    dtype = jnp.dtype(case.dtype)
    if case.target == "ref:matmul":
        n = cases.matmul_size(case)
        a = jnp.asarray(np.random.default_rng(0).standard_normal((n, n)), dtype)
        f = jax.jit(lambda a, b: a @ b)
        result["matmul_n"] = n
        result["rss_baseline_bytes"] = _rss_now()
        # A ceiling is the best the machine does: the fastest of at least MATMUL_REPEATS calls
        # (a median let one noisy run put an attention kind above "100% of matmul").
        repeats = max(case.repeats, MATMUL_REPEATS)
        result["forward_s"] = min(_times(lambda: f(a, a).block_until_ready(), repeats))
        result["matmul_flops"] = 2.0 * n**3
        return

    fn, aux, reason = _jax_target(case, arrays)
    if fn is None:
        result.update(status="unsupported", reason=reason)
        return
    q, k, v, ct = (jnp.asarray(arrays[n], dtype) for n in ("q", "k", "v", "cotangent"))
    result["rss_baseline_bytes"] = _rss_now()

    def loss(q, k, v, aux, ct):  # ct is an argument too: no constant cotangent to fold
        return jnp.sum(fn(q, k, v, aux).astype(jnp.float32) * ct.astype(jnp.float32))

    fwd = jax.jit(fn)
    fwd_bwd = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))

    t0 = time.perf_counter()
    fwd_c = fwd.lower(q, k, v, aux).compile()
    result["forward_compile_s"] = time.perf_counter() - t0
    fb_c = None
    if case.backward:
        t0 = time.perf_counter()
        fb_c = fwd_bwd.lower(q, k, v, aux, ct).compile()
        result["forward_backward_compile_s"] = time.perf_counter() - t0
    analysed = fb_c or fwd_c
    memory = analysed.memory_analysis()
    if memory is not None:
        result["xla_temp_bytes"] = int(memory.temp_size_in_bytes)
        if memory.temp_size_in_bytes > case.memory_limit_bytes:
            result.update(
                status="oom",
                reason=f"XLA needs {memory.temp_size_in_bytes / 2**30:.1f} GiB of temporaries "
                f"> limit {case.memory_limit_bytes / 2**30:.1f} GiB (not run)",
            )
            return
    cost = analysed.cost_analysis()
    if isinstance(cost, list):  # older jax returned one dict per device
        cost = cost[0] if cost else None
    if cost and cost.get("flops"):
        result["xla_flops"] = float(cost["flops"])

    out = fwd_c(q, k, v, aux)
    result["forward_s"] = _median_time(
        lambda: fwd_c(q, k, v, aux).block_until_ready(), case.repeats
    )
    if fb_c is not None:
        result["forward_backward_s"] = _median_time(
            lambda: jax.block_until_ready(fb_c(q, k, v, aux, ct)), case.repeats
        )
    if _wants_error(case):
        ref = cases.reference_float64(case, arrays)
        diff = np.abs(np.asarray(out, np.float64) - ref)
        result["max_abs_error"] = float(np.max(diff))


def _wants_error(case: cases.Case) -> bool:
    return (
        case.target not in cases.REFERENCES[1:]
        and case.target not in cases.NOT_SOFTMAX_APPROXIMATIONS
        and case.seq_len <= case.error_max_len
    )


# ----------------------------------------------------------------------------- torch
def _measure_torch(case: cases.Case, arrays: dict[str, np.ndarray], result: dict[str, Any]):
    try:
        import torch
    except ImportError:
        result.update(status="unsupported", reason="torch is not installed (pip install torch)")
        return
    from torch.nn import functional as torch_f

    torch.set_num_threads(os.cpu_count() or 1)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[case.dtype]

    def tensor(name, grad):  # [B, T, N, H] -> torch's [B, N, T, H]
        t = torch.from_numpy(np.ascontiguousarray(arrays[name].transpose(0, 2, 1, 3)))
        return t.to(dtype).requires_grad_(grad)

    q, k, v = (tensor(n, True) for n in ("q", "k", "v"))
    ct = tensor("cotangent", False)
    kwargs: dict[str, Any] = {"is_causal": case.mask == "causal"}
    if case.mask in ("padding", "packed"):
        kwargs["attn_mask"] = torch.from_numpy(cases.keep_mask(case, arrays))[:, None]
    result["rss_baseline_bytes"] = _rss_now()
    result["torch_version"] = torch.__version__

    def forward():
        with torch.no_grad():
            return torch_f.scaled_dot_product_attention(q, k, v, **kwargs)

    def forward_backward():
        q.grad = k.grad = v.grad = None
        out = torch_f.scaled_dot_product_attention(q, k, v, **kwargs)
        (out.float() * ct.float()).sum().backward()

    result["forward_s"] = _median_time(forward, case.repeats)
    if case.backward:
        result["forward_backward_s"] = _median_time(forward_backward, case.repeats)


def measure(case: cases.Case) -> dict[str, Any]:
    result: dict[str, Any] = {"case": dict(case.__dict__), "status": "ok"}
    arrays = cases.inputs(case)
    try:
        if case.target == "ref:torch_sdpa":
            _measure_torch(case, arrays, result)
        else:
            _measure_jax(case, arrays, result)
    except Exception as e:  # recorded, not dropped: the table shows what failed and why
        text = f"{type(e).__name__}: {e}".splitlines()[0][:300]
        if isinstance(e, errors.UnsupportedFeatureError):  # raised when traced (hparam-dependent)
            status = "unsupported"
        elif "RESOURCE_EXHAUSTED" in text or isinstance(e, MemoryError):
            status = "oom"
        else:
            status = "error"
        result.update(status=status, reason=text)
        if status == "error":
            result["traceback"] = traceback.format_exc()[-2000:]
    result["rss_peak_bytes"] = max(_rss_peak(), result.get("rss_baseline_bytes", 0))
    return result


def main(argv: list[str]) -> None:
    case = cases.Case.from_json(argv[1])
    if case.dtype == "float32":  # fp32 means fp32: no silent bf16 passes in matmuls
        import jax

        jax.config.update("jax_default_matmul_precision", "highest")
    print("RESULT " + json.dumps(measure(case)), flush=True)


if __name__ == "__main__":
    main(sys.argv)


def square_grid(T: int) -> tuple[int, int]:
    """(rows, cols) with rows·cols = T, rows the largest divisor <= sqrt(T) (T = 2048: 32 x 64)."""
    rows = max(r for r in range(1, int(T**0.5) + 1) if T % r == 0)
    return rows, T // rows
