"""Learning-rate schedules: the values the configs rely on, and one clear error for bad fields."""

from __future__ import annotations

import math

import pytest

from jaxattn import errors
from jaxattn.train import optim


def _cosine(**fields):
    return {"schedule": "cosine", "learning_rate": 1e-3, "warmup_steps": 0, **fields}


def test_cosine_reaches_zero_at_the_last_step_unless_given_a_longer_horizon():
    run = optim.make_schedule(_cosine(), 1000)
    assert float(run(0)) == pytest.approx(1e-3) and float(run(1000)) == pytest.approx(0.0)
    cut = optim.make_schedule(_cosine(decay_steps=4000), 1000)  # the first quarter of a 4k run
    expected = 0.5 * 1e-3 * (1 + math.cos(math.pi * 1000 / 4000))
    assert float(cut(1000)) == pytest.approx(expected, rel=1e-5)  # ≈ 0.85 of the peak
    with pytest.raises(errors.ConfigError, match="decay_steps"):
        optim.make_schedule(_cosine(decay_steps=500), 1000)


def test_warmup_and_rsqrt_and_unknown_schedule():
    warm = optim.make_schedule(_cosine(warmup_steps=100), 1000)
    assert float(warm(50)) == pytest.approx(5e-4)
    rsqrt = optim.make_schedule(
        {"schedule": "rsqrt", "learning_rate": 0.05, "warmup_steps": 100}, 10
    )
    assert float(rsqrt(100)) == pytest.approx(0.005) and float(rsqrt(400)) == pytest.approx(0.0025)
    with pytest.raises(errors.ConfigError, match="unknown optim.schedule"):
        optim.make_schedule({"schedule": "nope"}, 10)
