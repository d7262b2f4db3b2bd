"""The `lra_aan` builder through `jaxattn.data.get_dataset`, on a tiny fake TSV trio."""

import logging
import urllib.request

import numpy as np
import pytest

from jaxattn import data, errors
from jaxattn.data import aan, byte_text

LONG = bytes(range(32, 127)) * 130  # 12,350 bytes: cut to 10,000
PAIRS = {
    "train": [
        (b"1.0", b"A00-1001", b"P01-2002", b"Neural parsing \xc3\xa9t\xc3\xa9", b"Citation graph"),
        (b"0.0", b"A00-1003", b"P01-2004", LONG, b"short"),
        (b"0.0", b"A00-1005", b"P01-2006", b"x", LONG + b"\xff"),
    ],
    "validation": [(b"1", b"E1", b"E2", b"eval one", b"eval two")],
    "test": [
        (b"0.0", b"T1", b"T2", b'test "quoted" text', b"tail"),
        (b"1.0", b"T3", b"T4", b"last", b"pair"),
    ],
}


def _write_tsv_trio(directory, *, crlf_in_test=True):
    directory.mkdir(parents=True, exist_ok=True)
    for split, name in aan.SPLIT_FILES.items():
        end = b"\r\n" if split == "test" and crlf_in_test else b"\n"
        lines = [b"\t".join(fields) + end for fields in PAIRS[split]]
        (directory / name).write_bytes(b"".join(lines) + b"\n")  # a trailing blank line
    return directory


def _config(data_dir, **fields):
    return {"name": "aan", "builder_config": "lra", "data_dir": str(data_dir), **fields}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("aan")
    _write_tsv_trio(root / "lra_release" / "lra_release" / "tsv_data")
    # manual_dir = the unpacked tarball's top folder: the nested tsv_data is found.
    data.get_dataset(_config(root / "tfds", manual_dir=str(root), allow_build=True))
    return root / "tfds"


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("tried to use the network")

    monkeypatch.setattr(urllib.request, "urlopen", fail)


def test_records_are_cut_encoded_pairs(prepared):
    info, get_source = data.get_dataset(_config(prepared))
    assert info == data.DatasetInfo(
        vocab_size=257, num_classes=2, splits={"train": 3, "validation": 1, "test": 2}
    )
    for split, pairs in PAIRS.items():
        source = get_source(split)
        assert len(source) == len(pairs)
        for index, (label, _, _, text1, text2) in enumerate(pairs):  # file order
            record = source[index]
            assert record["tokens"].dtype == record["tokens2"].dtype == np.uint16
            assert byte_text.decode(record["tokens"]) == text1[:10_000]
            assert byte_text.decode(record["tokens2"]) == text2[:10_000]
            assert record["label"] == int(float(label))
    long = get_source("train")[1]["tokens"]
    assert len(long) == 10_000 and long.min() >= 1
    np.testing.assert_array_equal(long[:3], np.frombuffer(LONG[:3], np.uint8) + 1)


def test_files_directly_in_the_default_manual_dir(tmp_path):
    _write_tsv_trio(tmp_path / "downloads" / "manual", crlf_in_test=False)
    _, get_source = data.get_dataset(_config(tmp_path, allow_build=True))
    assert byte_text.decode(get_source("test")[1]["tokens2"]) == b"pair"


def test_same_files_same_dataset(prepared, tmp_path):
    _write_tsv_trio(tmp_path / "tsv_data")
    _, again = data.get_dataset(
        _config(tmp_path / "tfds", manual_dir=str(tmp_path / "tsv_data"), allow_build=True)
    )
    _, first = data.get_dataset(_config(prepared))
    for split in PAIRS:
        for index in range(len(first(split))):
            a, b = first(split)[index], again(split)[index]
            assert a["label"] == b["label"]
            np.testing.assert_array_equal(a["tokens"], b["tokens"])
            np.testing.assert_array_equal(a["tokens2"], b["tokens2"])


def test_unexpected_sizes_are_logged(prepared, caplog):
    with caplog.at_level(logging.WARNING):
        data.get_dataset(_config(prepared))
    assert "147086" in caplog.text


def test_missing_manual_dir_names_it_and_the_tarball(tmp_path):
    manual = tmp_path / "lra_release" / "lra_release" / "tsv_data"
    with pytest.raises(errors.DataNotFoundError) as raised:
        # allow_download cannot help: there is no download for AAN, and no network is tried.
        data.get_dataset(_config(tmp_path, manual_dir=str(manual), allow_download=True))
    message = str(raised.value)
    assert "\n" not in message and str(manual) in message
    assert aan.TARBALL_URL in message


def test_files_present_but_build_not_allowed(tmp_path):
    _write_tsv_trio(tmp_path / "tsv")
    with pytest.raises(errors.DataNotFoundError, match="--config.data.allow_build=True"):
        data.get_dataset(_config(tmp_path, manual_dir=str(tmp_path / "tsv")))


def test_unknown_builder_config(tmp_path):
    with pytest.raises(errors.ConfigError, match="available: lra"):
        data.get_dataset(_config(tmp_path, builder_config="ids_only"))


@pytest.mark.parametrize(
    "line, match",
    [(b"1.0\tA\tB\ttext\n", "expected 5"), (b"2.0\tA\tB\tx\ty\n", "not 0 or 1")],
)
def test_malformed_lines_are_rejected(line, match):
    with pytest.raises(ValueError, match=match):
        aan.parse_line(line, "f.tsv:1")
