"""Forecasting windows over one series: the benchmark's protocol splits, train-only scaling, stride 1.

The protocol of Informer / Autoformer / DLinear (LTSF-Linear `data_provider/data_loader.py`):
  ett_hour        train, val, test = rows [0, 8640), [8640, 11520), [11520, 14400): 12, 4 and 4
                  months of 30 days of 24 hours; the rest of the file is unused.
  ett_minute      the same months at 15 minutes: x 4 (34560, 11520, 11520 rows).
  ratio_70_10_20  train = the first int(0.7 N) rows, test = the last int(0.2 N), validation the
                  rows between.
Validation and test windows start `seq_len` rows before their split, so their first target is the
split's first row. Every row is scaled by a StandardScaler (mean and population std per channel)
fitted on the train rows only. Each window start is one example (stride 1): a split of n rows
(counting the `seq_len` borrowed rows) holds n - L - P + 1 windows, none dropped.

Shape letters: N rows, C channels, L look-back (`seq_len`), P horizon.

    splits = windows.protocol_splits(values, rule='ett_hour', seq_len=336, horizon=96)
    splits['test'][0]   # {'inputs': float32 [L, C], 'targets': float32 [P, C]}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from jaxattn import errors

SPLITS = ("train", "validation", "test")


def _ett(rows_per_hour: int) -> Callable[[int], tuple[int, int, int]]:
    month = 30 * 24 * rows_per_hour

    def sizes(num_rows: int) -> tuple[int, int, int]:
        del num_rows  # fixed months; the file's tail is not used
        return 12 * month, 4 * month, 4 * month

    return sizes


def _ratio_70_10_20(num_rows: int) -> tuple[int, int, int]:
    train, test = int(num_rows * 0.7), int(num_rows * 0.2)
    return train, num_rows - train - test, test


# rule -> (rows of the series) -> (train, validation, test) rows, consecutive from row 0.
SPLIT_RULES: dict[str, Callable[[int], tuple[int, int, int]]] = {
    "ett_hour": _ett(1),
    "ett_minute": _ett(4),
    "ratio_70_10_20": _ratio_70_10_20,
}


def split_rows(num_rows: int, rule: str) -> dict[str, tuple[int, int]]:
    """split -> its own rows [start, end) (without the borrowed look-back)."""
    if rule not in SPLIT_RULES:
        raise errors.ConfigError(f"unknown split rule '{rule}'; choose from {sorted(SPLIT_RULES)}")
    sizes = SPLIT_RULES[rule](num_rows)
    if sum(sizes) > num_rows:
        raise errors.DataNotFoundError(
            f"split rule '{rule}' needs {sum(sizes)} rows; the series has {num_rows}"
        )
    bounds = np.cumsum((0, *sizes))
    return {split: (int(bounds[i]), int(bounds[i + 1])) for i, split in enumerate(SPLITS)}


def num_windows(num_rows: int, rule: str, split: str, *, seq_len: int, horizon: int) -> int:
    """Windows of `split`: its rows plus the borrowed look-back (not for train), minus L + P - 1."""
    start, end = split_rows(num_rows, rule)[split]
    start = start if split == "train" else start - seq_len
    return max(end - start - seq_len - horizon + 1, 0)


@dataclasses.dataclass(frozen=True)
class Scaler:
    """Per-channel standardization (sklearn's StandardScaler: population std, 1 where it is 0)."""

    mean: np.ndarray  # float64 [C]
    scale: np.ndarray  # float64 [C]

    @classmethod
    def fit(cls, values: np.ndarray) -> Scaler:
        std = values.std(axis=0)
        return cls(values.mean(axis=0), np.where(std == 0, 1.0, std))

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean) / self.scale

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return values * self.scale + self.mean


class WindowSource:
    """Random access to the windows of rows [start, end) of a scaled series (a pipeline Source).

    `source[i]` = {'inputs': float32 [L, C] rows start+i .. start+i+L-1, 'targets': float32 [P, C]
    the next P rows}; `len(source)` = end - start - L - P + 1.
    """

    def __init__(
        self, values: np.ndarray, start: int, end: int, *, seq_len: int, horizon: int
    ) -> None:
        self.values = values  # float32 [N, C], already scaled
        self.start, self.end = start, end
        self.seq_len, self.horizon = seq_len, horizon

    def __len__(self) -> int:
        return max(self.end - self.start - self.seq_len - self.horizon + 1, 0)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} of {len(self)}")
        s = self.start + int(index)
        return {
            "inputs": self.values[s : s + self.seq_len],
            "targets": self.values[s + self.seq_len : s + self.seq_len + self.horizon],
        }

    def empty_record(self) -> dict[str, np.ndarray]:
        """All-zero inputs and targets: the eval pipeline's weight-0 padding rows."""
        channels = self.values.shape[1]
        return {
            "inputs": np.zeros((self.seq_len, channels), np.float32),
            "targets": np.zeros((self.horizon, channels), np.float32),
        }


def protocol_splits(
    values: np.ndarray, *, rule: str, seq_len: int, horizon: int
) -> tuple[dict[str, WindowSource], Scaler]:
    """Raw series float [N, C] -> ({split: WindowSource}, the train-fitted Scaler) (docstring).

    Raises:
      ConfigError: seq_len or horizon < 1.
      DataNotFoundError: the series is too short for the rule, or a split has no whole window.
    """
    if seq_len < 1 or horizon < 1:
        raise errors.ConfigError(
            f"look-back {seq_len} (config.data.max_length) and horizon {horizon} "
            "(config.data.horizon) must be >= 1"
        )
    rows = split_rows(len(values), rule)
    scaler = Scaler.fit(values[slice(*rows["train"])].astype(np.float64))
    scaled = scaler.transform(values.astype(np.float64)).astype(np.float32)
    sources = {}
    for split, (start, end) in rows.items():
        start = start if split == "train" else start - seq_len
        sources[split] = WindowSource(scaled, start, end, seq_len=seq_len, horizon=horizon)
        if len(sources[split]) == 0:
            raise errors.DataNotFoundError(
                f"the {split} split ({end - start} rows) is shorter than look-back {seq_len} + "
                f"horizon {horizon}; use a shorter config.data.max_length or horizon"
            )
    return sources, scaler
