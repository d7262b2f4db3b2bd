"""LTSF-Linear: DLinear and NLinear, the attention-free forecasting baselines.

"Are Transformers Effective for Time Series Forecasting?" (Zeng, Chen, Zhang, Xu; AAAI 2023),
https://arxiv.org/abs/2205.13504; code: cure-lab/LTSF-Linear `models/DLinear.py`, `NLinear.py`.

Both map inputs [B, L, C] to predictions [B, P, C] with one linear map over time, L -> P, shared
by every channel (or one per channel with `individual`):
  DLinear: x = seasonal + trend, trend = a moving average (kernel 25, stride 1, the series'
      first and last values repeated (k - 1) / 2 times at each end); prediction =
      Linear_s(seasonal) + Linear_t(trend).
  NLinear: subtract the window's last value, Linear, add it back (shift invariance).
Weights and biases start as PyTorch's nn.Linear: uniform in ±1/sqrt(L).

Shape letters: B batch, L look-back, P horizon, C channels.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


def moving_average(x: jax.Array, kernel_size: int) -> jax.Array:
    """[B, L, C] -> [B, L, C]: the mean over `kernel_size` steps centred on each step, the ends
    padded by repeating the first / last step (kernel_size - 1) // 2 times (DLinear's trend).

    An even kernel gives L - 1 outputs, as the reference code does; DLinear uses 25."""
    pad = (kernel_size - 1) // 2
    padded = jnp.concatenate(
        [jnp.repeat(x[:, :1], pad, axis=1), x, jnp.repeat(x[:, -1:], pad, axis=1)], axis=1
    )  # [B, L + 2 pad, C]
    sums = jax.lax.reduce_window(
        padded, jnp.zeros((), padded.dtype), jax.lax.add, (1, kernel_size, 1), (1, 1, 1), "VALID"
    )  # [B, L + 2 pad - kernel_size + 1, C]
    return sums / kernel_size


def decompose(x: jax.Array, kernel_size: int) -> tuple[jax.Array, jax.Array]:
    """[B, L, C] -> (seasonal, trend), both [B, L, C]; seasonal = x - trend."""
    trend = moving_average(x, kernel_size)
    return x - trend, trend


def _torch_linear_init(fan_in: int):
    bound = 1.0 / math.sqrt(fan_in)

    def init(rng: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        return jax.random.uniform(rng, shape, dtype, -bound, bound)

    return init


class TimeLinear(nn.Module):
    """[B, L, C] -> [B, P, C]: a linear map over the time axis, shared by the channels or, with
    `individual`, one per channel (kernel [C, L, P])."""

    horizon: int
    individual: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        length, channels = x.shape[1], x.shape[2]
        init = _torch_linear_init(length)
        if self.individual:
            kernel = self.param("kernel", init, (channels, length, self.horizon))
            bias = self.param("bias", init, (channels, self.horizon))
            y = jnp.einsum("BLC,CLP->BPC", x, kernel.astype(self.dtype)) + bias.T.astype(self.dtype)
        else:
            kernel = self.param("kernel", init, (length, self.horizon))
            bias = self.param("bias", init, (self.horizon,))
            y = jnp.einsum("BLC,LP->BPC", x, kernel.astype(self.dtype))
            y = y + bias[:, None].astype(self.dtype)
        return y


class DLinear(nn.Module):
    """Decomposition-Linear (module docstring): inputs [B, L, C] -> ([B, P, C], {})."""

    horizon: int
    num_channels: int
    kernel_size: int = 25
    individual: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, inputs: jax.Array, *, deterministic: bool = True) -> tuple[jax.Array, dict]:
        del deterministic  # no dropout
        _check_channels(inputs, self.num_channels)
        seasonal, trend = decompose(inputs.astype(self.dtype), self.kernel_size)
        linear = dict(horizon=self.horizon, individual=self.individual, dtype=self.dtype)
        y = TimeLinear(**linear, name="seasonal")(seasonal) + TimeLinear(**linear, name="trend")(
            trend
        )
        return y.astype(jnp.float32), {}


class NLinear(nn.Module):
    """Normalization-Linear (module docstring): inputs [B, L, C] -> ([B, P, C], {})."""

    horizon: int
    num_channels: int
    individual: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, inputs: jax.Array, *, deterministic: bool = True) -> tuple[jax.Array, dict]:
        del deterministic  # no dropout
        _check_channels(inputs, self.num_channels)
        x = inputs.astype(self.dtype)
        last = jax.lax.stop_gradient(x[:, -1:])  # [B, 1, C]; the reference detaches it too
        y = TimeLinear(self.horizon, self.individual, self.dtype, name="linear")(x - last)
        return (y + last).astype(jnp.float32), {}


def _check_channels(inputs: jax.Array, num_channels: int) -> None:
    if inputs.ndim != 3 or inputs.shape[-1] != num_channels:
        raise ValueError(f"inputs must be [B, L, {num_channels}]; got {inputs.shape}")
