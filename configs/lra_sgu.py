"""gMLP's spatial gating unit (Liu et al. 2021, arXiv:2105.08050) as the token mixer on Long Range
Arena.

  python -m experiments.train --config=configs/lra_sgu.py --workdir=runs/lra_sgu
  python -m experiments.train --config=configs/lra_sgu.py:smoke --workdir=/tmp/smoke

The mixer replaces the whole attention sublayer with gMLP's channel expansion (GELU), spatial
gating unit (a learned T×T matrix W over tokens, init ≈ 0, bias 1) and output projection; the
encoder block's MLP stays (the mixer sits in a Transformer block; no aMLP attention).
Hyper-parameter: ffn_dim (default 6·D, the paper's d_ffn = 6·d_model). W is [T, T] at the
task's padded length: 4M parameters per layer on ListOps (T = 2000), 16M on Text and Retrieval
(4000), 268M on Path-X (16384, impractical). Published LRA results: none (gMLP is evaluated on
ImageNet and BERT pretraining/fine-tuning). The LRA per-model sizes (`setup=lra`) are the
Transformer's.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("sgu", arg)
