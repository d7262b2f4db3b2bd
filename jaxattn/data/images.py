"""Image classification datasets: records {'image': uint8 [H, W, C], 'label': int}.

The offline default is Fashion-MNIST (Xiao et al. 2017, 28x28 grayscale, 10 classes) from the
Debian package `dataset-fashion-mnist` (`apt install dataset-fashion-mnist`: the four IDX gz
files in /usr/share/datasets/fashion-mnist/). Those bytes differ from the files tfds checksums,
and tfds's own `fashion_mnist` builder needs TensorFlow to prepare, so our `FashionMnistIdx`
builder parses IDX itself and writes array_record, read back with tfds data sources.

    builder = images.FashionMnistIdx(data_dir='/tmp/tfds')   # finds the Debian files
    builder.download_and_prepare()
    source = builder.as_data_source('train')   # source[i] -> {'image': uint8 [28, 28, 1], 'label'}

Splits: train 55,000 and validation 5,000 (a fixed, seeded draw held out of the 60,000 training
images, `VALIDATION_SEED`), test the 10,000 test images.

Without the Debian files (and nothing prepared), `fashion_mnist` falls back to scikit-learn's
bundled 8x8 digits (`digits`, 1,797 images of 0..9; Alpaydin & Kaynak's UCI set) with one
warning line saying so; CI has no Debian package and tests use this. Its split is a seeded
permutation: 1,257 train / 180 validation / 360 test.

`mnist`, `cifar10` and `cifar100` are tfds's own builders (`tfds_*` in `data.DATASETS`), for
users with a network: prepared on first use only with `data.allow_download=True` (tfds downloads
and, for its Image features, needs TensorFlow to prepare; untested here: no network, no TF).

Augmentation (`train_transform`, training rows only): random crop after zero padding, 4 pixels
plus a horizontal flip for CIFAR (the standard ResNet/DeiT-on-CIFAR recipe), 2 pixels and no
flip for (Fashion-)MNIST (a flip would be harmless for most clothes but changes sandals' and bags'
asymmetric details, and digits are not mirror-symmetric), none for 8x8 digits (a one-pixel shift is
an eighth of the image).
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from jaxattn import errors
from jaxattn.data import source_files

DEBIAN_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
NUM_CLASSES = 10
FASHION_CLASSES = (
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)
VALIDATION_SEED = 0
FASHION_VALIDATION = 5_000
DIGITS_SPLIT = {"validation": 180, "test": 360}  # the rest (1,257) is train

# IDX type codes (the byte after the two zero bytes of the magic number) -> big-endian dtype.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def parse_idx(data: bytes) -> np.ndarray:
    """IDX bytes (LeCun's MNIST format) -> the array: magic 0x00 0x00 <type> <ndim>, then ndim
    big-endian uint32 sizes, then the values row-major."""
    if len(data) < 4 or data[0] or data[1] or data[2] not in _IDX_DTYPES:
        raise ValueError(f"not an IDX file (magic {data[:4].hex()})")
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    shape = tuple(int(n) for n in np.frombuffer(data, ">u4", count=ndim, offset=4))
    values = np.frombuffer(data, dtype, count=int(np.prod(shape)), offset=4 + 4 * ndim)
    return values.reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: pathlib.Path) -> np.ndarray:
    """An IDX file, gzipped (.gz) or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        return parse_idx(f.read())


def held_out(num_examples: int, num_held_out: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held-out) indices, each in increasing order: a seeded draw of `num_held_out`."""
    order = np.random.default_rng(seed).permutation(num_examples)
    return np.sort(order[num_held_out:]), np.sort(order[:num_held_out])


def _records(images: np.ndarray, labels: np.ndarray) -> list[dict[str, Any]]:
    return [
        {"image": image, "label": int(label)} for image, label in zip(images, labels, strict=True)
    ]


class FashionMnistIdx(source_files.SourceFilesBuilder):
    """Fashion-MNIST from IDX gz files (the Debian package's, or a manual dir's)."""

    name = "fashion_mnist_idx"
    DATASET = "fashion_mnist"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "IDX files; validation = a seeded 5,000 of train."}
    BUILDER_CONFIGS = [
        source_files.SourceConfig(
            name="default",
            description="55000/5000/10000: train less a seeded 5,000 for validation, test.",
            num_shards=8,
            expected_sizes={"train": 55_000, "validation": 5_000, "test": 10_000},
        )
    ]
    DEFAULT_CONFIG_NAME = "default"

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="Fashion-MNIST, 28x28 grayscale uint8, 10 classes, from IDX files.",
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(shape=(28, 28, 1), dtype=np.uint8),
                    "label": tfds.features.ClassLabel(names=list(FASHION_CLASSES)),
                }
            ),
            supervised_keys=("image", "label"),
            disable_shuffling=True,
            homepage="https://github.com/zalandoresearch/fashion-mnist",
        )

    @property
    def manual_dirs(self) -> list[pathlib.Path]:
        return [*super().manual_dirs, DEBIAN_DIR]

    def find_sources(self) -> pathlib.Path | None:
        """The first directory holding all four IDX gz files; never touches the network."""
        names = [name for pair in IDX_FILES.values() for name in pair]
        for directory in self.manual_dirs:
            if all((directory / name).is_file() for name in names):
                return directory
        return None

    def missing_sources_message(self) -> str:
        return (
            f"dataset fashion_mnist is not prepared in {self.data_dir} and its IDX files "
            f"({', '.join(IDX_FILES['train'] + IDX_FILES['test'])}) are in none of "
            f"{', '.join(map(str, self.manual_dirs))}; apt install dataset-fashion-mnist, or put "
            f"them in --config.data.manual_dir"
        )

    def read_splits(self) -> dict[str, list[dict[str, Any]]]:
        directory = self.sources()
        arrays = {
            split: (read_idx(directory / images), read_idx(directory / labels))
            for split, (images, labels) in IDX_FILES.items()
        }
        images, labels = arrays["train"]
        train, validation = held_out(len(images), FASHION_VALIDATION, VALIDATION_SEED)
        parts = {
            "train": (images[train], labels[train]),
            "validation": (images[validation], labels[validation]),
            "test": arrays["test"],
        }
        return {split: _records(x[..., None], y) for split, (x, y) in parts.items()}


class ImageSource:
    """Random access to {'image', 'label'} records, with the empty record the pipeline pads
    evaluation batches with (`pipeline._empty_record`): a black image, label 0."""

    def __init__(self, source: Any, image_shape: tuple[int, int, int]):
        self._source = source
        self.image_shape = tuple(image_shape)

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self._source[index]
        return {"image": np.asarray(record["image"], np.uint8), "label": int(record["label"])}

    def empty_record(self) -> dict[str, Any]:
        return {"image": np.zeros(self.image_shape, np.uint8), "label": 0}


@dataclasses.dataclass(frozen=True)
class ArraySource:
    """In-memory records: images uint8 [N, H, W, C], labels [N]."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"image": self.images[index], "label": int(self.labels[index])}


def digits_splits(seed: int = VALIDATION_SEED) -> dict[str, ArraySource]:
    """scikit-learn's 8x8 digits (values 0..16) as uint8 [8, 8, 1] images scaled to 0..255, split
    by a seeded permutation into train / validation / test."""
    from sklearn import datasets  # only this dataset needs scikit-learn

    digits = datasets.load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    n_val, n_test = DIGITS_SPLIT["validation"], DIGITS_SPLIT["test"]
    index = {
        "validation": np.sort(order[:n_val]),
        "test": np.sort(order[n_val : n_val + n_test]),
        "train": np.sort(order[n_val + n_test :]),
    }
    return {split: ArraySource(images[i], labels[i]) for split, i in index.items()}


def random_crop_flip(
    row: dict[str, Any], rng: np.random.Generator, *, padding: int, flip: bool
) -> dict[str, Any]:
    """A training row's image [H, W, C]: zero-padded by `padding`, cropped back to H x W at a
    random offset, and mirrored left-right with probability 1/2 if `flip`."""
    image = row["inputs"]
    H, W = image.shape[:2]
    if padding:
        padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)))
        top, left = rng.integers(0, 2 * padding + 1, size=2)
        image = padded[top : top + H, left : left + W]
    if flip and rng.random() < 0.5:
        image = image[:, ::-1]
    return {**row, "inputs": np.ascontiguousarray(image)}


# Augmentation per dataset (module docstring); None: no augmentation.
AUGMENTATION: dict[str, Callable[..., dict[str, Any]] | None] = {
    "fashion_mnist": functools.partial(random_crop_flip, padding=2, flip=False),
    "mnist": functools.partial(random_crop_flip, padding=2, flip=False),
    "cifar10": functools.partial(random_crop_flip, padding=4, flip=True),
    "cifar100": functools.partial(random_crop_flip, padding=4, flip=True),
    "digits": None,
}
# tfds's own builders (downloaded with data.allow_download): name -> (image shape, classes).
TFDS_IMAGES = {
    "mnist": ((28, 28, 1), 10),
    "cifar10": ((32, 32, 3), 10),
    "cifar100": ((32, 32, 3), 100),
}


def tfds_sources(
    name: str, data_config: Mapping[str, Any]
) -> tuple[dict[str, int], Callable[[str], ImageSource]]:
    """(split sizes, split -> source) of tfds's `name` builder, held-out validation included.

    tfds's mnist/cifar have train and test only; validation is a seeded 10% of train, taken by
    index (the source stays random access). Prepared only with `allow_download`.
    """
    image_shape, _ = TFDS_IMAGES[name]
    builder = tfds.builder(
        name, data_dir=data_config.get("data_dir") or None, file_format="array_record"
    )
    if not builder.is_prepared():
        if not data_config.get("allow_download", False):
            raise errors.DataNotFoundError(
                f"dataset tfds_{name} is not prepared in {builder.data_dir}; tfds downloads it "
                f"with --config.data.allow_download=True (needs a network, and TensorFlow to "
                f"prepare), or use the offline dataset=fashion_mnist"
            )
        try:
            builder.download_and_prepare()
        except ImportError as e:
            raise errors.DataNotFoundError(
                f"tfds's {name} builder needs TensorFlow to prepare ({e}); pip install tensorflow"
            ) from e
    train = builder.as_data_source("train")
    kept, validation = held_out(len(train), len(train) // 10, VALIDATION_SEED)
    sources = {
        "train": _Subset(train, kept),
        "validation": _Subset(train, validation),
        "test": builder.as_data_source("test"),
    }
    return (
        {split: len(s) for split, s in sources.items()},
        lambda split: ImageSource(sources[split], image_shape),
    )


@dataclasses.dataclass(frozen=True)
class _Subset:
    source: Any
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        return self.source[int(self.indices[index])]
