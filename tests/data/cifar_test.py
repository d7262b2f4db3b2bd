"""The `lra_cifar10` builder, TF's grayscale formula and the pixel padding-quirk adaptor."""

import io
import tarfile
import urllib.request

import ml_collections
import numpy as np
import pytest

from jaxattn import data, errors
from jaxattn.data import cifar, pixels

RECORDS_PER_BATCH = 4
TEST_RECORDS = 3
# Known colours in the first pixels of every image, and their TF grayscale (worked by hand:
# trunc(255.5 * (0.2989 r + 0.587 g + 0.114 b) / 255)).
KNOWN = [
    ((255, 0, 0), 76),  # 76.37
    ((0, 255, 0), 149),  # 149.97: truncated, not rounded
    ((0, 0, 255), 29),  # 29.13
    ((255, 255, 255), 255),  # 255.47
    ((128, 128, 128), 128),  # 128.24
    ((1, 0, 0), 0),  # 0.30: a dark colour becomes id 0 ("padding") too
    ((0, 0, 0), 0),
]


def _image(rng):
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    for column, (rgb, _) in enumerate(KNOWN):
        image[0, column] = rgb
    return image


def _batch(rng, labels):
    images = [_image(rng) for _ in labels]
    records = [
        np.concatenate([[label], image.transpose(2, 0, 1).reshape(-1)]).astype(np.uint8)
        for label, image in zip(labels, images, strict=True)
    ]
    return b"".join(r.tobytes() for r in records), images


def _fake_archive(path):
    """5 train batches of 4 records and a test batch of 3; returns (images, labels) in file order."""
    rng = np.random.default_rng(0)
    members, train, test = [], [], []
    for i in range(1, 6):
        labels = [(4 * i + j) % 10 for j in range(RECORDS_PER_BATCH)]
        content, images = _batch(rng, labels)
        members.append((f"cifar-10-batches-bin/data_batch_{i}.bin", content))
        train += list(zip(images, labels, strict=True))
    content, images = _batch(rng, [9, 0, 5])
    members.append(("cifar-10-batches-bin/test_batch.bin", content))
    test += list(zip(images, [9, 0, 5], strict=True))
    members.append(("cifar-10-batches-bin/batches.meta.txt", b"airplane\n"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members[::-1]:  # archive order must not matter
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return train, test


def _tf_grayscale(image):
    """TF's steps written out independently: float32 x / 255, weighted sum, * 255.5, truncate."""
    x = image.astype(np.float32) * np.float32(1 / 255)
    w = np.array([0.2989, 0.5870, 0.1140], np.float32)
    return np.trunc((x @ w) * np.float32(255.5)).astype(np.uint8)


def _config(data_dir, **fields):
    return {"name": "cifar10", "builder_config": "lra", "data_dir": str(data_dir), **fields}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    train, test = _fake_archive(data_dir / "downloads" / "manual" / "cifar-10-binary.tar.gz")
    data.get_dataset(_config(data_dir, allow_build=True))
    return data_dir, train, test


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("tried to use the network")

    monkeypatch.setattr(urllib.request, "urlopen", fail)


def test_grayscale_of_known_colours():
    rgb = np.array([rgb for rgb, _ in KNOWN], np.uint8)
    np.testing.assert_array_equal(cifar.to_grayscale(rgb), [gray for _, gray in KNOWN])


def test_grayscale_matches_tf_steps_on_all_colour_planes():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (4096, 3), dtype=np.uint8)
    np.testing.assert_array_equal(cifar.to_grayscale(rgb), _tf_grayscale(rgb))


def test_splits_in_file_order_with_grayscale_tokens(prepared):
    data_dir, train, test = prepared
    info, get_source = data.get_dataset(_config(data_dir))
    # 20 training records: train[:90%] = 18, train[90%:] = 2 (LRA: 45000 / 5000).
    assert info.splits == {"train": 18, "validation": 2, "test": 3}
    assert info.num_classes == 10
    expected = {"train": train[:18], "validation": train[18:], "test": test}
    for split, records in expected.items():
        source = get_source(split)
        assert len(source) == len(records)
        for index, (image, label) in enumerate(records):
            tokens = source[index]["tokens"]
            assert tokens.dtype == np.uint8 and tokens.shape == (1024,)
            np.testing.assert_array_equal(tokens, _tf_grayscale(image).reshape(-1))  # row-major
            assert source[index]["label"] == label
    np.testing.assert_array_equal(
        get_source("test")[0]["tokens"][: len(KNOWN)], [gray for _, gray in KNOWN]
    )


def test_padding_quirk_switch_without_rebuild(prepared, monkeypatch):
    data_dir, _, _ = prepared
    monkeypatch.setattr(cifar, "read_batches", lambda *a: pytest.fail("rebuilt the dataset"))
    faithful_info, faithful = data.get_dataset(_config(data_dir))  # default: the quirk
    shifted_info, shifted = data.get_dataset(_config(data_dir, pixel_padding_quirk=False))
    assert faithful_info.vocab_size == 256 and shifted_info.vocab_size == 257
    raw, plus_one = faithful("test")[0]["tokens"], shifted("test")[0]["tokens"]
    black = len(KNOWN) - 1
    assert raw[black] == 0 and plus_one[black] == 1  # a black pixel is id 0 only when faithful
    assert plus_one.dtype == np.uint16 and plus_one.min() >= 1 and plus_one.max() <= 256
    np.testing.assert_array_equal(plus_one, raw.astype(np.uint16) + 1)
    assert shifted("test")[0]["label"] == faithful("test")[0]["label"]
    assert len(shifted("train")) == len(faithful("train"))


def test_shifted_tokens_batch_reads():
    source = [{"tokens": np.array([0, 5, 255], np.uint8), "label": 3}]
    adapted = pixels.adapt(source, padding_quirk=False)
    (record,) = adapted.__getitems__([0])
    np.testing.assert_array_equal(record["tokens"], [1, 6, 256])
    assert record["label"] == 3 and source[0]["tokens"][0] == 0  # the source is not modified
    assert pixels.adapt(source, padding_quirk=True) is source


def test_old_style_config_dict_still_works(prepared):
    # A config without the new fields (allow_download, manual_dir, pixel_padding_quirk).
    config = ml_collections.ConfigDict(
        {
            "name": "cifar10",
            "builder_config": None,
            "data_dir": str(prepared[0]),
            "allow_build": False,
        }
    )
    info, _ = data.get_dataset(config)
    assert info.vocab_size == 256


def test_missing_manual_dir_is_named(tmp_path):
    manual = tmp_path / "nowhere"
    with pytest.raises(errors.DataNotFoundError) as raised:
        data.get_dataset(_config(tmp_path, manual_dir=str(manual), allow_build=True))
    message = str(raised.value)
    assert "\n" not in message and str(manual) in message
    assert cifar.ARCHIVE.url in message and "allow_download=True" in message


def test_unknown_builder_config(tmp_path):
    with pytest.raises(errors.ConfigError, match="available: lra"):
        data.get_dataset(_config(tmp_path, builder_config="rgb"))


def test_truncated_batch_is_rejected():
    with pytest.raises(ValueError, match="3073-byte records"):
        cifar.parse_batch(b"\x00" * 3000)
