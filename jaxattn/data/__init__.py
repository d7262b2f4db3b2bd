"""The dataset registry and the trainer's one entry point, `get_dataset(config.data)`.

    info, get_source = data.get_dataset(config.data)
    batches = pipeline.train_batches(get_source('train'), batch_size=..., seq_len=..., seed=...)

`config.data` fields: `name` (a key of `DATASETS`), `builder_config` (e.g. 'lra' | 'small' |
'tiny' for listops), `data_dir` (None: tfds's default, $TFDS_DATA_DIR or ~/tensorflow_datasets)
and `allow_build` (generate the dataset if it is not prepared; otherwise `DataNotFoundError`).
A prepared dataset is only read, never regenerated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from jaxattn import errors
from jaxattn.data import listops, listops_builder

if TYPE_CHECKING:
    from jaxattn.data import pipeline


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model and trainer need to know about a prepared dataset."""

    vocab_size: int
    num_classes: int
    splits: dict[str, int]  # split name -> number of examples


SourceFactory = Callable[[str], "pipeline.Source"]


def _load_listops(data_config: Mapping[str, Any]) -> tuple[DatasetInfo, SourceFactory]:
    config_name = data_config.get("builder_config") or listops_builder.ListOps.DEFAULT_CONFIG_NAME
    known = [config.name for config in listops_builder.ListOps.BUILDER_CONFIGS]
    if config_name not in known:
        raise errors.ConfigError(
            f"unknown listops builder_config '{config_name}' (config.data.builder_config); "
            f"available: {', '.join(known)}"
        )
    builder = listops_builder.ListOps(
        config=config_name, data_dir=data_config.get("data_dir") or None
    )
    if not builder.is_prepared():
        if not data_config.get("allow_build", False):
            data_dir_flag = (
                f" --data_dir={data_config['data_dir']}" if data_config.get("data_dir") else ""
            )
            raise errors.DataNotFoundError(
                f"dataset listops/{config_name} is not prepared in {builder.data_dir}; build it "
                f"with --config.data.allow_build=True or `python scripts/prepare_data.py listops "
                f"--config={config_name}{data_dir_flag}`"
            )
        builder.download_and_prepare()
    info = DatasetInfo(
        vocab_size=listops.VOCAB_SIZE,
        num_classes=listops.NUM_CLASSES,
        splits={name: split.num_examples for name, split in builder.info.splits.items()},
    )
    return info, builder.as_data_source


# name -> loader(data_config) -> (DatasetInfo, split name -> random-access source).
DATASETS: dict[str, Callable[[Mapping[str, Any]], tuple[DatasetInfo, SourceFactory]]] = {
    "listops": _load_listops,
}


def get_dataset(data_config: Mapping[str, Any]) -> tuple[DatasetInfo, SourceFactory]:
    """Returns the dataset's info and a function from split name to a random-access source.

    Args:
      data_config: `config.data` (an ml_collections ConfigDict or a dict) with `name`,
        `builder_config`, `data_dir` and `allow_build`.

    Returns:
      (DatasetInfo, get_source) where get_source('train' | 'validation' | 'test') returns a
      source with `len()` and `source[i] -> {'tokens': uint8 [n], 'label': int}`.

    Raises:
      ConfigError: unknown dataset name or builder config.
      DataNotFoundError: not prepared and `allow_build` is False (the message says how to build).
    """
    name = data_config.get("name")
    if name not in DATASETS:
        raise errors.ConfigError(
            f"unknown dataset '{name}' (config.data.name); available: {', '.join(sorted(DATASETS))}"
        )
    return DATASETS[name](data_config)
