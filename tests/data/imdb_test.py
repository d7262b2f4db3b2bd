"""The `lra_imdb` builder through `jaxattn.data.get_dataset`, on a tiny fake aclImdb archive."""

import hashlib
import io
import logging
import tarfile
import urllib.error
import urllib.request

import numpy as np
import pytest

from jaxattn import data, errors
from jaxattn.data import byte_text, imdb, source_files

# path in the archive -> raw file contents (stripped and byte-encoded by the builder).
REVIEWS = {
    "aclImdb/train/pos/10_9.txt": b"  A gem.\n",
    "aclImdb/train/pos/2_8.txt": "Caf\u00e9 scene \u2014 lovely".encode(),
    "aclImdb/train/pos/1_10.txt": b"Best film ever",
    "aclImdb/train/neg/3_1.txt": b"Dull \xff bytes",  # not UTF-8: 0xff must become id 256
    "aclImdb/train/neg/0_2.txt": b"Awful",
    "aclImdb/train/neg/7_4.txt": b"Meh.<br /><br />No.",
    "aclImdb/test/pos/5_7.txt": b"Fine",
    "aclImdb/test/neg/4_3.txt": b"Bad",
    "aclImdb/test/neg/11_1.txt": b"Worse",
    "aclImdb/train/unsup/0_0.txt": b"unlabelled, ignored",
}
OTHER_FILES = {"aclImdb/imdb.vocab": b"the\nand\n", "aclImdb/train/labeledBow.feat": b"0 0:1\n"}


def _expected(split):
    paths = sorted(p for p in REVIEWS if p.startswith(f"aclImdb/{split}/") and "unsup" not in p)
    return [(REVIEWS[p].strip(), int("/pos/" in p)) for p in paths]


def _write_archive(path, members):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


def _members(reverse=False):
    members = list(REVIEWS.items()) + list(OTHER_FILES.items())
    return members[::-1] if reverse else members


def _config(data_dir, **fields):
    return {"name": "imdb", "builder_config": "lra", "data_dir": str(data_dir), **fields}


def _records(source):
    return [
        (byte_text.decode(source[i]["tokens"]), int(source[i]["label"])) for i in range(len(source))
    ]


@pytest.fixture(scope="module")
def lra_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    _write_archive(data_dir / "downloads" / "manual" / "aclImdb_v1.tar.gz", _members())
    data.get_dataset(_config(data_dir, allow_build=True))
    return data_dir


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("tried to use the network")

    monkeypatch.setattr(urllib.request, "urlopen", fail)


def test_records_are_stripped_bytes_plus_one_with_labels(lra_dir):
    info, get_source = data.get_dataset(_config(lra_dir))
    assert info == data.DatasetInfo(
        vocab_size=257, num_classes=2, splits={"train": 6, "validation": 3, "test": 3}
    )
    source = get_source("train")
    assert _records(source) == _expected("train")  # sorted by path: neg before pos
    tokens = source[0]["tokens"]  # aclImdb/train/neg/0_2.txt
    assert tokens.dtype == np.uint16
    np.testing.assert_array_equal(tokens, np.frombuffer(b"Awful", np.uint8) + 1)
    dull = next(
        source[i]["tokens"]
        for i in range(len(source))
        if b"Dull" in byte_text.decode(source[i]["tokens"])
    )
    assert dull.max() == 256 and dull.min() >= 1  # byte 0xff -> 256; never 0 (padding)


def test_lra_config_validates_on_the_test_set(lra_dir):
    _, get_source = data.get_dataset(_config(lra_dir))
    assert _records(get_source("validation")) == _records(get_source("test")) == _expected("test")


def test_heldout_config_carves_validation_from_train(tmp_path):
    _write_archive(tmp_path / "raw" / "aclImdb_v1.tar.gz", _members())
    config = _config(tmp_path, builder_config="heldout", manual_dir=str(tmp_path / "raw"))
    info, get_source = data.get_dataset({**config, "allow_build": True})
    assert info.splits == {"train": 5, "validation": 1, "test": 3}
    train_idx, validation_idx = imdb.heldout_indices(6, 0.1, seed=0)
    expected = _expected("train")
    assert _records(get_source("train")) == [expected[i] for i in train_idx]
    assert _records(get_source("validation")) == [expected[i] for i in validation_idx]
    assert _records(get_source("test")) == _expected("test")


def test_heldout_split_is_seeded_and_disjoint():
    train, validation = imdb.heldout_indices(25_000, 0.1, seed=0)
    assert len(train) == 22_500 and len(validation) == 2_500
    assert not set(train) & set(validation)
    np.testing.assert_array_equal(validation, imdb.heldout_indices(25_000, 0.1, seed=0)[1])


def test_archive_order_does_not_matter(lra_dir, tmp_path):
    _write_archive(tmp_path / "downloads" / "manual" / "aclImdb_v1.tar.gz", _members(reverse=True))
    _, shuffled = data.get_dataset(_config(tmp_path, allow_build=True))
    _, original = data.get_dataset(_config(lra_dir))
    for split in ("train", "test"):
        assert _records(shuffled(split)) == _records(original(split))


def test_unexpected_sizes_are_logged(lra_dir, caplog):
    with caplog.at_level(logging.WARNING):
        data.get_dataset(_config(lra_dir))
    assert "released data has" in caplog.text and "25000" in caplog.text


def test_missing_archive_names_the_manual_dir_and_flag(tmp_path):
    with pytest.raises(errors.DataNotFoundError) as raised:
        data.get_dataset(_config(tmp_path, allow_build=True))  # no_network fails any download
    message = str(raised.value)
    assert "\n" not in message
    assert str(tmp_path / "downloads" / "manual") in message
    assert imdb.ARCHIVE.url in message and "--config.data.allow_download=True" in message


def test_archive_present_but_build_not_allowed(tmp_path):
    _write_archive(tmp_path / "raw" / "aclImdb_v1.tar.gz", _members())
    config = _config(tmp_path, manual_dir=str(tmp_path / "raw"))
    with pytest.raises(errors.DataNotFoundError) as raised:
        data.get_dataset(config)
    message = str(raised.value)
    assert "\n" not in message and "--config.data.allow_build=True" in message
    assert f"scripts/prepare_data.py imdb --config=lra --data_dir={tmp_path}" in message


def test_unknown_builder_config(tmp_path):
    with pytest.raises(errors.ConfigError, match="lra, heldout"):
        data.get_dataset(_config(tmp_path, builder_config="clean"))


class _FakeResponse(io.BytesIO):
    headers = {}


def test_allowed_download_fetches_checks_and_builds(tmp_path, monkeypatch):
    payload = _write_archive(tmp_path / "server" / "aclImdb_v1.tar.gz", _members()).read_bytes()
    remote = source_files.RemoteFile(
        url="http://example.invalid/aclImdb_v1.tar.gz",
        num_bytes=len(payload),
        sha256=hashlib.sha256(payload).hexdigest(),
    )
    monkeypatch.setattr(imdb.LraImdb, "REMOTE", remote)
    urls = []
    monkeypatch.setattr(
        urllib.request, "urlopen", lambda url, **kw: urls.append(url) or _FakeResponse(payload)
    )
    data_dir = tmp_path / "tfds"
    info, _ = data.get_dataset(_config(data_dir, allow_download=True))  # implies allow_build
    assert urls == [remote.url] and info.splits["train"] == 6
    assert (data_dir / "downloads" / "aclImdb_v1.tar.gz").read_bytes() == payload


def test_corrupt_download_is_discarded(tmp_path, monkeypatch):
    remote = source_files.RemoteFile("http://example.invalid/aclImdb_v1.tar.gz", 3, "0" * 64)
    monkeypatch.setattr(imdb.LraImdb, "REMOTE", remote)
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, **kw: _FakeResponse(b"abc"))
    with pytest.raises(errors.DataNotFoundError, match="corrupt"):
        data.get_dataset(_config(tmp_path, allow_download=True))
    assert not list((tmp_path / "downloads").glob("aclImdb*"))


def test_failed_download_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    def offline(url, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(errors.DataNotFoundError) as raised:
        data.get_dataset(_config(tmp_path, allow_download=True))
    assert "\n" not in str(raised.value) and "could not download" in str(raised.value)
    assert not list((tmp_path / "downloads").glob("aclImdb*"))
