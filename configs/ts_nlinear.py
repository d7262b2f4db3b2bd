"""NLinear (Zeng et al., "Are Transformers Effective for Time Series Forecasting?", AAAI 2023,
https://arxiv.org/abs/2205.13504): subtract the window's last value, one linear map L -> P
shared by the channels, add the value back.

  python -m experiments.train --config=configs/ts_nlinear.py:dataset=etth1,horizon=96 \\
      --config.data.manual_dir=/path/to/ETT --workdir=runs/ts_nlinear_etth1_96

Published (LTSF-Linear LTSF-Benchmark.md, look-back 336, multivariate), ETTh1 test MSE / MAE:
96 0.374 / 0.394, 192 0.408 / 0.415, 336 0.429 / 0.427, 720 0.440 / 0.453.
`--config.model.individual=True` gives every channel its own map. Config string and training:
configs/ts_base.py (the same scripts as DLinear).
"""

from __future__ import annotations

from ml_collections import config_dict

from configs import ts_base


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
    return ts_base.get_ts_config("nlinear", arg, individual=False)
