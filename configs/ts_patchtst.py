"""PatchTST (Nie et al., "A Time Series is Worth 64 Words", ICLR 2023,
https://arxiv.org/abs/2211.14730): channel-independent patches (16, stride 8) with RevIN, the
shared encoder with any attention kind (`kind=`, default softmax), a flatten head.

  python -m experiments.train --config=configs/ts_patchtst.py:dataset=etth1,horizon=96 \\
      --config.data.manual_dir=/path/to/ETT --workdir=runs/ts_patchtst_etth1_96
  python -m experiments.train --config=configs/ts_patchtst.py:dataset=etth1,kind=linear,epochs=10 ...

Model and loop: `models/forecaster.SETTINGS['patchtst_etth1']` (their etth1.sh: L = 336, D = 16,
4 heads, 3 layers, MLP 128, dropout 0.3, non-affine RevIN; Adam lr 1e-4, batch 128, 100 epochs,
lr held for 3 epochs then x0.9 per epoch). Published PatchTST/42 ETTh1 MSE / MAE (their Table 3):
96 0.375 / 0.399 (PatchTST/64: 0.370 / 0.400). Differences from their code (forecaster.py):
pre-LN blocks with LayerNorm where they use BatchNorm; no early stopping (patience 100 never
fires in 100 epochs anyway). The 2-core CPU runs in WORKSPACE.md "Time series" use `epochs=10`.
"""

from __future__ import annotations

from ml_collections import config_dict

from configs import ts_base
from jaxattn.models import forecaster

SETTING = forecaster.SETTINGS["patchtst_etth1"]
SMOKE_MODEL = {
    "emb_dim": 16,
    "num_layers": 1,
    "num_heads": 2,
    "mlp_dim": 32,
    "patch_len": 8,
    "stride": 4,
}


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
    loop = SETTING["train"]
    return ts_base.get_ts_config(
        "forecaster",
        arg,
        attention="softmax",
        epochs=loop["num_epochs"],
        lookback=SETTING["look_back"],
        training={
            "learning_rate": loop["learning_rate"],
            "batch_size": loop["batch_size"],
            "decay_rate": 0.9,
            "decay_begin_epochs": 3,
        },
        smoke_model=SMOKE_MODEL,
        **SETTING["model"],
    )
