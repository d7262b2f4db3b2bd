"""Byte-level language-modelling corpora from raw files: tiny Shakespeare and enwik8.

Both go through `source_files` (found in a manual dir, downloaded only when allowed) and come out
like the offline Shakespeare corpus: records {'tokens': uint16 [n]} of bytes + 1 (0 = padding,
vocabulary 257), cut into LM rows by `data/packing.py`.

  `tiny_shakespeare`: Karpathy's char-rnn `input.txt` (1,115,394 bytes; the URL and sha256 tfds
      uses). Splits as tfds's `tiny_shakespeare`: the first 90% of the text is train, the next 5%
      validation, the last 5% test; one document per split.
  `enwik8`: the first 10^8 bytes of English Wikipedia (Hutter Prize), from `enwik8.zip` or the
      unzipped `enwik8` in the manual dir (never downloaded automatically: no checksum is pinned
      here). The standard split: 90M / 5M / 5M bytes. Each split is stored as 1 MB documents
      (one array_record record per MB); packed rows run across them, and attention and the loss
      stop at their boundaries (90 predictions of 90M lost in train).
"""

from __future__ import annotations

import pathlib
import zipfile
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from jaxattn.data import byte_text, source_files

VOCAB_SIZE = byte_text.VOCAB_SIZE
TINY_SHAKESPEARE = source_files.RemoteFile(
    url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
    num_bytes=1_115_394,
    sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
)
ENWIK8_URL = "http://mattmahoney.net/dc/enwik8.zip"
ENWIK8_SPLITS = (90_000_000, 5_000_000, 5_000_000)
ENWIK8_DOCUMENT_BYTES = 1_000_000


def _features() -> tfds.features.FeaturesDict:
    return tfds.features.FeaturesDict(
        {"tokens": tfds.features.Tensor(shape=(None,), dtype=byte_text.DTYPE)}
    )


def tfds_style_split(text: bytes) -> dict[str, bytes]:
    """tfds tiny_shakespeare's split: 90% train, then half of the rest each."""
    cut = int(len(text) * 0.9)
    train, rest = text[:cut], text[cut:]
    half = int(len(rest) * 0.5)
    return {"train": train, "validation": rest[:half], "test": rest[half:]}


class TinyShakespeare(source_files.SourceFilesBuilder):
    """Karpathy's tiny Shakespeare, bytes, tfds's 90/5/5 split (module docstring)."""

    name = "lm_tiny_shakespeare"
    DATASET = "tiny_shakespeare"
    REMOTE = TINY_SHAKESPEARE
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "char-rnn input.txt, bytes + 1, 90/5/5 by position."}
    BUILDER_CONFIGS = [
        source_files.SourceConfig(
            name="default",
            description="One document per split.",
            expected_sizes={"train": 1, "validation": 1, "test": 1},
        )
    ]
    DEFAULT_CONFIG_NAME = "default"

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="Tiny Shakespeare (40k lines of plays), bytes + 1, 0 = padding.",
            features=_features(),
            disable_shuffling=True,
            homepage="https://github.com/karpathy/char-rnn",
        )

    def read_splits(self) -> dict[str, list[dict[str, Any]]]:
        text = self.sources().read_bytes()
        return {
            split: [{"tokens": byte_text.encode(part)}]
            for split, part in tfds_style_split(text).items()
        }


class Enwik8(source_files.SourceFilesBuilder):
    """enwik8, bytes, 90M/5M/5M, stored as 1 MB documents (module docstring)."""

    name = "lm_enwik8"
    DATASET = "enwik8"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "enwik8 bytes + 1, 90M/5M/5M, 1 MB records."}
    BUILDER_CONFIGS = [
        source_files.SourceConfig(
            name="default",
            description="The standard 90M/5M/5M split in 1 MB documents.",
            num_shards=4,
            expected_sizes={"train": 90, "validation": 5, "test": 5},
        )
    ]
    DEFAULT_CONFIG_NAME = "default"
    FILES = ("enwik8.zip", "enwik8")

    def find_sources(self) -> pathlib.Path | None:
        for directory in self.manual_dirs:
            for name in self.FILES:
                if (directory / name).is_file():
                    return directory / name
        return None

    def missing_sources_message(self) -> str:
        where = self._manual_dir or self.download_dir / "manual"
        return (
            f"dataset enwik8 is not prepared in {self.data_dir} and neither enwik8.zip nor enwik8 "
            f"is in {where}; download {ENWIK8_URL} into it (never downloaded automatically), then "
            "set --config.data.manual_dir to that directory"
        )

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="enwik8 (Hutter Prize), bytes + 1, 0 = padding; 90M/5M/5M.",
            features=_features(),
            disable_shuffling=True,
            homepage="http://mattmahoney.net/dc/textdata.html",
        )

    def read_splits(self) -> dict[str, list[dict[str, Any]]]:
        path = self.sources()
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                data = archive.read("enwik8")
        else:
            data = path.read_bytes()
        out, start = {}, 0
        for split, size in zip(("train", "validation", "test"), ENWIK8_SPLITS, strict=True):
            part = np.frombuffer(data[start : start + size], np.uint8)
            start += size
            out[split] = [
                {"tokens": part[i : i + ENWIK8_DOCUMENT_BYTES].astype(byte_text.DTYPE) + 1}
                for i in range(0, len(part), ENWIK8_DOCUMENT_BYTES)
            ]
        return out
