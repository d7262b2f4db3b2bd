"""The CPU process settings shared by the training CLI and the benchmark's workers."""

from __future__ import annotations

import glob

import pytest

from jaxattn import cpu_runtime

HAS_TCMALLOC = bool(glob.glob(cpu_runtime.TCMALLOC_GLOB))


def test_adds_the_xla_flag_and_keeps_other_flags():
    env = cpu_runtime.default_env({"XLA_FLAGS": "--xla_force_host_platform_device_count=8"})
    assert env["XLA_FLAGS"].split() == [
        "--xla_force_host_platform_device_count=8",
        cpu_runtime.XLA_FLAG,
    ]


def test_a_user_choice_of_the_flag_wins():
    env = cpu_runtime.default_env({"XLA_FLAGS": "--xla_cpu_use_xnnpack=true"})
    assert env["XLA_FLAGS"] == "--xla_cpu_use_xnnpack=true"


def test_opt_out_changes_nothing():
    env = {cpu_runtime.OPT_OUT: "0", "LD_PRELOAD": "libfoo.so"}
    assert cpu_runtime.default_env(env) == env


@pytest.mark.skipif(not HAS_TCMALLOC, reason="libtcmalloc-minimal4 is not installed")
def test_tcmalloc_is_preloaded_once_in_front_of_existing_preloads():
    env = cpu_runtime.default_env({"LD_PRELOAD": "libfoo.so"})
    first, rest = env["LD_PRELOAD"].split(" ", 1)
    assert "tcmalloc" in first and rest == "libfoo.so"
    assert cpu_runtime.default_env(env)["LD_PRELOAD"] == env["LD_PRELOAD"]  # idempotent


def test_without_tcmalloc_the_preload_is_untouched(monkeypatch):
    monkeypatch.setattr(cpu_runtime, "TCMALLOC_GLOB", "/nonexistent/libtcmalloc*.so")
    assert "LD_PRELOAD" not in cpu_runtime.default_env({})
    assert cpu_runtime.RELEASE_RATE not in cpu_runtime.default_env({})
    assert cpu_runtime.describe({"XLA_FLAGS": "x"}) == {
        "LD_PRELOAD": None,
        cpu_runtime.RELEASE_RATE: None,
        "XLA_FLAGS": "x",
    }


@pytest.mark.skipif(not HAS_TCMALLOC, reason="libtcmalloc-minimal4 is not installed")
def test_tcmalloc_keeps_freed_pages_unless_the_user_chose_a_rate():
    assert cpu_runtime.default_env({})[cpu_runtime.RELEASE_RATE] == "0"
    chosen = cpu_runtime.default_env({cpu_runtime.RELEASE_RATE: "1"})
    assert chosen[cpu_runtime.RELEASE_RATE] == "1"
