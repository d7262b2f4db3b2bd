"""The image-classification task: rows, and several heads' logits (distillation)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxattn.tasks import classification, image_classification


def test_make_row_keeps_the_image():
    row = image_classification.make_row({"image": np.ones((2, 3, 1), np.uint8), "label": 4})
    assert row["inputs"].shape == (2, 3, 1) and row["inputs"].dtype == np.uint8
    assert row["targets"] == 4 and row["weights"] == 1.0


def test_two_heads_average_losses_and_predict_from_mean_logits():
    batch = {"targets": jnp.array([0, 1]), "weights": jnp.array([1.0, 1.0])}
    a = jnp.array([[2.0, 0.0], [0.0, 1.0]])
    b = jnp.array([[0.0, 1.0], [0.0, 3.0]])
    both = jnp.stack([a, b], axis=1)  # [B, 2, C]
    loss_sum, weight = image_classification.loss(both, batch)
    expected = (classification.loss(a, batch)[0] + classification.loss(b, batch)[0]) / 2
    np.testing.assert_allclose(loss_sum, expected, rtol=1e-6)
    assert weight == 2.0
    correct, _ = image_classification.metrics(both, batch)["accuracy"]
    assert correct == 2.0  # mean logits: [1, 0.5] -> 0, [0, 2] -> 1
    np.testing.assert_allclose(
        image_classification.loss(a, batch)[0], classification.loss(a, batch)[0]
    )
