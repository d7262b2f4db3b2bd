"""ListOps (LRA): a seeded, deterministic generator that follows LRA's sampling rules exactly.

The rules are those of LRA's `lra_benchmarks/data/listops.py` (see LRA.md §2.1):

* operators `[MIN`, `[MAX`, `[MED` (`int(numpy.median(args))`, so an even count truncates the
  mean of the two middle values) and `[SM` (sum modulo 10); values are the digits 0..9;
* a recursive sampler called with `depth=1, max_depth=10, max_args=10`: below `max_depth` a node
  is a leaf with probability 0.75 (`random() > 0.25`), at `max_depth` it is always a leaf; an
  operator node has `randint(2, max_args)` arguments (inclusive), sampled at `depth + 1`, and its
  operator is drawn uniformly *after* its arguments, as in LRA;
* a tree is kept iff `min_length < length < max_length` (500 and 2000, both strict), where the
  length counts operator tokens, `]` tokens and digits, not parentheses.

Random draws use the same `random.Random` methods in the same order as LRA's sampler, so a tree
drawn from a given `random.Random` state is the tree LRA's function would draw from it. What we
add, so that a dataset can be rebuilt bit for bit:

* **Seeding in chunks.** Accepted trees are produced in chunks of `examples_per_chunk`; chunk `i`
  uses its own `random.Random` seeded from `(seed, i)`. Chunks are merged in index order, so the
  dataset depends on `(seed, split sizes, examples_per_chunk, length bounds)` only, never on the
  number of worker processes.
* **Early abort.** A tree is abandoned as soon as its length (tokens emitted plus the `]` its
  open operators still owe) reaches `max_length`: it would be rejected anyway. The abort decision
  depends only on draws already made, so the following trees are still independent draws and the
  distribution of accepted trees is unchanged; only the generation is faster.
* **Labels while building.** Each node returns its value as it is sampled.
* **Dedup and split.** Accepted trees are deduplicated globally by a hash of their token bytes
  (first occurrence in chunk order wins) and then split in generation order (LRA splits a Python
  `set`, in arbitrary order).

Vocabulary (fixed, `VOCAB_SIZE = 16`): 0 = pad, digits '0'..'9' -> 1..10, `[MIN` 11, `[MAX` 12,
`[MED` 13, `[SM` 14, `]` 15. LRA's input pipeline replaces `]` by `X` and drops the parentheses
of its serialized trees, so our id sequences are token for token LRA's tokenized inputs (only the
integer ids differ, because LRA builds its vocabulary from the data).
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

from jaxattn.data import generation

PAD_ID = 0
DIGIT_OFFSET = 1  # digit d -> id d + 1
OPERATOR_IDS: dict[str, int] = {"[MIN": 11, "[MAX": 12, "[MED": 13, "[SM": 14}
END_ID = 15
VOCAB_SIZE = 16
NUM_CLASSES = 10

# id -> LRA token text ('<pad>' for 0).
ID_TO_TOKEN: tuple[str, ...] = (
    ("<pad>",) + tuple(str(d) for d in range(10)) + tuple(OPERATOR_IDS) + ("]",)
)

MIN_LENGTH = 500
MAX_LENGTH = 2000
MAX_DEPTH = 10
MAX_ARGS = 10
LEAF_THRESHOLD = 0.25  # LRA's VALUE_P: a node is a leaf iff random() > 0.25
EXAMPLES_PER_CHUNK = 500

_OPERATOR_CODES = (0, 1, 2, 3)  # MIN, MAX, MED, SM; drawn with rng.choice like LRA's OPERATORS
_DIGITS = tuple(range(10))


class Example(NamedTuple):
    """One accepted tree: `tokens` uint8 [L] ids (L = tree length), `label` in 0..9."""

    tokens: np.ndarray
    label: int


class _TooLong(Exception):
    """Raised inside the sampler once a tree's length reaches `max_length`."""


def _chunk_rng(seed: int, chunk_index: int) -> random.Random:
    return random.Random(generation.chunk_seed("listops", seed, chunk_index))


def make_tree_sampler(
    rng: random.Random,
    *,
    max_depth: int = MAX_DEPTH,
    max_args: int = MAX_ARGS,
    max_length: int = MAX_LENGTH,
) -> Callable[[], tuple[list[int], int] | None]:
    """Returns `sample()`: one tree as (token ids, label), or None if it reached `max_length`.

    The closure binds the `rng` methods and the output list to locals: the sampler is the inner
    loop of generation and this roughly halves its cost compared with attribute look-ups.
    """
    draw_unit = rng.random
    draw_int = rng.randint
    draw_choice = rng.choice
    out: list[int] = []
    emit = out.append
    committed = [0]  # tokens emitted + `]` owed by open operators: a lower bound on the length

    def node(depth: int) -> int:
        # As in LRA: no draw at max_depth (r = 1 forces a leaf), else leaf iff random() > 0.25.
        if depth >= max_depth or draw_unit() > LEAF_THRESHOLD:
            length = committed[0] + 1
            if length >= max_length:
                raise _TooLong
            committed[0] = length
            digit = draw_choice(_DIGITS)
            emit(digit + DIGIT_OFFSET)
            return digit
        length = committed[0] + 2
        if length >= max_length:
            raise _TooLong
        committed[0] = length
        op_position = len(out)
        emit(PAD_ID)  # the operator is drawn after its arguments (LRA's order); filled in below
        num_args = draw_int(2, max_args)
        args = [node(depth + 1) for _ in range(num_args)]
        op = draw_choice(_OPERATOR_CODES)
        out[op_position] = 11 + op
        emit(END_ID)
        if op == 0:
            return min(args)
        if op == 1:
            return max(args)
        if op == 2:
            # int(np.median(args)): the values are >= 0, so truncation is floor division.
            args.sort()
            mid = num_args // 2
            return args[mid] if num_args % 2 else (args[mid - 1] + args[mid]) // 2
        return sum(args) % 10

    def sample() -> tuple[list[int], int] | None:
        out.clear()
        committed[0] = 0
        try:
            label = node(1)
        except _TooLong:
            return None
        return list(out), label

    return sample


def generate_chunk(
    seed: int,
    chunk_index: int,
    *,
    num_examples: int = EXAMPLES_PER_CHUNK,
    min_length: int = MIN_LENGTH,
    max_length: int = MAX_LENGTH,
    max_depth: int = MAX_DEPTH,
    max_args: int = MAX_ARGS,
) -> list[tuple[bytes, int, bytes]]:
    """Samples trees from the chunk's own RNG until `num_examples` are accepted.

    Returns:
      A list of (token bytes (uint8 ids), label, 16-byte blake2b digest of the token bytes),
      in acceptance order. Duplicates within the chunk are kept (dedup is global, later).
    """
    sample = make_tree_sampler(
        _chunk_rng(seed, chunk_index), max_depth=max_depth, max_args=max_args, max_length=max_length
    )
    accepted = []
    while len(accepted) < num_examples:
        tree = sample()
        if tree is None or len(tree[0]) <= min_length:
            continue
        token_bytes = bytes(tree[0])
        accepted.append(
            (token_bytes, tree[1], hashlib.blake2b(token_bytes, digest_size=16).digest())
        )
    return accepted


def _generate_chunk_star(args: tuple) -> list[tuple[bytes, int, bytes]]:
    seed, chunk_index, kwargs = args
    return generate_chunk(seed, chunk_index, **kwargs)


def generate(
    split_sizes: Mapping[str, int],
    *,
    seed: int,
    min_length: int = MIN_LENGTH,
    max_length: int = MAX_LENGTH,
    max_depth: int = MAX_DEPTH,
    max_args: int = MAX_ARGS,
    examples_per_chunk: int = EXAMPLES_PER_CHUNK,
    num_workers: int | None = None,
    log_every_s: float | None = 2.0,
) -> dict[str, list[Example]]:
    """Generates unique ListOps trees and splits them in generation order.

    Args:
      split_sizes: split name -> number of examples, in the order the splits are carved from the
        generated sequence (e.g. {'train': 96000, 'validation': 2000, 'test': 2000}).
      seed: generation seed; chunk i draws from an RNG seeded by (seed, i).
      min_length, max_length: a tree is kept iff min_length < length < max_length.
      max_depth, max_args: LRA's sampler parameters.
      examples_per_chunk: accepted trees per chunk; part of the dataset's identity.
      num_workers: processes generating chunks (default os.cpu_count()); <= 1 runs inline.
        The result does not depend on it.
      log_every_s: print progress to stderr at least this often; None prints nothing.
        (With the pool; inline, progress comes after each chunk, about a second at LRA sizes.)

    Returns:
      split name -> list of `Example` (tokens uint8 [L], label), L in (min_length, max_length).

    Asking for more unique trees than the bounds admit (e.g. 11 with max_length=3, where only
    the ten digits fit) never returns.
    """
    needed = sum(split_sizes.values())
    if needed <= 0:
        return {name: [] for name in split_sizes}
    if not 0 <= min_length < max_length:
        raise ValueError(f"need 0 <= min_length < max_length, got {min_length}, {max_length}")
    kwargs = dict(
        num_examples=examples_per_chunk,
        min_length=min_length,
        max_length=max_length,
        max_depth=max_depth,
        max_args=max_args,
    )
    # Chunks 0, 1, ... until enough unique trees: at least this many, more if duplicates.
    num_workers = generation.num_processes(num_workers, -(-needed // examples_per_chunk))
    progress = generation.Progress(needed, log_every_s, f"listops(seed={seed})")
    seen: set[bytes] = set()
    examples: list[Example] = []

    def on_wait(finished: list) -> None:  # count chunks finished out of order
        progress.update(min(len(examples) + examples_per_chunk * len(finished), needed))

    chunks = generation.map_ordered(
        _generate_chunk_star,
        ((seed, chunk_index, kwargs) for chunk_index in itertools.count()),
        num_workers=num_workers,
        on_wait=on_wait,
    )
    try:
        for chunk in chunks:
            for token_bytes, label, digest in chunk:
                if digest in seen:
                    continue
                seen.add(digest)
                examples.append(Example(np.frombuffer(token_bytes, dtype=np.uint8), label))
                if len(examples) == needed:
                    break
            if len(examples) == needed:
                break
            progress.update(len(examples))
    finally:
        chunks.close()  # stops the workers still busy on chunks nobody needs
    progress.finish()

    splits, start = {}, 0
    for name, size in split_sizes.items():
        splits[name] = examples[start : start + size]
        start += size
    return splits


def encode(text: str) -> np.ndarray:
    """LRA text -> ids uint8 [L].

    Accepts the raw LRA serialization (`( ( ( [MIN 3 ) 5 ) ] )`), the tokenized form with `X`
    for `]`, or plain `[MIN 3 5 ]`: parentheses are dropped, as LRA's input pipeline does.
    """
    ids = []
    for token in text.replace("(", " ").replace(")", " ").split():
        if token in ("]", "X"):
            ids.append(END_ID)
        elif token in OPERATOR_IDS:
            ids.append(OPERATOR_IDS[token])
        elif len(token) == 1 and token.isdigit():
            ids.append(int(token) + DIGIT_OFFSET)
        else:
            raise ValueError(f"not a ListOps token: {token!r}")
    return np.asarray(ids, dtype=np.uint8)


def _parse(ids: Sequence[int]) -> int | tuple:
    """ids (trailing pads allowed) -> a digit, or (operator name, [argument trees])."""
    ids = [int(i) for i in ids]
    while ids and ids[-1] == PAD_ID:
        ids.pop()
    stack: list[tuple[str, list]] = []
    root = None
    for position, token_id in enumerate(ids):
        if root is not None:
            raise ValueError(f"tokens after the end of the expression at position {position}")
        if DIGIT_OFFSET <= token_id < DIGIT_OFFSET + 10:
            item = token_id - DIGIT_OFFSET
        elif token_id in OPERATOR_IDS.values():
            stack.append((ID_TO_TOKEN[token_id], []))
            continue
        elif token_id == END_ID:
            if not stack or not stack[-1][1]:
                raise ValueError(f"']' without an operator and arguments at position {position}")
            item = stack.pop()
        else:
            raise ValueError(f"unexpected id {token_id} at position {position}")
        if stack:
            stack[-1][1].append(item)
        else:
            root = item
    if stack or root is None:
        raise ValueError("incomplete expression")
    return root


def _evaluate_tree(tree: int | tuple) -> int:
    if isinstance(tree, int):
        return tree
    op, args = tree
    values = [_evaluate_tree(arg) for arg in args]
    if op == "[MIN":
        return min(values)
    if op == "[MAX":
        return max(values)
    if op == "[MED":
        return int(np.median(values))
    return sum(values) % 10


def evaluate(ids: Sequence[int] | np.ndarray) -> int:
    """Reference evaluator: the value of a token-id sequence (trailing pads ignored).

    Independent of the generator's code path (explicit parse, `int(np.median(...))` as in LRA),
    so tests can re-evaluate generated examples against it. Raises ValueError if malformed.
    """
    return _evaluate_tree(_parse(ids))


def _lra_string(tree: int | tuple) -> str:
    if isinstance(tree, int):
        return str(tree)
    op, args = tree
    # LRA nests ((op, a1), a2), ..., then (t, ']'), printing '( x y )' for each pair.
    text = "( " * (len(args) + 1) + op + " " + _lra_string(args[0]) + " )"
    for arg in args[1:]:
        text += " " + _lra_string(arg) + " )"
    return text + " ] )"


def to_lra_string(ids: Sequence[int] | np.ndarray) -> str:
    """ids -> LRA's raw serialization with parentheses, e.g. `( ( ( [MIN 3 ) 5 ) ] )`."""
    return _lra_string(_parse(ids))


def to_text(ids: Sequence[int] | np.ndarray) -> str:
    """ids -> space-separated tokens without parentheses, e.g. `[MIN 3 5 ]` (pads dropped)."""
    return " ".join(ID_TO_TOKEN[int(i)] for i in ids if int(i) != PAD_ID)
