"""In-context regression prompts and the reference predictors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxattn import models
from jaxattn.data import icl_regression


def source(**overrides):
    settings = dict(split="test", num_examples=400, seed=0, dim=4, num_points=12, noise_std=0.1)
    return icl_regression.RegressionSource(**{**settings, **overrides})


def test_prompts_follow_the_linear_model():
    src = source(noise_std=0.0)
    record = src[3]
    points, w = record["points"], record["weights"]
    assert points.shape == (13, 5) and points[-1, -1] == 0.0
    np.testing.assert_allclose(points[:-1, :-1] @ w, points[:-1, -1], atol=1e-5)
    np.testing.assert_allclose(points[-1, :-1] @ w, record["target"], atol=1e-5)
    np.testing.assert_array_equal(source()[3]["points"][:, :-1], points[:, :-1])  # same x


def test_reference_errors_are_ordered():
    errors = icl_regression.reference_errors(source())
    # Ridge is near the noise variance (0.01); one-step GD in between; zero ~ E[y²] = d + σ².
    assert 0.005 < errors["ridge_mse"] < 0.05
    assert errors["ridge_mse"] < errors["one_step_gd_mse"] < errors["zero_mse"]
    assert 3.0 < errors["zero_mse"] < 5.5


def test_regressor_reads_the_query_and_ignores_its_y_slot():
    model = models.build_model(
        {"name": "icl_regressor", "num_heads": 2, "attention": {"kind": "softmax", "softmax": {}}}
    )
    points = jnp.asarray(np.stack([source()[i]["points"] for i in range(3)]))
    variables = model.init(jax.random.PRNGKey(0), points)
    predictions, _ = model.apply(variables, points)
    assert predictions.shape == (3,)
    moved = points.at[:, 0, 0].add(1.0)  # another example pair changes the prediction
    assert float(jnp.abs(model.apply(variables, moved)[0] - predictions).max()) > 0
