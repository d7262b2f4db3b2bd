"""Sampling through the decoders: greedy equals re-running the full model each step, filters
keep what they promise, and `experiments.sample` prints a continuation of a trained run."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors, sampling
from tests.models import lm_test

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# linear's incremental decoding is checked against the full pass in tests/models/lm_test.py.
@pytest.mark.parametrize("kind", ["softmax", pytest.param("linear", marks=pytest.mark.slow)])
def test_greedy_generation_equals_full_forward_argmax(kind):
    model = lm_test.lm(kind)
    prompt = np.array([[3, 7, 1], [5, 5, 9]], np.int32)
    variables = lm_test.init(model, jnp.asarray(prompt))
    out = sampling.generate(
        model, variables, prompt, max_new_tokens=6, rng=jax.random.PRNGKey(0), temperature=0
    )
    assert out.shape == (2, 9)
    np.testing.assert_array_equal(out[:, :3], prompt)
    tokens = prompt
    for _ in range(6):  # the slow way: the whole prefix through the full pass every step
        logits = lm_test.apply(model, variables, jnp.asarray(tokens))
        tokens = np.concatenate([tokens, np.asarray(jnp.argmax(logits[:, -1], -1))[:, None]], 1)
    np.testing.assert_array_equal(out, tokens)
    again = sampling.generate(
        model, variables, prompt, max_new_tokens=6, rng=jax.random.PRNGKey(5), temperature=0
    )
    np.testing.assert_array_equal(out, again)


def test_filters():
    logits = jnp.log(jnp.array([[0.5, 0.3, 0.15, 0.05]]))
    top2 = sampling.filter_logits(logits, top_k=2)
    assert np.isfinite(np.asarray(top2)).tolist() == [[True, True, False, False]]
    nucleus = sampling.filter_logits(logits, top_p=0.7)  # 0.5 + 0.3 reaches 0.7
    assert np.isfinite(np.asarray(nucleus)).tolist() == [[True, True, False, False]]
    tiny = sampling.filter_logits(logits, top_p=0.1)  # the most likely token is always kept
    assert np.isfinite(np.asarray(tiny)).tolist() == [[True, False, False, False]]
    draws = jax.vmap(lambda r: sampling.choose(logits, r, temperature=1.0, top_k=2))(
        jax.random.split(jax.random.PRNGKey(0), 2000)
    )
    counts = np.bincount(np.asarray(draws).ravel(), minlength=4)
    assert counts[2:].sum() == 0 and abs(counts[0] / 2000 - 0.5 / 0.8) < 0.05


def test_too_long_a_request_is_one_clear_error():
    model = lm_test.lm("softmax")
    prompt = np.ones((1, 4), np.int32)
    variables = lm_test.init(model, jnp.asarray(prompt))
    with pytest.raises(errors.ConfigError, match="max_length"):
        sampling.generate(model, variables, prompt, max_new_tokens=20, rng=jax.random.PRNGKey(0))


def test_sample_cli_continues_a_trained_run(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", TFDS_DATA_DIR=str(tmp_path / "tfds"))
    env.pop("XLA_FLAGS", None)
    workdir = str(tmp_path / "run")
    train = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.train",
            "--config=configs/lm_softmax.py:smoke",
            f"--workdir={workdir}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert train.returncode == 0, train.stderr[-2000:]
    args = [
        sys.executable,
        "-m",
        "experiments.sample",
        f"--workdir={workdir}",
        "--prompt=ROMEO.",
        "--max_new_tokens=12",
        "--temperature=0",
    ]
    first = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout.startswith("ROMEO.") and len(first.stdout) > len("ROMEO.")
    second = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert second.stdout == first.stdout  # greedy is deterministic
    missing = subprocess.run(
        [*args[:3], f"--workdir={tmp_path / 'nothing'}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missing.returncode == 2 and "error: " in missing.stderr
