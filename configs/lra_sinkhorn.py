"""Sparse Sinkhorn attention (Tay et al. 2020, arXiv:2002.11296) on Long Range Arena.

  python -m experiments.train --config=configs/lra_sinkhorn.py --workdir=runs/lra_sinkhorn
  python -m experiments.train --config=configs/lra_sinkhorn.py:smoke --workdir=/tmp/smoke

Hyper-parameters: blocks of 50 (LRA-code's Sinkhorn default, LRA.md §3.2; 40 blocks at ListOps
length 2000), 5 Sinkhorn iterations, temperature 0.75. Published ListOps test accuracy: 33.67%
(LRA paper Table 1, `setup=lra`); the Nyströmformer paper reports none; majority class ~17%.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("sinkhorn", arg, lra_model="sinkhorn", block_size=50)
