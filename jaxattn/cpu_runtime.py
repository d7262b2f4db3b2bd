"""Faster XLA:CPU process settings, applied before jax starts (imports nothing heavy).

Measured on the project's 2-core machine (STACK.md §7): the Nyströmformer ListOps train step
(batch 32, length 2000) took 2.2 s with the defaults, 1.56 s with tcmalloc preloaded (XLA:CPU
allocates fresh large buffers every call; glibc maps them fresh and page-faults) and 1.36 s with
tcmalloc and `--xla_cpu_use_xnnpack=false`. softmax_chunked fwd+bwd (B1 N8 H64, T=2048) ran
7-15% faster with tcmalloc in one interleaved run. Both settings act only when they are in the
environment as the process starts: `reexec_with_defaults` restarts the current process once
with them (the training CLI), `default_env` gives them to child processes (the benchmark's
workers). tcmalloc is used when Debian's libtcmalloc-minimal4 is installed. Set
JAXATTN_CPU_DEFAULTS=0 to keep the defaults. GPU/TPU runs are unaffected.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Mapping

OPT_OUT = "JAXATTN_CPU_DEFAULTS"
XLA_FLAG = "--xla_cpu_use_xnnpack=false"
TCMALLOC_GLOB = "/usr/lib/*-linux-gnu/libtcmalloc_minimal.so.4"


def default_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` plus the CPU defaults (XLA flag, tcmalloc in LD_PRELOAD when installed)."""
    env = dict(env)
    if env.get(OPT_OUT, "1") == "0":
        return env
    if "xla_cpu_use_xnnpack" not in env.get("XLA_FLAGS", ""):
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {XLA_FLAG}".strip()
    found = sorted(glob.glob(TCMALLOC_GLOB))
    if found and "tcmalloc" not in env.get("LD_PRELOAD", ""):
        env["LD_PRELOAD"] = " ".join(filter(None, [found[0], env.get("LD_PRELOAD", "")]))
    return env


def reexec_with_defaults() -> None:
    """Restarts this process once with `default_env` when that changes LD_PRELOAD; otherwise
    only sets XLA_FLAGS in place (jax reads it at import, so call this before importing jax)."""
    env = default_env(os.environ)
    preload_changed = env.get("LD_PRELOAD") != os.environ.get("LD_PRELOAD")
    os.environ.update(env)
    if preload_changed:
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def describe(env: Mapping[str, str]) -> dict[str, str | None]:
    """The settings a results file should record."""
    return {"LD_PRELOAD": env.get("LD_PRELOAD"), "XLA_FLAGS": env.get("XLA_FLAGS")}
