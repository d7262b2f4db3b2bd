"""Time series: the CSV builder, the protocol splits and windows, train-only scaling, the loader."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import pytest

from jaxattn import data, errors
from jaxattn.data import series, windows

ETT_DIR = pathlib.Path(os.environ.get("JAXATTN_ETT_DIR", "/work/shared/data/ETT"))
needs_ett = pytest.mark.skipif(
    not (ETT_DIR / "ETTh1.csv").is_file(), reason=f"no real ETTh1.csv in {ETT_DIR}"
)


def write_csv(directory: pathlib.Path, name: str, values: np.ndarray, columns=None) -> None:
    columns = columns or [f"c{i}" for i in range(values.shape[1] - 1)] + ["OT"]
    lines = ["date," + ",".join(columns)]
    lines += [
        f"2020-01-01 {i:05d}," + ",".join(f"{v:.6f}" for v in row) for i, row in enumerate(values)
    ]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text("\n".join(lines) + "\n")


def tiny_series(rows=200, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, channels)).cumsum(0) + np.arange(channels) * 10


def series_config(name, tmp_path, **overrides):
    return {
        "name": "series",
        "builder_config": name,
        "data_dir": str(tmp_path / "tfds"),
        "manual_dir": str(tmp_path / "manual"),
        "allow_build": True,
        "max_length": 24,
        "horizon": 8,
        **overrides,
    }


# --- protocol splits on the real ETTh1 -----------------------------------------------------------


@needs_ett
def test_etth1_protocol_rows_and_windows():
    values, names = series.read_csv(
        (ETT_DIR / "ETTh1.csv").read_text(), columns=None, date_column="date"
    )
    assert values.shape == (17_420, 7) and names[-1] == "OT"
    rows = windows.split_rows(len(values), "ett_hour")
    assert rows == {"train": (0, 8640), "validation": (8640, 11520), "test": (11520, 14400)}
    for seq_len, horizon in [(336, 96), (96, 720)]:
        sources, scaler = windows.protocol_splits(
            values, rule="ett_hour", seq_len=seq_len, horizon=horizon
        )
        expected = {
            "train": 8640 - seq_len - horizon + 1,
            "validation": 2880 + seq_len - seq_len - horizon + 1,
            "test": 2880 + seq_len - seq_len - horizon + 1,
        }
        assert {k: len(v) for k, v in sources.items()} == expected
        # The scaler is fitted on the 8640 train rows only.
        np.testing.assert_allclose(scaler.mean, values[:8640].mean(0))
        np.testing.assert_allclose(scaler.scale, values[:8640].std(0))
        scaled = (values - values[:8640].mean(0)) / values[:8640].std(0)
        # The first test window's first target is row 11520; its look-back starts seq_len earlier.
        first = sources["test"][0]
        np.testing.assert_allclose(first["targets"][0], scaled[11520], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(
            first["inputs"][0], scaled[11520 - seq_len], rtol=1e-5, atol=1e-5
        )
        last = sources["test"][len(sources["test"]) - 1]
        np.testing.assert_allclose(last["targets"][-1], scaled[14399], rtol=1e-5, atol=1e-5)
        val_last = sources["validation"][len(sources["validation"]) - 1]
        np.testing.assert_allclose(val_last["targets"][-1], scaled[11519], rtol=1e-5, atol=1e-5)
        train_last = sources["train"][len(sources["train"]) - 1]
        np.testing.assert_allclose(train_last["targets"][-1], scaled[8639], rtol=1e-5, atol=1e-5)


@needs_ett
def test_etth1_through_the_loader(tmp_path):
    config = series_config("etth1", tmp_path, manual_dir=str(ETT_DIR), max_length=336, horizon=96)
    info, open_split = data.get_dataset(config)
    assert info.splits == {"train": 8209, "validation": 2785, "test": 2785}
    assert dict(info.model_fields) == {"num_channels": 7, "horizon": 96}
    assert info.vocab_size == 0 and info.num_classes == 0
    window = open_split("test")[0]
    assert window["inputs"].shape == (336, 7) and window["targets"].shape == (96, 7)
    assert window["inputs"].dtype == np.float32
    uni = data.get_dataset({**config, "univariate": True})
    assert dict(uni[0].model_fields) == {"num_channels": 1, "horizon": 96}


def test_split_rules():
    assert windows.split_rows(69_680, "ett_minute") == {
        "train": (0, 34_560),
        "validation": (34_560, 46_080),
        "test": (46_080, 57_600),
    }
    # LTSF's custom rule: int(0.7 N) train, int(0.2 N) test, the rest validation.
    assert windows.split_rows(966, "ratio_70_10_20") == {
        "train": (0, 676),
        "validation": (676, 773),
        "test": (773, 966),
    }
    with pytest.raises(errors.DataNotFoundError, match="needs 14400 rows"):
        windows.split_rows(1000, "ett_hour")


def test_windows_are_stride_one_and_the_scaler_sees_train_only():
    values = tiny_series(rows=100, channels=2)
    sources, scaler = windows.protocol_splits(values, rule="ratio_70_10_20", seq_len=10, horizon=5)
    assert {k: len(v) for k, v in sources.items()} == {"train": 56, "validation": 6, "test": 16}
    np.testing.assert_allclose(scaler.mean, values[:70].mean(0))
    scaled = scaler.transform(values)
    for split, start in [("train", 0), ("validation", 70 - 10), ("test", 80 - 10)]:
        for i in (0, 1, len(sources[split]) - 1):
            window = sources[split][i]
            np.testing.assert_allclose(
                window["inputs"], scaled[start + i : start + i + 10], atol=1e-5
            )
            np.testing.assert_allclose(
                window["targets"], scaled[start + i + 10 : start + i + 15], atol=1e-5
            )
    with pytest.raises(IndexError):
        sources["test"][16]
    empty = sources["test"].empty_record()
    assert empty["inputs"].shape == (10, 2) and not empty["targets"].any()
    np.testing.assert_allclose(scaler.inverse(scaled), values)


def test_a_constant_channel_scales_by_one():
    values = np.stack([np.arange(50.0), np.full(50, 3.0)], 1)
    _, scaler = windows.protocol_splits(values, rule="ratio_70_10_20", seq_len=4, horizon=2)
    assert scaler.scale[1] == 1.0


def test_a_split_too_short_for_a_window_raises():
    with pytest.raises(errors.DataNotFoundError, match="shorter than look-back"):
        windows.protocol_splits(tiny_series(rows=100), rule="ratio_70_10_20", seq_len=8, horizon=12)


# --- the builder and loader on tiny CSVs ---------------------------------------------------------


def test_a_tiny_csv_through_the_builder_and_loader(tmp_path):
    values = tiny_series(rows=5000, channels=3)
    write_csv(tmp_path / "manual", "exchange_rate.csv", values)
    config = series_config("exchange_rate", tmp_path)
    info, open_split = data.get_dataset(config)
    n_train, n_test = int(5000 * 0.7), int(5000 * 0.2)
    assert info.splits == {
        "train": n_train - 24 - 8 + 1,
        "validation": 5000 - n_train - n_test - 8 + 1,
        "test": n_test - 8 + 1,
    }
    builder = series.TimeSeries(config="exchange_rate", data_dir=str(tmp_path / "tfds"))
    stored, columns = series.read_series(builder)
    assert columns == ("c0", "c1", "OT")
    # Several records (ROWS_PER_RECORD rows each) are put back together in order.
    assert len(builder.as_data_source(series.SPLIT)) == -(-5000 // series.ROWS_PER_RECORD)
    np.testing.assert_allclose(stored, np.round(values, 6), atol=1e-9)
    mean, std = stored[:n_train].mean(0), stored[:n_train].std(0)
    last = open_split("test")[info.splits["test"] - 1]
    np.testing.assert_allclose(last["targets"][-1], (stored[-1] - mean) / std, atol=1e-5)
    # Univariate: only the target channel (OT by default, or data.target).
    uni_info, uni_split = data.get_dataset({**config, "univariate": True, "target": "c1"})
    assert uni_info.model_fields["num_channels"] == 1
    np.testing.assert_allclose(
        uni_split("test")[0]["inputs"][:, 0], open_split("test")[0]["inputs"][:, 1], atol=1e-6
    )
    with pytest.raises(errors.ConfigError, match="not a channel"):
        data.get_dataset({**config, "univariate": True, "target": "nope"})


def test_missing_csv_says_where_to_put_it(tmp_path):
    with pytest.raises(
        errors.DataNotFoundError, match="traffic.csv is not in .*no stable public URL"
    ):
        data.get_dataset(series_config("traffic", tmp_path))
    with pytest.raises(errors.DataNotFoundError, match="ETDataset.*ETTm1.csv.*never automatically"):
        data.get_dataset(series_config("ettm1", tmp_path))


def test_no_build_without_permission(tmp_path):
    write_csv(tmp_path / "manual", "exchange_rate.csv", tiny_series(rows=500))
    with pytest.raises(errors.DataNotFoundError, match="allow_build"):
        data.get_dataset(series_config("exchange_rate", tmp_path, allow_build=False))


def test_bad_values_and_columns_raise():
    with pytest.raises(errors.DataNotFoundError, match="not a number"):
        series.read_csv("date,a\n1,x\n", columns=None, date_column="date")
    with pytest.raises(errors.DataNotFoundError, match="lacks columns"):
        series.read_csv("date,a\n1,2\n", columns=("b",), date_column="date")


def test_vic_elec_builds_offline(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("vic_elec must not touch the network")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    info, open_split = data.get_dataset(series_config("vic_elec", tmp_path, manual_dir=None))
    n = 52_608
    n_train, n_test = int(n * 0.7), int(n * 0.2)
    assert info.splits == {
        "train": n_train - 24 - 8 + 1,
        "validation": n - n_train - n_test - 8 + 1,
        "test": n_test - 8 + 1,
    }
    assert dict(info.model_fields) == {"num_channels": 2, "horizon": 8}
    builder = series.TimeSeries(config="vic_elec", data_dir=str(tmp_path / "tfds"))
    values, columns = series.read_series(builder)
    assert columns == ("Demand", "Temperature") and values.shape == (n, 2)
    np.testing.assert_allclose(values[0], [4382.825174, 21.4])  # the CSV's first row
