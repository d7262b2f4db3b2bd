"""The CPU process settings shared by the training CLI and the benchmarks' workers."""

from __future__ import annotations

import glob
import os
import subprocess
import sys

import pytest

from jaxattn import cpu_runtime, errors

HAS_TCMALLOC = bool(glob.glob(cpu_runtime.TCMALLOC_GLOB))
HAS_HUGETLB = cpu_runtime.RUNTIMES["glibc_hugetlb"].settings({}) is not None


@pytest.fixture
def hugetlb_machine(monkeypatch):
    monkeypatch.setattr(cpu_runtime, "glibc_version", lambda: (2, 36))
    monkeypatch.setattr(cpu_runtime, "_thp_mode", lambda: "madvise")


def test_adds_the_xla_flag_and_keeps_other_flags():
    env = cpu_runtime.default_env({"XLA_FLAGS": "--xla_force_host_platform_device_count=8"})
    assert env["XLA_FLAGS"].split() == [
        "--xla_force_host_platform_device_count=8",
        cpu_runtime.XLA_FLAG,
    ]


def test_a_user_choice_of_the_flag_wins():
    env = cpu_runtime.default_env({"XLA_FLAGS": "--xla_cpu_use_xnnpack=true"})
    assert env["XLA_FLAGS"] == "--xla_cpu_use_xnnpack=true"


@pytest.mark.parametrize(
    "env", [{cpu_runtime.OPT_OUT: "0"}, {cpu_runtime.CHOICE: "none"}], ids=["opt_out", "none"]
)
def test_opt_out_changes_nothing(env):
    env = {**env, "LD_PRELOAD": "libfoo.so", "XLA_FLAGS": "--a"}
    assert cpu_runtime.default_env(env) == env
    assert cpu_runtime.describe(env)["runtime"] == "none"


def test_auto_picks_glibc_hugetlb_without_installing_anything(hugetlb_machine):
    env = cpu_runtime.default_env({})
    assert cpu_runtime.choose({}) == "glibc_hugetlb"
    assert env[cpu_runtime.TUNABLES] == cpu_runtime.HUGETLB
    assert "LD_PRELOAD" not in env  # tcmalloc, even when installed, is opt-in (more memory)
    assert cpu_runtime.describe(env)["runtime"] == "glibc_hugetlb"


@pytest.mark.parametrize("version, thp", [((2, 31), "madvise"), ((2, 36), "never")])
def test_auto_falls_back_to_plain_glibc(monkeypatch, version, thp):
    monkeypatch.setattr(cpu_runtime, "glibc_version", lambda: version)
    monkeypatch.setattr(cpu_runtime, "_thp_mode", lambda: thp)
    env = cpu_runtime.default_env({})
    assert cpu_runtime.choose({}) == "glibc"
    assert cpu_runtime.TUNABLES not in env and "LD_PRELOAD" not in env
    with pytest.raises(errors.ConfigError, match="glibc_hugetlb is not available"):
        cpu_runtime.choose({cpu_runtime.CHOICE: "glibc_hugetlb"})


def test_other_tunables_are_kept_and_a_user_hugetlb_value_wins(hugetlb_machine):
    env = cpu_runtime.default_env({cpu_runtime.TUNABLES: "glibc.malloc.arena_max=2"})
    assert env[cpu_runtime.TUNABLES] == f"glibc.malloc.arena_max=2:{cpu_runtime.HUGETLB}"
    mine = {cpu_runtime.TUNABLES: "glibc.malloc.hugetlb=0"}
    assert cpu_runtime.default_env(mine)[cpu_runtime.TUNABLES] == "glibc.malloc.hugetlb=0"
    assert cpu_runtime.default_env(env) == env  # idempotent


def test_unknown_runtime_is_one_clear_error():
    with pytest.raises(errors.ConfigError, match="choose from .*glibc_hugetlb"):
        cpu_runtime.default_env({cpu_runtime.CHOICE: "tcmaloc"})


def test_unavailable_preload_names_the_install_step(monkeypatch):
    missing = cpu_runtime.Runtime(
        "jemalloc", cpu_runtime._preload("/nonexistent/*.so"), "apt-get install libjemalloc2"
    )
    monkeypatch.setitem(cpu_runtime.RUNTIMES, "jemalloc", missing)
    with pytest.raises(errors.ConfigError, match="apt-get install libjemalloc2"):
        cpu_runtime.choose({cpu_runtime.CHOICE: "jemalloc"})


@pytest.mark.skipif(not HAS_TCMALLOC, reason="libtcmalloc-minimal4 is not installed")
def test_tcmalloc_is_preloaded_once_in_front_and_keeps_freed_pages():
    env = cpu_runtime.default_env({cpu_runtime.CHOICE: "tcmalloc", "LD_PRELOAD": "libfoo.so"})
    first, rest = env["LD_PRELOAD"].split(" ", 1)
    assert "tcmalloc" in first and rest == "libfoo.so"
    assert cpu_runtime.default_env(env)["LD_PRELOAD"] == env["LD_PRELOAD"]  # idempotent
    assert env[cpu_runtime.RELEASE_RATE] == "0"
    chosen = {cpu_runtime.CHOICE: "tcmalloc", cpu_runtime.RELEASE_RATE: "1"}
    assert cpu_runtime.default_env(chosen)[cpu_runtime.RELEASE_RATE] == "1"


def test_log_line_names_the_runtime_and_the_choices(hugetlb_machine):
    line = cpu_runtime.log_line(cpu_runtime.default_env({}))
    assert line.startswith("CPU runtime: glibc_hugetlb (GLIBC_TUNABLES=glibc.malloc.hugetlb=1")
    assert "JAXATTN_CPU_RUNTIME=auto|" in line


_PROBE = """
import ctypes, os
from jaxattn import cpu_runtime
cpu_runtime.reexec_with_defaults()
size = 256 << 20
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
ptr = libc.malloc(size)
ctypes.memset(ptr, 1, size)
with open('/proc/self/smaps_rollup') as f:
    huge = next(int(l.split()[1]) for l in f if l.startswith('AnonHugePages:'))
start_env = open('/proc/self/environ', 'rb').read().split(b'\\0')
print(cpu_runtime.describe(os.environ)['runtime'], huge,
      any(v.startswith(b'GLIBC_TUNABLES=') for v in start_env))
"""


def _probe(runtime: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in (cpu_runtime.TUNABLES, "LD_PRELOAD")}
    env[cpu_runtime.CHOICE] = runtime
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


@pytest.mark.skipif(
    not HAS_HUGETLB or cpu_runtime._thp_mode() != "madvise",
    reason="needs glibc >= 2.35 and transparent huge pages in 'madvise' mode",
)
def test_the_restarted_process_gets_huge_pages_for_large_buffers():
    # The tunable acts only if glibc sees it at process start: reexec_with_defaults restarts the
    # process, and the kernel then backs a fresh 256 MiB malloc with 2 MiB pages.
    name, huge_kib, at_start = _probe("glibc_hugetlb")
    assert (name, at_start) == ("glibc_hugetlb", "True")
    assert int(huge_kib) >= 128 << 10
    name, huge_kib, at_start = _probe("glibc")
    assert (name, at_start) == ("glibc", "False")
    assert int(huge_kib) < 16 << 10


def test_the_cli_refuses_an_unknown_runtime_in_one_line():
    env = dict(os.environ, **{cpu_runtime.CHOICE: "bogus"})
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.train", "--config=x", "--workdir=/tmp/x"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {cpu_runtime.CHOICE}='bogus' is not a CPU runtime; choose from "
        f"{cpu_runtime.CHOICES}"
    ]
