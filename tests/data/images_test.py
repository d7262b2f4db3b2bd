"""Image datasets: IDX parsing and the Fashion-MNIST builder on tiny IDX files, the digits
fallback, tfds's builders refusing to download unasked, augmentation, batches of images."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from jaxattn import data, errors
from jaxattn.data import images, pipeline
from jaxattn.tasks import image_classification


def write_idx(path, array: np.ndarray) -> None:
    """The IDX format: 0, 0, type 0x08 (uint8), ndim; big-endian uint32 sizes; the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def fake_fashion_dir(directory, num_train=12, num_test=4):
    rng = np.random.default_rng(0)
    arrays = {
        "train": (rng.integers(0, 256, (num_train, 28, 28)), np.arange(num_train) % 10),
        "test": (rng.integers(0, 256, (num_test, 28, 28)), np.arange(num_test) % 10),
    }
    for split, (image_name, label_name) in images.IDX_FILES.items():
        write_idx(directory / image_name, arrays[split][0])
        write_idx(directory / label_name, arrays[split][1])
    return arrays


def test_parse_idx_reads_shape_and_values(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array)
    np.testing.assert_array_equal(images.read_idx(tmp_path / "a.gz"), array)
    with pytest.raises(ValueError, match="not an IDX"):
        images.parse_idx(b"\x01\x02\x08\x01")


def test_fashion_mnist_builder_from_idx_files(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "DEBIAN_DIR", tmp_path / "no_debian")
    monkeypatch.setattr(images, "FASHION_VALIDATION", 3)
    manual = tmp_path / "manual"
    manual.mkdir()
    arrays = fake_fashion_dir(manual)
    config = {
        "name": "fashion_mnist",
        "data_dir": str(tmp_path / "tfds"),
        "manual_dir": str(manual),
    }
    with pytest.raises(errors.DataNotFoundError, match="allow_build"):
        data.get_dataset(config)
    info, open_split = data.get_dataset({**config, "allow_build": True})
    assert info.splits == {"train": 9, "validation": 3, "test": 4}
    assert info.num_classes == 10 and info.model_fields == {"image_shape": (28, 28, 1)}
    assert info.train_transform is images.AUGMENTATION["fashion_mnist"]
    train, validation = open_split("train"), open_split("validation")
    seen = sorted(int(train[i]["label"]) for i in range(9)) + [
        int(validation[i]["label"]) for i in range(3)
    ]
    assert sorted(seen) == sorted(arrays["train"][1].tolist())  # a partition of train
    test = open_split("test")
    np.testing.assert_array_equal(test[2]["image"][..., 0], arrays["test"][0][2])
    assert test[2]["image"].dtype == np.uint8 and test.empty_record()["image"].shape == (28, 28, 1)


def test_fashion_mnist_falls_back_to_digits_with_one_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "DEBIAN_DIR", tmp_path / "no_debian")
    warnings = []
    monkeypatch.setattr(data.logging, "warning", lambda msg, *a: warnings.append(msg % a))
    info, open_split = data.get_dataset(
        {"name": "fashion_mnist", "data_dir": str(tmp_path / "tfds"), "allow_build": True}
    )
    ours = [w for w in warnings if w.startswith("dataset fashion_mnist")]  # not tfds's own
    assert len(ours) == 1 and "digits" in ours[0] and "dataset-fashion-mnist" in ours[0]
    assert info.splits == {"validation": 180, "test": 360, "train": 1257}
    assert info.model_fields == {"image_shape": (8, 8, 1)} and info.train_transform is None


def test_digits_split_is_deterministic_and_disjoint():
    a, b = images.digits_splits(), images.digits_splits()
    for split in a:
        np.testing.assert_array_equal(a[split].images, b[split].images)
    train = {a["train"].images[i].tobytes() for i in range(len(a["train"]))}
    test = [a["test"].images[i].tobytes() for i in range(len(a["test"]))]
    assert sum(t in train for t in test) < 10  # only the few duplicate images of the set
    assert a["train"].images.dtype == np.uint8 and a["train"].images.max() == 255


def test_tfds_images_refuse_to_download_unasked(tmp_path):
    with pytest.raises(errors.DataNotFoundError, match="allow_download"):
        data.get_dataset({"name": "tfds_cifar10", "data_dir": str(tmp_path)})


def test_random_crop_flip_shifts_within_padding_and_keeps_shape():
    image = np.arange(16, dtype=np.uint8).reshape(4, 4, 1) + 1
    row = {"inputs": image, "targets": np.int32(3)}
    rng = np.random.default_rng(0)
    outs = [images.random_crop_flip(row, rng, padding=1, flip=True)["inputs"] for _ in range(50)]
    assert all(o.shape == (4, 4, 1) and o.dtype == np.uint8 for o in outs)
    assert len({o.tobytes() for o in outs}) > 5
    unpadded = images.random_crop_flip(row, rng, padding=0, flip=False)["inputs"]
    np.testing.assert_array_equal(unpadded, image)


def test_batches_of_images_pad_evaluation_with_black_weight_zero_rows():
    info, open_split = data.get_dataset({"name": "digits"})
    source = open_split("test")
    batches = list(
        pipeline.eval_batches(
            source, batch_size=256, seq_len=None, row_fn=image_classification.make_row
        )
    )
    assert [b["inputs"].shape for b in batches] == [(256, 8, 8, 1), (256, 8, 8, 1)]
    assert batches[0]["inputs"].dtype == np.uint8
    assert batches[1]["weights"].sum() == 360 - 256 and batches[1]["inputs"][-1].max() == 0
    train = next(
        pipeline.train_batches(
            open_split("train"),
            batch_size=8,
            seq_len=None,
            seed=0,
            row_fn=image_classification.make_row,
            transform=images.AUGMENTATION["fashion_mnist"],
            num_threads=0,
        )
    )
    assert train["inputs"].shape == (8, 8, 8, 1) and train["targets"].shape == (8,)
