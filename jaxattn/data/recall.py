"""Synthetic recall probes for language models: multi-query associative recall (MQAR) and copying.

The standard probes where efficient attention falls behind exact attention (Zoology, Arora et
al. 2023, arXiv:2312.04927, §3: MQAR; copying: Jelassi et al. 2024, arXiv:2402.01032). Each
example is generated from (seed, split, index) alone, so a split is a random-access source with
no files and any size; every split uses its own stream.

Vocabulary (both tasks): 0 padding, 1 filler/separator, then `num_keys` key ids, then
`num_values` value ids (copy: the alphabet is keys and values together).

MQAR record: `num_pairs` key-value pairs (distinct keys) `k1 v1 k2 v2 ...`, then filler with
`num_queries` of those keys (drawn with replacement) re-appearing at random positions, each
followed by its value. The
loss is on the values after the query keys only ('loss_mask'): the model must recall the value
bound to a key many tokens earlier.

MQAR with `layout='zoology'` follows Zoology's generator (HazyResearch/zoology,
`zoology/data/multiquery_ar.py`, read for its rules): distinct keys and distinct values, every
pair asked exactly once in random order, the query slots drawn without replacement with
probability ∝ a·i^(a−1) over the slot index i (power law, `power_a` = a; Zoology's default
0.01 puts most queries soon after the context), and random key/value tokens (not filler)
everywhere else. One difference from theirs: our record is a token sequence whose loss targets
are its own next tokens, so the value follows its query key in the input too, where Zoology puts
a random token there and the value only in the labels; with every key asked once, a value seen
after an earlier query never answers a later one.

Copy record: `length` random tokens, a separator, the same tokens again; the loss is on the copy.

    source = recall.RecallSource('mqar', split='train', num_examples=10_000, seed=0, seq_len=128,
                                 num_keys=32, num_values=32, num_pairs=8, num_queries=8)
    source[i] -> {'tokens': int32 [n], 'loss_mask': bool [n]}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxattn import errors

PAD, FILLER = 0, 1
FIRST_KEY = 2
TASKS = ("mqar", "copy")
# config.data fields the generators read (beside max_length).
SETTINGS = (
    "num_keys",
    "num_values",
    "num_pairs",
    "num_queries",
    "copy_length",
    "layout",
    "power_a",
)
LAYOUTS = ("jaxattn", "zoology")
_SPLIT_STREAMS = {"train": 0, "validation": 1, "test": 2}


def vocab_size(num_keys: int, num_values: int) -> int:
    return FIRST_KEY + num_keys + num_values


def mqar_example(
    rng: np.random.Generator,
    *,
    seq_len: int,
    num_keys: int,
    num_values: int,
    num_pairs: int,
    num_queries: int,
    layout: str = "jaxattn",
    power_a: float = 0.01,
    **unused: Any,
) -> dict[str, np.ndarray]:
    """One MQAR sequence of seq_len + 1 tokens (module docstring); `unused`: copy's settings."""
    if layout not in LAYOUTS:
        raise errors.ConfigError(f"mqar: unknown layout '{layout}'; choose from {LAYOUTS}")
    if layout == "zoology":
        if num_queries != num_pairs:
            raise errors.ConfigError(
                f"mqar (zoology layout) asks every pair once: num_queries ({num_queries}) must "
                f"equal num_pairs ({num_pairs})"
            )
        return _zoology_mqar(rng, seq_len, num_keys, num_values, num_pairs, power_a)
    length = seq_len + 1
    context = 2 * num_pairs
    if num_pairs > num_keys or context + 2 * num_queries > length:
        raise errors.ConfigError(
            f"mqar: {num_pairs} pairs of {num_keys} keys and {num_queries} queries do not fit "
            f"{length} tokens; lengthen data.max_length or use fewer pairs/queries"
        )
    keys = FIRST_KEY + rng.choice(num_keys, num_pairs, replace=False)
    values = FIRST_KEY + num_keys + rng.integers(0, num_values, num_pairs)
    tokens = np.full(length, FILLER, np.int32)
    tokens[0:context:2], tokens[1:context:2] = keys, values
    loss_mask = np.zeros(length, bool)
    # Query slots: non-overlapping (key, value) positions after the context.
    slots = (length - context) // 2
    chosen = np.sort(rng.choice(slots, num_queries, replace=False))
    # Queried pairs are drawn with replacement: if every pair were asked once, guessing among
    # the values not yet asked for would score (1/n + ... + 1/1) / n without any recall.
    which = rng.integers(0, num_pairs, num_queries)
    starts = context + 2 * chosen
    tokens[starts], tokens[starts + 1] = keys[which], values[which]
    loss_mask[starts + 1] = True
    return {"tokens": tokens, "loss_mask": loss_mask}


def _zoology_mqar(rng, seq_len, num_keys, num_values, num_pairs, power_a):
    """MQAR in Zoology's layout (module docstring): every pair asked once at power-law slots."""
    length = seq_len + 1
    context = 2 * num_pairs
    slots = (length - context) // 2
    if num_pairs > min(num_keys, num_values, slots):
        raise errors.ConfigError(
            f"mqar (zoology layout): {num_pairs} pairs need as many distinct keys ({num_keys}), "
            f"values ({num_values}) and query slots ({slots} in {length} tokens)"
        )
    if not power_a > 0:
        raise errors.ConfigError(f"mqar: power_a must be > 0; got {power_a}")
    keys = FIRST_KEY + rng.choice(num_keys, num_pairs, replace=False)
    values = FIRST_KEY + num_keys + rng.choice(num_values, num_pairs, replace=False)
    tokens = FIRST_KEY + rng.integers(0, num_keys + num_values, length).astype(np.int32)
    tokens[0:context:2], tokens[1:context:2] = keys, values
    weights = power_a * np.arange(1, slots + 1, dtype=np.float64) ** (power_a - 1)
    gaps = rng.choice(slots, num_pairs, replace=False, p=weights / weights.sum())
    starts = context + 2 * gaps  # pair i is asked at slot gaps[i]: a random order
    tokens[starts], tokens[starts + 1] = keys, values
    loss_mask = np.zeros(length, bool)
    loss_mask[starts + 1] = True
    return {"tokens": tokens, "loss_mask": loss_mask}


def copy_example(
    rng: np.random.Generator,
    *,
    seq_len: int,
    num_keys: int,
    num_values: int,
    copy_length: int,
    **unused: Any,
) -> dict[str, np.ndarray]:
    """`copy_length` random tokens, the separator, the same tokens again (2·copy_length + 1 <=
    seq_len + 1); `unused`: MQAR's settings."""
    length = copy_length
    if 2 * length + 1 > seq_len + 1:
        raise errors.ConfigError(
            f"copy: 2 x {length} + 1 tokens do not fit {seq_len + 1}; lengthen data.max_length"
        )
    text = FIRST_KEY + rng.integers(0, num_keys + num_values, length)
    tokens = np.concatenate([text, [FILLER], text]).astype(np.int32)
    loss_mask = np.zeros(len(tokens), bool)
    loss_mask[length + 1 :] = True
    return {"tokens": tokens, "loss_mask": loss_mask}


GENERATORS = {"mqar": mqar_example, "copy": copy_example}


class RecallSource:
    """Random access to generated examples: source[i] depends on (task, seed, split, i) only."""

    def __init__(self, task: str, *, split: str, num_examples: int, seed: int, **params: Any):
        if task not in GENERATORS:
            raise errors.ConfigError(f"unknown recall task '{task}'; choose from {TASKS}")
        self._make = GENERATORS[task]
        self._params = params
        self._num = int(num_examples)
        self._stream = (int(seed), _SPLIT_STREAMS[split])
        if self._num:
            self[0]  # settings that do not fit fail here, with the config error

    def __len__(self) -> int:
        return self._num

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        if not 0 <= index < self._num:
            raise IndexError(f"example {index} out of range [0, {self._num})")
        rng = np.random.default_rng((*self._stream, int(index)))
        return self._make(rng, **self._params)
