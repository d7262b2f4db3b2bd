"""The vanilla Transformer forecaster: one token per time step (Dense C -> D plus sinusoidal
positions), the shared encoder with any attention kind (`kind=`, default softmax), a per-token
Dense D -> C and a linear map over time L -> P (`models/forecaster.py`, layout `time_step`).

  python -m experiments.train --config=configs/ts_transformer.py:dataset=etth1,kind=performer \\
      --config.data.manual_dir=/path/to/ETT --workdir=runs/ts_transformer_etth1_96

The baseline the linear-models paper argues against (Zeng et al. 2023): no paper setting is
copied; a small model for the CPU (D = 128, 2 layers, 4 heads, MLP 256, dropout 0.1, RevIN on,
look-back 96) with LTSF-Linear's loop at lr 1e-4. Here the attention sees L tokens, so this is
the layout where an efficient kind changes the cost.
"""

from __future__ import annotations

from ml_collections import config_dict

from configs import ts_base

MODEL = {
    "layout": "time_step",
    "emb_dim": 128,
    "num_layers": 2,
    "num_heads": 4,
    "mlp_dim": 256,
    "dropout_rate": 0.1,
    "positional": "sinusoidal",
    "revin": True,
    "revin_affine": False,
}
SMOKE_MODEL = {"emb_dim": 16, "num_layers": 1, "num_heads": 2, "mlp_dim": 32}


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
    return ts_base.get_ts_config(
        "forecaster",
        arg,
        attention="softmax",
        lookback=96,
        training={"learning_rate": 1e-4},
        smoke_model=SMOKE_MODEL,
        **MODEL,
    )
