"""DLinear (Zeng et al., "Are Transformers Effective for Time Series Forecasting?", AAAI 2023,
https://arxiv.org/abs/2205.13504): moving-average decomposition (kernel 25), one linear map
L -> P for the trend and one for the remainder, shared by the channels.

  python -m experiments.train --config=configs/ts_dlinear.py:dataset=etth1,horizon=96 \\
      --config.data.manual_dir=/path/to/ETT --workdir=runs/ts_dlinear_etth1_96

Published (LTSF-Linear LTSF-Benchmark.md, look-back 336, multivariate), ETTh1 test MSE / MAE:
96 0.375 / 0.399, 192 0.405 / 0.416, 336 0.439 / 0.443, 720 0.472 / 0.490. Ours (2-core CPU,
about a minute per horizon): WORKSPACE.md "Time series". `--config.model.individual=True` gives
every channel its own maps (the paper's DLinear-I). Config string and training: configs/ts_base.py.
"""

from __future__ import annotations

from ml_collections import config_dict

from configs import ts_base


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
    return ts_base.get_ts_config("dlinear", arg, kernel_size=25, individual=False)
