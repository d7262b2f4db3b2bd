"""Byte-level causal LM on Shakespeare with exact softmax attention (the baseline).

  python -m experiments.train --config=configs/lm_softmax.py --workdir=runs/lm_softmax
  python -m experiments.train --config=configs/lm_softmax.py:smoke --workdir=/tmp/lm_smoke

`softmax` is the O(T²) reference; `--config.model.attention.kind=exact` picks the platform's
fastest exact kind (softmax_chunked on CPU). Settings: configs/lm_base.py.
"""

from configs import lm_base


def get_config(arg: str | None = None):
    return lm_base.get_lm_config("softmax", arg)
