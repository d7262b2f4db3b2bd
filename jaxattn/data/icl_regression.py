"""In-context linear regression prompts (the seed paper "In-Context Linear Regression
Demystified", 2025; Garg et al. 2022's setting): every prompt has its own weights.

A prompt holds N example pairs and a query: w ~ N(0, I_d) fresh per prompt, x_i, x_q ~ N(0, I_d),
y_i = wᵀx_i + ε_i with ε_i ~ N(0, σ²). Tokens are z_i = [x_i; y_i] and the query token is
[x_q; 0]; the target is y_q = wᵀx_q + ε_q. Generated from (seed, split, index) alone, so a split
is a random-access source of any size with no files.

    source = icl_regression.RegressionSource(split='train', num_examples=100_000, seed=0,
                                             dim=5, num_points=20, noise_std=0.1)
    source[i] -> {'points': float32 [N + 1, d + 1], 'target': float32 [], 'weights': float32 [d]}

Reference predictors (`reference_errors`): the Bayes-optimal one for this prior is ridge with
λ = σ² (the posterior mean of w); one-step gradient descent from w = 0, ŵ = η Xᵀy, with the best
η for the split, is what a single linear-attention layer can express.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxattn import errors

_SPLIT_STREAMS = {"train": 0, "validation": 1, "test": 2}


class RegressionSource:
    """Random access to prompts: source[i] depends on (seed, split, i) and the settings only."""

    def __init__(
        self,
        *,
        split: str,
        num_examples: int,
        seed: int,
        dim: int,
        num_points: int,
        noise_std: float,
    ):
        if dim < 1 or num_points < 1 or noise_std < 0:
            raise errors.ConfigError(
                f"icl_regression needs dim >= 1, num_points >= 1, noise_std >= 0; got {dim}, "
                f"{num_points}, {noise_std}"
            )
        self.dim, self.num_points, self.noise_std = dim, num_points, float(noise_std)
        self._num = int(num_examples)
        self._stream = (int(seed), _SPLIT_STREAMS[split])

    def __len__(self) -> int:
        return self._num

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        if not 0 <= index < self._num:
            raise IndexError(f"prompt {index} out of range [0, {self._num})")
        rng = np.random.default_rng((*self._stream, int(index)))
        d, n = self.dim, self.num_points
        w = rng.standard_normal(d)
        x = rng.standard_normal((n + 1, d))
        y = x @ w + self.noise_std * rng.standard_normal(n + 1)
        points = np.concatenate([x, y[:, None]], axis=1).astype(np.float32)
        points[-1, -1] = 0.0  # the query's y is what the model predicts
        return {"points": points, "target": np.float32(y[-1]), "weights": w.astype(np.float32)}

    def empty_record(self) -> dict[str, Any]:
        """An all-zero prompt of the source's shapes (the pipeline's template and padding rows)."""
        return {
            "points": np.zeros((self.num_points + 1, self.dim + 1), np.float32),
            "target": np.float32(0.0),
        }


def reference_errors(source: RegressionSource, *, max_prompts: int = 2000) -> dict[str, float]:
    """Mean squared errors on the source's prompts of: ridge with λ = σ² (Bayes-optimal), one-step
    GD with the best step size for these prompts, and the zero predictor."""
    n = min(len(source), max_prompts)
    ridge, gd_score, gd_target, zero = [], [], [], []
    lam = max(source.noise_std**2, 1e-12)
    for i in range(n):
        record = source[i]
        points, y_q = record["points"].astype(np.float64), float(record["target"])
        x, y, x_q = points[:-1, :-1], points[:-1, -1], points[-1, :-1]
        w_ridge = np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)
        ridge.append((x_q @ w_ridge - y_q) ** 2)
        gd_score.append(x_q @ (x.T @ y))
        gd_target.append(y_q)
        zero.append(y_q**2)
    s, t = np.asarray(gd_score), np.asarray(gd_target)
    eta = float((s @ t) / max(s @ s, 1e-12))
    return {
        "ridge_mse": float(np.mean(ridge)),
        "one_step_gd_mse": float(np.mean((eta * s - t) ** 2)),
        "one_step_gd_eta": eta,
        "zero_mse": float(np.mean(zero)),
    }


SETTINGS = ("dim", "num_points", "noise_std")


def settings(data_config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: data_config[k] for k in SETTINGS}
