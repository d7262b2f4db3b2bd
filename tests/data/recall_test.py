"""The recall probes' generators: deterministic per (seed, split, index), answers where the loss
is, and the recalled value is the one bound to the key in the context."""

from __future__ import annotations

import numpy as np
import pytest

from jaxattn import data, errors
from jaxattn.data import recall
from jaxattn.tasks import next_token

MQAR = dict(seq_len=48, num_keys=16, num_values=16, num_pairs=6, num_queries=5)


def test_mqar_answers_are_the_values_bound_in_the_context():
    source = recall.RecallSource("mqar", split="train", num_examples=50, seed=3, **MQAR)
    for i in range(len(source)):
        ex = source[i]
        tokens, mask = ex["tokens"], ex["loss_mask"]
        assert tokens.shape == (49,) and mask.sum() == 5
        context = dict(zip(tokens[0:12:2].tolist(), tokens[1:12:2].tolist(), strict=True))
        assert len(context) == 6  # distinct keys
        for t in np.flatnonzero(mask):
            assert context[int(tokens[t - 1])] == tokens[t]
        row = next_token.make_row(ex, 48)
        # The loss sits exactly on the predictions of the answers.
        np.testing.assert_array_equal(row["weights"] > 0, mask[1:])


ZOOLOGY = dict(seq_len=64, num_keys=127, num_values=128, num_pairs=4, num_queries=4)


def test_zoology_layout_asks_every_pair_once_with_power_law_gaps():
    source = recall.RecallSource(
        "mqar", split="train", num_examples=400, seed=1, layout="zoology", **ZOOLOGY
    )
    first_slot = []
    for i in range(len(source)):
        ex = source[i]
        tokens, mask = ex["tokens"], ex["loss_mask"]
        keys, values = tokens[0:8:2], tokens[1:8:2]
        assert len(set(keys.tolist())) == 4 and len(set(values.tolist())) == 4
        assert (keys < 2 + 127).all() and (values >= 2 + 127).all()
        answers = np.flatnonzero(mask)
        asked = tokens[answers - 1]
        assert sorted(asked.tolist()) == sorted(keys.tolist())  # each key exactly once
        bound = dict(zip(keys.tolist(), values.tolist(), strict=True))
        np.testing.assert_array_equal(tokens[answers], [bound[int(k)] for k in asked])
        assert ((answers - 1 - 8) % 2 == 0).all()  # queries on the slot grid after the context
        assert (tokens >= recall.FIRST_KEY).all()  # random tokens, no filler
        first_slot.append((answers.min() - 1 - 8) // 2)
    # Power law with a = 0.01: the first four of 28 slots hold most first queries (uniform: 14%).
    assert np.mean(np.asarray(first_slot) < 4) > 0.5
    with pytest.raises(errors.ConfigError, match="num_queries"):
        recall.RecallSource(
            "mqar",
            split="train",
            num_examples=1,
            seed=0,
            layout="zoology",
            **{**ZOOLOGY, "num_queries": 3},
        )
    with pytest.raises(errors.ConfigError, match="layout"):
        recall.RecallSource("mqar", split="train", num_examples=1, seed=0, layout="z", **ZOOLOGY)


def test_copy_repeats_the_text_after_the_separator():
    source = recall.RecallSource(
        "copy",
        split="test",
        num_examples=5,
        seed=0,
        seq_len=32,
        num_keys=4,
        num_values=4,
        copy_length=12,
    )
    ex = source[2]
    tokens, mask = ex["tokens"], ex["loss_mask"]
    np.testing.assert_array_equal(tokens[:12], tokens[13:])
    assert tokens[12] == recall.FILLER and mask.sum() == 12 and mask[13:].all()


def test_examples_depend_on_seed_split_and_index_only():
    a = recall.RecallSource("mqar", split="train", num_examples=10, seed=0, **MQAR)
    b = recall.RecallSource("mqar", split="train", num_examples=99, seed=0, **MQAR)
    c = recall.RecallSource("mqar", split="validation", num_examples=10, seed=0, **MQAR)
    np.testing.assert_array_equal(a[7]["tokens"], b[7]["tokens"])
    assert not np.array_equal(a[7]["tokens"], c[7]["tokens"])


def test_settings_that_do_not_fit_are_one_clear_error():
    with pytest.raises(errors.ConfigError, match="max_length"):
        recall.RecallSource(
            "mqar", split="train", num_examples=1, seed=0, **{**MQAR, "seq_len": 12}
        )
    with pytest.raises(errors.ConfigError, match="recall task"):
        recall.RecallSource("sort", split="train", num_examples=1, seed=0, **MQAR)


def test_registry_loader_sizes_and_vocabulary():
    info, open_split = data.get_dataset(
        {
            "name": "recall",
            "task": "mqar",
            "max_length": 48,
            "num_train": 20,
            "num_validation": 4,
            "num_test": 4,
            **{k: v for k, v in MQAR.items() if k != "seq_len"},
        }
    )
    assert info.vocab_size == 2 + 16 + 16 and info.splits == {
        "train": 20,
        "validation": 4,
        "test": 4,
    }
    assert len(open_split("test")) == 4
