"""XLA:CPU process settings (the memory allocator and one XLA flag), chosen before jax starts.

XLA:CPU allocates fresh output and temporary buffers on every call. With glibc's malloc as a
process gets it, buffers above ~32 MiB are fresh `mmap` pages every call, and every call pays
4 KiB page faults on them. How the allocator is set up therefore decides the speed of anything
that moves large buffers (STACK.md §7). The runtimes this module knows:

  glibc          the C library's malloc, untouched (what a process gets by default)
  glibc_hugetlb  glibc with GLIBC_TUNABLES=glibc.malloc.hugetlb=1: malloc asks for transparent
                 huge pages (madvise) on its mmap'd chunks and heap, so a fresh 64 MiB buffer
                 faults in 32 times instead of 16,384. Needs glibc >= 2.35 and THP not 'never';
                 nothing to install.
  tcmalloc       Debian's libtcmalloc-minimal4 in LD_PRELOAD, with TCMALLOC_RELEASE_RATE=0 (by
                 default it hands part of every call's temporaries back to the OS and the next
                 call faults them in again: Local attention fwd+bwd T=32768 2.42 s -> 1.64 s)
  mimalloc       PyPI's cmeel-mimalloc in LD_PRELOAD
  jemalloc       Debian's libjemalloc2 in LD_PRELOAD

Every runtime but `none` also sets `--xla_cpu_use_xnnpack=false` (Nyströmformer ListOps step
1.56 -> 1.36 s with tcmalloc, in an earlier measurement).

Measured on the project's 2-core machine (2026-12-05; WORKSPACE.md "CPU runtime" has the tables
and commands), Nyströmformer ListOps training (batch 32, length 2000), best of two rounds:
glibc 1.59 s/step, glibc_hugetlb 1.18, tcmalloc 1.10, mimalloc 1.58, jemalloc 1.61; peak RSS
2.2 GiB for the glibc settings and jemalloc, 3.6 GiB for tcmalloc and mimalloc (they keep freed
memory). On the exact attention path (softmax_chunked, T = 2048..16384) the runtimes differ by
less than the machine's noise from T = 4096 on. So `auto` (the default) picks glibc_hugetlb
where it is available, else plain glibc; the preloaded allocators are opt-in.

Choose with JAXATTN_CPU_RUNTIME=auto|glibc|glibc_hugetlb|tcmalloc|mimalloc|jemalloc|none
(`none`: leave the process exactly as started, no XLA flag either; JAXATTN_CPU_DEFAULTS=0 means
the same). The settings act only when they are in the environment as the process starts:
`reexec_with_defaults` restarts the current process once with them (the training CLI),
`default_env` gives them to child processes (the benchmarks' workers). GPU/TPU runs are
unaffected (only XLA:CPU reads the flag; the allocator serves host memory).
"""

from __future__ import annotations

import dataclasses
import glob
import os
import sys
from collections.abc import Callable, Mapping

from jaxattn import errors

CHOICE = "JAXATTN_CPU_RUNTIME"
OPT_OUT = "JAXATTN_CPU_DEFAULTS"  # "0" = `none` (kept for earlier scripts)
XLA_FLAG = "--xla_cpu_use_xnnpack=false"
TCMALLOC_GLOB = "/usr/lib/*-linux-gnu/libtcmalloc_minimal.so.4"
JEMALLOC_GLOB = "/usr/lib/*-linux-gnu/libjemalloc.so.2"
RELEASE_RATE = "TCMALLOC_RELEASE_RATE"
TUNABLES = "GLIBC_TUNABLES"
HUGETLB = "glibc.malloc.hugetlb=1"
THP_MODE = "/sys/kernel/mm/transparent_hugepage/enabled"
# What `auto` tries, in order: measured fastest first, among settings that need no install step
# and cost no memory over plain glibc (module docstring).
AUTO_ORDER = ("glibc_hugetlb", "glibc")
# The variables a runtime may set; describe() records them.
RECORDED = ("LD_PRELOAD", TUNABLES, RELEASE_RATE, "XLA_FLAGS")


@dataclasses.dataclass(frozen=True)
class Runtime:
    """A named process setting: `settings(env)` is the variables it adds, or None when this
    machine cannot provide it; `missing` says how to get it."""

    name: str
    settings: Callable[[Mapping[str, str]], dict[str, str] | None]
    missing: str


def glibc_version() -> tuple[int, int] | None:
    """(major, minor) of the running glibc, or None for another C library."""
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError, AttributeError):
        return None
    name, _, version = text.partition(" ")
    if name != "glibc":
        return None
    major, minor = (int(x) for x in version.split(".")[:2])
    return major, minor


def _thp_mode() -> str | None:
    try:
        with open(THP_MODE) as f:
            text = f.read()
    except OSError:
        return None
    return text[text.index("[") + 1 : text.index("]")] if "[" in text else None


def _preload(pattern: str, extra: Mapping[str, str] | None = None):
    def settings(env: Mapping[str, str]) -> dict[str, str] | None:
        found = sorted(glob.glob(pattern))
        if not found:
            return None
        return {"LD_PRELOAD": found[0], **(extra or {})}

    return settings


def _mimalloc_pattern() -> str:
    return os.path.join(
        sys.prefix, "lib", "python3*", "site-packages", "cmeel.prefix", "lib", "libmimalloc.so"
    )


def _mimalloc(env: Mapping[str, str]) -> dict[str, str] | None:
    return _preload(_mimalloc_pattern())(env)


def _glibc(env: Mapping[str, str]) -> dict[str, str] | None:
    return {} if glibc_version() is not None else None


def _glibc_hugetlb(env: Mapping[str, str]) -> dict[str, str] | None:
    version = glibc_version()
    if version is None or version < (2, 35) or _thp_mode() in (None, "never"):
        return None
    return {TUNABLES: HUGETLB}


RUNTIMES: dict[str, Runtime] = {
    r.name: r
    for r in (
        Runtime("glibc", _glibc, "the C library is not glibc"),
        Runtime(
            "glibc_hugetlb",
            _glibc_hugetlb,
            "needs glibc >= 2.35 and transparent huge pages not 'never' "
            f"(glibc {glibc_version()}, THP '{_thp_mode()}')",
        ),
        Runtime(
            "tcmalloc",
            _preload(TCMALLOC_GLOB, {RELEASE_RATE: "0"}),
            "apt-get install libtcmalloc-minimal4",
        ),
        Runtime("mimalloc", _mimalloc, "pip install cmeel-mimalloc"),
        Runtime("jemalloc", _preload(JEMALLOC_GLOB), "apt-get install libjemalloc2"),
    )
}
CHOICES = ("auto", *RUNTIMES, "none")


def choose(env: Mapping[str, str]) -> str:
    """The runtime name `env` asks for (JAXATTN_CPU_RUNTIME, default auto), resolved: `auto`
    becomes the first available of AUTO_ORDER. Raises errors.ConfigError for an unknown name or one
    this machine does not have."""
    if env.get(OPT_OUT, "1") == "0":
        return "none"
    name = env.get(CHOICE, "auto") or "auto"
    if name == "none":
        return name
    if name == "auto":
        return next((n for n in AUTO_ORDER if RUNTIMES[n].settings(env) is not None), "none")
    if name not in RUNTIMES:
        raise errors.ConfigError(f"{CHOICE}={name!r} is not a CPU runtime; choose from {CHOICES}")
    if RUNTIMES[name].settings(env) is None:
        raise errors.ConfigError(
            f"{CHOICE}={name} is not available on this machine ({RUNTIMES[name].missing}); "
            f"or use {CHOICE}=auto"
        )
    return name


def _merge_tunables(current: str, setting: str) -> str:
    key = setting.split("=")[0]
    parts = [p for p in current.split(":") if p]
    if any(p.split("=")[0] == key for p in parts):
        return current  # the user's own value of this tunable wins
    return ":".join([*parts, setting])


def default_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` plus the settings of the runtime it asks for (`choose`). A user's own
    `--xla_cpu_use_xnnpack`, glibc tunable or tcmalloc release rate is kept."""
    env = dict(env)
    name = choose(env)
    if name == "none":
        return env
    if "xla_cpu_use_xnnpack" not in env.get("XLA_FLAGS", ""):
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {XLA_FLAG}".strip()
    for var, value in (RUNTIMES[name].settings(env) or {}).items():
        if var == "LD_PRELOAD":
            if value not in env.get("LD_PRELOAD", ""):
                env[var] = " ".join(filter(None, [value, env.get("LD_PRELOAD", "")]))
        elif var == TUNABLES:
            env[var] = _merge_tunables(env.get(var, ""), value)
        else:
            env.setdefault(var, value)
    return env


def reexec_with_defaults() -> None:
    """Restarts this process once with `default_env` when that changes a variable read only as a
    process starts (LD_PRELOAD, GLIBC_TUNABLES, tcmalloc's release rate); otherwise only sets
    XLA_FLAGS in place (jax reads it at import, so call this before importing jax). An unknown
    or unavailable JAXATTN_CPU_RUNTIME exits with one error line."""
    try:
        env = default_env(os.environ)
    except errors.ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    restart = any(env.get(k) != os.environ.get(k) for k in ("LD_PRELOAD", TUNABLES, RELEASE_RATE))
    os.environ.update(env)
    if restart:
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def describe(env: Mapping[str, str]) -> dict[str, str | None]:
    """The settings a results file or log line should record: the runtime's name and the
    variables that make it up, as they are in `env` (the environment of a started process)."""
    try:
        name = choose(env)
    except errors.ConfigError as e:
        name = f"invalid: {e}"
    return {"runtime": name, **{k: env.get(k) for k in RECORDED}}


def log_line(env: Mapping[str, str]) -> str:
    """One line naming the runtime in use and how to change it."""
    d = describe(env)
    settings = ", ".join(f"{k}={v}" for k, v in d.items() if k != "runtime" and v)
    return (
        f"CPU runtime: {d['runtime']} ({settings or 'process defaults'}); "
        f"choose with {CHOICE}={'|'.join(CHOICES)}"
    )
