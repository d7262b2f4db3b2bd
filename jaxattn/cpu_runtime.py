"""Faster XLA:CPU process settings, applied before jax starts (imports nothing heavy).

Measured on the project's 2-core machine (STACK.md §7): the Nyströmformer ListOps train step
(batch 32, length 2000) took 2.2 s with the defaults, 1.56 s with tcmalloc preloaded (XLA:CPU
allocates fresh large buffers every call; glibc maps them fresh and page-faults) and 1.36 s with
tcmalloc and `--xla_cpu_use_xnnpack=false`. softmax_chunked fwd+bwd (B1 N8 H64, T=2048) ran
7-15% faster with tcmalloc in one interleaved run. tcmalloc also gets TCMALLOC_RELEASE_RATE=0
(keep freed pages instead of handing them back to the OS): by default it released part of every
call's multi-GiB temporaries and the next call page-faulted them in again (Local attention fwd+bwd
at T=32768: 608 MiB of page faults per call, median 2.42 s; with the rate 0, none and 1.64 s;
the fastest call, 1.61 s, the same either way). Peak RSS is the high-water mark either way.
The settings act only when they are in the environment as the process starts:
`reexec_with_defaults` restarts the current process once with them (the training CLI),
`default_env` gives them to child processes (the benchmark's workers). tcmalloc is used when
Debian's libtcmalloc-minimal4 is installed. Set JAXATTN_CPU_DEFAULTS=0 to keep the defaults.
GPU/TPU runs are unaffected.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Mapping

OPT_OUT = "JAXATTN_CPU_DEFAULTS"
XLA_FLAG = "--xla_cpu_use_xnnpack=false"
TCMALLOC_GLOB = "/usr/lib/*-linux-gnu/libtcmalloc_minimal.so.4"
RELEASE_RATE = "TCMALLOC_RELEASE_RATE"


def default_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` plus the CPU defaults (XLA flag; tcmalloc in LD_PRELOAD when installed, with
    TCMALLOC_RELEASE_RATE=0 unless set)."""
    env = dict(env)
    if env.get(OPT_OUT, "1") == "0":
        return env
    if "xla_cpu_use_xnnpack" not in env.get("XLA_FLAGS", ""):
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {XLA_FLAG}".strip()
    found = sorted(glob.glob(TCMALLOC_GLOB))
    if found and "tcmalloc" not in env.get("LD_PRELOAD", ""):
        env["LD_PRELOAD"] = " ".join(filter(None, [found[0], env.get("LD_PRELOAD", "")]))
    if "tcmalloc" in env.get("LD_PRELOAD", ""):
        env.setdefault(RELEASE_RATE, "0")
    return env


def reexec_with_defaults() -> None:
    """Restarts this process once with `default_env` when that changes LD_PRELOAD or tcmalloc's
    release rate (both read as the process starts); otherwise only sets XLA_FLAGS in place (jax
    reads it at import, so call this before importing jax)."""
    env = default_env(os.environ)
    restart = any(env.get(k) != os.environ.get(k) for k in ("LD_PRELOAD", RELEASE_RATE))
    os.environ.update(env)
    if restart:
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def describe(env: Mapping[str, str]) -> dict[str, str | None]:
    """The settings a results file should record."""
    return {k: env.get(k) for k in ("LD_PRELOAD", RELEASE_RATE, "XLA_FLAGS")}
