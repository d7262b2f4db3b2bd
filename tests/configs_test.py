"""Every experiment config builds (default, smoke and its presets) and has a working CLI."""

from __future__ import annotations

import glob
import importlib
import os
import subprocess
import sys

import pytest

from jaxattn import attention, errors, models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_FILES = sorted(
    os.path.basename(p)[:-3]
    for p in glob.glob(os.path.join(ROOT, "configs", "*.py"))
    if not p.endswith(("__init__.py", "common.py", "_base.py"))
)


# The config strings each family accepts (prefix of the file name -> args to build).
FAMILY_ARGS = {
    "lra": [None, "smoke", "setup=lra", "setup=lra,smoke"],
    "lm": [None, "smoke", "packing=padded", "corpus=plays,smoke", "corpus=enwik8"],
    "recall": [None, "smoke", "task=copy", "task=copy,kind=linear,smoke"],
    "icl": [None, "smoke", "heads=1,kind=linear"],
    "ts": [
        None,
        "smoke",
        "dataset=etth1,horizon=720",
        "dataset=ili,lookback=96",
        "dataset=traffic",
    ],
    "vit": [None, "smoke", "dataset=digits", "dataset=cifar10,smoke"],
}
CASES = [(name, arg) for name in CONFIG_FILES for arg in FAMILY_ARGS[name.split("_")[0]]]


@pytest.mark.parametrize("name, arg", CASES)
def test_config_builds_a_model(name, arg):
    config = importlib.import_module(f"configs.{name}").get_config(arg)
    if models.ATTENTION_NEEDS[config.model.name] is None:  # attention-free (DLinear): none bound
        assert "attention" not in config.model
    else:
        assert config.model.attention.kind in attention.REGISTRY
        assert set(attention.REGISTRY) <= set(config.model.attention), (
            "every kind needs its sub-config"
        )
    models.build_model(
        config.model,
        vocab_size=16,
        num_classes=10,
        max_length=config.data.max_length,
        packed=config.data.get("packing") == "packed",
        image_shape=(32, 32, 3),  # image models' data field (others have none)
        num_channels=7,  # forecasting models' data fields
        horizon=config.data.get("horizon", 96),
    )


def test_config_string_typo_fails():
    from configs import lra_nystrom

    with pytest.raises(errors.ConfigError, match="smok"):
        lra_nystrom.get_config("smok")


def run_cli(*args, timeout=300):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    return subprocess.run(
        [sys.executable, "-m", "experiments.train", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize(
    "override, expected",
    [
        (
            "--config.model.attention.kind=nystrom_typo",
            f"available kinds: {', '.join(sorted(attention.REGISTRY))}",
        ),
        ("--config.model.causal=True", "'nystrom' does not support is_causal=True"),
    ],
)
def test_cli_one_line_errors(tmp_path, override, expected):
    proc = run_cli(
        "--config=configs/lra_nystrom.py:smoke",
        f"--workdir={tmp_path}",
        f"--config.data.data_dir={tmp_path}/d",
        override,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and expected in lines[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_cli_missing_dataset_without_permission(tmp_path):
    proc = run_cli(
        "--config=configs/lra_nystrom.py:smoke",
        f"--workdir={tmp_path}/w",
        f"--config.data.data_dir={tmp_path}/empty",
        "--config.data.allow_build=False",
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and "allow_build" in lines[0], proc.stderr[-2000:]


def test_cli_config_typo_fails(tmp_path):
    proc = run_cli(
        "--config=configs/lra_nystrom.py:smoke",
        f"--workdir={tmp_path}",
        "--config.model.atention.kind=softmax",
    )
    assert proc.returncode != 0
    assert "atention" in proc.stderr
