"""Byte-level AAN document pairs (the LRA Retrieval task) as the `lra_aan` tfds builder.

The data exist only inside LRA's release tarball (https://storage.googleapis.com/long-range-arena/
lra_release.gz, about 8 GB, never downloaded automatically): unpack it and point
`data.manual_dir` at `lra_release/lra_release/tsv_data/`, or put the three files
`new_aan_pairs.{train,eval,test}.tsv` straight into `{data_dir}/downloads/manual/`. tfds has no
AAN builder; this one parses the TSVs in Python and writes array_record (no TensorFlow).

    builder = aan.LraAan(data_dir='/tmp/tfds', manual_dir='.../lra_release/lra_release/tsv_data')
    builder.download_and_prepare()
    source = builder.as_data_source('train')   # {'tokens', 'tokens2': uint16 [n], 'label': int}

TSV format (LRA-code `matching/input_pipeline.py`): no header, tab-separated, no quoting, columns
label (float 0/1), id1, id2, text1, text2. Records: 'tokens' and 'tokens2' are text1 and text2 cut
to their first 10,000 bytes (LRA-code cuts the raw string before encoding), then bytes + 1 (ids
1..256, 0 = padding, vocabulary 257; uint16 because byte 255 would be id 256); 'label' is int(label).
The pipeline truncates each document to its length (LRA: 4000).

Splits: train, validation (the 'eval' file) and test, in file order. The released files have
147,086 / 18,090 / 17,437 pairs; other sizes are logged as a warning when the dataset is loaded.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from jaxattn.data import byte_text, source_files

VOCAB_SIZE = byte_text.VOCAB_SIZE
NUM_CLASSES = 2
MAX_TEXT_BYTES = 10_000  # LRA-code: `s.numpy()[:10000]` before encoding
TARBALL_URL = "https://storage.googleapis.com/long-range-arena/lra_release.gz"
SPLIT_FILES = {
    "train": "new_aan_pairs.train.tsv",
    "validation": "new_aan_pairs.eval.tsv",
    "test": "new_aan_pairs.test.tsv",
}
# Where the files may sit under a manual dir: directly, or inside the unpacked tarball.
_SUBDIRS = (".", "tsv_data", "lra_release/lra_release/tsv_data")


def parse_line(line: bytes, where: str = "") -> tuple[int, bytes, bytes]:
    """One TSV line -> (label, text1, text2); texts are raw bytes, not yet cut."""
    fields = line.rstrip(b"\n").rstrip(b"\r").split(b"\t")
    if len(fields) != 5:
        raise ValueError(f"{where}: expected 5 tab-separated fields, got {len(fields)}")
    label = int(float(fields[0]))
    if label not in (0, 1):
        raise ValueError(f"{where}: label {fields[0]!r} is not 0 or 1")
    return label, fields[3], fields[4]


def encode_text(text: bytes) -> np.ndarray:
    """LRA-code's encoding: the first 10,000 bytes, each + 1 (uint16 [<= 10000])."""
    return byte_text.encode(text[:MAX_TEXT_BYTES])


def read_pairs(path: pathlib.Path) -> Iterator[tuple[int, bytes, bytes]]:
    """(label, text1, text2) for each non-empty line of a TSV file, in file order."""
    with open(path, "rb") as f:
        for line_number, line in enumerate(f, start=1):
            if line.strip():
                yield parse_line(line, f"{path}:{line_number}")


class PairFile:
    """A TSV file's records, streamed in file order (the train file is too large for memory)."""

    def __init__(self, path: pathlib.Path):
        self.path = path
        self._len: int | None = None

    def __len__(self) -> int:
        if self._len is None:
            with open(self.path, "rb") as f:
                self._len = sum(1 for line in f if line.strip())
        return self._len

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for label, text1, text2 in read_pairs(self.path):
            yield {"tokens": encode_text(text1), "tokens2": encode_text(text2), "label": label}


class LraAan(source_files.SourceFilesBuilder):
    """Byte-level AAN pairs for LRA Retrieval (module docstring)."""

    name = "lra_aan"
    DATASET = "aan"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "LRA tsv_data, texts cut to 10000 bytes, bytes + 1."}
    BUILDER_CONFIGS = [
        source_files.SourceConfig(
            name="lra",
            description="LRA's new_aan_pairs.{train,eval,test}.tsv.",
            num_shards=32,
            expected_sizes={"train": 147_086, "validation": 18_090, "test": 17_437},
        )
    ]
    DEFAULT_CONFIG_NAME = "lra"

    def find_sources(self) -> pathlib.Path | None:
        """The directory holding all three TSV files, if any; never touches the network."""
        for base in self.manual_dirs:
            for subdir in _SUBDIRS:
                directory = base / subdir
                if all((directory / name).is_file() for name in SPLIT_FILES.values()):
                    return directory.resolve()
        return None

    def missing_sources_message(self) -> str:
        where = self._manual_dir or self.download_dir / "manual"
        return (
            f"dataset aan is not prepared in {self.data_dir} and new_aan_pairs.{{train,eval,test}}"
            f".tsv are not in {where}; download and unpack {TARBALL_URL} (about 8 GB, never "
            f"downloaded automatically), then set --config.data.manual_dir=<unpacked>/lra_release/"
            f"lra_release/tsv_data"
        )

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "ACL Anthology Network citation pairs: two papers' texts (first 10000 bytes, "
                "bytes + 1, 0 = padding, vocabulary 257), label 1 if one cites the other: the "
                "Long Range Arena Retrieval task."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "tokens": tfds.features.Tensor(shape=(None,), dtype=np.uint16),
                    "tokens2": tfds.features.Tensor(shape=(None,), dtype=np.uint16),
                    "label": tfds.features.ClassLabel(num_classes=NUM_CLASSES),
                }
            ),
            disable_shuffling=True,  # keep file order; the pipeline shuffles training data
            homepage="https://github.com/google-research/long-range-arena",
        )

    def read_splits(self) -> dict[str, PairFile]:
        directory = self.sources()
        return {split: PairFile(directory / name) for split, name in SPLIT_FILES.items()}
