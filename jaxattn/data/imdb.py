"""Byte-level IMDB (the LRA Text task) as the `lra_imdb` tfds builder, from Stanford's archive.

Why our own builder: tfds's `imdb_reviews` needs TensorFlow to prepare (its archive iterator reads
through `tf.io.gfile`). This one reads `aclImdb_v1.tar.gz` with Python's `tarfile` and writes
array_record, so it builds and reads back without TensorFlow.

    builder = imdb.LraImdb(config='lra', data_dir='/tmp/tfds', manual_dir='~/Downloads')
    builder.download_and_prepare()
    source = builder.as_data_source('train')   # source[i] -> {'tokens': uint16 [n], 'label': int}

Records: 'tokens' are the review's bytes + 1 (ids 1..256, 0 = padding, vocabulary 257), which is
tfds's `ByteTextEncoder` as LRA-code uses it; 'label' is 0 for neg, 1 for pos (tfds's ClassLabel
order). The whole review is stored (after tfds's `.strip()`); the pipeline truncates to the
configured length (LRA: 1000 in the released config, 4000 in the paper; LRA.md pitfall 9).
uint16 because byte 255 is id 256 (`byte_text`).

Builder configs (LRA.md pitfall 16: IMDB has no validation split):
  'lra' (default): train = the 25,000 train reviews; validation = test = the 25,000 test reviews.
      LRA-code and Nys-code select checkpoints on the test set this way. Faithful, so it is the
      default for reproducing published numbers, but best-validation selection then sees the
      test set: say so when reporting.
  'heldout': train = 22,500 train reviews; validation = the other 2,500 (the last 10% of a
      permutation of the train reviews seeded with 0); test = the 25,000 test reviews. A clean
      protocol; its numbers are not directly comparable with LRA's.

Order: reviews sorted by archive path within a split (neg before pos), never the archive's own
order (pitfall 18); 'heldout' keeps that order inside its train and validation parts.

The archive is looked for in `manual_dir`, `{data_dir}/downloads/manual/` and
`{data_dir}/downloads/`, and downloaded only with `allow_download=True` (`source_files`).
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import tarfile
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from jaxattn.data import byte_text, source_files

VOCAB_SIZE = byte_text.VOCAB_SIZE
NUM_CLASSES = 2
LABELS = ("neg", "pos")

ARCHIVE = source_files.RemoteFile(
    url="http://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
    num_bytes=84_125_825,
    sha256="c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
)
_REVIEW_PATH = re.compile(r"^aclImdb/(train|test)/(neg|pos)/[^/]+\.txt$")


def read_reviews(archive: pathlib.Path) -> dict[str, list[tuple[bytes, int]]]:
    """Reads aclImdb's labelled reviews: split -> [(text, label)] sorted by path (unsup ignored)."""
    found: dict[str, list[tuple[str, bytes, int]]] = {"train": [], "test": []}
    with tarfile.open(archive, "r|gz") as tar:  # streaming: one pass, no member index
        for member in tar:
            match = _REVIEW_PATH.match(member.name)
            if not match or not member.isfile():
                continue
            split, label = match.groups()
            text = tar.extractfile(member).read().strip()  # .strip() as tfds's imdb_reviews
            found[split].append((member.name, text, LABELS.index(label)))
    return {
        split: [(text, label) for _, text, label in sorted(reviews)]
        for split, reviews in found.items()
    }


def heldout_indices(num_examples: int, fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    """(train, validation) indices: validation is the last `fraction` of a seeded permutation."""
    permutation = np.random.default_rng(seed).permutation(num_examples)
    num_validation = round(num_examples * fraction)
    cut = num_examples - num_validation
    return np.sort(permutation[:cut]), np.sort(permutation[cut:])


@dataclasses.dataclass(eq=False)
class ImdbConfig(source_files.SourceConfig):
    """Where validation comes from: the test set (LRA) or held out from train."""

    heldout_fraction: float = 0.0  # 0: validation is the test set
    seed: int = 0


class LraImdb(source_files.SourceFilesBuilder):
    """Byte-level IMDB for LRA Text (module docstring)."""

    name = "lra_imdb"
    DATASET = "imdb"
    REMOTE = ARCHIVE
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "aclImdb v1, bytes + 1, sorted by path."}
    BUILDER_CONFIGS = [
        ImdbConfig(
            name="lra",
            description="LRA's protocol: validation is the test set (25000/25000/25000).",
            num_shards=4,
            expected_sizes={"train": 25_000, "validation": 25_000, "test": 25_000},
        ),
        ImdbConfig(
            name="heldout",
            description="Validation held out from train, seed 0 (22500/2500/25000).",
            heldout_fraction=0.1,
            seed=0,
            num_shards=4,
            expected_sizes={"train": 22_500, "validation": 2_500, "test": 25_000},
        ),
    ]
    DEFAULT_CONFIG_NAME = "lra"

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "IMDB movie reviews as bytes + 1 (0 = padding, vocabulary 257), label 0 neg / "
                "1 pos: the Long Range Arena Text task."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "tokens": tfds.features.Tensor(shape=(None,), dtype=np.uint16),
                    "label": tfds.features.ClassLabel(names=list(LABELS)),
                }
            ),
            supervised_keys=("tokens", "label"),
            disable_shuffling=True,  # keep the sorted order; the pipeline shuffles training data
            homepage="http://ai.stanford.edu/~amaas/data/sentiment/",
        )

    def read_splits(self) -> dict[str, list[dict[str, Any]]]:
        config: ImdbConfig = self.builder_config
        reviews = read_reviews(self.sources())
        train, test = reviews["train"], reviews["test"]
        if config.heldout_fraction:
            train_idx, validation_idx = heldout_indices(
                len(train), config.heldout_fraction, config.seed
            )
            validation = [train[i] for i in validation_idx]
            train = [train[i] for i in train_idx]
        else:
            validation = test  # LRA's protocol (module docstring)
        return {
            split: [{"tokens": byte_text.encode(text), "label": label} for text, label in part]
            for split, part in (("train", train), ("validation", validation), ("test", test))
        }
