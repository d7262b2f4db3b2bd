"""Metric sinks (metrics.jsonl + TensorBoard event files) and (sum, weight) metric arithmetic.

Only process 0 writes. TensorBoard files come from tensorboardX, which needs no TensorFlow
(clu and flax.metrics.tensorboard import TensorFlow and fail without it).
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

Metrics = dict[str, tuple[Any, Any]]  # name -> (sum, weight)


def add(a: Metrics | None, b: Metrics) -> Metrics:
    """Sums two (sum, weight) dicts leaf by leaf (stays on device: no host sync)."""
    return b if a is None else jax.tree.map(lambda x, y: x + y, a, b)


def averages(m: Metrics) -> dict[str, float]:
    """(sum, weight) -> sum / weight as Python floats (NaN when the weight is 0)."""
    host = jax.device_get(m)
    return {k: float(s) / float(w) if float(w) else math.nan for k, (s, w) in host.items()}


class MetricWriter:
    """Appends scalars to `workdir/metrics.jsonl` and `workdir/tensorboard/` (process 0 only)."""

    def __init__(self, workdir: str, *, enabled: bool = True):
        self.enabled = enabled
        self._tb = None
        if enabled:
            os.makedirs(workdir, exist_ok=True)
            self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a", buffering=1)  # noqa: SIM115
            self._tb = _tensorboardx().SummaryWriter(os.path.join(workdir, "tensorboard"))

    def write_scalars(self, step: int, scalars: Mapping[str, float], *, split: str) -> None:
        if not self.enabled:
            return
        row = {
            "step": int(step),
            "split": split,
            **{k: _finite_or_str(v) for k, v in scalars.items()},
        }
        self._jsonl.write(json.dumps(row) + "\n")
        for name, value in scalars.items():
            self._tb.add_scalar(f"{split}/{name}", float(value), int(step))

    def flush(self) -> None:
        if self.enabled:
            self._jsonl.flush()
            self._tb.flush()

    def close(self) -> None:
        if self.enabled:
            self._jsonl.close()
            self._tb.close()


def _tensorboardx() -> Any:
    """tensorboardX, imported without PyTorch. Its writer imports torch whenever torch is
    installed (only to accept torch tensors): measured here, 480 MiB of peak RSS and 1.6 s per
    training process for nothing a scalar needs. So `import torch` is made to fail while
    tensorboardX loads (unless torch is already in this process), and works again after."""
    if "torch" in sys.modules:
        import tensorboardX

        return tensorboardX
    sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` -> ImportError
    try:
        import tensorboardX
    finally:
        del sys.modules["torch"]
    return tensorboardX


def _finite_or_str(value: float) -> float | str:
    value = float(value)
    return value if np.isfinite(value) else str(value)
