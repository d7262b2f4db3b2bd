"""ListOps generator, tfds builder and `jaxattn.data.get_dataset`."""

import collections
import hashlib
import random
import subprocess
import sys

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxattn import data, errors
from jaxattn.data import listops, listops_builder, pipeline

# Small bounds keep the generator tests fast; the rules are the same as for 500 < length < 2000.
SMALL = dict(min_length=20, max_length=80, examples_per_chunk=50, log_every_s=None)


def _generate(sizes, *, seed=0, num_workers=1, **overrides):
    return listops.generate(sizes, seed=seed, num_workers=num_workers, **{**SMALL, **overrides})


def _flat(splits):
    return [
        (example.tokens.tobytes(), example.label) for split in splits.values() for example in split
    ]


# --- the generator -------------------------------------------------------------------------


def test_same_seed_same_data():
    sizes = {"train": 200, "validation": 50, "test": 50}
    assert _flat(_generate(sizes)) == _flat(_generate(sizes))


def test_worker_count_does_not_change_data():
    sizes = {"train": 200, "validation": 50, "test": 50}
    assert _flat(_generate(sizes, num_workers=1)) == _flat(_generate(sizes, num_workers=2))


def test_different_seed_different_data():
    sizes = {"train": 100}
    assert _flat(_generate(sizes, seed=0)) != _flat(_generate(sizes, seed=1))


def test_data_are_pinned():
    # The dataset's identity: a change to the sampler, the chunk seeding or the dedup that
    # alters a single byte fails here (pure Python `random`, so stable across platforms).
    splits = _generate({"train": 150, "test": 50}, num_workers=2)
    digest = hashlib.sha256()
    for example in splits["train"] + splits["test"]:
        digest.update(bytes([len(example.tokens), example.label]) + example.tokens.tobytes())
    assert digest.hexdigest() == (
        "434bae603eb60f66fbb30d1cf6938f363a114b482222de500378d36db073ee9d"
    )


def test_splits_are_carved_in_generation_order():
    whole = _generate({"all": 150})["all"]
    parts = _generate({"train": 100, "validation": 30, "test": 20})
    carved = parts["train"] + parts["validation"] + parts["test"]
    assert [e.tokens.tobytes() for e in carved] == [e.tokens.tobytes() for e in whole]


def test_lengths_obey_strict_bounds():
    examples = _generate({"train": 2000}, min_length=10, max_length=30, examples_per_chunk=200)
    lengths = [len(example.tokens) for example in examples["train"]]
    assert all(10 < n < 30 for n in lengths)
    # Both ends are reached, so neither bound is off by one.
    assert min(lengths) == 11 and max(lengths) == 29


def test_every_generated_label_reevaluates():
    examples = _generate({"train": 300}, seed=3)["train"]
    for example in examples:
        assert listops.evaluate(example.tokens) == example.label
        assert example.tokens.dtype == np.uint8
        assert example.tokens.max() < listops.VOCAB_SIZE and example.tokens.min() > 0


def test_no_duplicates_across_splits():
    splits = _generate({"train": 300, "validation": 100, "test": 100}, min_length=5, max_length=12)
    tokens = [example.tokens.tobytes() for _, example in _iter_examples(splits)]
    assert len(tokens) == len(set(tokens)) == 500


def _iter_examples(splits):
    for name, examples in splits.items():
        for example in examples:
            yield name, example


def test_dedup_keeps_only_unique_trees():
    # Lengths in (0, 3) admit only the ten single digits (operator nodes are at least 4 long).
    examples = _generate({"train": 10}, min_length=0, max_length=3, examples_per_chunk=4)["train"]
    assert sorted(example.label for example in examples) == list(range(10))
    assert sorted(example.tokens.tolist() for example in examples) == [[d + 1] for d in range(10)]


def _lra_reference_tree(rng, depth=1, max_depth=10, max_args=10):
    """LRA's sampler transcribed from LRA.md §2.1: nested pairs, operator drawn last."""
    r = rng.random() if depth < max_depth else 1
    if r > 0.25:
        return rng.choice(list(range(10))), 1
    length = 2
    num_args = rng.randint(2, max_args)
    args = []
    for _ in range(num_args):
        subtree, sublength = _lra_reference_tree(rng, depth + 1, max_depth, max_args)
        args.append(subtree)
        length += sublength
    tree = (rng.choice(["[MIN", "[MAX", "[MED", "[SM"]), args[0])
    for arg in args[1:]:
        tree = (tree, arg)
    return (tree, "]"), length


def _pairs_to_string(tree):
    if isinstance(tree, tuple):
        return "( " + _pairs_to_string(tree[0]) + " " + _pairs_to_string(tree[1]) + " )"
    return str(tree)


def test_sampler_matches_lra_draw_for_draw():
    # Without an early abort, the same RNG state must give LRA's tree, token for token.
    lra_rng, our_rng = random.Random(7), random.Random(7)
    sample = listops.make_tree_sampler(our_rng, max_length=10**9)
    for _ in range(300):
        tree, length = _lra_reference_tree(lra_rng)
        text = _pairs_to_string(tree)
        ids, label = sample()
        assert listops.to_lra_string(ids) == text
        assert len(ids) == length
        assert label == listops.evaluate(listops.encode(text))


@pytest.mark.parametrize(
    "text, value",
    [
        ("[MED 1 2 3 4 ]", 2),  # int(median) = int(2.5)
        ("[MED 3 8 ]", 5),  # int(5.5)
        ("[MED 0 9 ]", 4),
        ("[MED 7 1 4 ]", 4),
        ("[SM 9 9 9 ]", 7),
        ("[SM 0 0 ]", 0),
        ("[MIN 3 [MAX 1 7 ] 5 ]", 3),
        ("[MAX 2 [SM 5 6 ] [MED 8 9 ] ]", 8),
        ("( ( ( [MIN 3 ) 5 ) ] )", 3),  # LRA's raw serialization
        ("[MIN 3 [SM 4 8 X X", 2),  # LRA's tokenized form, ']' -> 'X'
    ],
)
def test_reference_evaluator_on_hand_written_expressions(text, value):
    assert listops.evaluate(listops.encode(text)) == value


def test_vocabulary_and_strings():
    ids = listops.encode("[MIN 3 [SM 4 8 ] ]")
    np.testing.assert_array_equal(ids, [11, 4, 14, 5, 9, 15, 15])
    assert listops.to_lra_string(ids) == "( ( ( [MIN 3 ) ( ( ( [SM 4 ) 8 ) ] ) ) ] )"
    assert listops.to_text(np.concatenate([ids, [0, 0]])) == "[MIN 3 [SM 4 8 ] ]"
    np.testing.assert_array_equal(listops.encode(listops.to_lra_string(ids)), ids)
    assert listops.evaluate(np.concatenate([ids, [0, 0, 0]])) == 2  # trailing pads ignored


@pytest.mark.parametrize("text", ["[MIN 3 5", "3 5", "[MIN ]", "] 3", "[MIN 3 ] 4"])
def test_evaluator_rejects_malformed(text):
    with pytest.raises(ValueError):
        listops.evaluate(listops.encode(text))


# --- the tfds builder and get_dataset -------------------------------------------------------


def _data_config(data_dir, *, name="listops", builder_config="tiny", allow_build=False):
    config = ml_collections.ConfigDict()
    config.name = name
    config.builder_config = builder_config
    config.data_dir = str(data_dir)
    config.allow_build = allow_build
    return config


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    data.get_dataset(_data_config(data_dir, allow_build=True))
    return data_dir


def test_builder_round_trip(tiny_dir):
    info, get_source = data.get_dataset(_data_config(tiny_dir))
    assert info == data.DatasetInfo(
        vocab_size=16, num_classes=10, splits={"train": 256, "validation": 64, "test": 64}
    )
    seen = set()
    for split, size in info.splits.items():
        source = get_source(split)
        assert len(source) == size
        for index in range(size):
            record = source[index]
            tokens = record["tokens"]
            assert tokens.dtype == np.uint8
            assert listops.MIN_LENGTH < len(tokens) < listops.MAX_LENGTH
            assert listops.evaluate(tokens) == record["label"]
            seen.add(tokens.tobytes())
    assert len(seen) == sum(info.splits.values())


def test_builder_matches_generator(tiny_dir):
    tiny = next(c for c in listops_builder.ListOps.BUILDER_CONFIGS if c.name == "tiny")
    expected = listops.generate(tiny.split_sizes, seed=tiny.seed, num_workers=1, log_every_s=None)
    _, get_source = data.get_dataset(_data_config(tiny_dir))
    source = get_source("validation")
    for index, example in enumerate(expected["validation"]):
        np.testing.assert_array_equal(source[index]["tokens"], example.tokens)
        assert source[index]["label"] == example.label


def test_sharded_files_keep_generation_order(tmp_path):
    builder = listops_builder.ListOps(config="tiny", data_dir=tmp_path)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(num_shards=4))
    assert builder.info.splits["train"].num_shards == 4
    tiny = builder.builder_config
    expected = listops.generate(tiny.split_sizes, seed=tiny.seed, num_workers=1, log_every_s=None)
    source = builder.as_data_source("train")
    for index, example in enumerate(expected["train"]):
        np.testing.assert_array_equal(source[index]["tokens"], example.tokens)


def test_prepared_dataset_is_not_regenerated(tiny_dir, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("regenerated a prepared dataset")

    monkeypatch.setattr(listops, "generate", fail)
    info, _ = data.get_dataset(_data_config(tiny_dir, allow_build=True))
    assert info.splits["train"] == 256


def test_reads_back_in_a_fresh_process_without_tensorflow(tiny_dir):
    code = (
        "import sys\n"
        "from jaxattn.data import listops_builder\n"
        f"b = listops_builder.ListOps(config='tiny', data_dir={str(tiny_dir)!r})\n"
        "assert b.is_prepared()\n"
        "s = b.as_data_source('test')\n"
        "print(len(s), int(s[5]['label']), 'tensorflow' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="."
    )
    count, _, has_tf = result.stdout.split()
    assert count == "64" and has_tf == "False"


def test_train_batches_over_tfds_source(tiny_dir):
    _, get_source = data.get_dataset(_data_config(tiny_dir))
    batch = next(pipeline.train_batches(get_source("train"), batch_size=8, seq_len=2000, seed=0))
    for inputs, target in zip(batch["inputs"], batch["targets"], strict=True):
        assert listops.evaluate(inputs) == target


def test_missing_dataset_names_the_flag(tmp_path):
    with pytest.raises(errors.DataNotFoundError) as raised:
        data.get_dataset(_data_config(tmp_path, allow_build=False))
    message = str(raised.value)
    assert "\n" not in message
    assert "listops/tiny" in message and str(tmp_path) in message
    assert "--config.data.allow_build=True" in message
    assert "scripts/prepare_data.py listops --config=tiny" in message


def test_unknown_dataset_lists_the_available_ones(tmp_path):
    with pytest.raises(errors.ConfigError, match="listops"):
        data.get_dataset(_data_config(tmp_path, name="no_such_dataset"))


def test_unknown_builder_config(tmp_path):
    with pytest.raises(errors.ConfigError, match="lra, small, tiny"):
        data.get_dataset(_data_config(tmp_path, builder_config="huge"))


@pytest.mark.slow
def test_small_config_builds_with_lra_statistics(tmp_path):
    info, get_source = data.get_dataset(
        _data_config(tmp_path, builder_config="small", allow_build=True)
    )
    assert info.splits == {"train": 10_000, "validation": 1_000, "test": 1_000}
    source = get_source("train")
    labels = collections.Counter(int(source[i]["label"]) for i in range(len(source)))
    lengths = [len(source[i]["tokens"]) for i in range(0, len(source), 10)]
    # LRA.md §2.1: ~17% each for 0 and 9, ~8% for 1..8; mean length ~1064.
    assert 0.14 < labels[0] / len(source) < 0.20 and 0.14 < labels[9] / len(source) < 0.20
    assert all(0.05 < labels[c] / len(source) < 0.11 for c in range(1, 9))
    assert 950 < np.mean(lengths) < 1200
