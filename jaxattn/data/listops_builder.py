"""The `listops` tfds builder: generates ListOps locally (no download) into array_record files.

Works without TensorFlow: `file_format='array_record'`, a hand-made `tfds.core.DatasetInfo`, and
reading back through `builder.as_data_source(split)` (random access; `as_dataset` needs TF).

    builder = listops_builder.ListOps(config='tiny', data_dir='/tmp/tfds')
    builder.download_and_prepare()                  # generates, with progress on stderr
    source = builder.as_data_source('validation')   # source[i] -> {'tokens': uint8 [L], 'label': int}

Files land in `{data_dir}/listops/{config}/{version}/`; `data_dir` defaults to tfds's
($TFDS_DATA_DIR or ~/tensorflow_datasets).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from jaxattn.data import listops

SPLITS = ("train", "validation", "test")  # also the order they are carved from the generated trees


@dataclasses.dataclass(eq=False)
class ListOpsConfig(tfds.core.BuilderConfig):
    """Split sizes, generation seed and files per split; the LRA rules themselves are fixed."""

    num_train: int = 0
    num_validation: int = 0
    num_test: int = 0
    seed: int = 0
    # array_record 0.8.6 spends time linear in a file's record count on every random read
    # (~0.4 ms per record in a 96k-record file, ~30 us at 6k), so large splits get more files.
    num_shards: int = 1

    @property
    def split_sizes(self) -> dict[str, int]:
        return {"train": self.num_train, "validation": self.num_validation, "test": self.num_test}


class ListOps(tfds.core.GeneratorBasedBuilder):
    """LRA ListOps, generated with `jaxattn.data.listops` (vocabulary and rules documented there)."""

    name = "listops"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "LRA rules, chunk-seeded generation, global dedup, vocab of 16."}
    BUILDER_CONFIGS = [
        ListOpsConfig(
            name="lra",
            description="LRA sizes: 96000/2000/2000.",
            num_train=96_000,
            num_validation=2_000,
            num_test=2_000,
            seed=0,
            num_shards=16,
        ),
        ListOpsConfig(
            name="small",
            description="10000/1000/1000, for quick experiments.",
            num_train=10_000,
            num_validation=1_000,
            num_test=1_000,
            seed=1,
            num_shards=2,
        ),
        ListOpsConfig(
            name="tiny",
            description="256/64/64, for smoke and unit tests.",
            num_train=256,
            num_validation=64,
            num_test=64,
            seed=2,
        ),
    ]
    DEFAULT_CONFIG_NAME = "lra"

    def __init__(self, *, num_workers: int | None = None, **kwargs: Any):
        """Args: num_workers: generator processes (default os.cpu_count()); the data do not
        depend on it. Other keyword arguments go to tfds (config, data_dir, version, ...)."""
        kwargs.setdefault("file_format", "array_record")
        self._num_workers = num_workers
        super().__init__(**kwargs)

    def download_and_prepare(
        self, *, download_config: tfds.download.DownloadConfig | None = None, **kwargs: Any
    ) -> None:
        """tfds's, writing `builder_config.num_shards` files per split unless told otherwise."""
        download_config = download_config or tfds.download.DownloadConfig()
        if download_config.num_shards is None:
            download_config = download_config.replace(num_shards=self.builder_config.num_shards)
        super().download_and_prepare(download_config=download_config, **kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "ListOps from the Long Range Arena: nested MIN/MAX/MED/SM expressions of 500-2000 "
                "tokens; the label is the value 0-9. Tokens are ids: 0 pad, digits 1-10, [MIN 11, "
                "[MAX 12, [MED 13, [SM 14, ] 15."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "tokens": tfds.features.Tensor(shape=(None,), dtype=np.uint8),
                    "label": tfds.features.ClassLabel(num_classes=listops.NUM_CLASSES),
                }
            ),
            supervised_keys=("tokens", "label"),
            # Keep generation order on disk (the pipeline shuffles training data itself).
            disable_shuffling=True,
            homepage="https://github.com/google-research/long-range-arena",
        )

    def _split_generators(self, dl_manager: Any) -> dict[str, Iterator[tuple[int, dict]]]:
        del dl_manager  # generated locally, nothing to download
        config: ListOpsConfig = self.builder_config
        splits = listops.generate(
            config.split_sizes, seed=config.seed, num_workers=self._num_workers
        )
        return {name: self._generate_examples(splits[name]) for name in SPLITS}

    def _generate_examples(
        self, examples: list[listops.Example]
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        for index, example in enumerate(examples):
            yield index, {"tokens": example.tokens, "label": example.label}
