"""The `pathfinder` tfds builder: LRA Pathfinder, generated locally or read from LRA's PNGs.

Like `listops`, it works without TensorFlow (array_record files read back through
`builder.as_data_source(split)`). Each record is {'tokens': uint8 [H * W] (the row-major
pixels, so vocabulary 256), 'label': 0 | 1}.

    builder = pathfinder_builder.Pathfinder(config='32_hard_tiny', data_dir='/tmp/tfds')
    builder.download_and_prepare()                  # generates, with progress on stderr
    source = builder.as_data_source('validation')   # source[i]['tokens'].reshape(32, 32)

Configs:

* `{32,64,128,256}_{easy,intermediate,hard}`: generated with `jaxattn.data.pathfinder` at
  LRA's sizes, 160000/20000/20000 (80/10/10 of 200k). LRA's Pathfinder is `32_hard`, Path-X
  is `128_hard`. `32_hard_small` (8000/1000/1000), `32_hard_tiny` and `128_hard_tiny`
  (256/64/64) are for quick runs and tests. All share seed 0 and the chunk size, so each
  split of a small config is the first examples of the same split of the full one.
* `{32,64,128,256}_{easy,intermediate,hard}_official`: the PNGs of LRA's `lra_release`
  tarball, read from the tfds manual directory (default `{data_dir}/downloads/manual`, or
  `DownloadConfig(manual_dir=...)`). Any of these layouts works, searched in this order:
  `lra_release/lra_release/pathfinder32/...` (the tarball's nested copy, which LRA.md §7
  pitfall 4 recommends over the top-level `pathfinder128`), `lra_release/pathfinder32/...`,
  `pathfinder32/...`. Below that: `curv_contour_length_14/metadata/<batch>.npy` (plain text,
  one image per line, field 1 the folder, field 2 the file, field 4 the label) and
  `imgs/<batch>/sample_<i>.png`. Metadata files are read in numeric order, 0-byte PNGs and
  all-black images are skipped (pitfall 5), and the rest is split 80/10/10 by a permutation
  seeded with the config's seed (pitfall 18: no dependence on directory listing order).
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from jaxattn import errors
from jaxattn.data import pathfinder

SPLITS = ("train", "validation", "test")
OFFICIAL_FOLDERS = {
    "easy": "curv_baseline",
    "intermediate": "curv_contour_length_9",
    "hard": "curv_contour_length_14",
}
# Where the resolution folder may sit under the manual dir, most preferred first.
_OFFICIAL_PREFIXES = (("lra_release", "lra_release"), ("lra_release",), ())


@dataclasses.dataclass(eq=False)
class PathfinderConfig(tfds.core.BuilderConfig):
    """Resolution, difficulty, split sizes and seed; `official` reads LRA's PNGs instead."""

    resolution: int = 32
    difficulty: str = "hard"
    num_train: int = 0
    num_validation: int = 0
    num_test: int = 0
    seed: int = 0  # generation seed, or the split permutation's seed for `official`
    # array_record spends time linear in a file's record count on every random read (see
    # listops_builder), so large splits get more files.
    num_shards: int = 1
    official: bool = False

    @property
    def split_sizes(self) -> dict[str, int]:
        return {"train": self.num_train, "validation": self.num_validation, "test": self.num_test}

    @property
    def params(self) -> pathfinder.Params:
        return pathfinder.params(self.resolution, self.difficulty)


def _builder_configs() -> list[PathfinderConfig]:
    configs = []
    for resolution in pathfinder.RESOLUTIONS:
        for difficulty, length in pathfinder.DIFFICULTIES.items():
            configs.append(
                PathfinderConfig(
                    name=f"{resolution}_{difficulty}",
                    description=(
                        f"{resolution}x{resolution}, contour length {length}, generated; LRA "
                        "sizes 160000/20000/20000."
                    ),
                    resolution=resolution,
                    difficulty=difficulty,
                    num_train=160_000,
                    num_validation=20_000,
                    num_test=20_000,
                    num_shards=32,
                )
            )
    for name, resolution, sizes, shards in (
        ("32_hard_small", 32, (8_000, 1_000, 1_000), 2),
        ("32_hard_tiny", 32, (256, 64, 64), 1),
        ("128_hard_tiny", 128, (256, 64, 64), 1),
    ):
        configs.append(
            PathfinderConfig(
                name=name,
                description=f"{resolution}x{resolution} hard, generated; {'/'.join(map(str, sizes))}.",
                resolution=resolution,
                difficulty="hard",
                num_train=sizes[0],
                num_validation=sizes[1],
                num_test=sizes[2],
                num_shards=shards,
            )
        )
    for resolution in pathfinder.RESOLUTIONS:
        for difficulty, folder in OFFICIAL_FOLDERS.items():
            configs.append(
                PathfinderConfig(
                    name=f"{resolution}_{difficulty}_official",
                    description=(
                        f"LRA's released PNGs, pathfinder{resolution}/{folder}, from the manual "
                        "dir; split 80/10/10 with a seeded permutation."
                    ),
                    resolution=resolution,
                    difficulty=difficulty,
                    seed=42,
                    num_shards=32,
                    official=True,
                )
            )
    return configs


def find_official_dir(manual_dir: str | pathlib.Path, resolution: int, difficulty: str):
    """The `pathfinder{resolution}/{folder}` directory with a `metadata/` under `manual_dir`,
    or None."""
    for prefix in _OFFICIAL_PREFIXES:
        candidate = pathlib.Path(manual_dir).joinpath(
            *prefix, f"pathfinder{resolution}", OFFICIAL_FOLDERS[difficulty]
        )
        if (candidate / "metadata").is_dir():
            return candidate
    return None


def _numeric_key(path: pathlib.Path) -> tuple[int, int | str]:
    return (0, int(path.stem)) if path.stem.isdigit() else (1, path.stem)


def read_official_index(root: pathlib.Path) -> list[tuple[pathlib.Path, int]]:
    """(PNG path, label) for every metadata line, metadata files in numeric order, 0-byte
    files left out."""
    entries, empty = [], 0
    for metadata in sorted((root / "metadata").glob("*.npy"), key=_numeric_key):
        for line in metadata.read_text().splitlines():
            fields = line.split()
            if not fields:
                continue
            path = root / fields[0] / fields[1]
            if not path.exists():
                raise FileNotFoundError(f"{metadata} lists {path}, which does not exist")
            if path.stat().st_size == 0:
                empty += 1
                continue
            entries.append((path, int(fields[3])))
    if empty:
        print(f"pathfinder: skipped {empty} empty PNG file(s) under {root}", file=sys.stderr)
    return entries


def split_official(
    entries: list[tuple[pathlib.Path, int]], seed: int
) -> dict[str, list[tuple[pathlib.Path, int]]]:
    """80/10/10 of a seeded permutation (train gets n * 8 // 10, validation n // 10)."""
    order = np.random.default_rng(seed).permutation(len(entries))
    num_train, num_validation = len(entries) * 8 // 10, len(entries) // 10
    bounds = {
        "train": order[:num_train],
        "validation": order[num_train : num_train + num_validation],
        "test": order[num_train + num_validation :],
    }
    return {name: [entries[i] for i in indices] for name, indices in bounds.items()}


def read_png(path: pathlib.Path, resolution: int) -> np.ndarray:
    """uint8 [H, W] grayscale pixels of one of LRA's PNGs."""
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("L"), np.uint8)
    if pixels.shape != (resolution, resolution):
        raise ValueError(f"{path}: {pixels.shape}, expected ({resolution}, {resolution})")
    return pixels


class Pathfinder(tfds.core.GeneratorBasedBuilder):
    """LRA Pathfinder / Path-X (generation and differences: `jaxattn.data.pathfinder`)."""

    name = "pathfinder"
    DATASET = "pathfinder"  # the name in jaxattn.data.DATASETS and scripts/prepare_data.py
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "snakes2 re-implementation; LRA parameters; official PNG reader."}
    BUILDER_CONFIGS = _builder_configs()
    DEFAULT_CONFIG_NAME = "32_hard"
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Only for the *_official configs: unpack LRA's lra_release.gz "
        "(https://storage.googleapis.com/long-range-arena/lra_release.gz) so that "
        "lra_release/lra_release/pathfinder32/curv_contour_length_14/metadata exists under the "
        "manual dir (or put pathfinder32/ there directly)."
    )

    def __init__(
        self,
        *,
        num_workers: int | None = None,
        manual_dir: str | pathlib.Path | None = None,
        **kwargs: Any,
    ):
        """Args:
        num_workers: generator processes (default os.cpu_count()); the data do not depend on it.
        manual_dir: where `*_official` configs find LRA's PNGs (default
          `{data_dir}/downloads/manual`).
        Other keyword arguments go to tfds (config, data_dir, version, ...).
        """
        kwargs.setdefault("file_format", "array_record")
        self._num_workers = num_workers
        self._manual_dir = manual_dir
        self._official_entries: list[tuple[pathlib.Path, int]] | None = None
        super().__init__(**kwargs)

    @property
    def manual_dir(self) -> pathlib.Path:
        if self._manual_dir is not None:
            return pathlib.Path(self._manual_dir)
        return pathlib.Path(self.data_dir_root) / "downloads" / "manual"

    def official_dir(self) -> pathlib.Path | None:
        """The official config's `pathfinder{R}/{folder}` under the manual dir, or None."""
        config: PathfinderConfig = self.builder_config
        return find_official_dir(self.manual_dir, config.resolution, config.difficulty)

    def missing_official_message(self) -> str:
        config: PathfinderConfig = self.builder_config
        folder = f"pathfinder{config.resolution}/{OFFICIAL_FOLDERS[config.difficulty]}"
        return (
            f"pathfinder/{config.name} reads LRA's PNGs, but no {folder}/metadata is under "
            f"{self.manual_dir}: unpack lra_release.gz and put lra_release/lra_release/"
            f"pathfinder{config.resolution} there (or set --config.data.manual_dir / "
            f"--manual_dir to the folder that holds pathfinder{config.resolution})"
        )

    def download_and_prepare(
        self, *, download_config: tfds.download.DownloadConfig | None = None, **kwargs: Any
    ) -> None:
        """tfds's, writing `builder_config.num_shards` files per split unless told otherwise.

        Raises:
          DataNotFoundError: an official config whose PNGs are not in the manual dir.
        """
        download_config = download_config or tfds.download.DownloadConfig()
        if download_config.num_shards is None:
            download_config = download_config.replace(num_shards=self.builder_config.num_shards)
        if download_config.manual_dir is not None:
            self._manual_dir = download_config.manual_dir
        if self.builder_config.official:
            root = self.official_dir()
            if root is None:
                raise errors.DataNotFoundError(self.missing_official_message())
            download_config = download_config.replace(manual_dir=str(self.manual_dir))
            # Every split gets the same number of files, so the smallest (10%) sets the limit.
            self._official_entries = read_official_index(root)
            most = max(1, len(self._official_entries) // 10 // 600)
            download_config = download_config.replace(
                num_shards=min(download_config.num_shards, most)
            )
        super().download_and_prepare(download_config=download_config, **kwargs)

    def warn_unexpected_sizes(self) -> None:
        """Prints a line to stderr if an official config did not find LRA's 200k images."""
        if not self.builder_config.official:
            return
        total = sum(split.num_examples for split in self.info.splits.values())
        if not 199_990 <= total <= 200_000:
            print(
                f"warning: pathfinder/{self.builder_config.name} has {total} images; LRA's "
                "release has 200000 per folder (one of them empty at 32 px, curv_baseline)",
                file=sys.stderr,
            )

    def _info(self) -> tfds.core.DatasetInfo:
        size = self.builder_config.resolution
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                f"Pathfinder from the Long Range Arena at {size}x{size}: are the two dots joined "
                "by one dashed contour? tokens are the row-major 8-bit pixels (vocabulary 256), "
                "label 1 = connected."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "tokens": tfds.features.Tensor(shape=(size * size,), dtype=np.uint8),
                    "label": tfds.features.ClassLabel(num_classes=pathfinder.NUM_CLASSES),
                }
            ),
            supervised_keys=("tokens", "label"),
            disable_shuffling=True,  # keep generation order; the pipeline shuffles
            homepage="https://github.com/google-research/long-range-arena",
        )

    def _split_generators(self, dl_manager: Any) -> dict[str, Iterator[tuple[int, dict]]]:
        config: PathfinderConfig = self.builder_config
        if config.official:
            root = find_official_dir(dl_manager.manual_dir, config.resolution, config.difficulty)
            if root is None:
                raise errors.DataNotFoundError(self.missing_official_message())
            entries = self._official_entries or read_official_index(root)
            splits = split_official(entries, config.seed)
            return {name: self._official_examples(splits[name]) for name in SPLITS}
        return {
            name: self._generate_examples(
                pathfinder.iter_split(
                    config.params,
                    name,
                    config.split_sizes[name],
                    seed=config.seed,
                    num_workers=self._num_workers,
                )
            )
            for name in SPLITS
        }

    def _generate_examples(
        self, examples: Iterable[pathfinder.Example]
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        for index, example in enumerate(examples):
            yield index, {"tokens": example.image.reshape(-1), "label": example.label}

    def _official_examples(
        self, entries: list[tuple[pathlib.Path, int]]
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        blank = 0
        for index, (path, label) in enumerate(entries):
            pixels = read_png(path, self.builder_config.resolution)
            if not pixels.any():
                blank += 1
                continue
            yield index, {"tokens": pixels.reshape(-1), "label": label}
        if blank:
            print(f"pathfinder: skipped {blank} all-black image(s)", file=sys.stderr)
