"""Byte-level causal LM on Shakespeare with sliding-window attention (each byte sees 64 before it).

  python -m experiments.train --config=configs/lm_local.py --workdir=runs/lm_local
  python -m experiments.train --config=configs/lm_local.py:smoke --workdir=/tmp/lm_smoke

The window of 64 bytes (about one verse line) is a quarter of the 256-byte rows, so the layers
see O(T·w) pairs instead of O(T²). Settings: configs/lm_base.py.
"""

from configs import lm_base


def get_config(arg: str | None = None):
    return lm_base.get_lm_config("local", arg)  # settings: lm_base.LM_ATTENTION
