"""Stochastically Subsampled self-Attention (Hussain et al. 2023, arXiv:2306.01705) on Long
Range Arena.

  python -m experiments.train --config=configs/lra_ssa.py --workdir=runs/lra_ssa
  python -m experiments.train --config=configs/lra_ssa.py:smoke --workdir=/tmp/smoke

In training each query attends to its local band (|t − s| <= 8) plus each farther key with
probability 0.25, from the layer's per-step rng; evaluation attends densely (softmax). keep_prob
0.25 is the paper's 4x subsampling (its reported savings are 4-8x); local_window 8 is our
choice (the paper tunes its locality bias per task). The paper evaluates language modelling,
image and graph tasks, not LRA: published LRA results: none. The dense reference saves no
compute here (ssa.py). The LRA per-model sizes (`setup=lra`) are the Transformer's.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("ssa", arg, keep_prob=0.25, local_window=8)
