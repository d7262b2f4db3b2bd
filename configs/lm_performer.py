"""Byte-level causal LM on Shakespeare with FAVOR+ (Performer, Choromanski et al. 2021).

  python -m experiments.train --config=configs/lm_performer.py --workdir=runs/lm_performer
  python -m experiments.train --config=configs/lm_performer.py:smoke --workdir=/tmp/lm_smoke

Positive softmax random features (64 per head, redrawn every step; a fixed draw at evaluation),
causal by prefix sums. Settings: configs/lm_base.py.
"""

from configs import lm_base


def get_config(arg: str | None = None):
    return lm_base.get_lm_config("performer", arg)  # settings: lm_base.LM_ATTENTION
