"""Raw files of a dataset: found in a manual directory, or downloaded only when the user allows it.

The LRA builders (`imdb`, `cifar`, `aan`) do not use tfds's download manager: its archive
extractor reads through `tf.io.gfile` (TensorFlow), and a download attempted without a network
retries for minutes before failing (STACK.md §2). So a builder here looks for its files first and
fetches them with urllib only when told to (`data.allow_download`, default False).

Where a builder looks, in order:
  1. `data.manual_dir` (or `manual_dir=` to the builder), when set;
  2. tfds's manual dir, `{data_dir}/downloads/manual/`;
  3. `{data_dir}/downloads/`, where an allowed download is written (as its plain file name).

`SourceFilesBuilder` is the shared base class: array_record output, the manual-dir/download
options, `num_shards` files per split, and the expected split sizes it warns about.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib
import sys
import time
import urllib.request
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any

import tensorflow_datasets as tfds
from absl import logging

from jaxattn import errors


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """A file a builder may download: where from, and the size and sha256 it must have."""

    url: str
    num_bytes: int
    sha256: str

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


def _progress(url: str, done: int, total: int, end: str = "") -> None:
    print(
        f"\rdownloading {url}: {done / 1e6:.1f} / {total / 1e6:.1f} MB "
        f"({100 * done / max(total, 1):.0f}%)",
        end=end,
        file=sys.stderr,
        flush=True,
    )


def download(
    remote: RemoteFile, directory: pathlib.Path, *, progress_every_s: float = 1.0
) -> pathlib.Path:
    """Downloads `remote` into `directory/remote.name` with a progress line on stderr.

    Writes `<name>.partial` first and renames it only after the size and sha256 match, so an
    interrupted or corrupt download is never mistaken for the real file.

    Raises:
      DataNotFoundError: the download failed or the file does not match its checksum.
    """
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / remote.name
    partial = target.with_name(target.name + ".partial")
    hasher = hashlib.sha256()
    done, last_print = 0, 0.0
    try:
        # Looked up at call time (not imported by name) so tests can forbid the network.
        with urllib.request.urlopen(remote.url, timeout=60) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or remote.num_bytes)
            while chunk := response.read(1 << 20):
                out.write(chunk)
                hasher.update(chunk)
                done += len(chunk)
                if time.monotonic() - last_print >= progress_every_s:
                    last_print = time.monotonic()
                    _progress(remote.url, done, total)
        _progress(remote.url, done, total, end="\n")
    except OSError as e:  # urllib.error.URLError included
        partial.unlink(missing_ok=True)
        raise errors.DataNotFoundError(
            f"could not download {remote.url} ({e}); download it yourself into {directory}"
            f"/manual/ (or --config.data.manual_dir)"
        ) from e
    if done != remote.num_bytes or hasher.hexdigest() != remote.sha256:
        partial.unlink(missing_ok=True)
        raise errors.DataNotFoundError(
            f"the download of {remote.url} is corrupt ({done} bytes, sha256 {hasher.hexdigest()}; "
            f"expected {remote.num_bytes} bytes, sha256 {remote.sha256}); retry, or download it "
            f"yourself into {directory}/manual/"
        )
    partial.rename(target)
    return target


@dataclasses.dataclass(eq=False)
class SourceConfig(tfds.core.BuilderConfig):
    """A builder config with files per split and the split sizes the real data has."""

    # array_record 0.8.6 spends time linear in a file's record count on every random read
    # (listops_builder.py), so large splits get several files.
    num_shards: int = 1
    expected_sizes: dict[str, int] = dataclasses.field(default_factory=dict)


class SourceFilesBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of builders that read raw files from a manual dir or an allowed download.

    Subclasses set `DATASET` (the `jaxattn.data.DATASETS` key, for messages), implement `_info`
    and `read_splits` (records in the order they are stored), and either set `REMOTE` (one
    downloadable archive) or override `find_sources` and `missing_sources_message`.
    """

    DATASET: str = ""
    REMOTE: RemoteFile | None = None

    def __init__(
        self,
        *,
        manual_dir: str | pathlib.Path | None = None,
        allow_download: bool = False,
        **kwargs: Any,
    ):
        """Args: manual_dir: where the raw files are (default `{data_dir}/downloads/manual/`);
        allow_download: fetch a missing archive from its URL. Other keyword arguments go to tfds
        (config, data_dir, version, ...)."""
        kwargs.setdefault("file_format", "array_record")
        self._manual_dir = pathlib.Path(manual_dir).expanduser() if manual_dir else None
        self._allow_download = allow_download
        self._splits: Mapping[str, Collection[dict[str, Any]]] | None = None
        super().__init__(**kwargs)

    @property
    def download_dir(self) -> pathlib.Path:
        return pathlib.Path(self.data_dir_root) / "downloads"

    @property
    def manual_dirs(self) -> list[pathlib.Path]:
        """Where raw files are looked for, in order (the download dir comes last)."""
        dirs = [self._manual_dir] if self._manual_dir else []
        return [*dirs, self.download_dir / "manual", self.download_dir]

    def find_sources(self) -> pathlib.Path | None:
        """The raw archive if it is already on disk; never touches the network."""
        assert self.REMOTE is not None, "subclasses without REMOTE override find_sources"
        for directory in self.manual_dirs:
            if (directory / self.REMOTE.name).is_file():
                return directory / self.REMOTE.name
        return None

    def missing_sources_message(self) -> str:
        """One line: the raw files are missing, where to put them, or which flag downloads them."""
        assert self.REMOTE is not None
        where = self._manual_dir or self.download_dir / "manual"
        return (
            f"dataset {self.DATASET} is not prepared in {self.data_dir} and {self.REMOTE.name} is "
            f"not in {where}; download {self.REMOTE.url} into it (then "
            f"--config.data.allow_build=True), or set --config.data.allow_download=True "
            f"(prepare_data.py: --allow_download)"
        )

    def sources(self) -> pathlib.Path:
        """The raw files: found on disk, else downloaded if allowed, else DataNotFoundError."""
        found = self.find_sources()
        if found is not None:
            return found
        if self._allow_download and self.REMOTE is not None:
            return download(self.REMOTE, self.download_dir)
        raise errors.DataNotFoundError(self.missing_sources_message())

    def read_splits(self) -> Mapping[str, Collection[dict[str, Any]]]:
        """Split name -> its records in order, read from `self.sources()` (subclasses)."""
        raise NotImplementedError

    def download_and_prepare(
        self, *, download_config: tfds.download.DownloadConfig | None = None, **kwargs: Any
    ) -> None:
        """tfds's, writing `builder_config.num_shards` files per split unless told otherwise.

        The raw files are read first, so the file count can be capped at the smallest split's
        size (tfds refuses more files than records).
        """
        download_config = download_config or tfds.download.DownloadConfig()
        if not self.is_prepared():
            self._splits = self.read_splits()
            if download_config.num_shards is None:
                sizes = [len(records) for records in self._splits.values()]
                num_shards = max(1, min(self.builder_config.num_shards, *sizes))
                download_config = download_config.replace(num_shards=num_shards)
        try:
            super().download_and_prepare(download_config=download_config, **kwargs)
        finally:
            self._splits = None  # the records are on disk now; free the memory

    def _split_generators(self, dl_manager: Any) -> dict[str, Iterator[tuple[int, dict]]]:
        del dl_manager  # tfds's extractor needs TensorFlow; `sources()` finds or downloads
        splits = self._splits if self._splits is not None else self.read_splits()
        return {name: self._generate_examples(records) for name, records in splits.items()}

    def _generate_examples(
        self, records: Iterable[dict[str, Any]]
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        yield from enumerate(records)

    def warn_unexpected_sizes(self) -> None:
        """Logs one warning line if the prepared splits differ from the real data's sizes."""
        expected = self.builder_config.expected_sizes
        found = {name: split.num_examples for name, split in self.info.splits.items()}
        if expected and found != expected:
            logging.warning(
                "%s/%s in %s has split sizes %s; the released data has %s",
                self.name,
                self.builder_config.name,
                self.data_dir,
                found,
                expected,
            )
