"""Sequential grayscale CIFAR-10 (the LRA Image task) as the `lra_cifar10` tfds builder.

Why our own builder: tfds's `cifar10` needs TensorFlow to prepare (its archive extractor reads
through `tf.io.gfile`, and `tfds.features.Image` encodes with TF). This one reads the binary
release `cifar-10-binary.tar.gz` with Python's `tarfile` and stores each image as a `Tensor`.

    builder = cifar.LraCifar10(data_dir='/tmp/tfds', manual_dir='~/Downloads')
    builder.download_and_prepare()
    source = builder.as_data_source('train')   # source[i] -> {'tokens': uint8 [1024], 'label': int}

Records: 'tokens' are the 32x32 grayscale intensities 0..255, flattened row-major to 1024;
'label' is the CIFAR-10 class 0..9 (`CLASSES`). Intensity 0 is stored as 0: LRA treats it as
padding, and `jaxattn.data.pixels` turns that quirk off at read time (`data.pixel_padding_quirk`)
without a rebuild.

Grayscale is `tf.image.rgb_to_grayscale` on a uint8 image, as LRA-code applies it before casting
to int32 (`to_grayscale`). From TF's `convert_image_dtype` and `rgb_to_grayscale` source:
  1. uint8 -> float32: x * float32(1 / 255) (cast, then multiply by 1 / dtype.max);
  2. gray = 0.2989 r + 0.5870 g + 0.1140 b in float32 (`tensordot` with the weights);
  3. float32 -> uint8: cast(gray * 255.5) (dtype.max + 0.5), which truncates toward zero; no
     saturation is needed since the weights sum to 0.9999.
So pure green (0, 255, 0) -> trunc(149.97) = 149, not the rounded 150, and very dark colours
such as (1, 0, 0) -> 0 become "padding" too. The one uncertainty is float32 summation order: TF
sums the three products inside a matmul kernel (order and FMA unspecified). Over all 2^24 RGB
colours, 88 land within float32 rounding of an integer, where the result depends on that order
(±1); we sum left to right. Not checked against TensorFlow itself (it is not installed).

Splits: train = the first 45,000 images of data_batch_1..5 in file order, validation = the last
5,000 (LRA's `train[:90%]` / `train[90%:]`), test = test_batch's 10,000. The sizes match LRA; the
membership does not exactly: tfds's `cifar10` stores examples in hashed-key order, so LRA's 5,000
validation images are a pseudo-random subset of all five batches, ours are data_batch_5.

The archive is looked for in `manual_dir`, `{data_dir}/downloads/manual/` and
`{data_dir}/downloads/`, and downloaded only with `allow_download=True` (`source_files`).
"""

from __future__ import annotations

import pathlib
import tarfile
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from jaxattn.data import source_files

NUM_CLASSES = 10
CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
IMAGE_SIZE = 32
SEQ_LEN = IMAGE_SIZE * IMAGE_SIZE
VALIDATION_FRACTION = 0.1  # LRA: train[90%:]
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
_RECORD_BYTES = 1 + 3 * SEQ_LEN  # label byte, then the R, G and B planes (each row-major 32x32)

ARCHIVE = source_files.RemoteFile(
    url="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    num_bytes=170_052_171,
    sha256="c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
)

_GRAY_WEIGHTS = np.array([0.2989, 0.5870, 0.1140], np.float32)  # TF's, as float32


def to_grayscale(rgb: np.ndarray) -> np.ndarray:
    """`tf.image.rgb_to_grayscale` on uint8 images (module docstring): [..., 3] -> uint8 [...]."""
    x = rgb.astype(np.float32) * np.float32(1.0 / 255)
    gray = (
        x[..., 0] * _GRAY_WEIGHTS[0] + x[..., 1] * _GRAY_WEIGHTS[1] + x[..., 2] * _GRAY_WEIGHTS[2]
    )
    return (gray * np.float32(255.5)).astype(np.uint8)  # float -> uint8 truncates, as TF's cast


def parse_batch(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR-10 binary batch -> (grayscale tokens uint8 [N, 1024], labels uint8 [N])."""
    if len(data) % _RECORD_BYTES:
        raise ValueError(
            f"CIFAR-10 batch of {len(data)} bytes is not whole {_RECORD_BYTES}-byte records"
        )
    records = np.frombuffer(data, np.uint8).reshape(-1, _RECORD_BYTES)
    planes = records[:, 1:].reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE)  # [N, 3, H, W]
    rgb = planes.transpose(0, 2, 3, 1)  # [N, H, W, 3]
    return to_grayscale(rgb).reshape(-1, SEQ_LEN), records[:, 0].copy()


def read_batches(archive: pathlib.Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The archive's batches by file name (any top-level folder) -> (tokens, labels)."""
    wanted = {*TRAIN_FILES, TEST_FILE}
    batches = {}
    with tarfile.open(archive, "r|gz") as tar:
        for member in tar:
            name = pathlib.PurePosixPath(member.name).name
            if member.isfile() and name in wanted:
                batches[name] = parse_batch(tar.extractfile(member).read())
    missing = sorted(wanted - batches.keys())
    if missing:
        raise ValueError(f"{archive} lacks {', '.join(missing)}; is it cifar-10-binary.tar.gz?")
    return batches


class LraCifar10(source_files.SourceFilesBuilder):
    """Sequential grayscale CIFAR-10 for LRA Image (module docstring)."""

    name = "lra_cifar10"
    DATASET = "cifar10"
    REMOTE = ARCHIVE
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "TF rgb_to_grayscale, row-major 1024 tokens, file-order splits."}
    BUILDER_CONFIGS = [
        source_files.SourceConfig(
            name="lra",
            description="45000/5000/10000: train[:90%] / train[90%:] in file order, test.",
            num_shards=8,
            expected_sizes={"train": 45_000, "validation": 5_000, "test": 10_000},
        )
    ]
    DEFAULT_CONFIG_NAME = "lra"

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "CIFAR-10 as 1024 grayscale intensities (TF rgb_to_grayscale, row-major), label "
                "the class: the Long Range Arena Image task."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "tokens": tfds.features.Tensor(shape=(SEQ_LEN,), dtype=np.uint8),
                    "label": tfds.features.ClassLabel(names=list(CLASSES)),
                }
            ),
            supervised_keys=("tokens", "label"),
            disable_shuffling=True,  # keep file order; the pipeline shuffles training data
            homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
        )

    def read_splits(self) -> dict[str, list[dict[str, Any]]]:
        batches = read_batches(self.sources())
        tokens = np.concatenate([batches[name][0] for name in TRAIN_FILES])
        labels = np.concatenate([batches[name][1] for name in TRAIN_FILES])
        cut = len(tokens) - round(len(tokens) * VALIDATION_FRACTION)
        parts = {
            "train": (tokens[:cut], labels[:cut]),
            "validation": (tokens[cut:], labels[cut:]),
            "test": batches[TEST_FILE],
        }
        return {
            split: [{"tokens": row, "label": int(label)} for row, label in zip(*part, strict=True)]
            for split, part in parts.items()
        }
