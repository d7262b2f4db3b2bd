"""Dynamic Mask Attention (Trainable Dynamic Mask Sparse Attention, 2025, arXiv:2508.02124) on
Long Range Arena.

  python -m experiments.train --config=configs/lra_dma.py --workdir=runs/lra_dma
  python -m experiments.train --config=configs/lra_dma.py:smoke --workdir=/tmp/smoke

Each query keeps the top-w keys by a learned, value-derived importance δ (added as a bias).
keep_window_size w = 256 is this repository's choice: the paper's default 2048 would keep every
key of most LRA tasks (T = 1-4K), making DMA softmax plus a bias; 256 keeps 6-25%. This runs the
dense reference (no sparse kernel). Published LRA results: none (the paper evaluates language
modelling).
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("dma", arg, keep_window_size=256)
