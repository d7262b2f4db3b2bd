"""Attention-free ListOps baselines: what a number like the paper's 37% means.

    python scripts/listops_baselines.py [--config=lra] [--data_dir=DIR] [--max_train=N]

Fits three lookup-table classifiers on the train split and scores them on the test split:

* `majority`: always the most frequent training label;
* `root_operator`: the most frequent label given the first token (the root operator, MIN, MAX,
  MED or SM), i.e. what a model learns if it reads one token;
* `root_operator+direct_args`: given the root operator and the max and min of the digits that are
  direct arguments of the root (not inside a sub-list).

A trained model at or below `majority` learned nothing; one near `root_operator` learned to find
the first token and no more. Reads the prepared tfds dataset (build it with
`python scripts/prepare_data.py listops`); prints one JSON object.
"""

from __future__ import annotations

import argparse
import collections
import json
import pathlib
import sys
from collections.abc import Callable, Iterable, Sequence

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from jaxattn.data import listops, listops_builder  # noqa: E402

Features = Callable[[Sequence[int]], tuple]


def direct_argument_digits(tokens: Sequence[int]) -> list[int]:
    """The digits that are arguments of the root operator itself, in order."""
    depth, digits = 0, []
    for token in tokens[1:]:
        token = int(token)
        if token in listops.OPERATOR_IDS.values():
            depth += 1
        elif token == listops.END_ID:
            if depth == 0:
                break
            depth -= 1
        elif token != listops.PAD_ID and depth == 0:
            digits.append(token - listops.DIGIT_OFFSET)
    return digits


def _majority(tokens: Sequence[int]) -> tuple:
    return ()


def _root(tokens: Sequence[int]) -> tuple:
    return (int(tokens[0]),)


def _root_and_args(tokens: Sequence[int]) -> tuple:
    digits = direct_argument_digits(tokens)
    return (int(tokens[0]), max(digits, default=-1), min(digits, default=-1))


BASELINES: dict[str, Features] = {
    "majority": _majority,
    "root_operator": _root,
    "root_operator+direct_args": _root_and_args,
}


def fit_and_score(
    features: Features,
    train: Iterable[tuple[Sequence[int], int]],
    test: Iterable[tuple[Sequence[int], int]],
) -> float:
    """Test accuracy of the lookup table features -> most frequent training label.

    An unseen feature value falls back to the training majority label.
    """
    table: dict[tuple, collections.Counter] = collections.defaultdict(collections.Counter)
    overall: collections.Counter = collections.Counter()
    for tokens, label in train:
        table[features(tokens)][label] += 1
        overall[label] += 1
    if not overall:
        raise ValueError("fit_and_score needs a non-empty training split")
    fallback = overall.most_common(1)[0][0]
    correct = total = 0
    for tokens, label in test:
        counts = table.get(features(tokens))
        prediction = counts.most_common(1)[0][0] if counts else fallback
        correct += prediction == label
        total += 1
    return correct / max(total, 1)


def _examples(source, limit: int | None) -> list[tuple[list[int], int]]:
    n = len(source) if limit is None else min(limit, len(source))
    records = (source[i] for i in range(n))  # one read per record
    return [(list(map(int, r["tokens"])), int(r["label"])) for r in records]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="lra", help="builder config: lra | small | tiny")
    parser.add_argument("--data_dir", default=None, help="tfds data dir (default: tfds's)")
    parser.add_argument("--max_train", type=int, default=None, help="train examples to fit on")
    args = parser.parse_args(argv)
    builder = listops_builder.ListOps(config=args.config, data_dir=args.data_dir)
    if not builder.is_prepared():
        sys.exit(
            f"error: listops/{args.config} is not prepared in {builder.data_dir}; build it with "
            f"`python scripts/prepare_data.py listops --config={args.config}`"
        )
    train = _examples(builder.as_data_source("train"), args.max_train)
    test = _examples(builder.as_data_source("test"), None)
    scores = {name: fit_and_score(f, train, test) for name, f in BASELINES.items()}
    print(json.dumps({"config": args.config, "train": len(train), "test": len(test), **scores}))


if __name__ == "__main__":
    main()
