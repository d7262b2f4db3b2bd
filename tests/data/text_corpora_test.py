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
