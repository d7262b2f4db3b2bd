"""The attention-free ListOps baselines (scripts/listops_baselines.py)."""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest

from jaxattn.data import listops

ROOT = pathlib.Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location(
    "listops_baselines", ROOT / "scripts" / "listops_baselines.py"
)
baselines = importlib.util.module_from_spec(spec)
spec.loader.exec_module(baselines)

MIN, MAX = listops.OPERATOR_IDS["[MIN"], listops.OPERATOR_IDS["[MAX"]
END = listops.END_ID


def _digit(d: int) -> int:
    return d + listops.DIGIT_OFFSET


def _trees(max_depth: int, n: int, seed: int) -> list[tuple[list[int], int]]:
    chunk = listops.generate_chunk(
        seed, 0, num_examples=n, min_length=4, max_length=400, max_depth=max_depth
    )
    return [(list(tokens), label) for tokens, label, _ in chunk]


def test_direct_arguments_skip_nested_lists_and_padding():
    # [MAX 2 [MIN 3 4 ] 9 ] <pad> <pad>
    tokens = [MAX, _digit(2), MIN, _digit(3), _digit(4), END, _digit(9), END, 0, 0]
    assert baselines.direct_argument_digits(tokens) == [2, 9]


def test_root_operator_table_recovers_a_label_that_is_a_function_of_the_root():
    rng = np.random.default_rng(0)
    examples = []
    for _ in range(200):
        op = int(rng.choice([MIN, MAX]))
        examples.append(([op, _digit(1), _digit(2), END], 0 if op == MIN else 9))
    assert baselines.fit_and_score(baselines._root, examples, examples) == 1.0
    assert baselines.fit_and_score(baselines._majority, examples, examples) < 0.7


def test_root_and_direct_args_are_exact_for_flat_min_max_trees():
    # max_depth=2: every argument of the root is a digit, so MIN/MAX trees are determined by
    # (root, max, min) and the lookup table is exact on any tree whose key it has seen.
    train = _trees(max_depth=2, n=3000, seed=1)
    flat = [(t, y) for t, y in train if t[0] in (MIN, MAX)]
    assert baselines.fit_and_score(baselines._root_and_args, flat, flat) == 1.0


def test_baselines_order_on_lra_style_trees():
    train, test = _trees(max_depth=10, n=1500, seed=2), _trees(max_depth=10, n=500, seed=3)
    scores = {
        name: baselines.fit_and_score(f, train, test) for name, f in baselines.BASELINES.items()
    }
    assert (
        scores["majority"] < scores["root_operator"] <= scores["root_operator+direct_args"] + 0.02
    )


def test_empty_training_split_is_an_error():
    with pytest.raises(ValueError, match="non-empty"):
        baselines.fit_and_score(baselines._root, [], [([MIN], 0)])
