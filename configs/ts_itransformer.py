"""iTransformer (Liu et al., "iTransformer: Inverted Transformers Are Effective for Time Series
Forecasting", ICLR 2024, https://arxiv.org/abs/2310.06625): each variate's whole look-back is one
token, the shared encoder (any attention kind, `kind=`, default softmax) mixes the variates, a
linear head per token gives the horizon.

  python -m experiments.train --config=configs/ts_itransformer.py:dataset=etth1,horizon=96 \\
      --config.data.manual_dir=/path/to/ETT --workdir=runs/ts_itransformer_etth1_96

Model and loop: `models/forecaster.SETTINGS['itransformer_etth1']` (their iTransformer_ETTh1.sh:
L = 96, 2 layers, D = MLP = 256 for P = 96 / 192 and 512 for 336 / 720 (set here per horizon),
8 heads, dropout 0.1, non-affine instance normalization; Adam lr 1e-4, batch 32, 10 epochs,
lr halved per epoch). Published ETTh1 MSE / MAE (their Table 10): 96 0.386 / 0.405,
192 0.441 / 0.436, 336 0.487 / 0.458, 720 0.503 / 0.491. ETTh1 has 7 variates, so the attention
sees 7 tokens: the kind matters little here, and efficient kinds save nothing.
"""

from __future__ import annotations

from ml_collections import config_dict

from configs import ts_base
from jaxattn.models import forecaster

SETTING = forecaster.SETTINGS["itransformer_etth1"]
SMOKE_MODEL = {"emb_dim": 16, "num_layers": 1, "num_heads": 2, "mlp_dim": 32}


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
    loop = SETTING["train"]
    config = ts_base.get_ts_config(
        "forecaster",
        arg,
        attention="softmax",
        epochs=loop["num_epochs"],
        lookback=SETTING["look_back"],
        training={"learning_rate": loop["learning_rate"], "batch_size": loop["batch_size"]},
        smoke_model=SMOKE_MODEL,
        **SETTING["model"],
    )
    if config.data.horizon >= 336 and config.model.emb_dim == SETTING["model"]["emb_dim"]:
        config.model.update(emb_dim=512, mlp_dim=512)  # their script's width for P = 336, 720
    return config
