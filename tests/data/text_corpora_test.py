"""tiny Shakespeare and enwik8 from files in a manual dir (small fakes in the real formats; no
test touches the network)."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from jaxattn import data, errors
from jaxattn.data import byte_text, text_corpora


def test_tiny_shakespeare_splits_as_tfds(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    text = bytes(range(32, 127)) * 20  # 1900 bytes
    (manual / "input.txt").write_bytes(text)
    config = {
        "name": "tiny_shakespeare",
        "max_length": 16,
        "data_dir": str(tmp_path / "tfds"),
        "manual_dir": str(manual),
        "allow_build": True,
    }
    info, open_split = data.get_dataset(config)
    assert info.vocab_size == 257 and info.packed
    builder = text_corpora.TinyShakespeare(data_dir=str(tmp_path / "tfds"))
    parts = [
        byte_text.decode(builder.as_data_source(s)[0]["tokens"])
        for s in ("train", "validation", "test")
    ]
    assert b"".join(parts) == text and len(parts[0]) == 1710 and len(parts[1]) == 95
    assert len(open_split("validation")) == -(-(95 - 1) // 16)


def test_enwik8_from_its_zip(tmp_path, monkeypatch):
    monkeypatch.setattr(text_corpora, "ENWIK8_SPLITS", (900, 50, 50))
    monkeypatch.setattr(text_corpora, "ENWIK8_DOCUMENT_BYTES", 100)
    manual = tmp_path / "manual"
    manual.mkdir()
    payload = np.random.default_rng(0).integers(0, 256, 1000, dtype=np.uint8).tobytes()
    with zipfile.ZipFile(manual / "enwik8.zip", "w") as archive:
        archive.writestr("enwik8", payload)
    builder = text_corpora.Enwik8(data_dir=str(tmp_path / "tfds"), manual_dir=str(manual))
    builder.download_and_prepare()
    train = builder.as_data_source("train")
    assert len(train) == 9 and len(builder.as_data_source("test")) == 1
    assert b"".join(byte_text.decode(train[i]["tokens"]) for i in range(9)) == payload[:900]


def test_missing_files_name_the_manual_dir_and_the_flag(tmp_path):
    config = {"name": "enwik8", "max_length": 16, "data_dir": str(tmp_path), "allow_build": True}
    with pytest.raises(errors.DataNotFoundError, match="enwik8.zip.*manual_dir"):
        data.get_dataset(config)
    config["name"] = "tiny_shakespeare"
    with pytest.raises(errors.DataNotFoundError, match="allow_download"):
        data.get_dataset(config)


def _lm1b_layout(root, sentences):
    """Writes lm1b's release layout under `root`: split -> its files' lines."""
    files = {
        "train": [
            ("training-monolingual.tokenized.shuffled", "news.en-00001-of-00100"),
            ("training-monolingual.tokenized.shuffled", "news.en-00002-of-00100"),
        ],
        "validation": [
            ("heldout-monolingual.tokenized.shuffled", "news.en.heldout-00001-of-00050")
        ],
        "test": [("heldout-monolingual.tokenized.shuffled", "news.en.heldout-00000-of-00050")],
    }
    # A held-out file that belongs to no split, and a stray file, are skipped.
    extra = [("heldout-monolingual.tokenized.shuffled", "news.en.heldout-00002-of-00050")]
    for split, paths in [*files.items(), ("none", extra)]:
        lines = sentences.get(split, [b"never read"])
        for k, (directory, name) in enumerate(paths):
            path = root / text_corpora.LM1B_ROOT / directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            part = lines[k :: len(paths)]
            path.write_bytes(b"".join(line + b"\n" for line in part))


@pytest.mark.parametrize("packed_as", ["archive", "directory"])
def test_lm1b_sentences_are_documents_split_by_file(tmp_path, packed_as):
    import tarfile

    sentences = {
        split: [f"{split} sentence {i} .".encode() for i in range(70)]
        for split in ("train", "validation", "test")
    }
    manual = tmp_path / "manual"
    manual.mkdir()
    if packed_as == "archive":
        unpacked = tmp_path / "unpacked"
        _lm1b_layout(unpacked, sentences)
        with tarfile.open(manual / text_corpora.LM1B.name, "w:gz") as archive:
            archive.add(unpacked / text_corpora.LM1B_ROOT, arcname=text_corpora.LM1B_ROOT)
    else:
        _lm1b_layout(manual, sentences)
    config = {
        "name": "lm1b",
        "max_length": 16,
        "data_dir": str(tmp_path / "tfds"),
        "manual_dir": str(manual),
        "allow_build": True,
    }
    info, open_split = data.get_dataset(config)
    assert info.vocab_size == 257 and info.packed
    builder = text_corpora.Lm1b(data_dir=str(tmp_path / "tfds"))
    for split in ("train", "validation", "test"):
        source = builder.as_data_source(split)
        stored = sorted(byte_text.decode(source[i]["tokens"]) for i in range(len(source)))
        assert stored == sorted(sentences[split])  # one record per sentence, newline stripped
    # Packed rows: the split's bytes, cut at L, one segment per sentence.
    rows = open_split("test")
    total = sum(len(s) for s in sentences["test"])
    assert len(rows) == -(-(total - 1) // 16)
    assert rows[0]["segment_ids"].max() >= 1


def test_lm1b_missing_archive_says_where_and_how(tmp_path):
    config = {"name": "lm1b", "max_length": 16, "data_dir": str(tmp_path), "allow_build": True}
    with pytest.raises(errors.DataNotFoundError, match="r13output.tar.gz.*allow_download"):
        data.get_dataset(config)
