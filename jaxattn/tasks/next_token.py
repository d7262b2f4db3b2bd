"""Next-token prediction (causal language modelling): rows, masked loss, bits per byte.

A record is `seq_len + 1` token ids with segment ids (`data/packing.py`); its row is
  inputs      int32 [L]    tokens 0..L-1 (0 = padding)
  targets     int32 [L]    tokens 1..L
  segment_ids int32 [L]    the input tokens' documents (1, 2, ...; 0 = padding)
  positions   int32 [L]    position inside the document's part of the row (restarts at 0)
  weights     float32 [L]  1 where the target is a real token of the input's document; 0 for
                           padding and for the prediction across a document boundary.

Metrics (sums and weights over predicted tokens, so padded eval batches average exactly):
`loss` (nats per token), `accuracy` (top-1), `bits_per_byte` (loss / ln 2; on byte-level
corpora a token is a byte) and, derived from the averages, `perplexity` = exp(loss).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

Batch = dict[str, jax.Array]

# Which way is better, for checkpoint selection (`train.best_metric`).
HIGHER_IS_BETTER = {"loss": False, "accuracy": True, "bits_per_byte": False, "perplexity": False}


def segment_positions(segment_ids: np.ndarray) -> np.ndarray:
    """[L] segment ids -> [L] positions counted from each run's first token."""
    index = np.arange(len(segment_ids))
    starts = np.ones(len(segment_ids), bool)
    starts[1:] = segment_ids[1:] != segment_ids[:-1]
    return (index - np.maximum.accumulate(np.where(starts, index, 0))).astype(np.int32)


def make_row(example: Mapping[str, Any], seq_len: int, weight: float = 1.0) -> dict[str, Any]:
    """A record {'tokens' [n], optional 'segment_ids' [n], optional 'loss_mask' [n]} (n <= L + 1)
    -> one row (docstring).

    Without 'segment_ids' the record is one document (ids > 0 are its tokens); with 'loss_mask'
    only the tokens it marks are targets."""
    tokens = np.zeros(seq_len + 1, np.int32)
    raw = np.asarray(example["tokens"])[: seq_len + 1]
    tokens[: len(raw)] = raw
    if "segment_ids" in example:
        segments = np.zeros(seq_len + 1, np.int32)
        raw_segments = np.asarray(example["segment_ids"])[: seq_len + 1]
        segments[: len(raw_segments)] = raw_segments
    else:
        segments = (tokens != 0).astype(np.int32)
    same = (segments[1:] == segments[:-1]) & (segments[1:] > 0)
    if "loss_mask" in example:  # only some tokens are targets (recall probes' answers)
        mask = np.zeros(seq_len + 1, bool)
        raw_mask = np.asarray(example["loss_mask"], bool)[: seq_len + 1]
        mask[: len(raw_mask)] = raw_mask
        same &= mask[1:]
    return {
        "inputs": tokens[:-1],
        "targets": tokens[1:],
        "segment_ids": segments[:-1],
        "positions": segment_positions(segments[:-1]),
        "weights": same.astype(np.float32) * np.float32(weight),
    }


def model_inputs(batch: Batch) -> dict[str, jax.Array]:
    return {
        "tokens": batch["inputs"],
        "segment_ids": batch["segment_ids"],
        "positions": batch["positions"],
    }


def _token_ce(logits: jax.Array, batch: Batch) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(
        logits.astype(jnp.float32), batch["targets"]
    )  # [B, L]


def loss(logits: jax.Array, batch: Batch) -> tuple[jax.Array, jax.Array]:
    """(sum of weight * CE over tokens, sum of weights); logits [B, L, V]."""
    w = batch["weights"].astype(jnp.float32)
    return (_token_ce(logits, batch) * w).sum(), w.sum()


def metrics(logits: jax.Array, batch: Batch) -> dict[str, tuple[jax.Array, jax.Array]]:
    w = batch["weights"].astype(jnp.float32)
    ce_sum = (_token_ce(logits, batch) * w).sum()
    correct = (jnp.argmax(logits, axis=-1) == batch["targets"]).astype(jnp.float32)
    return {
        "loss": (ce_sum, w.sum()),
        "accuracy": ((correct * w).sum(), w.sum()),
        "bits_per_byte": (ce_sum / math.log(2.0), w.sum()),
    }


def derived_metrics(averages: Mapping[str, float]) -> dict[str, float]:
    """Metrics that are functions of the averages: perplexity = exp(mean loss)."""
    return {"perplexity": float(math.exp(min(averages["loss"], 700.0)))}


def baselines(source: Any, seq_len: int) -> dict[str, float]:
    """The test split's unigram entropy in bits per token: what a model that ignores context
    gets at best (fitted on the split itself, so a slight underestimate)."""
    counts: np.ndarray | None = None
    for i in range(len(source)):
        row = make_row(source[i], seq_len)
        c = np.bincount(row["targets"], weights=row["weights"], minlength=1)
        counts = c if counts is None else _add_counts(counts, c)
    if counts is None or counts.sum() == 0:
        return {}
    p = counts[counts > 0] / counts.sum()
    return {"test_unigram_bits_per_byte": float(-(p * np.log2(p)).sum())}


def _add_counts(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    n = max(len(a), len(b))
    return np.pad(a, (0, n - len(a))) + np.pad(b, (0, n - len(b)))
