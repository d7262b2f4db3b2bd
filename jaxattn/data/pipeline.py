"""Batches for training and evaluation from a random-access source of {'tokens', 'label'} records.

Records may hold a second sequence, 'tokens2' (document pairs: LRA Retrieval); each token field
becomes a batch array of its own (TOKEN_FIELDS), truncated and padded to the same length.

Why grain's `MapDataset` (and not a hand-written numpy loop): a `MapDataset` is indexable, so
the whole training stream is a pure function of (seed, position). `shuffle` permutes with an
index shuffle (O(1) memory, no buffer) and, under `repeat()`, reseeds every epoch; `batch` and
slicing keep random access, so batch number `step` is `dataset[step]` and a resumed run starts
by slicing at `start_step`, with no iterator state to checkpoint. `to_iter_dataset` then reads
ahead with threads and still yields in order. A numpy version would re-implement the same
permutation bookkeeping plus an ordered thread pool and queue; grain already tests both.

Layout of the training stream: the epochs' permutations are concatenated and cut into global
batches of `batch_size` consecutive positions (a batch may span an epoch boundary, so no example
is dropped). Global batch `step` covers positions [step * B, (step + 1) * B); process p of P takes
rows [p * B / P, (p + 1) * B / P) of it, so concatenating the processes' batches in process order
gives the global batch.

Shape letters: B global batch size, b = B // process_count rows on this process, L = seq_len.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import grain
import numpy as np

from jaxattn import errors

Batch = dict[str, np.ndarray]
# (record, seq_len, weight=1.0) -> one row of the batch: the task's `make_row`.
RowFn = Callable[..., dict[str, Any]]


# Record fields holding token sequences -> the batch arrays they become.
TOKEN_FIELDS = {"tokens": "inputs", "tokens2": "inputs2"}


class Source(Protocol):
    """Random access to records {'tokens': int array [n], 'label': int} (a tfds data source)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Mapping[str, Any]: ...


def num_eval_batches(num_examples: int, batch_size: int) -> int:
    """Global batches in one evaluation pass: ceil(num_examples / batch_size)."""
    return -(-num_examples // batch_size)


def _rows_per_process(batch_size: int, process_index: int, process_count: int) -> int:
    if batch_size <= 0 or batch_size % process_count:
        raise errors.ConfigError(
            f"batch_size={batch_size} must be a positive multiple of process_count={process_count}"
        )
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index={process_index} not in [0, {process_count})")
    return batch_size // process_count


def classification_row(
    example: Mapping[str, Any], seq_len: int, weight: float = 1.0
) -> dict[str, Any]:
    """A labelled record -> {'inputs' (and 'inputs2'): int32 [L], 'targets', 'weights'} (the
    classification tasks' `make_row`): tokens truncated to L, then padded with 0 (the pad id)."""
    row: dict[str, Any] = {}
    for field, name in TOKEN_FIELDS.items():
        if field in example:
            tokens = np.asarray(example[field])[:seq_len]
            inputs = np.zeros(seq_len, np.int32)
            inputs[: tokens.shape[0]] = tokens
            row[name] = inputs
    row["targets"] = np.int32(example["label"])
    row["weights"] = np.float32(weight)
    return row


def _empty_record(source: Source) -> dict[str, Any]:
    """A record with the source's token fields, empty (all padding), label 0; a source whose
    records are not token sequences says what its empty record is (`empty_record()`)."""
    if hasattr(source, "empty_record"):
        return source.empty_record()
    fields = [f for f in TOKEN_FIELDS if f in source[0]] if len(source) else ["tokens"]
    return {**{f: np.zeros(0, np.int32) for f in fields}, "label": 0}


def _eval_row(
    position: int, *, source: Source, seq_len: int, empty: Mapping[str, Any], row_fn: RowFn
) -> dict[str, Any]:
    if position < len(source):
        return row_fn(source[position], seq_len)
    return row_fn(empty, seq_len, weight=0.0)


def template_batch(
    source: Source, *, batch_size: int, seq_len: int, row_fn: RowFn = classification_row
) -> Batch:
    """A batch of `batch_size` all-padding rows with the arrays, shapes and dtypes of the
    source's real batches (for model initialisation)."""
    row = row_fn(_empty_record(source), seq_len)
    return {k: np.stack([v] * batch_size) for k, v in row.items()}


def _shuffle_seed(seed: int) -> int:
    # grain seeds epoch e with (seed + e): hashing the user's seed first keeps seeds 0 and 1 from
    # sharing all but one epoch's permutation.
    return int(np.random.SeedSequence(seed).generate_state(1)[0])


def _augment_seed(seed: int) -> int:
    # Its own stream: not any seed's shuffle seed.
    return int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])


def _read_options(num_threads: int) -> grain.ReadOptions:
    # Elements here are whole batches: a few in flight per thread keep the trainer fed.
    return grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=max(2, 2 * num_threads))


def train_batches(
    source: Source,
    *,
    batch_size: int,
    seq_len: int,
    seed: int,
    start_step: int = 0,
    process_index: int = 0,
    process_count: int = 1,
    num_threads: int = 2,
    row_fn: RowFn = classification_row,
    transform: Callable[[dict[str, Any], np.random.Generator], dict[str, Any]] | None = None,
) -> Iterator[Batch]:
    """The endless, shuffled training stream, starting at batch `start_step`.

    Batch `step` depends on (source, batch_size, seq_len, seed, step) only: starting at
    `start_step=k` yields exactly batches k, k+1, ... of a run started at 0 (resume after a kill).
    Every epoch uses a new permutation.

    Args:
      source: random-access records {'tokens': [n], 'label': int}.
      batch_size: global batch size B; must be divisible by `process_count`.
      seq_len: L; tokens are truncated to L and padded with 0.
      seed: shuffle seed (>= 0).
      start_step: first global batch to yield.
      process_index, process_count: this process's rows of each global batch.
      num_threads: reader threads prefetching whole batches (0 reads in the caller's thread).
      row_fn: record -> row (the task's `make_row`); default `classification_row`.
      transform: optional training augmentation `(row, rng) -> row` (the dataset's
        `train_transform`); its generator is seeded by (seed, stream position), so every epoch
        draws anew and a resumed run draws exactly what the uninterrupted one did.

    Yields:
      rows stacked to batches of b = B // process_count; with `classification_row`
      {'inputs': int32 [b, L], 'targets': int32 [b], 'weights': float32 [b] (ones)}, and
      'inputs2' int32 [b, L] when records hold 'tokens2'.
    """
    rows = _rows_per_process(batch_size, process_index, process_count)
    if len(source) == 0:
        raise ValueError("train_batches needs a non-empty source")
    dataset = (
        grain.MapDataset.source(source)
        .shuffle(seed=_shuffle_seed(seed))
        .repeat()  # endless; the shuffle reseeds per epoch from the position's epoch number
        .map(functools.partial(row_fn, seq_len=seq_len))
    )
    if transform is not None:
        dataset = dataset.random_map(transform, seed=_augment_seed(seed))
    dataset = dataset.batch(rows, drop_remainder=True)
    # Chunk c holds stream positions [c * b, (c + 1) * b); global batch s is chunks
    # s * P .. s * P + P - 1, and this process takes chunk s * P + p.
    dataset = dataset[start_step * process_count + process_index :: process_count]
    return iter(dataset.to_iter_dataset(_read_options(num_threads)))


def eval_batches(
    source: Source,
    *,
    batch_size: int,
    seq_len: int,
    process_index: int = 0,
    process_count: int = 1,
    max_batches: int | None = None,
    num_threads: int = 2,
    row_fn: RowFn = classification_row,
) -> Iterator[Batch]:
    """One in-order pass over `source`; the last global batch is padded with weight-0 rows.

    Global batch i holds examples [i * B, (i + 1) * B), positions past the end being padding
    rows (inputs 0, targets 0, weights 0), so weighted sums average exactly and every batch
    still divides across devices.

    Args:
      source: random-access records {'tokens': [n], 'label': int}.
      batch_size: global batch size B; must be divisible by `process_count`.
      seq_len: L; tokens are truncated to L and padded with 0.
      process_index, process_count: this process's rows of each global batch.
      max_batches: stop after this many global batches (None: the whole split).
      num_threads: reader threads prefetching whole batches.
      row_fn: record -> row (the task's `make_row`); padding rows get `weight=0.0`.

    Yields:
      num_eval_batches(len(source), B) (or max_batches) batches of rows (with
      `classification_row`: {'inputs': int32 [b, L], 'targets': int32 [b], 'weights': float32 [b]}).
    """
    rows = _rows_per_process(batch_size, process_index, process_count)
    num_batches = num_eval_batches(len(source), batch_size)
    if max_batches is not None:
        num_batches = min(num_batches, max_batches)
    if num_batches == 0:
        return iter(())
    dataset = (
        grain.MapDataset.range(num_batches * batch_size)
        .map(
            functools.partial(
                _eval_row,
                source=source,
                seq_len=seq_len,
                empty=_empty_record(source),
                row_fn=row_fn,
            )
        )
        .batch(rows)
    )[process_index::process_count]
    return iter(dataset.to_iter_dataset(_read_options(num_threads)))
