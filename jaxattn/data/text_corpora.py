"""Byte-level language-modelling corpora from raw files: tiny Shakespeare, enwik8 and lm1b.

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
  `lm1b`: the One Billion Word benchmark (Chelba et al. 2013), from its release archive
      (`1-billion-word-language-modeling-benchmark-r13output.tar.gz`, 1.79 GB; the URL and sha256
      tfds's `lm1b` uses; downloaded only when allowed) or that archive unpacked in the manual
      dir. Every sentence is one document. Train: the 99 `training-monolingual.tokenized.shuffled`
      files (30,301,028 sentences); test: `news.en.heldout-00000-of-00050`, the benchmark's test
      set in the papers' numbers (tfds's `lm1b` tests on all 50 held-out files instead);
      validation: `news.en.heldout-00001-of-00050`. Memory: the LM rows hold a split's tokens in
      memory, 2 bytes per byte of text (about 8 GB for train), and preparing reads the archive
      once per split.
"""

from __future__ import annotations

import pathlib
import tarfile
import zipfile
from collections.abc import Iterator
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
LM1B = source_files.RemoteFile(
    url="http://www.statmt.org/lm-benchmark/1-billion-word-language-modeling-benchmark-r13output.tar.gz",
    num_bytes=1_792_209_805,
    sha256="01ba60381110baf7f189dfd2b8374de371e8c9a340835793f190bdae9e90a34e",
)
LM1B_ROOT = "1-billion-word-language-modeling-benchmark-r13output"
# split -> (directory under LM1B_ROOT, file-name prefix); every file matching is read in name order.
LM1B_FILES = {
    "train": ("training-monolingual.tokenized.shuffled", "news.en-"),
    "validation": ("heldout-monolingual.tokenized.shuffled", "news.en.heldout-00001-of-"),
    "test": ("heldout-monolingual.tokenized.shuffled", "news.en.heldout-00000-of-"),
}


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


def _lm1b_split_of(relative: str) -> str | None:
    """'{LM1B_ROOT}/{directory}/{file}' -> the split that file belongs to, or None."""
    parts = relative.split("/")
    if len(parts) != 3 or parts[0] != LM1B_ROOT:
        return None
    for split, (directory, prefix) in LM1B_FILES.items():
        if parts[1] == directory and parts[2].startswith(prefix):
            return split
    return None


class _Lm1bSentences:
    """One split's sentences as records, streamed from the archive (or the unpacked directory)
    on each iteration: the 30M training sentences never sit in memory as records."""

    def __init__(self, path: pathlib.Path, split: str):
        self.path, self.split = path, split

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for lines in self._files():
            for line in lines:
                yield {"tokens": byte_text.encode(line.rstrip(b"\n"))}

    def _files(self) -> Iterator[Any]:
        if self.path.is_dir():
            directory, prefix = LM1B_FILES[self.split]
            for file in sorted((self.path / LM1B_ROOT / directory).glob(prefix + "*")):
                with open(file, "rb") as lines:
                    yield lines
            return
        # Streaming read: members in archive order, which is fixed for a given archive.
        with tarfile.open(self.path, "r|gz") as archive:
            for member in archive:
                if member.isfile() and _lm1b_split_of(member.name) == self.split:
                    yield archive.extractfile(member)


class Lm1b(source_files.SourceFilesBuilder):
    """The One Billion Word benchmark, bytes, one sentence per document (module docstring)."""

    name = "lm_lm1b"
    DATASET = "lm1b"
    REMOTE = LM1B
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "r13output sentences, bytes + 1; test heldout-00000, validation heldout-00001."
    }
    BUILDER_CONFIGS = [
        source_files.SourceConfig(
            name="default",
            description="Sentences as documents; the benchmark's test file.",
            num_shards=64,
            expected_sizes={"train": 30_301_028},
        )
    ]
    DEFAULT_CONFIG_NAME = "default"

    def find_sources(self) -> pathlib.Path | None:
        """The archive, or a directory holding it unpacked (`{LM1B_ROOT}/...`)."""
        for directory in self.manual_dirs:
            if (directory / LM1B.name).is_file():
                return directory / LM1B.name
            if (directory / LM1B_ROOT).is_dir():
                return directory
        return None

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="One Billion Word benchmark sentences, bytes + 1, 0 = padding.",
            features=_features(),
            disable_shuffling=True,
            homepage="http://www.statmt.org/lm-benchmark/",
        )

    def download_and_prepare(
        self, *, download_config: tfds.download.DownloadConfig | None = None, **kwargs: Any
    ) -> None:
        """Streams the sentences into `num_shards` files per split (the counts are not known
        before reading, so the shard count is fixed: every split has far more sentences)."""
        download_config = download_config or tfds.download.DownloadConfig()
        if download_config.num_shards is None:
            download_config = download_config.replace(num_shards=self.builder_config.num_shards)
        super().download_and_prepare(download_config=download_config, **kwargs)

    def read_splits(self) -> dict[str, _Lm1bSentences]:
        path = self.sources()
        return {split: _Lm1bSentences(path, split) for split in LM1B_FILES}
