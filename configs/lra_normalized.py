"""Normalized attention (Richter & Wattenhofer 2020, arXiv:2005.09561) on Long Range Arena.

  python -m experiments.train --config=configs/lra_normalized.py --workdir=runs/lra_normalized
  python -m experiments.train --config=configs/lra_normalized.py:smoke --workdir=/tmp/smoke

The softmax over keys is replaced by standardising each row's scores over its real keys, times a
learned gain per head (init 1.0). No hyper-parameters. The paper reports no LRA run, so this is
the Transformer's LRA setup with the attention swapped. Published LRA results: none.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("normalized", arg)
