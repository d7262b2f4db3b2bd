"""Byte-level causal LM on Shakespeare with elu+1 linear attention (Katharopoulos et al. 2020).

  python -m experiments.train --config=configs/lm_linear.py --workdir=runs/lm_linear
  python -m experiments.train --config=configs/lm_linear.py:smoke --workdir=/tmp/lm_smoke

Causal form by chunked prefix sums (O(T·H²)); packed rows reset the state at document starts.
Settings: configs/lm_base.py.
"""

from configs import lm_base


def get_config(arg: str | None = None):
    return lm_base.get_lm_config("linear", arg)
